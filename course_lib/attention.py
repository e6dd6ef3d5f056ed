"""Attention, from the softmax up to multi-head self-attention (BERT, GPT) and cross-attention (seq2seq).

The functions follow the source document's §4.1 symbol by symbol:
Q = XW^Q, K = XW^K, V = XW^V;  S = QKᵀ;  S' = S / √d_k;  A = softmax(S');  Z = AV.
Chapter 2 asks the learner to write the first four, chapter 3 the head reshapes and the module; chapters 6 and 7
add the causal mask, cross-attention (queries from one sequence, keys and values from another) and the KV cache.
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


def causal_mask(num_queries: int, num_keys: int, device=None) -> torch.Tensor:
    """Bool (num_queries, num_keys), True where a query may attend: the queries are the *last* num_queries of the
    num_keys positions (num_keys > num_queries when earlier keys come from a KV cache), so query i sees keys
    0 .. i + (num_keys - num_queries) and nothing after itself."""
    return torch.ones(num_queries, num_keys, dtype=torch.bool, device=device).tril(diagonal=num_keys - num_queries)


class KVCache:
    """One attention layer's keys and values of every position seen so far, each (B, h, m, d).

    Generating token t needs the keys and values of tokens 0..t-1; they never change (causal attention), so they
    are kept instead of being recomputed. `append` adds this step's and returns all of them. Memory grows as
    2 (keys, values) × tokens × hidden × bytes per element, per layer and sequence.
    """

    def __init__(self):
        self.keys: torch.Tensor | None = None
        self.values: torch.Tensor | None = None

    def __len__(self) -> int:
        return 0 if self.keys is None else self.keys.shape[-2]

    def append(self, keys: torch.Tensor, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """keys, values (B, h, n, d) of this step -> every key and value so far, (B, h, m + n, d)."""
        if self.keys is None:
            self.keys, self.values = keys, values
        else:
            self.keys = torch.cat([self.keys, keys], dim=-2)
            self.values = torch.cat([self.values, values], dim=-2)
        return self.keys, self.values


class MultiHeadAttention(nn.Module):
    """h heads of size hidden/h over queries, keys and values projected from the inputs, then an output projection.

    The shared part of self- and cross-attention: the four projections (named like transformers'
    BertSelfAttention: query, key, value, so weights map one to one) and `attend`, which picks the explicit
    path (returns the weights) or the fused `F.scaled_dot_product_attention` (same math, faster, no weights).
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

    def attend(self, q, k, v, key_mask=None, causal: bool = False, output_attentions: bool = False):
        """q (B, h, n, d), k and v (B, h, m, d); key_mask (B, m) of 1 (token) / 0 (padding) or None; causal: the n
        queries are the last n of the m positions and see no later key -> (out (B, n, hidden), weights or None)."""
        n, m = q.shape[-2], k.shape[-2]
        causal = causal and n > 1  # a single newest query may see every key so far: nothing to hide
        mask = None if key_mask is None else padding_mask(key_mask)
        if output_attentions:
            if causal:
                mask = causal_mask(n, m, q.device) if mask is None else mask & causal_mask(n, m, q.device)
            z, weights = scaled_dot_product_attention(q, k, v, mask, self.attention_dropout)
        else:
            # Fast path: fused kernels (flash / memory-efficient on CUDA), same math.
            p = self.attention_dropout.p if self.training else 0.0
            if causal and mask is None and n == m:
                z = F.scaled_dot_product_attention(q, k, v, dropout_p=p, is_causal=True)
            else:
                # is_causal aligns the mask top-left, which is wrong when a cache makes m > n, and cannot be
                # combined with a padding mask: spell the causal mask out instead.
                if causal:
                    mask = causal_mask(n, m, q.device) if mask is None else mask & causal_mask(n, m, q.device)
                z = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
            weights = None
        return self.output(merge_heads(z)), weights


class MultiHeadSelfAttention(MultiHeadAttention):
    """Self-attention: queries, keys and values all come from x. BERT's is bidirectional; `causal=True` (GPT, the
    seq2seq decoder) lets each position see only itself and earlier ones."""

    def __init__(self, hidden_size: int, num_heads: int, dropout: float = 0.0, causal: bool = False):
        super().__init__(hidden_size, num_heads, dropout)
        self.causal = causal

    def forward(self, x, attention_mask=None, output_attentions: bool = False, cache: KVCache | None = None):
        """x (B, n, hidden); attention_mask (B, m) of 1/0 over every key or None, where m = n, or, with a `cache`
        holding p earlier positions, m = p + n (this step's keys are appended to the cache first)
        -> (out (B, n, hidden), weights (B, h, n, m) or None)."""
        q, k, v = (split_heads(proj(x), self.num_heads) for proj in (self.query, self.key, self.value))
        if cache is not None:
            k, v = cache.append(k, v)
        return self.attend(q, k, v, attention_mask, self.causal, output_attentions)


class MultiHeadCrossAttention(MultiHeadAttention):
    """Cross-attention: queries from x (the decoder), keys and values from `context` (the encoder's output), so
    every target position can look at every source position (the translation's alignment)."""

    def forward(self, x, context, context_mask=None, output_attentions: bool = False, cache: KVCache | None = None):
        """x (B, n, hidden), context (B, m, hidden), context_mask (B, m) of 1/0 or None -> (out (B, n, hidden),
        weights (B, h, n, m) or None). The context does not change while a target is generated, so a `cache`
        holds its keys and values after the first call, which then skips their projections."""
        q = split_heads(self.query(x), self.num_heads)
        if cache is not None and len(cache):
            k, v = cache.keys, cache.values
        else:
            k, v = (split_heads(proj(context), self.num_heads) for proj in (self.key, self.value))
            if cache is not None:
                cache.append(k, v)
        return self.attend(q, k, v, context_mask, causal=False, output_attentions=output_attentions)
