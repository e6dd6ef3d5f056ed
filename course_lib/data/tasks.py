"""The sentence classification tasks of chapter 5: MR (movie-review polarity, Pang & Lee 2005) and SUBJ
(subjectivity, Pang & Lee 2004), cleaned, de-duplicated and split 80/10/10 (stratified, seeded), their
loaders, and the unlabelled training sentences that are safe for task-adaptive pretraining.
"""

from __future__ import annotations

import hashlib
import random
import re
import unicodedata
from functools import lru_cache
from typing import Sequence

import torch

from ..tokenizer import load_tokenizer
from .cache import DATA_DIR, tokenizer_key
from .corpus import read_text

TASKS = {
    "mr": {
        "description": "movie-review sentence polarity (Pang & Lee, 2005)",
        "files": {1: "sentence_polarity/rt-polarity.pos.gz", 0: "sentence_polarity/rt-polarity.neg.gz"},
        "label_names": ("negative", "positive"),
    },
    "subj": {
        "description": "subjectivity: review snippets vs plot sentences (Pang & Lee, 2004)",
        "files": {1: "subjectivity/quote.tok.gt9.5000.gz", 0: "subjectivity/plot.tok.gt9.5000.gz"},
        "label_names": ("objective", "subjective"),
    },
}
TASK_SPLITS = ("train", "dev", "test")
#: The seed of the stratified 80/10/10 splits (fixed once; ``assets/data/splits.json`` records
#: their sizes and sha256 so any change is caught by the tests).
TASK_SPLIT_SEED = 20240
_C1_MAP = {"\x91": "'", "\x92": "'", "\x93": '"', "\x94": '"', "\x96": "-", "\x97": "--", "\x85": " "}
_C1 = re.compile(r"[\x80-\x9f]")


def clean_task_text(text: str) -> str:
    """Clean one MR/SUBJ snippet: the stray C1 control characters of the raw files are mapped
    (U+0091/0092 -> ``'``, U+0093/0094 -> ``"``, U+0096 -> ``-``, U+0097 -> ``--``) or dropped (any
    other U+0080-U+009F), other control characters dropped, white space collapsed."""
    text = _C1.sub(lambda m: _C1_MAP.get(m.group(0), ""), text)
    text = "".join(c for c in text if c in "\t\n" or unicodedata.category(c) != "Cc")
    return " ".join(text.split())


def dedup_key(text: str) -> str:
    """The key under which two snippets count as duplicates: lower case, letters and digits only
    (``"stock up on silver bullets for director neil marshall's"`` and ``"... marshall ' s"`` match)."""
    key = re.sub(r"[\W_]+", " ", text.lower()).strip()
    return key or text


def _task_name(name: str) -> str:
    key = str(name).lower()
    if key not in TASKS:
        raise ValueError(f"unknown task {name!r}: the course has {sorted(TASKS)} "
                         "(mr = movie-review polarity, subj = subjectivity)")
    return key


def task_examples(name: str) -> tuple[list[str], list[int], dict]:
    """All examples of a task, cleaned and de-duplicated: ``(texts, labels, stats)``.

    Duplicates (the same :func:`dedup_key`: equal up to case, punctuation and spacing) are kept once,
    at their first occurrence; a text that appears with both labels is dropped entirely. ``stats``
    counts what was removed (MR: 2 duplicates, SUBJ: 2; no conflicts)."""
    info = TASKS[_task_name(name)]
    texts, labels = [], []
    for label in sorted(info["files"]):
        for line in read_text(DATA_DIR / info["files"][label]).split("\n"):
            t = clean_task_text(line)
            if t:
                texts.append(t)
                labels.append(label)
    keys = [dedup_key(t) for t in texts]
    by_key: dict[str, set[int]] = {}
    for k, y in zip(keys, labels):
        by_key.setdefault(k, set()).add(y)
    conflicting = {k for k, ys in by_key.items() if len(ys) > 1}
    out_t, out_y, seen = [], [], set()
    for t, k, y in zip(texts, keys, labels):
        if k in seen or k in conflicting:
            continue
        seen.add(k)
        out_t.append(t)
        out_y.append(y)
    n_conflicting = sum(1 for k in keys if k in conflicting)
    stats = {"raw": len(texts), "duplicates_removed": len(texts) - len(out_t) - n_conflicting,
             "conflicting_removed": n_conflicting, "kept": len(out_t)}
    return out_t, out_y, stats


def _stratified_split(labels: Sequence[int], seed: int, fractions=(0.8, 0.1, 0.1)) -> dict[str, list[int]]:
    rng = random.Random(seed)
    out: dict[str, list[int]] = {s: [] for s in TASK_SPLITS}
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(idx)
        n_dev, n_test = round(fractions[1] * len(idx)), round(fractions[2] * len(idx))
        out["test"] += idx[:n_test]
        out["dev"] += idx[n_test: n_test + n_dev]
        out["train"] += idx[n_test + n_dev:]
    return {s: sorted(v) for s, v in out.items()}


@lru_cache(maxsize=None)
def _load_task(name: str) -> dict[str, tuple[tuple[str, ...], tuple[int, ...]]]:
    texts, labels, _ = task_examples(name)
    parts = _stratified_split(labels, TASK_SPLIT_SEED)
    return {s: (tuple(texts[i] for i in idx), tuple(labels[i] for i in idx)) for s, idx in parts.items()}


def load_task(name: str) -> dict[str, tuple[list[str], list[int]]]:
    """A classification task as ``{"train": (texts, labels), "dev": ..., "test": ...}``.

    ``name``: ``"mr"`` (movie-review sentence polarity; label 1 = positive, 0 = negative) or
    ``"subj"`` (subjectivity; 1 = subjective review snippet, 0 = objective plot sentence).
    Texts are cleaned (:func:`clean_task_text`) and de-duplicated *before* splitting; the split is a
    seeded, stratified 80/10/10 one (fixed: see ``assets/data/splits.json``), so no text is in two
    splits of the same task. Raises ``ValueError`` for an unknown name."""
    data = _load_task(_task_name(name))
    return {s: (list(t), list(y)) for s, (t, y) in data.items()}


def task_split_digest(name: str) -> dict[str, dict]:
    """Size, label counts and sha256 of each split (what ``assets/data/splits.json`` records)."""
    out = {}
    for split, (texts, labels) in load_task(name).items():
        h = hashlib.sha256("\n".join(f"{y}\t{t}" for t, y in zip(texts, labels)).encode()).hexdigest()
        out[split] = {"size": len(texts), "labels": {str(k): labels.count(k) for k in sorted(set(labels))},
                      "sha256": h}
    return out


def stratified_subset(labels: Sequence[int], fraction: float, seed: int = 0) -> list[int]:
    """Indices (sorted) of a seeded, stratified subset holding ``fraction`` of each label (at least
    one example per label)."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"fraction must be in (0, 1], got {fraction}")
    if fraction == 1.0:
        return list(range(len(labels)))
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(set(labels)):
        idx = [i for i, y in enumerate(labels) if y == label]
        rng.shuffle(idx)
        keep += idx[: max(1, round(fraction * len(idx)))]
    return sorted(keep)


class TaskCollator:
    """Pads tokenized examples ``(input_ids, label)`` into ``input_ids``, ``token_type_ids`` (zeros),
    ``attention_mask`` and ``labels`` tensors."""

    def __init__(self, pad_id: int = 0):
        self.pad_id = pad_id

    def __call__(self, items) -> dict[str, torch.Tensor]:
        L = max(len(ids) for ids, _ in items)
        input_ids = torch.full((len(items), L), self.pad_id, dtype=torch.long)
        attention = torch.zeros((len(items), L), dtype=torch.long)
        for r, (ids, _) in enumerate(items):
            input_ids[r, : len(ids)] = torch.as_tensor(ids, dtype=torch.long)
            attention[r, : len(ids)] = 1
        return {"input_ids": input_ids, "token_type_ids": torch.zeros_like(input_ids), "attention_mask": attention,
                "labels": torch.tensor([y for _, y in items], dtype=torch.long)}


_TASK_ENCODINGS: dict[tuple, list[list[int]]] = {}


def _encode_task(name: str, split: str, tokenizer, max_length: int) -> list[list[int]]:
    key = (_task_name(name), split, tokenizer_key(tokenizer), max_length)
    if key not in _TASK_ENCODINGS:
        texts = load_task(name)[split][0]
        _TASK_ENCODINGS[key] = tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]
    return _TASK_ENCODINGS[key]


def task_loader(
    name: str,
    split: str,
    tokenizer=None,
    batch_size: int = 32,
    max_length: int = 64,
    shuffle: bool = False,
    seed: int = 0,
    fraction: float = 1.0,
    drop_last: bool = False,
    by_length: bool = False,
) -> torch.utils.data.DataLoader:
    """Ready batches of a task split: dicts with ``input_ids``, ``token_type_ids``, ``attention_mask``
    (padded to the longest text of the batch) and ``labels``; ``model(**batch)`` works for
    ``BertForSequenceClassification``.

    Texts are encoded ``[CLS] text [SEP]`` and truncated to ``max_length`` tokens (a longer text
    keeps its beginning). ``shuffle`` reshuffles every epoch from ``seed``. ``fraction`` < 1 keeps a
    seeded, stratified subset of the split (e.g. 10 % of the training labels); the same
    ``(fraction, seed)`` always gives the same subset.

    ``by_length`` makes batches of texts of similar length, so each pads little (MR's random batches are 1.9x
    their texts' tokens): without ``shuffle``, the texts shortest first (an evaluation pass runs about twice as
    fast, with the same predictions); with ``shuffle``, :class:`LengthGroupedBatches` (random batches of
    similar lengths, as transformers' ``group_by_length``)."""
    if split not in TASK_SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {TASK_SPLITS}")
    if tokenizer is None:
        tokenizer = load_tokenizer()
    texts, labels = load_task(name)[split]
    keep = stratified_subset(labels, fraction, seed)
    labels = [labels[i] for i in keep]
    enc = _encode_task(name, split, tokenizer, max_length)
    items = [(enc[i], labels[j]) for j, i in enumerate(keep)]
    collate = TaskCollator(tokenizer.pad_token_id)
    g = torch.Generator().manual_seed(seed)
    if by_length and shuffle:
        batches = LengthGroupedBatches([len(ids) for ids, _ in items], batch_size, g, drop_last)
        return torch.utils.data.DataLoader(items, batch_sampler=batches, collate_fn=collate)
    if by_length:
        items.sort(key=lambda item: len(item[0]))
    return torch.utils.data.DataLoader(items, batch_size=batch_size, shuffle=shuffle, generator=g if shuffle else None,
                                       collate_fn=collate, drop_last=drop_last)


class LengthGroupedBatches(torch.utils.data.Sampler):
    """Random batches of texts of similar length. Each epoch: shuffle the examples, sort each run of ``group``
    batches' worth of them by length, cut the runs into batches, shuffle the batches. Every example comes once per
    epoch; a batch's texts are alike in length but drawn from a random ``group * batch_size`` of the data."""

    def __init__(self, lengths: Sequence[int], batch_size: int, generator: torch.Generator, drop_last: bool = False,
                 group: int = 50):
        self.lengths, self.batch_size, self.generator = list(lengths), batch_size, generator
        self.drop_last, self.group = drop_last, group

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        order = torch.randperm(len(self.lengths), generator=self.generator).tolist()
        run, batches = self.group * self.batch_size, []
        for start in range(0, len(order), run):
            chunk = sorted(order[start:start + run], key=self.lengths.__getitem__)
            batches += [chunk[i:i + self.batch_size] for i in range(0, len(chunk), self.batch_size)]
        if self.drop_last:
            batches = [b for b in batches if len(b) == self.batch_size]
        for i in torch.randperm(len(batches), generator=self.generator).tolist():
            yield batches[i]


def unlabelled_task_sentences(tasks: Sequence[str] = ("mr", "subj"), split: str = "train") -> list[str]:
    """Unlabelled in-domain text for task-adaptive MLM pretraining: the ``split`` (default training)
    sentences of ``tasks``, de-duplicated, with **every sentence that appears in a dev or test split of
    any task** (MR or SUBJ; compared by :func:`dedup_key`) removed — 721 SUBJ training sentences are MR dev/test sentences, so using
    them would leak evaluation text into pretraining. Order: task by task, split order."""
    if isinstance(tasks, str):
        tasks = (tasks,)
    if split not in TASK_SPLITS:
        raise ValueError(f"unknown split {split!r}: use one of {TASK_SPLITS}")
    held = {dedup_key(t) for name in TASKS for s in ("dev", "test") for t in load_task(name)[s][0]}
    out, seen = [], set()
    for name in tasks:
        for t in load_task(_task_name(name))[split][0]:
            k = dedup_key(t)
            if k in seen or (k in held and split == "train"):
                continue
            seen.add(k)
            out.append(t)
    return out
