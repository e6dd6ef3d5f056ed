"""Language models before neural networks: words, WordPiece pieces and a count-based bigram model.

The chapter-1 references. A *statistical language model* (统计语言模型) assigns a probability to the next
token given the ones before it; the simplest one that is still useful looks at one previous token only:

    P(next = j | previous = i) = (count(i, j) + alpha) / (count(i, ·) + alpha · V)      (add-alpha smoothing)

``bigram_log_probs`` builds that table from a sequence of token ids, ``fit_bigram_logits`` learns the same table by
gradient descent on the cross-entropy, ``perplexity`` scores a sequence with it,
``sample`` / ``generate`` draw text from it. ``wordpiece_tokenize`` is BERT's greedy longest-match-first
WordPiece for one word (the course's real tokenizer is built with the Hugging Face ``tokenizers`` library, see
``course_lib.tokenizer``; this is the readable version of what it does). The word-level helpers
(``words``, ``build_word_vocab``, ``encode_words``) turn the corpus into ids for the bigram model.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from typing import Iterable, Mapping, Sequence

import torch

BOUNDARY = "<s>"   # sentence boundary: starts and ends every sentence
UNKNOWN = "<unk>"  # any word outside the vocabulary

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+|[^\w\s]|_")


def words(sentence: str) -> list[str]:
    """Lowercase a sentence and split it into words (letters, with inner apostrophes), numbers and single
    punctuation marks.

    >>> words("It's 60 cm (24 in) long.")
    ["it's", '60', 'cm', '(', '24', 'in', ')', 'long', '.']
    """
    return _WORD.findall(sentence.lower())


def word_counts(sentences: Iterable[str]) -> Counter:
    """How often each word (as split by :func:`words`) occurs in ``sentences``."""
    return Counter(w for s in sentences for w in words(s))


def build_word_vocab(sentences_or_counts: Iterable[str] | Mapping[str, int], size: int) -> list[str]:
    """``[BOUNDARY, UNKNOWN]`` followed by the ``size - 2`` most frequent words (ties: first seen first).

    Pass the sentences, or the word counts of :func:`word_counts` if you already have them."""
    if size < 3:
        raise ValueError(f"a vocabulary needs at least 3 entries (<s>, <unk> and one word), got size={size}")
    counts = sentences_or_counts if isinstance(sentences_or_counts, Mapping) else word_counts(sentences_or_counts)
    return [BOUNDARY, UNKNOWN] + [w for w, _ in Counter(counts).most_common(size - 2)]


def encode_words(sentences: Iterable[str], vocab: Sequence[str] | Mapping[str, int]) -> torch.Tensor:
    """One LongTensor of ids for a stream of sentences: ``<s> w1 w2 ... <s> w1 ... <s>``.

    Each sentence is preceded by the boundary token and the stream ends with one, so the bigram model also
    learns how sentences start (P(w | <s>)) and end (P(<s> | w)). Out-of-vocabulary words become ``<unk>``."""
    index = vocab if isinstance(vocab, Mapping) else {w: i for i, w in enumerate(vocab)}
    boundary, unknown = index[BOUNDARY], index[UNKNOWN]
    ids: list[int] = []
    for sentence in sentences:
        ids.append(boundary)
        ids.extend(index.get(w, unknown) for w in words(sentence))
    ids.append(boundary)
    return torch.tensor(ids, dtype=torch.long)


def bigram_counts(token_ids, vocab_size: int) -> torch.Tensor:
    """``counts[i, j]`` = how often token ``j`` directly follows token ``i`` in ``token_ids`` (float64)."""
    ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)
    if ids.numel() and (ids.min() < 0 or ids.max() >= vocab_size):
        raise ValueError(f"token ids must be in [0, {vocab_size}), got values from {int(ids.min())} to {int(ids.max())}")
    flat = ids[:-1] * vocab_size + ids[1:]
    return torch.bincount(flat, minlength=vocab_size * vocab_size).view(vocab_size, vocab_size).double()


def bigram_log_probs(token_ids, vocab_size: int, alpha: float = 1.0) -> torch.Tensor:
    """``(vocab_size, vocab_size)`` tensor with ``[i, j] = log P(next = j | previous = i)``, add-alpha smoothed."""
    counts = bigram_counts(token_ids, vocab_size) + alpha
    return (counts / counts.sum(dim=1, keepdim=True)).log().float()


def fit_bigram_logits(token_ids, vocab_size: int, steps: int = 100, lr: float = 0.5,
                      progress: bool = False) -> tuple[torch.Tensor, list[float]]:
    """The bigram model as a neural network: a ``(vocab_size, vocab_size)`` table of logits, all zeros at the start,
    trained with Adam (full batch, ``lr``) for ``steps`` steps on the mean cross-entropy of the next token.

    Returns ``(log_probs, losses)``: the row-wise ``log_softmax`` of the trained table and the loss before each
    update. The minimum of that loss is the unsmoothed count model, ``log(count(i, j) / count(i, ·))``, so gradient
    descent recovers the counts; a row whose token never occurs gets no gradient and stays uniform.
    """
    from tqdm.auto import trange

    ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)
    previous, following = ids[:-1], ids[1:]
    logits = torch.zeros(vocab_size, vocab_size, requires_grad=True)
    optimizer = torch.optim.Adam([logits], lr=lr)
    losses = []
    for _ in trange(steps, desc="gradient descent", disable=not progress):
        loss = torch.nn.functional.cross_entropy(logits[previous], following)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return logits.detach().log_softmax(dim=1), losses


def perplexity(log_probs: torch.Tensor, token_ids) -> float:
    """exp(mean negative log-likelihood) of the ``len(token_ids) - 1`` transitions of ``token_ids``."""
    ids = torch.as_tensor(token_ids, dtype=torch.long).reshape(-1)
    if ids.numel() < 2:
        raise ValueError("perplexity needs at least two tokens (one transition)")
    nll = -log_probs[ids[:-1], ids[1:]].double().mean()
    return math.exp(nll.item())


def _next_token_probs(log_probs: torch.Tensor, temperature: float) -> torch.Tensor:
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    return torch.softmax(log_probs.double() / temperature, dim=-1)


def sample(log_probs: torch.Tensor, num_tokens: int, start: int = 0, temperature: float = 1.0,
           generator: torch.Generator | None = None) -> list[int]:
    """Draw ``num_tokens`` ids after ``start``, each from P(next | previous) (sharpened for ``temperature`` < 1)."""
    probs = _next_token_probs(log_probs, temperature)
    out, current = [], int(start)
    for _ in range(num_tokens):
        current = int(torch.multinomial(probs[current], 1, generator=generator))
        out.append(current)
    return out


def generate(log_probs: torch.Tensor, vocab: Sequence[str], num_sentences: int = 3, max_words: int = 40,
             temperature: float = 1.0, seed: int = 0) -> list[str]:
    """Sample ``num_sentences`` sentences (each starts after ``<s>`` and stops at the next ``<s>``)."""
    generator = torch.Generator().manual_seed(seed)
    probs = _next_token_probs(log_probs, temperature)
    boundary = list(vocab).index(BOUNDARY)
    sentences = []
    for _ in range(num_sentences):
        ids, current = [], boundary
        for _ in range(max_words):
            current = int(torch.multinomial(probs[current], 1, generator=generator))
            if current == boundary:
                break
            ids.append(current)
        sentences.append(" ".join(vocab[i] for i in ids))
    return sentences


def wordpiece_tokenize(word: str, vocab, unk_token: str = "[UNK]", max_chars: int = 100) -> list[str]:
    """BERT's WordPiece for one (already lowercased, punctuation-free) word: greedy longest match first.

    From the current position take the longest piece that is in ``vocab`` (continuation pieces carry the
    ``##`` prefix), then continue after it. If at some position no piece matches, or the word has more than
    ``max_chars`` characters, the whole word becomes ``[unk_token]``.

    >>> wordpiece_tokenize("unaffable", {"un", "##aff", "##able"})
    ['un', '##aff', '##able']
    """
    if len(word) > max_chars:
        return [unk_token]
    pieces, start = [], 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                break
            end -= 1
        if end == start:  # nothing matched at this position
            return [unk_token]
        pieces.append(piece)
        start = end
    return pieces


__all__ = ["BOUNDARY", "UNKNOWN", "bigram_counts", "bigram_log_probs", "build_word_vocab", "encode_words",
           "generate", "perplexity", "sample", "word_counts", "wordpiece_tokenize", "words"]
