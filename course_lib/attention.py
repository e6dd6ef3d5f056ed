"""Self-attention, from the softmax up to BERT's multi-head self-attention.

The functions follow the source document's §4.1 symbol by symbol:
Q = XW^Q, K = XW^K, V = XW^V;  S = QKᵀ;  S' = S / √d_k;  A = softmax(S');  Z = AV.
Chapter 2 asks the learner to write the first four, chapter 3 the head reshapes and the module.
"""
import math

import torch
import torch.nn.functional as F
from torch import nn


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax: subtracting the maximum keeps exp() from overflowing."""
    shifted = x - x.amax(dim=dim, keepdim=True)
    exp = shifted.exp()
    return exp / exp.sum(dim=dim, keepdim=True)


def attention_scores(Q: torch.Tensor, K: torch.Tensor) -> torch.Tensor:
    """S = QKᵀ: (..., n, d_k) x (..., m, d_k) -> (..., n, m)."""
    return Q @ K.transpose(-2, -1)


def scaled_dot_product_attention(Q, K, V, mask=None, dropout: nn.Module | None = None):
    """Z = softmax(QKᵀ/√d_k) V, returning (Z, A).

    `mask` is a bool tensor broadcastable to (..., n, m) where True means "may attend" (the convention of
    `torch.nn.functional.scaled_dot_product_attention`). Masked keys get exactly zero weight because they are
    excluded *before* the softmax.
    """
    scores = attention_scores(Q, K) / math.sqrt(Q.shape[-1])
    if mask is not None:
        # The dtype's most negative value rather than -inf: a row with every key masked gives a uniform
        # (harmless) row instead of NaNs, and exp() of it is exactly 0 next to any allowed key.
        scores = scores.masked_fill(~mask, torch.finfo(scores.dtype).min)
    A = softmax(scores, dim=-1)
    if dropout is not None:
        A = dropout(A)
    return A @ V, A


def self_attention(X, W_q, W_k, W_v, mask=None):
    """Single-head self-attention exactly as §4.1 writes it (X @ W): returns (Z, A)."""
    return scaled_dot_product_attention(X @ W_q, X @ W_k, X @ W_v, mask=mask)


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, n, h·d) -> (B, h, n, d): each head gets its own contiguous slice of the hidden vector."""
    B, n, hidden = x.shape
    return x.view(B, n, num_heads, hidden // num_heads).transpose(1, 2)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, h, n, d) -> (B, n, h·d), the inverse of split_heads."""
    B, h, n, d = x.shape
    return x.transpose(1, 2).reshape(B, n, h * d)


def padding_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """(B, n) of 1 (token) / 0 (padding) -> bool (B, 1, 1, n): every query (and head) may attend to real tokens."""
    return attention_mask.bool()[:, None, None, :]


class MultiHeadSelfAttention(nn.Module):
    """BERT's self-attention: h heads of size hidden/h, then an output projection.

    Named like transformers' BertSelfAttention (query, key, value) so weights map one to one.
    """

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"hidden_size ({hidden_size}) must be divisible by num_heads ({num_heads})")
        self.num_heads = num_heads
        self.query = nn.Linear(hidden_size, hidden_size)
        self.key = nn.Linear(hidden_size, hidden_size)
        self.value = nn.Linear(hidden_size, hidden_size)
        self.output = nn.Linear(hidden_size, hidden_size)
        self.attention_dropout = nn.Dropout(dropout)

    def forward(self, x, attention_mask=None, output_attentions: bool = False):
        """x (B, n, hidden); attention_mask (B, n) of 1/0 or None -> (out (B, n, hidden), weights (B, h, n, n) or None)."""
        q, k, v = (split_heads(proj(x), self.num_heads) for proj in (self.query, self.key, self.value))
        mask = None if attention_mask is None else padding_mask(attention_mask)
        if output_attentions:
            z, weights = scaled_dot_product_attention(q, k, v, mask, self.attention_dropout)
        else:
            # Fast path: fused kernels (flash / memory-efficient on CUDA), same math.
            p = self.attention_dropout.p if self.training else 0.0
            z, weights = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p), None
        return self.output(merge_heads(z)), weights
