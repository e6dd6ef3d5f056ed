"""Seq2SeqTransformer against torch.nn.Transformer (same weights, eval, dropout 0) and its decoding against
oracles that do not share its code: a step-by-step greedy loop over full forwards, and an exhaustive search."""
import itertools
import math

import pytest
import torch
from torch import nn

from course_lib.hf import seq2seq_from_torch, seq2seq_to_torch
from course_lib.positions import sinusoidal_positions
from course_lib.seq2seq import Seq2SeqConfig, Seq2SeqTransformer, beam_search, greedy_search

ATOL = 1e-5
# (encoder layers, decoder layers, hidden, heads, FFN)
CONFIGS = [(1, 1, 16, 2, 32), (2, 3, 24, 3, 40)]


def make_model(enc, dec, hidden, heads, ffn, seed=0, src_vocab=23, tgt_vocab=19):
    torch.manual_seed(seed)
    config = Seq2SeqConfig(src_vocab_size=src_vocab, tgt_vocab_size=tgt_vocab, hidden_size=hidden,
                           num_encoder_layers=enc, num_decoder_layers=dec, num_heads=heads, intermediate_size=ffn,
                           max_position_embeddings=32, dropout=0.0)
    model = Seq2SeqTransformer(config)
    with torch.no_grad():  # random LayerNorm and bias values, so a swapped or dropped one shows
        for name, p in model.named_parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.2)
    return model.eval()


def torch_reference(parts, hidden, src, tgt, src_mask, tgt_mask):
    """The same computation with torch's modules: embeddings × √d + the paper's sinusoids, then nn.Transformer."""
    pe = sinusoidal_positions(32, hidden)
    src_x = parts["src_embeddings"](src) * math.sqrt(hidden) + pe[:src.shape[1]]
    tgt_x = parts["tgt_embeddings"](tgt) * math.sqrt(hidden) + pe[:tgt.shape[1]]
    t = parts["transformer"]
    src_pad = None if src_mask is None else src_mask == 0  # torch: True = padding
    tgt_pad = None if tgt_mask is None else tgt_mask == 0
    causal = torch.ones(tgt.shape[1], tgt.shape[1], dtype=torch.bool).triu(1)  # torch: True = may not attend
    memory = t.encoder(src_x, src_key_padding_mask=src_pad)
    decoded = t.decoder(tgt_x, memory, tgt_mask=causal, tgt_is_causal=True, tgt_key_padding_mask=tgt_pad,
                        memory_key_padding_mask=src_pad)
    full = t(src_x, tgt_x, tgt_mask=causal, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
             memory_key_padding_mask=src_pad, tgt_is_causal=True)
    return memory, decoded, parts["generator"](full)


def inputs(padding):
    g = torch.Generator().manual_seed(1)
    src, tgt = torch.randint(3, 23, (3, 7), generator=g), torch.randint(3, 19, (3, 6), generator=g)
    if not padding:
        return src, tgt, None, None
    src_mask, tgt_mask = torch.ones_like(src), torch.ones_like(tgt)
    src_mask[1, 4:], src_mask[2, 2:] = 0, 0
    tgt_mask[0, 3:], tgt_mask[2, 5:] = 0, 0
    return src, tgt, src_mask, tgt_mask


@pytest.mark.parametrize("padding", [False, True])
@pytest.mark.parametrize("sizes", CONFIGS, ids=lambda s: "x".join(map(str, s)))
def test_encoder_decoder_and_full_model_match_torch_transformer(sizes, padding):
    model = make_model(*sizes)
    parts = seq2seq_to_torch(model)
    src, tgt, src_mask, tgt_mask = inputs(padding)
    memory, decoded, logits = torch_reference(parts, sizes[2], src, tgt, src_mask, tgt_mask)
    src_real = torch.ones_like(src, dtype=torch.bool) if src_mask is None else src_mask.bool()
    tgt_real = torch.ones_like(tgt, dtype=torch.bool) if tgt_mask is None else tgt_mask.bool()
    ours_memory = model.encode(src, src_mask)
    err = (ours_memory - memory)[src_real].abs().max().item()
    assert err < ATOL, f"encoder output differs from nn.TransformerEncoder by {err}"
    ours_decoded, _ = model.decode(tgt, ours_memory, src_mask, tgt_mask)
    err = (ours_decoded - decoded)[tgt_real].abs().max().item()
    assert err < ATOL, f"decoder output differs from nn.TransformerDecoder by {err}"
    err = (model(src, tgt, src_mask, tgt_mask).logits - logits)[tgt_real].abs().max().item()
    assert err < ATOL, f"logits differ from nn.Transformer + generator by {err}"


def test_mapping_from_torch_is_lossless_and_refuses_other_architectures():
    model = make_model(*CONFIGS[1])
    parts = seq2seq_to_torch(model)
    back = seq2seq_from_torch(**parts, max_position_embeddings=32)
    assert back.config == model.config
    assert all(torch.equal(a, b) for a, b in zip(back.state_dict().values(), model.state_dict().values()))
    pre_ln = nn.Transformer(16, 2, 1, 1, 32, norm_first=True, batch_first=True)
    with pytest.raises(ValueError, match="pre-LN"):
        seq2seq_from_torch(pre_ln, nn.Embedding(5, 16), nn.Embedding(5, 16), nn.Linear(16, 5))
    gelu = nn.Transformer(16, 2, 1, 1, 32, activation="gelu", batch_first=True)
    with pytest.raises(ValueError, match="not ReLU"):
        seq2seq_from_torch(gelu, nn.Embedding(5, 16), nn.Embedding(5, 16), nn.Linear(16, 5))


def test_loss_is_teacher_forced_cross_entropy_ignoring_padding():
    model = make_model(*CONFIGS[0])
    src, tgt, src_mask, tgt_mask = inputs(True)
    labels = torch.randint(3, 19, tgt.shape, generator=torch.Generator().manual_seed(2))
    out = model(src, tgt, src_mask, tgt_mask, labels=labels)
    real = tgt_mask.bool()
    expected = torch.nn.functional.cross_entropy(out.logits[real], labels[real])
    assert torch.allclose(out.loss, expected, atol=1e-6)


def test_cross_attention_weights_are_an_alignment_over_real_source_tokens():
    model = make_model(*CONFIGS[1])
    src, tgt, src_mask, tgt_mask = inputs(True)
    weights = model(src, tgt, src_mask, tgt_mask, output_attentions=True).cross_attentions
    assert len(weights) == 3 and weights[0].shape == (3, 3, 6, 7)
    assert torch.all(weights[-1][2, :, :, 2:] == 0), "attention went to source padding"
    assert torch.allclose(weights[-1].sum(-1), torch.ones(3, 3, 6))


def reference_greedy(model, src, src_mask, steps):
    """Greedy decoding the slow way: a full forward over everything written so far, at every step."""
    tokens = torch.full((src.shape[0], 1), model.config.bos_token_id)
    for _ in range(steps):
        next_token = model(src, tokens, src_mask).logits[:, -1].argmax(-1)
        tokens = torch.cat([tokens, next_token[:, None]], 1)
    return tokens


def test_greedy_search_with_cache_equals_full_forward_greedy_and_stops_at_eos():
    model = make_model(*CONFIGS[1], seed=3)
    model.config.eos_token_id = 18  # a token that does not come up here, so every row runs the full length
    src, _, src_mask, _ = inputs(True)
    expected = reference_greedy(model, src, src_mask, 8)
    assert torch.equal(greedy_search(model, src, src_mask, max_new_tokens=8), expected)
    assert torch.equal(beam_search(model, src, src_mask, max_new_tokens=8, beam_width=1, length_penalty=0.0),
                       expected), "beam width 1 must be greedy search"
    eos = int(expected[0, 3])
    model.config.eos_token_id = eos
    stopped = greedy_search(model, src, src_mask, max_new_tokens=8)
    stop = int((expected[0] == eos).nonzero()[0])
    assert torch.equal(stopped[0, :stop + 1], expected[0, :stop + 1])
    assert torch.all(stopped[0, stop + 1:] == model.config.pad_token_id)


def exhaustive_best(model, src, max_new_tokens, length_penalty):
    """Score every possible target (ending at EOS, or max_new_tokens long without it) by teacher forcing, one
    batched forward per length, and return the best one."""
    config = model.config
    words = [t for t in range(config.tgt_vocab_size) if t != config.eos_token_id]
    best, best_score = None, -math.inf
    for length in range(1, max_new_tokens + 1):
        endings = [config.eos_token_id] + (words if length == max_new_tokens else [])
        generated = torch.tensor([[*body, last] for body in itertools.product(words, repeat=length - 1)
                                  for last in endings])
        tgt = torch.cat([torch.full((len(generated), 1), config.bos_token_id), generated[:, :-1]], dim=1)
        log_probs = model(src.expand(len(generated), -1), tgt).logits.log_softmax(-1)
        total = log_probs.gather(-1, generated[..., None])[..., 0].sum(-1)
        scores = total / length ** length_penalty
        if scores.max().item() > best_score:
            best, best_score = generated[scores.argmax()], scores.max().item()
    return best


@pytest.mark.parametrize("length_penalty", [0.0, 1.0, 2.0])
def test_wide_beam_search_finds_the_exhaustive_optimum(length_penalty):
    # a 4-token target vocabulary (pad 0, bos 1, eos 2, one word) and 4 steps: at most 3^3 = 27 live prefixes,
    # so a 27-wide beam never prunes and must find the optimum that scoring all 121 possible targets finds.
    config = Seq2SeqConfig(src_vocab_size=7, tgt_vocab_size=4, hidden_size=8, num_encoder_layers=1,
                           num_decoder_layers=1, num_heads=2, intermediate_size=16, max_position_embeddings=8,
                           dropout=0.0)
    src = torch.tensor([[3, 4, 5, 6]])
    beats_greedy = False
    for seed in (0, 6, 7):  # seeds where the optimum depends on the length penalty and is not the greedy path
        torch.manual_seed(seed)
        model = Seq2SeqTransformer(config).eval()
        with torch.no_grad():
            expected = exhaustive_best(model, src, 4, length_penalty)
        got = beam_search(model, src, max_new_tokens=4, beam_width=27, length_penalty=length_penalty)
        length = len(expected)
        assert torch.equal(got[0, 1:1 + length], expected), f"seed {seed}: beam {got[0].tolist()} vs {expected}"
        assert torch.all(got[0, 1 + length:] == config.pad_token_id)
        greedy = greedy_search(model, src, max_new_tokens=4)[0, 1:]
        beats_greedy |= not torch.equal(greedy[:length], expected)
    assert beats_greedy, "the test cases no longer separate beam search from greedy search"


def test_beam_search_batches_sources_independently():
    model = make_model(*CONFIGS[0], seed=4)
    src, _, src_mask, _ = inputs(True)
    batched = beam_search(model, src, src_mask, max_new_tokens=6, beam_width=3)
    for row in range(3):
        n = int(src_mask[row].sum())
        alone = beam_search(model, src[row:row + 1, :n], max_new_tokens=6, beam_width=3)
        assert torch.equal(batched[row, :alone.shape[1]], alone[0])


@pytest.mark.parametrize("kwargs, message", [
    (dict(hidden_size=10, num_heads=3), "must be divisible by num_heads"),
    (dict(hidden_size=9, num_heads=1), "must be even"),
    (dict(num_encoder_layers=0), "num_encoder_layers must be a positive integer"),
    (dict(dropout=1.0), r"dropout must be in \[0, 1\)"),
    (dict(tgt_vocab_size=2), r"eos_token_id must be in \[0, tgt_vocab_size=2\)"),
])
def test_bad_config_raises_value_error(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Seq2SeqConfig(**kwargs)


def test_bad_inputs_raise_value_errors():
    model = make_model(*CONFIGS[0])
    with pytest.raises(ValueError, match=r"src_ids must be in \[0, 23\)"):
        model.encode(torch.tensor([[1, 23]]))
    with pytest.raises(ValueError, match="exceed max_position_embeddings=32"):
        model.encode(torch.ones(1, 33, dtype=torch.long))
    with pytest.raises(ValueError, match="beam_width must be an integer >= 1"):
        beam_search(model, torch.tensor([[3, 4]]), beam_width=0)
    with pytest.raises(ValueError, match="unknown Seq2Seq preset"):
        Seq2SeqConfig.preset("huge")
    assert Seq2SeqConfig.preset("base").hidden_size == 512


def reference_beam(model, src, max_new_tokens, beam_width, length_penalty):
    """Beam search written plainly, one hypothesis at a time, and never stopping early: each step ranks every
    extension of every live beam, sends those ending in EOS to the finished list while fewer than beam_width live
    ones are kept, runs to max_new_tokens, and returns the best finished or full-length hypothesis."""
    config = model.config
    live, finished = [((), 0.0)], []
    for step in range(1, max_new_tokens + 1):
        tgt = torch.tensor([[config.bos_token_id, *tokens] for tokens, _ in live])
        log_probs = model(src.expand(len(live), -1), tgt).logits[:, -1].log_softmax(-1).tolist()
        candidates = [(tokens + (t,), total + row[t]) for (tokens, total), row in zip(live, log_probs)
                      for t in range(config.tgt_vocab_size)]
        candidates.sort(key=lambda c: c[1], reverse=True)
        live = []
        for tokens, total in candidates:
            if len(live) == beam_width:
                break
            if tokens[-1] == config.eos_token_id:
                finished.append((tokens, total / step ** length_penalty))
            else:
                live.append((tokens, total))
    finished += [(tokens, total / max_new_tokens ** length_penalty) for tokens, total in live]
    return max(finished, key=lambda f: f[1])[0]


@pytest.mark.parametrize("beam_width, length_penalty", [(2, 1.0), (3, 0.0), (3, 2.0), (4, -0.5)])
def test_beam_search_with_early_stopping_equals_a_plain_beam_search_that_never_stops(beam_width, length_penalty):
    config = Seq2SeqConfig(src_vocab_size=7, tgt_vocab_size=5, hidden_size=8, num_encoder_layers=1,
                           num_decoder_layers=1, num_heads=2, intermediate_size=16, max_position_embeddings=10,
                           dropout=0.0)
    src = torch.tensor([[3, 4, 5, 6]])
    for seed in range(4):
        torch.manual_seed(seed)
        model = Seq2SeqTransformer(config).eval()
        with torch.no_grad():
            model.generator.bias[config.eos_token_id] += 1.0  # EOS competitive, so hypotheses finish early
            expected = reference_beam(model, src, 7, beam_width, length_penalty)
        got = beam_search(model, src, max_new_tokens=7, beam_width=beam_width, length_penalty=length_penalty)
        assert got[0, 1:1 + len(expected)].tolist() == list(expected), f"seed {seed}: {got[0].tolist()} vs {expected}"
