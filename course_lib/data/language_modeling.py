"""Causal-LM data for the GPT: the corpus as one stream of byte-level BPE ids, cut into fixed-length windows.

Each document's sentences are joined by spaces and encoded with the GPT tokenizer; documents are concatenated
with `<|endoftext|>` after each one (GPT-2's convention: the model learns where a text ends, and a window may
span two documents, as in GPT-2's training), and the stream is cut into non-overlapping windows of
`block_size` tokens (the remainder is dropped). A window is both input and label (`GPTLMHeadModel` shifts
the labels), so a window of n tokens scores n - 1 next-token predictions.

    loader = lm_loader("train", block_size=256, batch_size=16, seed=0)   # shuffled windows, re-shuffled each epoch
    heldout = heldout_lm_batches(block_size=256)                         # fixed held-out windows, in order

The held-out windows come from the corpus' held-out documents (which neither the tokenizer nor the model saw)
and are the same on every machine, so perplexities recorded from them can be reproduced.
"""
import numpy as np
import torch

from .cache import cached, corpus_key, plain_backend, tokenizer_key
from .corpus import corpus_documents


def document_texts(split: str = "train") -> list[str]:
    """One string per document of `split`: its sentences joined by single spaces."""
    return [" ".join(doc.sentences) for doc in corpus_documents(split)]


def lm_token_stream(split: str = "train", tokenizer=None) -> np.ndarray:
    """The documents of `split` as one array of token ids (uint16), `<|endoftext|>` after each document.
    Cached on disk (as `.npz`, keyed by corpus and tokenizer) and in memory: tokenizing the corpus takes a minute."""
    from ..tokenizer import GPT_EOS_ID, load_gpt_tokenizer

    tokenizer = tokenizer or load_gpt_tokenizer()
    cache_key = (split, tokenizer_key(tokenizer))
    if cache_key not in _STREAMS:
        def build():
            encodings = plain_backend(tokenizer).encode_batch(document_texts(split), add_special_tokens=False)
            eos = np.array([GPT_EOS_ID], dtype=np.uint16)
            return np.concatenate([part for e in encodings for part in (np.asarray(e.ids, dtype=np.uint16), eos)])

        _STREAMS[cache_key] = cached(f"tokens-gpt-{split}-{corpus_key()}-{cache_key[1]}.npz", build,
                                     lambda ids, f: np.savez(f, ids=ids),
                                     lambda f: np.load(f, allow_pickle=False)["ids"])
    return _STREAMS[cache_key]


_STREAMS: dict[tuple[str, str], np.ndarray] = {}


def lm_windows(split: str = "train", block_size: int = 256, tokenizer=None) -> torch.Tensor:
    """The token stream of `split` cut into consecutive windows: a (num_windows, block_size) int64 tensor."""
    if block_size < 2:
        raise ValueError(f"block_size must be at least 2 (one input and one next token), got {block_size}")
    ids = lm_token_stream(split, tokenizer)
    num_windows = len(ids) // block_size
    return torch.from_numpy(ids[: num_windows * block_size].astype(np.int64)).view(num_windows, block_size)


class LMLoader:
    """Batches of shuffled windows, `{"input_ids", "labels"}` (both the window itself). Each `for batch in
    loader` is one epoch, in an order drawn from `seed` and the epoch number; `state_dict()` /
    `load_state_dict()` save and restore (epoch, batches done), so a resumed run sees exactly the batches the
    uninterrupted one would have. The last incomplete batch of an epoch is dropped (its windows come first in
    another epoch's order)."""

    def __init__(self, windows: torch.Tensor, batch_size: int = 16, seed: int = 0):
        if batch_size < 1 or batch_size > len(windows):
            raise ValueError(f"batch_size must be between 1 and the {len(windows)} windows, got {batch_size}")
        self.windows, self.batch_size, self.seed = windows, batch_size, seed
        self.epoch, self.batches_done = 0, 0

    def __len__(self) -> int:
        return len(self.windows) // self.batch_size - self.batches_done

    def _order(self) -> torch.Tensor:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        return torch.randperm(len(self.windows), generator=generator)

    def __iter__(self):
        order = self._order()
        for b in range(self.batches_done, len(self.windows) // self.batch_size):
            window = self.windows[order[b * self.batch_size: (b + 1) * self.batch_size]]
            self.batches_done = b + 1
            yield {"input_ids": window, "labels": window}
        self.epoch, self.batches_done = self.epoch + 1, 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])


def lm_loader(split: str = "train", block_size: int = 256, batch_size: int = 16, seed: int = 0,
              tokenizer=None) -> LMLoader:
    """Shuffled training batches of `split`'s windows (see :class:`LMLoader`)."""
    return LMLoader(lm_windows(split, block_size, tokenizer), batch_size, seed)


def heldout_lm_batches(block_size: int = 256, batch_size: int = 16, max_windows: int | None = None,
                       tokenizer=None) -> list[dict]:
    """The fixed held-out evaluation set: the held-out windows in corpus order (the first `max_windows`)."""
    windows = lm_windows("heldout", block_size, tokenizer)[:max_windows]
    return [{"input_ids": w, "labels": w} for w in windows.split(batch_size)]
