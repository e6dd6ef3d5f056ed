"""BERT's pretraining losses, written out (chapter 4, the source document's §4.2).

§4.2 gives the masked-language-model loss as the cross-entropy  L = -Σ y_i log ŷ_i : with a one-hot
target y_i, only the log-probability of the true token survives, so the loss of one masked position is
-log softmax(logits)[label]. BERT averages it over the *masked* positions only (label != -100); the
positions that were not masked carry no target and must not dilute the average.

These are the references the chapter checks the learner against (and that later cells reuse). They
match `torch.nn.functional.cross_entropy(..., ignore_index=-100)`, which `course_lib.model` uses for speed.
"""
import torch

IGNORE_INDEX = -100


def log_softmax(logits: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """log softmax(x) = x - logsumexp(x), with the maximum subtracted so exp() cannot overflow."""
    shifted = logits - logits.amax(dim=dim, keepdim=True)
    return shifted - shifted.exp().sum(dim=dim, keepdim=True).log()


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean of -log softmax(logits)[label] over the positions whose label is not -100.

    logits: (..., V) float; labels: (...) integer ids in [0, V), or -100 where there is nothing to predict.
    Returns a 0-dim tensor (NaN when every label is -100, like torch's cross-entropy).
    """
    if logits.shape[:-1] != labels.shape:
        raise ValueError(f"logits {tuple(logits.shape)} must be labels {tuple(labels.shape)} plus a vocabulary axis")
    logits = logits.reshape(-1, logits.shape[-1]).float()
    labels = labels.reshape(-1)
    keep = labels != IGNORE_INDEX
    log_probs = log_softmax(logits[keep], dim=-1)
    picked = log_probs.gather(-1, labels[keep].unsqueeze(-1)).squeeze(-1)
    return -picked.sum() / keep.sum()


def nsp_loss(nsp_logits: torch.Tensor, nsp_labels: torch.Tensor) -> torch.Tensor:
    """Next-sentence-prediction cross-entropy: the mean over the batch of -log softmax(nsp_logits)[label]."""
    return mlm_loss(nsp_logits, nsp_labels)


def pretraining_loss(mlm_logits: torch.Tensor, nsp_logits: torch.Tensor, mlm_labels: torch.Tensor,
                     nsp_labels: torch.Tensor) -> torch.Tensor:
    """BERT's pretraining objective: MLM loss (masked positions only) + NSP loss (every pair), unweighted."""
    return mlm_loss(mlm_logits, mlm_labels) + nsp_loss(nsp_logits, nsp_labels)


__all__ = ["IGNORE_INDEX", "log_softmax", "mlm_loss", "nsp_loss", "pretraining_loss"]
