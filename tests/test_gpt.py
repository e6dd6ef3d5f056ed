"""The decoder's attention and the GPT: course_lib against torch built-ins and transformers' GPT-2.

Oracles: `F.scaled_dot_product_attention` and `nn.MultiheadAttention` for the attention modules, a hand-written
mask, and `transformers.GPT2LMHeadModel` (random weights, several configs) for the model, its conversion and its
KV cache. Everything runs in float32 on tiny configs, in seconds.
"""
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from course_lib.attention import (KVCache, MultiHeadCrossAttention, MultiHeadSelfAttention, causal_mask,
                                  merge_heads, split_heads)

ATOL = 1e-5


def close(a, b, atol=ATOL):
    return torch.allclose(a, b, atol=atol, rtol=0), (a - b).abs().max().item()


# --- attention ---------------------------------------------------------------------------------------------

def test_causal_mask_by_hand():
    assert causal_mask(3, 3).tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    # two new queries after two cached positions: query 0 is position 2, query 1 is position 3
    assert causal_mask(2, 4).tolist() == [[True, True, True, False], [True, True, True, True]]


def _projected(attn, x):
    return [split_heads(proj(x), attn.num_heads) for proj in (attn.query, attn.key, attn.value)]


@pytest.mark.parametrize("with_padding", [False, True])
def test_causal_self_attention_matches_sdpa_and_returns_causal_weights(with_padding):
    torch.manual_seed(0)
    attn = MultiHeadSelfAttention(12, 3, causal=True).eval()
    x = torch.randn(2, 5, 12)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]) if with_padding else None
    q, k, v = _projected(attn, x)
    allowed = torch.ones(5, 5, dtype=torch.bool).tril()
    if with_padding:
        allowed = allowed & mask.bool()[:, None, None, :]
    expected = attn.output(merge_heads(F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)))
    fast, none = attn(x, mask)
    explicit, weights = attn(x, mask, output_attentions=True)
    assert none is None and weights.shape == (2, 3, 5, 5)
    for got in (fast, explicit):
        ok, err = close(got, expected)
        assert ok, f"causal attention differs from F.scaled_dot_product_attention by {err}"
    assert torch.all(weights.triu(diagonal=1) == 0), "a query attended to a later position"
    if with_padding:
        assert torch.all(weights[1, :, :, 3:] == 0), "a query attended to padding"
    assert torch.allclose(weights.sum(-1), torch.ones(2, 3, 5))


def test_causality_later_tokens_do_not_change_earlier_outputs():
    torch.manual_seed(1)
    attn = MultiHeadSelfAttention(8, 2, causal=True).eval()
    x = torch.randn(1, 6, 8)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 8)
    assert torch.allclose(attn(x)[0][:, :4], attn(changed)[0][:, :4], atol=1e-6)
    bidirectional = MultiHeadSelfAttention(8, 2).eval()
    bidirectional.load_state_dict(attn.state_dict())
    assert not torch.allclose(bidirectional(x)[0][:, :4], bidirectional(changed)[0][:, :4], atol=1e-3)


@pytest.mark.parametrize("output_attentions", [False, True])
def test_kv_cache_step_by_step_equals_full_causal_attention(output_attentions):
    torch.manual_seed(2)
    attn = MultiHeadSelfAttention(16, 4, causal=True).eval()
    x = torch.randn(2, 7, 16)
    mask = torch.tensor([[0, 0, 1, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1, 1]])  # left padding in row 0
    full, full_weights = attn(x, mask, output_attentions=True)
    cache = KVCache()
    # a 3-token prompt, then one token at a time
    out, w = attn(x[:, :3], mask[:, :3], output_attentions, cache=cache)
    steps, weights = [out], [w]
    for t in range(3, 7):
        out, w = attn(x[:, t:t + 1], mask[:, :t + 1], output_attentions, cache=cache)
        steps.append(out)
        weights.append(w)
    assert len(cache) == 7 and cache.keys.shape == (2, 4, 7, 4)
    real = mask.bool()
    ok, err = close(torch.cat(steps, dim=1)[real], full[real])
    assert ok, f"cached attention differs from the full causal pass by {err}"
    if output_attentions:
        ok, err = close(weights[-1][1], full_weights[1, :, -1:])
        assert ok, f"the last step's weights differ by {err}"


@pytest.mark.parametrize("output_attentions", [False, True])
def test_cross_attention_matches_torch_multihead_attention(output_attentions):
    torch.manual_seed(3)
    hidden, heads = 12, 3
    ours = MultiHeadCrossAttention(hidden, heads).eval()
    theirs = nn.MultiheadAttention(hidden, heads, batch_first=True).eval()
    with torch.no_grad():
        theirs.in_proj_weight.copy_(torch.cat([ours.query.weight, ours.key.weight, ours.value.weight]))
        theirs.in_proj_bias.copy_(torch.cat([ours.query.bias, ours.key.bias, ours.value.bias]))
        theirs.out_proj.weight.copy_(ours.output.weight)
        theirs.out_proj.bias.copy_(ours.output.bias)
    x, context = torch.randn(2, 4, hidden), torch.randn(2, 6, hidden)
    context_mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0]])
    expected, expected_weights = theirs(x, context, context, key_padding_mask=context_mask == 0,
                                        average_attn_weights=False)
    got, weights = ours(x, context, context_mask, output_attentions)
    ok, err = close(got, expected)
    assert ok, f"cross-attention differs from nn.MultiheadAttention by {err}"
    if output_attentions:
        ok, err = close(weights, expected_weights)
        assert ok, f"cross-attention weights differ from nn.MultiheadAttention's by {err}"
    cache = KVCache()
    first, _ = ours(x[:, :2], context, context_mask, cache=cache)
    second, _ = ours(x[:, 2:], torch.full_like(context, float("nan")), context_mask, cache=cache)
    assert torch.allclose(torch.cat([first, second], 1), expected, atol=ATOL), \
        "a cross-attention cache must reuse the context's keys and values after the first call"
