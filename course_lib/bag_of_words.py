"""The baseline every sentence classifier should beat: logistic regression on a bag of words and word pairs.

No word order beyond adjacent pairs, no pretraining, a few seconds of CPU: the model counts which unigrams and
bigrams a sentence contains (1 if present, 0 if not, as NBSVM does) and learns one weight per n-gram. On MR and SUBJ
such models are strong (Wang & Manning 2012: NBSVM 79.4 / 93.2), so a Transformer is only worth its cost where it
beats this line.

    from course_lib.bag_of_words import bag_of_words_baseline
    bag_of_words_baseline("mr")     # {'l2': ..., 'dev_accuracy': ..., 'test_accuracy': ..., ...}
"""
from __future__ import annotations

import re
import time
from typing import Sequence

import torch
import torch.nn.functional as F

#: the L2 strengths tried (on the mean cross-entropy); the one with the best dev accuracy is kept
L2_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2)
_WORD = re.compile(r"[\w']+|[^\w\s]")


def ngrams(text: str, n_max: int = 2) -> list[str]:
    """The lower-cased words of `text` and, up to `n_max`, the runs of adjacent words ("not good")."""
    words = _WORD.findall(text.lower())
    return [" ".join(words[i:i + n]) for n in range(1, n_max + 1) for i in range(len(words) - n + 1)]


def build_vocabulary(texts: Sequence[str], n_max: int = 2) -> dict[str, int]:
    """Every n-gram of the training texts, numbered in order of first appearance."""
    vocabulary: dict[str, int] = {}
    for text in texts:
        for gram in ngrams(text, n_max):
            vocabulary.setdefault(gram, len(vocabulary))
    return vocabulary


def featurize(texts: Sequence[str], vocabulary: dict[str, int], n_max: int = 2) -> torch.Tensor:
    """Sparse (len(texts), len(vocabulary)) float tensor: 1 where a text contains an n-gram (unknown ones dropped)."""
    rows, cols = [], []
    for row, text in enumerate(texts):
        present = {vocabulary[g] for g in ngrams(text, n_max) if g in vocabulary}
        rows += [row] * len(present)
        cols += sorted(present)
    indices = torch.tensor([rows, cols], dtype=torch.long).reshape(2, -1)
    return torch.sparse_coo_tensor(indices, torch.ones(len(rows)), (len(texts), len(vocabulary)),
                                   check_invariants=True).coalesce()


def fit_logistic_regression(features: torch.Tensor, labels: torch.Tensor, num_classes: int, l2: float,
                            max_iter: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    """Weights (F, C) and bias (C,) minimising mean cross-entropy + l2 / 2 * ||weights||², by full-batch L-BFGS
    (the problem is convex: any correct optimiser reaches the same minimum)."""
    weight = torch.zeros(features.shape[1], num_classes, requires_grad=True)
    bias = torch.zeros(num_classes, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], max_iter=max_iter, line_search_fn="strong_wolfe",
                                  tolerance_grad=1e-6, tolerance_change=1e-9)

    def closure():
        optimizer.zero_grad()
        loss = F.cross_entropy(torch.sparse.mm(features, weight) + bias, labels) + l2 / 2 * weight.square().sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return weight.detach(), bias.detach()


def accuracy(features, labels, weight, bias) -> float:
    return (torch.sparse.mm(features, weight) + bias).argmax(-1).eq(labels).float().mean().item()


def bag_of_words_baseline(task: str, train_fraction: float = 1.0, seed: int = 0, l2_grid=L2_GRID,
                          n_max: int = 2) -> dict:
    """Train on `train_fraction` of a task's training labels (the same stratified subset `course finetune` uses
    for this fraction and seed), choose the L2 strength on dev, read test once: one results row."""
    from .data import load_task, stratified_subset

    started = time.perf_counter()
    splits = load_task(task)
    texts, labels = splits["train"]
    keep = stratified_subset(labels, train_fraction, seed)
    texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    vocabulary = build_vocabulary(texts, n_max)
    x_train, y_train = featurize(texts, vocabulary, n_max), torch.tensor(labels)
    (x_dev, y_dev), (x_test, y_test) = ((featurize(splits[s][0], vocabulary, n_max), torch.tensor(splits[s][1]))
                                        for s in ("dev", "test"))
    fits = {l2: fit_logistic_regression(x_train, y_train, 2, l2) for l2 in l2_grid}
    dev = {l2: accuracy(x_dev, y_dev, *fit) for l2, fit in fits.items()}
    best = max(l2_grid, key=lambda l2: dev[l2])  # the first of equal scores: the weakest penalty tried first
    return {"task": task, "model": "bag of words", "train_fraction": train_fraction, "seed": seed, "l2": best,
            "features": len(vocabulary), "dev_accuracy": round(dev[best], 4),
            "test_accuracy": round(accuracy(x_test, y_test, *fits[best]), 4),
            "wall_time_s": round(time.perf_counter() - started, 1)}
