"""Pretraining data: BERT's MLM masking and next-sentence pairs (the chapter-4 references), the corpus as token
ids, BERT-style segment-pair examples, their dataset, collator and loader, the fixed held-out evaluation set,
and MLM-only batches of single texts (task-adaptive pretraining).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Sequence

import numpy as np
import torch

from ..tokenizer import load_tokenizer
from .cache import cached, corpus_key, plain_backend, tokenizer_key
from .corpus import load_corpus


# ----------------------------------------------------------------------------------------------
# MLM masking and NSP pairs (the chapter-4 references)
# ----------------------------------------------------------------------------------------------
def mask_tokens(
    input_ids: torch.Tensor,
    special_tokens_mask: torch.Tensor,
    mask_token_id: int,
    vocab_size: int,
    mlm_probability: float = 0.15,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masked-language-model corruption (dynamic: call it at batch time).

    ``input_ids``: LongTensor of any shape. ``special_tokens_mask``: bool tensor of the same shape,
    True where a position must never be masked (``[CLS]``, ``[SEP]`` *and padding*).
    Each other position is selected with probability ``mlm_probability``; of the selected, 80 % become
    ``mask_token_id``, 10 % a uniformly random id in ``[0, vocab_size)``, 10 % keep their token.
    Returns ``(inputs, labels)``: ``inputs`` a corrupted copy (``input_ids`` is not modified), ``labels``
    the original id at selected positions and -100 elsewhere (ignored by the loss).
    ``generator``: an optional ``torch.Generator`` for reproducible draws (on the inputs' device)."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
        raise TypeError("mask_tokens: input_ids must be an integer (Long) tensor")
    special_tokens_mask = torch.as_tensor(special_tokens_mask, device=input_ids.device)
    if special_tokens_mask.shape != input_ids.shape:
        raise ValueError(
            f"mask_tokens: special_tokens_mask has shape {tuple(special_tokens_mask.shape)}, "
            f"input_ids {tuple(input_ids.shape)}: they must match"
        )
    if not 0.0 <= mlm_probability <= 1.0:
        raise ValueError(f"mask_tokens: mlm_probability must be in [0, 1], got {mlm_probability}")
    special = special_tokens_mask.bool()
    probs = torch.full(input_ids.shape, float(mlm_probability), device=input_ids.device)
    selected = torch.bernoulli(probs, generator=generator).bool() & ~special
    labels = torch.where(selected, input_ids, torch.full_like(input_ids, -100))
    inputs = input_ids.clone()
    to_mask = torch.bernoulli(torch.full(input_ids.shape, 0.8, device=input_ids.device), generator=generator).bool()
    to_mask &= selected
    to_random = torch.bernoulli(torch.full(input_ids.shape, 0.5, device=input_ids.device), generator=generator).bool()
    to_random &= selected & ~to_mask
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator, device=input_ids.device,
                               dtype=input_ids.dtype)
    inputs[to_mask] = mask_token_id
    inputs[to_random] = random_ids[to_random]
    return inputs, labels


# ----------------------------------------------------------------------------------------------
# Pretraining data: token ids of the corpus, BERT-style segment pairs, collator, loader
# ----------------------------------------------------------------------------------------------
@dataclass
class TokenizedCorpus:
    """The corpus as token ids (no special tokens), flat and compact.

    Sentence ``s`` is ``ids[sent_offsets[s]:sent_offsets[s+1]]``; document ``d`` holds sentences
    ``doc_offsets[d]`` to ``doc_offsets[d+1] - 1``."""

    ids: np.ndarray  # uint16 or int32, (num_tokens,)
    sent_offsets: np.ndarray  # int64, (num_sentences + 1,)
    doc_offsets: np.ndarray  # int64, (num_documents + 1,)

    @property
    def num_tokens(self) -> int:
        return int(self.ids.shape[0])

    @property
    def num_sentences(self) -> int:
        return int(self.sent_offsets.shape[0] - 1)

    @property
    def num_documents(self) -> int:
        return int(self.doc_offsets.shape[0] - 1)

    def sentence(self, s: int) -> np.ndarray:
        return self.ids[self.sent_offsets[s]: self.sent_offsets[s + 1]]


def tokenize_documents(documents: Sequence[Sequence[str]], tokenizer) -> TokenizedCorpus:
    """Token ids (without ``[CLS]``/``[SEP]``) of every sentence of ``documents`` (batched, fast).
    Sentences that tokenize to nothing are dropped; so are documents left empty."""
    backend = plain_backend(tokenizer)
    flat = [s for doc in documents for s in doc]
    encodings = backend.encode_batch(flat, add_special_tokens=False) if flat else []
    vocab_size = backend.get_vocab_size()
    dtype = np.uint16 if vocab_size <= 65535 else np.int32
    lengths, doc_counts, chunks = [], [], []
    k = 0
    for doc in documents:
        n = 0
        for _ in doc:
            ids = encodings[k].ids
            k += 1
            if ids:
                chunks.append(np.asarray(ids, dtype=dtype))
                lengths.append(len(ids))
                n += 1
        if n:
            doc_counts.append(n)
    ids = np.concatenate(chunks) if chunks else np.zeros(0, dtype=dtype)
    sent_offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=sent_offsets[1:])
    doc_offsets = np.zeros(len(doc_counts) + 1, dtype=np.int64)
    np.cumsum(doc_counts, out=doc_offsets[1:])
    return TokenizedCorpus(ids, sent_offsets, doc_offsets)


_TOKENIZED: dict[tuple[str, str], TokenizedCorpus] = {}


def tokenized_corpus(split: str = "train", tokenizer=None) -> TokenizedCorpus:
    """:func:`load_corpus` ``(split)`` tokenized once, cached in memory and on disk."""
    if tokenizer is None:
        tokenizer = load_tokenizer()
    key = (split, tokenizer_key(tokenizer))
    if key not in _TOKENIZED:
        name = f"tokens-{split}-{corpus_key()}-{key[1]}.npz"
        _TOKENIZED[key] = cached(name, lambda: tokenize_documents(load_corpus(split), tokenizer),
                                 lambda corpus, f: np.savez(f, **vars(corpus)),
                                 lambda f: TokenizedCorpus(**np.load(f, allow_pickle=False)))
    return _TOKENIZED[key]


def _truncate_pair(a: np.ndarray, b: np.ndarray, max_tokens: int, rng: random.Random):
    """Trim the longer segment until ``len(a) + len(b) <= max_tokens``, each removed token taken from
    the front or the back at random (as in BERT's ``truncate_seq_pair``)."""
    la, lb = len(a), len(b)
    excess = la + lb - max_tokens
    if excess <= 0:
        return a, b
    # final lengths of repeatedly trimming the longer one
    if la - lb >= excess:
        ra, rb = excess, 0
    elif lb - la >= excess:
        ra, rb = 0, excess
    else:
        total = max_tokens
        fa = total // 2 if la < lb else total - total // 2
        ra, rb = la - fa, lb - (total - fa)
    out = []
    for seg, r in ((a, ra), (b, rb)):
        if r > 0:
            front = bin(rng.getrandbits(r)).count("1")
            seg = seg[front: len(seg) - (r - front)]
        out.append(seg)
    return out[0], out[1]


def create_pretraining_examples(
    corpus: TokenizedCorpus,
    max_length: int = 128,
    rng: random.Random | None = None,
    short_seq_prob: float = 0.1,
    nsp_probability: float = 0.5,
) -> list[tuple[np.ndarray, np.ndarray, int]]:
    """BERT's segment-pair construction (``create_instances_from_document``), for one epoch.

    Each document is read as a stream of sentences packed into chunks of up to ``max_length - 3``
    tokens (with probability ``short_seq_prob`` a shorter random target, so the model also sees short
    inputs). A chunk is cut at a random sentence boundary into A and B; with probability
    ``nsp_probability`` B is replaced by text from a random *other* document (label 1) and the unused
    sentences go back to the stream; otherwise B is the actual continuation (label 0). A chunk of a
    single long sentence is cut inside that sentence. Pairs are then trimmed to fit. Returns
    ``[(a_ids, b_ids, label)]`` in document order (shuffle them yourself)."""
    if max_length < 8:
        raise ValueError(f"max_length must be at least 8 (got {max_length})")
    if corpus.num_documents < 2:
        raise ValueError("pretraining pairs need at least two documents (negatives come from another document)")
    rng = rng or random.Random(0)
    max_tokens = max_length - 3
    ids, so, do = corpus.ids, corpus.sent_offsets, corpus.doc_offsets
    lens = np.diff(so).tolist()
    so_list = so.tolist()
    do_list = do.tolist()
    n_docs = corpus.num_documents
    examples: list[tuple[np.ndarray, np.ndarray, int]] = []
    for d in range(n_docs):
        first, last = do_list[d], do_list[d + 1]
        target = max_tokens
        if rng.random() < short_seq_prob:
            target = rng.randint(2, max_tokens)
        chunk: list[int] = []
        length = 0
        s = first
        while s < last:
            chunk.append(s)
            length += lens[s]
            if s == last - 1 or length >= target:
                is_random = rng.random() < nsp_probability
                if len(chunk) >= 2:
                    a_end = rng.randint(1, len(chunk) - 1)
                    a = ids[so_list[chunk[0]]: so_list[chunk[a_end - 1] + 1]]
                else:
                    a_end = 1
                    a = ids[so_list[chunk[0]]: so_list[chunk[0] + 1]]
                if not is_random and len(chunk) == 1 and len(a) < 2:
                    is_random = True  # a one-token chunk cannot be cut into A and B
                if is_random:
                    target_b = max(1, target - len(a))
                    other = rng.randrange(n_docs - 1)
                    other += other >= d
                    o_first, o_last = do_list[other], do_list[other + 1]
                    start = rng.randrange(o_first, o_last)
                    end, got = start, 0
                    while end < o_last and got < target_b:
                        got += lens[end]
                        end += 1
                    b = ids[so_list[start]: so_list[end]]
                    s -= len(chunk) - a_end  # put the unused sentences back
                    label = 1
                elif len(chunk) >= 2:
                    b = ids[so_list[chunk[a_end]]: so_list[chunk[-1] + 1]]
                    label = 0
                else:  # one long sentence: cut it inside
                    cut = rng.randint(1, len(a) - 1)
                    a, b = a[:cut], a[cut:]
                    label = 0
                a, b = _truncate_pair(a, b, max_tokens, rng)
                if len(a) and len(b):
                    examples.append((a, b, label))
                chunk, length = [], 0
                target = max_tokens
                if rng.random() < short_seq_prob:
                    target = rng.randint(2, max_tokens)
            s += 1
    return examples


class PretrainingDataset(torch.utils.data.Dataset):
    """Segment pairs for MLM + NSP, re-drawn for every epoch from ``(seed, epoch)``.

    ``dataset.set_epoch(e)`` rebuilds (and shuffles) the pairs of epoch ``e`` (about a second for the
    full corpus); items are ``(index, a_ids, b_ids, nsp_label)``; :class:`PretrainingCollator` turns a
    list of them into a batch."""

    def __init__(self, corpus: TokenizedCorpus, max_length: int = 128, seed: int = 0,
                 short_seq_prob: float = 0.1, nsp_probability: float = 0.5, epoch: int = 0):
        self.corpus = corpus
        self.max_length = int(max_length)
        self.seed = int(seed)
        self.short_seq_prob = short_seq_prob
        self.nsp_probability = nsp_probability
        self.epoch = None
        self.examples: list = []
        self.set_epoch(epoch)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        rng = random.Random(self.seed * 1_000_003 + int(epoch))
        ex = create_pretraining_examples(self.corpus, self.max_length, rng, self.short_seq_prob,
                                         self.nsp_probability)
        rng.shuffle(ex)
        self.examples, self.epoch = ex, int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        a, b, label = self.examples[i]
        return i, a, b, label


class PretrainingCollator:
    """Pads ``(index, a_ids, b_ids, label)`` items into a ``BertForPreTraining(**batch)`` batch:
    ``input_ids`` (``[CLS] A [SEP] B [SEP]`` + ``[PAD]``), ``token_type_ids``, ``attention_mask``,
    ``labels`` (MLM: original id at masked positions, -100 elsewhere) and ``next_sentence_label``.

    Masking is dynamic (:func:`mask_tokens`), drawn from a generator seeded with
    ``(seed, epoch, first item index)``, so a batch is a pure function of the seed, the epoch and its
    position: runs are reproducible and resumable. ``pad_to`` pads every batch to that fixed length
    (else to the longest pair in the batch, rounded up to ``pad_to_multiple_of``)."""

    def __init__(self, vocab_size: int = 8192, pad_id: int = 0, cls_id: int = 2, sep_id: int = 3,
                 mask_id: int = 4, mlm_probability: float = 0.15, seed: int = 0,
                 pad_to: int | None = None, pad_to_multiple_of: int | None = None):
        self.vocab_size, self.pad_id, self.cls_id, self.sep_id, self.mask_id = vocab_size, pad_id, cls_id, sep_id, mask_id
        self.mlm_probability = mlm_probability
        self.seed = int(seed)
        self.epoch = 0
        self.pad_to = pad_to
        self.pad_to_multiple_of = pad_to_multiple_of

    @classmethod
    def from_tokenizer(cls, tokenizer, **kwargs) -> "PretrainingCollator":
        return cls(vocab_size=len(tokenizer), pad_id=tokenizer.pad_token_id, cls_id=tokenizer.cls_token_id,
                   sep_id=tokenizer.sep_token_id, mask_id=tokenizer.mask_token_id, **kwargs)

    def pad(self, items) -> dict[str, torch.Tensor]:
        """Everything but the masking: ``input_ids`` (uncorrupted), ``token_type_ids``,
        ``attention_mask``, ``special_tokens_mask`` (bool) and ``next_sentence_label``."""
        if not items:
            raise ValueError("PretrainingCollator: empty batch")
        lengths = [len(a) + len(b) + 3 for _, a, b, _ in items]
        L = max(lengths)
        if self.pad_to is not None:
            if L > self.pad_to:
                raise ValueError(f"a pair has {L} tokens, more than pad_to={self.pad_to}")
            L = self.pad_to
        elif self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        B = len(items)
        input_ids = np.full((B, L), self.pad_id, dtype=np.int64)
        token_type = np.zeros((B, L), dtype=np.int64)
        attention = np.zeros((B, L), dtype=np.int64)
        special = np.ones((B, L), dtype=bool)
        for r, (_, a, b, _) in enumerate(items):
            la, lb = len(a), len(b)
            input_ids[r, 0] = self.cls_id
            input_ids[r, 1:1 + la] = a
            input_ids[r, 1 + la] = self.sep_id
            input_ids[r, 2 + la: 2 + la + lb] = b
            input_ids[r, 2 + la + lb] = self.sep_id
            token_type[r, 2 + la: 3 + la + lb] = 1
            attention[r, : 3 + la + lb] = 1
            special[r, 1:1 + la] = False
            special[r, 2 + la: 2 + la + lb] = False
        return {
            "input_ids": torch.from_numpy(input_ids),
            "token_type_ids": torch.from_numpy(token_type),
            "attention_mask": torch.from_numpy(attention),
            "special_tokens_mask": torch.from_numpy(special),
            "next_sentence_label": torch.tensor([int(it[3]) for it in items], dtype=torch.long),
        }

    def __call__(self, items) -> dict[str, torch.Tensor]:
        batch = self.pad(items)
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + self.epoch) * 10_000_019 + int(items[0][0]))
        inputs, labels = mask_tokens(batch["input_ids"], batch.pop("special_tokens_mask"), self.mask_id,
                                     self.vocab_size, self.mlm_probability, generator=g)
        batch["input_ids"], batch["labels"] = inputs, labels
        keys = ("input_ids", "token_type_ids", "attention_mask", "labels", "next_sentence_label")
        return {k: batch[k] for k in keys if k in batch}


class _EpochBatchSampler(torch.utils.data.Sampler):
    def __init__(self, dataset: PretrainingDataset, batch_size: int, drop_last: bool):
        self.dataset, self.batch_size, self.drop_last = dataset, batch_size, drop_last
        self.start_batch = 0

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        bs, n = self.batch_size, len(self.dataset)
        for b in range(self.start_batch, len(self)):
            yield list(range(b * bs, min(n, (b + 1) * bs)))


class PretrainingLoader(torch.utils.data.DataLoader):
    """A DataLoader over :class:`PretrainingDataset` that re-draws the pairs every epoch.

    Each ``for batch in loader`` is one epoch: pairs of epoch ``loader.epoch`` (re-drawn from the
    seed), fresh masks; at its end ``loader.epoch`` goes up by one. ``len(loader)`` is the number of
    batches of the coming epoch. ``state_dict()`` / ``load_state_dict()`` save and restore the
    position (epoch, batches done) so a resumed run continues with exactly the batches it would have
    seen."""

    def __init__(self, dataset: PretrainingDataset, collator: PretrainingCollator, batch_size: int = 32,
                 drop_last: bool = True, num_workers: int = 0, pin_memory: bool = False):
        sampler = _EpochBatchSampler(dataset, batch_size, drop_last)
        super().__init__(dataset, batch_sampler=sampler, collate_fn=collator, num_workers=num_workers,
                         pin_memory=pin_memory)
        self.collator = collator
        self.epoch = dataset.epoch
        self.batches_done = 0

    def _prepare(self) -> None:
        self.dataset.set_epoch(self.epoch)
        self.collator.epoch = self.epoch
        self.batch_sampler.start_batch = self.batches_done

    def __len__(self) -> int:
        self._prepare()
        return len(self.batch_sampler)

    def __iter__(self):
        self._prepare()
        for batch in super().__iter__():
            self.batches_done += 1
            yield batch
        self.epoch += 1
        self.batches_done = 0

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "batches_done": self.batches_done}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.batches_done = int(state["epoch"]), int(state["batches_done"])


def pretraining_loader(
    split: str = "train",
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 0,
    mlm_probability: float = 0.15,
    short_seq_prob: float = 0.1,
    nsp_probability: float = 0.5,
    documents: Sequence[Sequence[str]] | None = None,
    pad_to_multiple_of: int | None = None,
    drop_last: bool = True,
    num_workers: int = 0,
    pin_memory: bool = False,
) -> PretrainingLoader:
    """One call to MLM + NSP pretraining batches: ``for batch in loader: out = model(**batch)``.

    ``split``: ``"train"`` or ``"heldout"`` of :func:`load_corpus` (ignored when ``documents`` — your
    own list of documents, each a list of sentences — is given). ``tokenizer``: default
    :func:`course_lib.tokenizer.load_tokenizer`. Each batch: ``input_ids``, ``token_type_ids``,
    ``attention_mask``, ``labels`` (MLM, -100 = not masked) and ``next_sentence_label`` (0 = B follows
    A), padded to the longest pair in the batch (at most ``max_length``). Every epoch re-draws the
    pairs and the masks from ``seed``; see :class:`PretrainingLoader` for resuming."""
    if tokenizer is None:
        tokenizer = load_tokenizer()
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    corpus = tokenize_documents(documents, tokenizer) if documents is not None else tokenized_corpus(split, tokenizer)
    dataset = PretrainingDataset(corpus, max_length, seed, short_seq_prob, nsp_probability)
    collator = PretrainingCollator.from_tokenizer(tokenizer, mlm_probability=mlm_probability, seed=seed,
                                                  pad_to_multiple_of=pad_to_multiple_of)
    return PretrainingLoader(dataset, collator, batch_size, drop_last, num_workers, pin_memory)


def build_eval_set(
    tokenizer=None,
    split: str = "heldout",
    max_length: int = 128,
    num_examples: int | None = 2048,
    seed: int = 1234,
    mlm_probability: float = 0.15,
) -> dict[str, torch.Tensor]:
    """A fixed evaluation set: pairs, NSP labels and masks all drawn once from ``seed``, so metrics
    computed on it are reproducible. Returns a dict of tensors padded to the longest pair
    (``input_ids``, ``token_type_ids``, ``attention_mask``, ``labels``, ``next_sentence_label``) with
    ``num_examples`` rows (``None``: every pair of the split; the held-out split has 2,317 pairs
    of 128). Iterate with :func:`eval_batches`."""
    if tokenizer is None:
        tokenizer = load_tokenizer()
    corpus = tokenized_corpus(split, tokenizer)
    dataset = PretrainingDataset(corpus, max_length, seed, short_seq_prob=0.0)
    n = len(dataset) if num_examples is None else min(num_examples, len(dataset))
    collator = PretrainingCollator.from_tokenizer(tokenizer, mlm_probability=mlm_probability, seed=seed)
    items = [dataset[i] for i in range(n)]
    return collator(items)


def eval_batches(eval_set: dict[str, torch.Tensor], batch_size: int = 64, device=None):
    """Yield batches (dicts of tensors, trimmed to their longest row, moved to ``device``) of an
    evaluation set from :func:`build_eval_set`."""
    n = eval_set["input_ids"].shape[0]
    for i in range(0, n, batch_size):
        rows = {k: v[i: i + batch_size] for k, v in eval_set.items()}
        width = int(rows["attention_mask"].sum(1).max())
        batch = {k: (v[:, :width] if v.dim() == 2 else v) for k, v in rows.items()}
        if device is not None:
            batch = {k: v.to(device) for k, v in batch.items()}
        yield batch



# ----------------------------------------------------------------------------------------------
# MLM-only batches of single texts (task-adaptive pretraining)
# ----------------------------------------------------------------------------------------------
class _PackedTextDataset(torch.utils.data.Dataset):
    """Sentences packed into sequences of up to ``max_length - 2`` tokens, re-packed every epoch in a
    seeded random order."""

    def __init__(self, corpus: TokenizedCorpus, max_length: int, seed: int):
        self.corpus, self.max_length, self.seed = corpus, max_length, seed
        self.epoch, self.examples = None, []
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        if epoch == self.epoch:
            return
        rng = random.Random(self.seed * 1_000_003 + int(epoch))
        order = list(range(self.corpus.num_sentences))
        rng.shuffle(order)
        budget = self.max_length - 2
        examples, cur = [], []
        for s in order:
            ids = self.corpus.sentence(s)[:budget]
            if cur and sum(len(x) for x in cur) + len(ids) > budget:
                examples.append(np.concatenate(cur))
                cur = []
            cur.append(ids)
        if cur:
            examples.append(np.concatenate(cur))
        self.examples, self.epoch = examples, int(epoch)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, i: int):
        return i, self.examples[i], self.examples[i][:0], -1


class MLMCollator(PretrainingCollator):
    """Like :class:`PretrainingCollator` for single segments ``[CLS] text [SEP]``: no
    ``next_sentence_label`` in the batch (MLM only)."""

    def pad(self, items):
        if not items:
            raise ValueError("MLMCollator: empty batch")
        L = max(len(a) for _, a, _, _ in items) + 2
        if self.pad_to_multiple_of:
            L = -(-L // self.pad_to_multiple_of) * self.pad_to_multiple_of
        input_ids = np.full((len(items), L), self.pad_id, dtype=np.int64)
        attention = np.zeros((len(items), L), dtype=np.int64)
        special = np.ones((len(items), L), dtype=bool)
        for r, (_, a, _, _) in enumerate(items):
            la = len(a)
            input_ids[r, 0], input_ids[r, 1:1 + la], input_ids[r, 1 + la] = self.cls_id, a, self.sep_id
            attention[r, : la + 2] = 1
            special[r, 1:1 + la] = False
        ids = torch.from_numpy(input_ids)
        return {"input_ids": ids, "token_type_ids": torch.zeros_like(ids), "attention_mask": torch.from_numpy(attention),
                "special_tokens_mask": torch.from_numpy(special)}



def mlm_loader(
    texts: Sequence[str],
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 128,
    seed: int = 0,
    mlm_probability: float = 0.15,
    drop_last: bool = True,
) -> PretrainingLoader:
    """MLM-only batches from independent texts (e.g. :func:`unlabelled_task_sentences`): the texts,
    in a seeded random order re-drawn every epoch, are packed into ``[CLS] t1 t2 ... [SEP]`` sequences
    of at most ``max_length`` tokens and masked dynamically. Batches hold ``input_ids``,
    ``token_type_ids``, ``attention_mask`` and ``labels`` (no ``next_sentence_label``)."""
    if tokenizer is None:
        tokenizer = load_tokenizer()
    texts = [t for t in texts if t and t.strip()]
    if not texts:
        raise ValueError("mlm_loader: no (non-empty) texts")
    corpus = tokenize_documents([texts], tokenizer)
    dataset = _PackedTextDataset(corpus, max_length, seed)
    collator = MLMCollator.from_tokenizer(tokenizer, mlm_probability=mlm_probability, seed=seed)
    return PretrainingLoader(dataset, collator, batch_size, drop_last)


class InterleavedLoader:
    """Batches of ``main`` with batches of ``extra`` mixed in, a fixed ``extra_fraction`` of them, in a fixed
    pattern (e.g. 0.5: every other batch). For task-adaptive pretraining: MLM + NSP batches of the corpus
    with MLM-only batches of in-domain text. One ``for`` loop is one epoch of ``main``; ``extra`` keeps its
    own epochs. ``state_dict()`` / ``load_state_dict()`` resume both where they were."""

    def __init__(self, main: PretrainingLoader, extra: PretrainingLoader, extra_fraction: float):
        if not 0.0 < extra_fraction < 1.0:
            raise ValueError(f"extra_fraction must be between 0 and 1 (exclusive), got {extra_fraction}")
        if len(extra) == 0:
            raise ValueError("the extra loader has no batches: give it more text or a smaller batch size")
        self.main, self.extra, self.extra_fraction = main, extra, extra_fraction
        self.batches = 0  # over the whole run: where the pattern is

    def _is_extra(self, n: int) -> bool:
        return math.floor((n + 1) * self.extra_fraction) > math.floor(n * self.extra_fraction)

    def __len__(self) -> int:
        return math.ceil(len(self.main) / (1.0 - self.extra_fraction))

    def __iter__(self):
        main, extra = iter(self.main), iter(self.extra)
        while True:
            if self._is_extra(self.batches):
                try:
                    batch = next(extra)
                except StopIteration:  # the in-domain text is smaller: start its next epoch
                    extra = iter(self.extra)
                    batch = next(extra)
            else:
                batch = next(main, None)
                if batch is None:
                    return
            self.batches += 1
            yield batch

    def state_dict(self) -> dict:
        return {"main": self.main.state_dict(), "extra": self.extra.state_dict(), "batches": self.batches}

    def load_state_dict(self, state: dict) -> None:
        self.main.load_state_dict(state["main"])
        self.extra.load_state_dict(state["extra"])
        self.batches = int(state["batches"])
