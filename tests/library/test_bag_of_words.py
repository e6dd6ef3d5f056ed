"""The bag-of-words baseline: n-grams, features, a logistic regression at its optimum, and its results row."""
import pytest
import torch
import torch.nn.functional as F

from course_lib.bag_of_words import L2_GRID, bag_of_words_baseline, build_vocabulary, featurize, \
    fit_logistic_regression, ngrams


def test_ngrams_are_lowercased_words_and_adjacent_pairs():
    assert ngrams("Not GOOD, it's bad.") == ["not", "good", ",", "it's", "bad", ".",
                                              "not good", "good ,", ", it's", "it's bad", "bad ."]
    assert ngrams("one", n_max=3) == ["one"] and ngrams("") == []


def test_features_mark_presence_once_and_drop_unknown_ngrams():
    vocabulary = build_vocabulary(["a b a", "c"])
    assert vocabulary == {"a": 0, "b": 1, "a b": 2, "b a": 3, "c": 4}
    dense = featurize(["a a a", "b z", ""], vocabulary).to_dense()
    assert dense.tolist() == [[1, 0, 0, 0, 0], [0, 1, 0, 0, 0], [0, 0, 0, 0, 0]]


def test_logistic_regression_reaches_the_optimum_of_its_objective():
    """At the minimum of mean cross-entropy + l2/2 ||w||², the gradient vanishes (checked by autograd on a fresh
    copy of the weights), and a perturbation only raises the objective."""
    g = torch.Generator().manual_seed(0)
    dense = (torch.rand(200, 30, generator=g) < 0.2).float()
    labels = (dense[:, :5].sum(1) > dense[:, 5:10].sum(1)).long()
    l2 = 1e-2
    weight, bias = fit_logistic_regression(dense.to_sparse(), labels, 2, l2)

    def objective(w, b):
        return F.cross_entropy(dense @ w + b, labels) + l2 / 2 * w.square().sum()

    w, b = weight.clone().requires_grad_(), bias.clone().requires_grad_()
    objective(w, b).backward()
    assert w.grad.abs().max() < 1e-4 and b.grad.abs().max() < 1e-4
    assert objective(weight + 0.01 * torch.randn(weight.shape, generator=g), bias) > objective(weight, bias)
    assert ((dense @ weight + bias).argmax(1) == labels).float().mean() > 0.9


def test_the_baseline_row_chooses_l2_on_dev():
    row = bag_of_words_baseline("subj", train_fraction=0.1, seed=1)
    assert row["l2"] in L2_GRID and row["train_fraction"] == 0.1 and row["seed"] == 1
    assert 0.8 < row["dev_accuracy"] <= 1.0 and 0.8 < row["test_accuracy"] <= 1.0  # bag of words is strong on SUBJ
    with pytest.raises(ValueError, match="fraction"):
        bag_of_words_baseline("subj", train_fraction=0.0)
