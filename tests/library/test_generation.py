"""`course_lib.generation` against transformers: greedy `generate` token for token, the logits warpers to 1e-6,
and the behaviours a hand check can pin down (seeds, EOS per row, left padding, the cache, bad arguments)."""
import pytest
import torch
import transformers
from transformers.generation.logits_process import (TemperatureLogitsWarper, TopKLogitsWarper,
                                                    TopPLogitsWarper)

from course_lib.generation import (apply_temperature, generate, next_token_distribution, top_k_filter,
                                   top_p_filter)
from course_lib.gpt import GPTConfig, GPTLMHeadModel
from course_lib.hf import gpt_to_transformers

transformers.logging.set_verbosity_error()
VOCAB = 50


def tiny_gpt(seed=0, positions=40):
    torch.manual_seed(seed)
    config = GPTConfig(vocab_size=VOCAB, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                       max_position_embeddings=positions, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                       initializer_range=0.2)  # peaked enough that greedy paths differ between prompts
    return GPTLMHeadModel(config).eval()


def prompts():
    """Three prompts of lengths 5, 3 and 1, left-padded to 5, plus each prompt alone."""
    alone = [torch.tensor([[4, 9, 2, 7, 11]]), torch.tensor([[13, 3, 8]]), torch.tensor([[21]])]
    ids = torch.zeros(3, 5, dtype=torch.long)
    mask = torch.zeros(3, 5, dtype=torch.long)
    for row, p in enumerate(alone):
        ids[row, 5 - p.shape[1]:], mask[row, 5 - p.shape[1]:] = p[0], 1
    return ids, mask, alone


# --- the filters against transformers' logits warpers -----------------------------------------------------

def hf_distribution(logits, warpers):
    scores = logits.clone()
    for warper in warpers:
        scores = warper(None, scores)
    return scores.softmax(-1)


@pytest.mark.parametrize("temperature, top_k, top_p", [
    (0.7, None, None), (1.3, None, None), (1.0, 5, None), (1.0, 1, None), (1.0, None, 0.9), (1.0, None, 0.3),
    (1.0, None, 0.01), (0.8, 10, 0.9), (2.0, 3, 0.5)])
def test_filtered_distribution_equals_transformers_warpers(temperature, top_k, top_p):
    logits = torch.randn(4, 100, generator=torch.Generator().manual_seed(0)) * 3
    warpers = [TemperatureLogitsWarper(temperature)]
    if top_k is not None:
        warpers.append(TopKLogitsWarper(top_k))
    if top_p is not None:
        warpers.append(TopPLogitsWarper(top_p))
    got = next_token_distribution(logits, temperature, top_k, top_p)
    expected = hf_distribution(logits, warpers)
    assert torch.allclose(got, expected, atol=1e-6, rtol=0), (got - expected).abs().max()


def test_filters_by_hand():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    assert torch.equal(apply_temperature(logits, 0.5), logits * 2)
    assert top_k_filter(logits, 2).isinf().tolist() == [[False, False, True, True]]
    # probabilities 0.644, 0.237, 0.087, 0.032: 0.644 < 0.8, so the second token (crossing 0.8) is kept
    assert top_p_filter(logits, 0.8).isinf().tolist() == [[False, False, True, True]]
    assert top_p_filter(logits, 0.5).isinf().tolist() == [[False, True, True, True]]   # top token alone reaches 0.5
    assert top_p_filter(logits, 1e-9).isinf().tolist() == [[False, True, True, True]]  # the top token always stays
    assert not top_p_filter(logits, 1.0).isinf().any()


# --- generate -----------------------------------------------------------------------------------------------

@pytest.mark.parametrize("use_cache", [True, False])
def test_greedy_is_token_identical_to_transformers_generate(use_cache):
    model = tiny_gpt()
    hf_model = gpt_to_transformers(model).eval()
    ids, mask, _ = prompts()
    ours = generate(model, ids, 12, attention_mask=mask, use_cache=use_cache)
    theirs = hf_model.generate(ids, attention_mask=mask, max_new_tokens=12, do_sample=False, pad_token_id=0)
    assert ours.shape == (3, 17)
    assert torch.equal(ours, theirs)
    single = torch.tensor([[1, 2, 3]])
    assert torch.equal(generate(model, single, 12), hf_model.generate(single, max_new_tokens=12, do_sample=False))


@pytest.mark.parametrize("settings", [dict(temperature=0.8), dict(top_k=10), dict(top_p=0.9, temperature=1.2),
                                      dict(top_k=20, top_p=0.8, temperature=0.7)], ids=str)
def test_sampling_draws_the_tokens_transformers_draws_from_the_same_seed(settings):
    # both sides call torch.multinomial on the global generator with the same (B, V) distribution each step
    model = tiny_gpt(1)
    hf_model = gpt_to_transformers(model).eval()
    ids, mask, _ = prompts()
    torch.manual_seed(3)
    ours = generate(model, ids, 15, attention_mask=mask, do_sample=True, **settings)
    torch.manual_seed(3)
    theirs = hf_model.generate(ids, attention_mask=mask, max_new_tokens=15, do_sample=True, pad_token_id=0,
                               **{"top_k": 0, **settings})  # top_k=0: off (transformers' default is 50)
    assert torch.equal(ours, theirs)


def test_left_padding_gives_the_tokens_of_each_prompt_alone():
    model = tiny_gpt()
    ids, mask, alone = prompts()
    batched = generate(model, ids, 10, attention_mask=mask)
    for row, p in enumerate(alone):
        assert torch.equal(batched[row, 5:], generate(model, p, 10)[0, p.shape[1]:]), f"row {row} changed"
    with pytest.raises(ValueError, match="LEFT-padded"):
        generate(model, ids, 3, attention_mask=mask.flip(1))


def test_cache_and_no_cache_give_the_same_samples():
    model = tiny_gpt(1)
    ids, mask, _ = prompts()
    kwargs = dict(attention_mask=mask, do_sample=True, temperature=0.9, top_k=20, top_p=0.95)
    with_cache = generate(model, ids, 10, generator=torch.Generator().manual_seed(5), **kwargs)
    without = generate(model, ids, 10, generator=torch.Generator().manual_seed(5), use_cache=False, **kwargs)
    assert torch.equal(with_cache, without)


def test_same_seed_same_sample_other_seed_other_sample():
    model = tiny_gpt(2)
    ids = torch.tensor([[1, 2, 3]] * 4)
    first, second, other = (generate(model, ids, 20, do_sample=True, generator=torch.Generator().manual_seed(s))
                            for s in (7, 7, 8))
    assert torch.equal(first, second)
    assert not torch.equal(first, other)
    assert not torch.equal(first[0], first[1]), "rows of one batch must draw their own samples"


def test_sampling_with_top_k_1_is_greedy_and_sampling_follows_the_distribution():
    model = tiny_gpt(3)
    ids = torch.tensor([[5, 6]])
    assert torch.equal(generate(model, ids, 8, do_sample=True, top_k=1, generator=torch.Generator().manual_seed(0)),
                       generate(model, ids, 8))
    # one step, many rows: the empirical frequencies approach the model's distribution
    many = ids.expand(4000, -1)
    draws = generate(model, many, 1, do_sample=True, temperature=1.5, generator=torch.Generator().manual_seed(0))
    freq = torch.bincount(draws[:, -1], minlength=VOCAB).float() / 4000
    probs = next_token_distribution(model(ids).logits[0, -1], temperature=1.5)
    assert (freq - probs).abs().max() < 0.03


def test_eos_stops_each_row_separately_and_pads_after_it():
    model = tiny_gpt()
    ids, mask, _ = prompts()
    free = generate(model, ids, 12, attention_mask=mask)
    eos = int(free[0, 7])  # the token row 0 produces third
    stops = [next((t for t in range(5, 17) if free[r, t] == eos), None) for r in range(3)]
    stopped = generate(model, ids, 12, attention_mask=mask, eos_token_id=eos, pad_token_id=0)
    assert stops[0] is not None
    for row, stop in enumerate(stops):
        if stop is None:  # never produced EOS: runs to the end unchanged
            assert torch.equal(stopped[row], free[row, :stopped.shape[1]])
        else:
            assert torch.equal(stopped[row, :stop + 1], free[row, :stop + 1]), f"row {row} changed before its EOS"
            assert torch.all(stopped[row, stop + 1:] == 0), f"row {row} not padded after its EOS"
    if all(s is not None for s in stops):
        assert stopped.shape[1] == max(stops) + 1, "the loop must end when every row has stopped"


@pytest.mark.parametrize("kwargs, message", [
    (dict(do_sample=True, temperature=0.0), "temperature must be > 0 when sampling"),
    (dict(do_sample=True, temperature=-1.0), "temperature must be > 0 when sampling"),
    (dict(top_k=0), r"top_k must be an integer >= 1"),
    (dict(top_p=0.0), r"top_p must be in \(0, 1\]"),
    (dict(top_p=1.5), r"top_p must be in \(0, 1\]"),
    (dict(max_new_tokens=38), "longer than the model's context of 40 positions"),
    (dict(input_ids=torch.zeros(0, 3, dtype=torch.long)), "non-empty batch"),
    (dict(input_ids=torch.tensor([[1, VOCAB]])), rf"token ids must be in \[0, {VOCAB}\)"),
    (dict(input_ids=torch.tensor([[1.0, 2.0]])), "integer"),
])
def test_bad_arguments_raise_value_errors_naming_the_allowed_range(kwargs, message):
    model = tiny_gpt()
    args = dict(input_ids=torch.tensor([[1, 2, 3]]), max_new_tokens=5)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        generate(model, args.pop("input_ids"), args.pop("max_new_tokens"), **args)


def test_a_cache_from_another_model_is_refused():
    model, other = tiny_gpt(0), tiny_gpt(1)
    cache = model(torch.tensor([[1, 2]]), use_cache=True).past_key_values
    with pytest.raises(ValueError, match="past_key_values was not made by this model"):
        other(torch.tensor([[3]]), past_key_values=cache, use_cache=True)


def test_generate_restores_training_mode():
    model = tiny_gpt().train()
    generate(model, torch.tensor([[1]]), 2)
    assert model.training
