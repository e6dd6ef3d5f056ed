"""Text generation with a decoder-only model: the autoregressive loop, greedy search and sampling.

One step: run the model on what is there, take the logits of the last position, turn them into the next token
(the largest, or a sample after temperature / top-k / top-p filtering), append it, repeat. With the KV cache
the model sees only the new token at each step; without it, the whole sequence again (same tokens, more work).
The filters are functions of their own so chapter 7 can plot what each does to a distribution.
"""
import torch

from .gpt import GPTLMHeadModel, check_token_ids


def apply_temperature(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """logits / T (any shape): T < 1 sharpens the distribution towards the top token, T > 1 flattens it."""
    return logits / temperature


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """(..., V) -> (..., V) with every logit below the k-th largest of its row set to -inf (ties with the k-th kept)."""
    k = min(k, logits.shape[-1])
    kth_largest = torch.topk(logits, k, dim=-1).values[..., -1:]
    return logits.masked_fill(logits < kth_largest, float("-inf"))


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering, (..., V) -> (..., V): keep the smallest set of most likely tokens whose probability
    reaches p (the token that crosses p is kept; the most likely token always is) and set the others to -inf."""
    if p >= 1.0:
        return logits
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True)
    probs = sorted_logits.softmax(dim=-1)
    # probability of the tokens ranked before each one: a token is needed while that is still short of p
    before = probs.cumsum(dim=-1) - probs
    drop_sorted = before >= p
    drop = drop_sorted.scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def filtered_logits(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                    top_p: float | None = None) -> torch.Tensor:
    """(..., V) logits -> (..., V) float32 logits to sample from: temperature first, then top-k, then top-p (the
    order transformers applies its logits warpers in); filtered-out tokens are -inf."""
    logits = apply_temperature(logits.float(), temperature)
    if top_k is not None:
        logits = top_k_filter(logits, top_k)
    if top_p is not None:
        logits = top_p_filter(logits, top_p)
    return logits


def next_token_distribution(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                            top_p: float | None = None) -> torch.Tensor:
    """(..., V) logits -> (..., V) probabilities to sample from (`filtered_logits`, then softmax)."""
    return filtered_logits(logits, temperature, top_k, top_p).softmax(dim=-1)


def _check_arguments(model, input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p):
    """Every mistake a call can make, as a ValueError that names the allowed range, before any work is done."""
    config = model.config
    check_token_ids(input_ids, config.vocab_size)
    if not isinstance(max_new_tokens, int) or max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be an integer >= 0, got {max_new_tokens!r}")
    context = config.max_position_embeddings
    if input_ids.shape[1] + max_new_tokens > context:
        raise ValueError(f"a prompt of {input_ids.shape[1]} tokens + max_new_tokens={max_new_tokens} is longer than "
                         f"the model's context of {context} positions; the prompt must be at most "
                         f"{context - max_new_tokens} tokens, or max_new_tokens at most "
                         f"{max(context - input_ids.shape[1], 0)}")
    if attention_mask is not None:
        if attention_mask.shape != input_ids.shape:
            raise ValueError(f"attention_mask must have the shape of input_ids {tuple(input_ids.shape)}, got "
                             f"{tuple(attention_mask.shape)}")
        if not attention_mask[:, -1].bool().all():
            raise ValueError("prompts must be LEFT-padded (padding first, the prompt's last token in the last "
                             "column), because new tokens are appended on the right; pad with "
                             "tokenizer.padding_side = 'left'")
    if do_sample and not temperature > 0:
        raise ValueError(f"temperature must be > 0 when sampling, got {temperature!r}; for the single most likely "
                         f"token use do_sample=False (greedy)")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise ValueError(f"top_k must be an integer >= 1 (1 = greedy, {config.vocab_size} = no filtering), "
                         f"got {top_k!r}")
    if top_p is not None and not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 = no filtering), got {top_p!r}")


@torch.no_grad()
def generate(model: GPTLMHeadModel, input_ids: torch.Tensor, max_new_tokens: int, *, attention_mask=None,
             do_sample: bool = False, temperature: float = 1.0, top_k: int | None = None, top_p: float | None = None,
             eos_token_id: int | None = None, pad_token_id: int | None = None,
             generator: torch.Generator | None = None, use_cache: bool = True) -> torch.Tensor:
    """Continue each prompt of a batch by up to `max_new_tokens` tokens; returns (B, prompt_len + new) token ids.

    input_ids (B, n): the prompts, LEFT-padded to one length when they differ, with attention_mask (B, n) of
    1 (token) / 0 (padding); position ids skip the padding, so a padded prompt continues exactly as it would
    alone. Greedy (do_sample=False) takes the most likely token; sampling draws from the distribution after
    `temperature`, `top_k` and `top_p` (see `next_token_distribution`), reproducibly with a seeded `generator`.
    A row that produces `eos_token_id` stops: later columns hold `pad_token_id` (default: the EOS id); the loop
    ends when every row has stopped. The model runs in eval mode (no dropout); its mode is restored afterwards.
    """
    _check_arguments(model, input_ids, attention_mask, max_new_tokens, do_sample, temperature, top_k, top_p)
    if pad_token_id is None:
        pad_token_id = eos_token_id
    if eos_token_id is not None and pad_token_id is None:
        raise ValueError("pad_token_id is needed to fill the rows that stopped at EOS")
    was_training = model.training
    model.eval()
    try:
        return _generate(model, input_ids, max_new_tokens, attention_mask, do_sample, temperature, top_k, top_p,
                         eos_token_id, pad_token_id, generator, use_cache)
    finally:
        model.train(was_training)


def _generate(model, input_ids, max_new_tokens, attention_mask, do_sample, temperature, top_k, top_p, eos_token_id,
              pad_token_id, generator, use_cache):
    tokens = input_ids
    padded = attention_mask is not None and not attention_mask.bool().all()
    mask = attention_mask.long() if padded else None  # no padding: no mask, the fast attention path
    positions = (mask.cumsum(-1) - 1).clamp(min=0) if padded else None
    finished = torch.zeros(tokens.shape[0], dtype=torch.bool, device=tokens.device)
    cache, step_input, step_positions = None, tokens, positions
    for _ in range(max_new_tokens):
        if use_cache:
            out = model(step_input, mask, past_key_values=cache, use_cache=True, position_ids=step_positions)
            cache = out.past_key_values
        else:
            out = model(tokens, mask, position_ids=positions)
        logits = out.logits[:, -1]
        if do_sample:
            next_token = sample_next(filtered_logits(logits, temperature, top_k, top_p), generator=generator)
        else:
            next_token = sample_next(logits, temperature=0)
        if eos_token_id is not None:
            next_token = next_token.masked_fill(finished, pad_token_id)
            finished |= next_token == eos_token_id
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if finished.all():
            break
        step_input = next_token[:, None]
        if padded:
            mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)
            step_positions = positions[:, -1:] + 1
            positions = torch.cat([positions, step_positions], dim=1)
    return tokens


# --- chapter 7's references: one sampling step, what a KV cache costs, how diverse a set of texts is ----------
def sample_next(logits: torch.Tensor, temperature: float = 1.0, generator: torch.Generator | None = None) -> torch.Tensor:
    """(B, V) logits -> (B,) token ids: the arg-max when temperature == 0, else one draw per row from
    softmax(logits / temperature), reproducible with a seeded `generator`."""
    if temperature == 0:
        return logits.argmax(dim=-1)
    probs = (logits.float() / temperature).softmax(dim=-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def kv_cache_bytes(num_layers: int, hidden_size: int, num_tokens: int, batch_size: int = 1,
                   bytes_per_value: int = 2) -> int:
    """Memory of a decoder's key/value cache: a key and a value vector of `hidden_size` numbers per layer,
    token and sequence (bytes_per_value 2 for fp16/bf16, 4 for fp32)."""
    return 2 * num_layers * hidden_size * num_tokens * batch_size * bytes_per_value


def distinct_n(texts: list[list], n: int) -> float:
    """Distinct n-grams / all n-grams over a list of token lists (n-grams never cross two texts); 0.0 if there
    are none. 1.0: no n-gram repeats; near 0: the same few n-grams again and again."""
    grams = [tuple(t[i:i + n]) for t in texts for i in range(len(t) - n + 1)]
    return len(set(grams)) / len(grams) if grams else 0.0


__all__ = ["apply_temperature", "distinct_n", "filtered_logits", "generate", "kv_cache_bytes", "next_token_distribution", "sample_next",
           "top_k_filter", "top_p_filter"]
