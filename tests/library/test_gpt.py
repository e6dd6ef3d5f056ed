"""The decoder's attention and the GPT: course_lib against torch built-ins and transformers' GPT-2.

Oracles: `F.scaled_dot_product_attention` and `nn.MultiheadAttention` for the attention modules, a hand-written
mask, and `transformers.GPT2LMHeadModel` (random weights, several configs) for the model, its conversion and its
KV cache. Everything runs in float32 on tiny configs, in seconds.
"""
import pytest
import torch
import torch.nn.functional as F
import transformers
from torch import nn

from course_lib.attention import (KVCache, MultiHeadCrossAttention, MultiHeadSelfAttention, causal_mask,
                                  merge_heads, split_heads)
from course_lib.gpt import GPTCache, GPTConfig, GPTLMHeadModel, GPTModel
from course_lib.hf import gpt_from_transformers, gpt_state_dict_from_transformers, gpt_to_transformers, load_hf_directory

transformers.logging.set_verbosity_error()
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


# --- GPT against transformers' GPT-2 ----------------------------------------------------------------------

# (layers, hidden, heads, vocab, intermediate): different depths, widths, head counts, vocabularies, FFN widths
CONFIGS = [(1, 16, 1, 37, 64), (2, 24, 3, 101, 40), (3, 32, 4, 64, 128)]


def random_pair(layers, hidden, heads, vocab, intermediate, seed=0, positions=32):
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=vocab, hidden_size=hidden, num_layers=layers, num_heads=heads,
                       intermediate_size=intermediate, max_position_embeddings=positions,
                       hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                       initializer_range=0.3)  # large enough that GELU variants and scalings differ visibly
    ours = GPTLMHeadModel(config)
    with torch.no_grad():  # random LayerNorm and bias values too, so a swapped or dropped one shows
        for name, p in ours.named_parameters():
            if name.endswith("bias") or "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    hf_config = transformers.GPT2Config(vocab_size=vocab, n_embd=hidden, n_layer=layers, n_head=heads,
                                        n_inner=intermediate, n_positions=positions, resid_pdrop=0.0, embd_pdrop=0.0,
                                        attn_pdrop=0.0, attn_implementation="eager")
    theirs = transformers.GPT2LMHeadModel(hf_config)
    # transformers' own model is built independently; only the tensors come from ours
    theirs.load_state_dict(gpt_to_transformers(ours).state_dict())
    return ours.eval(), theirs.eval()


def batch(vocab, padding, seed=1, length=9):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, vocab, (3, length), generator=g)
    mask = torch.ones_like(ids)
    if padding == "right":
        mask[1, 6:], mask[2, 3:] = 0, 0
    elif padding == "left":
        mask[1, :3], mask[2, :5] = 0, 0
    return ids, (None if padding == "none" else mask)


@pytest.mark.parametrize("padding", ["none", "right", "left"])
@pytest.mark.parametrize("sizes", CONFIGS, ids=lambda s: "x".join(map(str, s)))
def test_logits_loss_gradients_and_attentions_match_transformers(sizes, padding):
    ours, theirs = random_pair(*sizes)
    ids, mask = batch(sizes[3], padding)
    real = torch.ones_like(ids, dtype=torch.bool) if mask is None else mask.bool()
    # transformers counts every pair whose label is not -100, so give it -100 wherever ours ignores a pair:
    # padding targets, and (left padding) the first real token, which only a padding position would predict.
    hf_labels = ids.masked_fill(~real, -100)
    hf_labels[:, 1:] = hf_labels[:, 1:].masked_fill(~real[:, :-1], -100)
    out = ours(ids, mask, labels=ids, output_attentions=True)
    ref = theirs(ids, attention_mask=mask, labels=hf_labels, output_attentions=True)
    ok, err = close(out.logits[real], ref.logits[real])
    assert ok, f"logits differ from transformers' GPT-2 by {err}"
    ok, err = close(out.loss, ref.loss)
    assert ok, f"loss {out.loss.item()} vs transformers' {ref.loss.item()}"
    same_loss = ours(ids, mask, labels=hf_labels).loss
    assert torch.allclose(same_loss, ref.loss, atol=ATOL), "labels of -100 must be ignored like transformers does"
    for layer, (a, b) in enumerate(zip(out.attentions, ref.attentions)):
        rows = real[:, None, :, None].expand_as(a)
        ok, err = close(a[rows], b[rows])
        assert ok, f"attention weights of block {layer} differ by {err}"
    out.loss.backward()
    ref.loss.backward()
    hf_grads = gpt_state_dict_from_transformers({n: p.grad for n, p in theirs.named_parameters()})
    for name, p in ours.named_parameters():
        ok, err = close(p.grad, hf_grads[name])
        assert ok, f"gradient of {name} differs from transformers' by {err}"


def test_explicit_position_ids_match_transformers():
    ours, theirs = random_pair(*CONFIGS[1])
    ids, mask = batch(101, "left")
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    got = ours(ids, mask, position_ids=positions).logits
    expected = theirs(ids, attention_mask=mask, position_ids=positions).logits
    assert torch.allclose(got[mask.bool()], expected[mask.bool()], atol=ATOL)


def test_conversion_is_lossless_both_ways():
    ours, theirs = random_pair(*CONFIGS[2])
    back = gpt_from_transformers(gpt_to_transformers(ours))
    assert back.state_dict().keys() == ours.state_dict().keys()
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), ours.state_dict().values()))
    again = gpt_to_transformers(gpt_from_transformers(theirs)).state_dict()
    assert again.keys() == theirs.state_dict().keys()
    assert all(torch.equal(again[k], v) for k, v in theirs.state_dict().items())
    bare = gpt_from_transformers(theirs.transformer)
    assert isinstance(bare, GPTModel)
    assert torch.allclose(bare(torch.tensor([[1, 2, 3]])).last_hidden_state,
                          theirs.transformer(torch.tensor([[1, 2, 3]])).last_hidden_state, atol=ATOL)
    hf_tied = gpt_to_transformers(ours)
    assert hf_tied.lm_head.weight.data_ptr() == hf_tied.transformer.wte.weight.data_ptr(), "lm_head must stay tied"


def test_saved_gpt2_folder_loads_offline(tmp_path):
    _, theirs = random_pair(*CONFIGS[1])
    theirs.save_pretrained(tmp_path)
    model = load_hf_directory(tmp_path)
    assert isinstance(model, GPTLMHeadModel) and not model.training
    ids = torch.tensor([[5, 6, 7, 8]])
    assert torch.allclose(model(ids).logits, theirs(ids).logits, atol=ATOL)
    # OpenAI's own gpt2 folder: keys without "transformer.", no lm_head, old causal-mask buffers
    from safetensors.torch import save_file
    openai_style = {k.removeprefix("transformer."): v.contiguous() for k, v in theirs.state_dict().items()
                    if not k.startswith("lm_head")}
    openai_style["h.0.attn.bias"] = torch.ones(1, 1, 32, 32).tril()
    save_file(openai_style, tmp_path / "model.safetensors")
    assert torch.allclose(load_hf_directory(tmp_path)(ids).logits, theirs(ids).logits, atol=ATOL)


def test_cache_step_by_step_equals_full_forward_and_transformers_cache():
    ours, theirs = random_pair(*CONFIGS[2])
    ids, mask = batch(64, "left", length=10)
    full = ours(ids, mask).logits
    real = mask.bool()
    out = ours(ids[:, :4], mask[:, :4], use_cache=True)
    ref = theirs(ids[:, :4], attention_mask=mask[:, :4], use_cache=True)
    cache, hf_cache = out.past_key_values, ref.cache
    assert isinstance(cache, GPTCache) and len(cache) == 4
    assert torch.allclose(out.logits[real[:, :4]], full[:, :4][real[:, :4]], atol=ATOL)
    for t in range(4, 10):
        out = ours(ids[:, t:t + 1], mask[:, :t + 1], past_key_values=cache, use_cache=True)
        ref = theirs(ids[:, t:t + 1], attention_mask=mask[:, :t + 1], cache=hf_cache, use_cache=True)
        assert out.past_key_values is cache and len(cache) == t + 1
        rows = real[:, t]
        ok, err = close(out.logits[:, 0][rows], full[:, t][rows])
        assert ok, f"step {t}: cached logits differ from the full forward by {err}"
        ok, err = close(out.logits[:, 0][rows], ref.logits[:, 0][rows])
        assert ok, f"step {t}: cached logits differ from transformers' past_key_values by {err}"
    hidden = ours.config.hidden_size
    assert cache.nbytes() == 2 * ours.config.num_layers * 3 * 10 * hidden * 4  # 2 x layers x B x tokens x hidden x 4 B


def test_parameter_count_of_gpt2_small():
    config = GPTConfig.preset("gpt2")
    with torch.device("meta"):  # shapes only, no memory
        model = GPTLMHeadModel(config)
    assert sum(p.numel() for p in model.parameters()) == 124_439_808  # OpenAI's GPT-2 "124M", lm_head tied


def test_padding_and_later_tokens_do_not_change_earlier_logits():
    ours, _ = random_pair(*CONFIGS[0])
    ids = torch.tensor([[3, 4, 5, 6, 7]])
    changed = torch.tensor([[3, 4, 5, 30, 31]])
    assert torch.allclose(ours(ids).logits[:, :3], ours(changed).logits[:, :3], atol=1e-6)
    padded = torch.tensor([[3, 4, 5, 0, 0]])
    assert torch.allclose(ours(padded, torch.tensor([[1, 1, 1, 0, 0]])).logits[:, :3], ours(ids[:, :3]).logits,
                          atol=1e-6)


@pytest.mark.parametrize("field, value, message", [
    ("hidden_size", 0, "GPTConfig.hidden_size must be a positive integer"),
    ("num_layers", 2.0, "GPTConfig.num_layers must be a positive integer"),
    ("num_heads", 5, "must be divisible by num_heads"),
    ("vocab_size", -1, "GPTConfig.vocab_size must be a positive integer"),
    ("hidden_dropout_prob", 1.0, r"GPTConfig.hidden_dropout_prob must be in \[0, 1\)"),
    ("attention_probs_dropout_prob", -0.1, r"must be in \[0, 1\)"),
    ("layer_norm_eps", 0.0, "GPTConfig.layer_norm_eps must be > 0"),
])
def test_bad_config_raises_value_error_naming_field_and_range(field, value, message):
    with pytest.raises(ValueError, match=message):
        GPTConfig(**{field: value})


def test_presets_and_unknown_preset():
    assert (GPTConfig.preset("mini").num_layers, GPTConfig.preset("mini").hidden_size) == (4, 256)
    gpt2 = GPTConfig.preset("gpt2")
    assert (gpt2.num_layers, gpt2.hidden_size, gpt2.num_heads, gpt2.vocab_size, gpt2.max_position_embeddings) == \
        (12, 768, 12, 50257, 1024)
    with pytest.raises(ValueError, match="unknown GPT preset 'huge'; choose one of"):
        GPTConfig.preset("huge")
    with pytest.raises(ValueError, match="unknown GPTConfig fields"):
        GPTConfig.from_dict({"n_embd": 8})


def test_bad_inputs_raise_clear_value_errors():
    ours, _ = random_pair(*CONFIGS[0], positions=8)
    other, _ = random_pair(*CONFIGS[0], positions=8)
    with pytest.raises(ValueError, match=r"token ids must be in \[0, 37\)"):
        ours(torch.tensor([[1, 37]]))
    with pytest.raises(ValueError, match="more than max_position_embeddings=8"):
        ours(torch.zeros(1, 9, dtype=torch.long))
    with pytest.raises(ValueError, match="batch >= 1"):
        ours(torch.zeros(0, 3, dtype=torch.long))
    cache = ours(torch.tensor([[1, 2]]), use_cache=True).past_key_values
    with pytest.raises(ValueError, match="past_key_values was not made by this model"):
        other(torch.tensor([[3]]), past_key_values=cache)
    with pytest.raises(ValueError, match="holds 1 sequences but input_ids has 2"):
        ours(torch.tensor([[3], [4]]), past_key_values=cache)
    with pytest.raises(ValueError, match="2 cached \\+ 7 new tokens = 9 positions"):
        ours(torch.zeros(1, 7, dtype=torch.long), past_key_values=cache)
    with pytest.raises(ValueError, match=r"attention_mask must have shape \(batch, cached \+ new tokens\)"):
        ours(torch.tensor([[3]]), torch.ones(1, 1, dtype=torch.long), past_key_values=cache)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_sdpa_path_matches_float32():
    ours, _ = random_pair(*CONFIGS[2])
    ours = ours.cuda()
    ids, mask = batch(64, "right")
    ids, mask = ids.cuda(), mask.cuda()
    reference = ours(ids, mask, labels=ids)
    with torch.autocast("cuda", dtype=torch.bfloat16):
        fast = ours(ids, mask, labels=ids)
    real = mask.bool()
    assert (fast.logits.float() - reference.logits)[real].abs().max() < 0.1 * reference.logits.abs().max()
    assert abs(fast.loss.item() - reference.loss.item()) < 0.05 * reference.loss.item()


def test_initialisation_scales_the_residual_projections_like_gpt2():
    torch.manual_seed(0)
    config = GPTConfig.preset("mini")
    block = GPTLMHeadModel(config).transformer.blocks[0]
    residual_std = 0.02 / (2 * config.num_layers) ** 0.5  # GPT-2 paper, section 2.3
    for name, std in (("attention.output", residual_std), ("output", residual_std), ("intermediate", 0.02),
                      ("attention.query", 0.02)):
        weight = block.get_submodule(name).weight
        assert abs(weight.std().item() - std) < 0.05 * std, f"{name}.weight has std {weight.std():.5f}, not {std:.5f}"
        assert torch.all(block.get_submodule(name).bias == 0)
