"""GPT-2 in one readable file: config, learned positions, pre-LN decoder blocks, tied LM head, KV cache.

Same math as OpenAI's GPT-2 (and transformers' `modeling_gpt2.py`), so weights convert one to one (see
`course_lib.hf`). A block is x = x + Attn(LN(x)); x = x + MLP(LN(x)), with causal self-attention (each position
sees itself and earlier ones) and the tanh-approximated GELU of GPT-2; one more LayerNorm after the last block;
the output layer reuses the token embedding matrix. With `use_cache=True` every layer keeps the keys and values
of the tokens seen so far (`GPTCache`), so generating one more token costs one position, not the whole prefix.
"""
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, MultiHeadSelfAttention

PRESETS = {
    # name: (num_layers, hidden_size, num_heads, vocab_size, max_position_embeddings). FFN width is 4x hidden.
    # tiny / mini / small mirror BERT's presets in course_lib.model; gpt2 is OpenAI's 124M-parameter GPT-2.
    "tiny": (2, 128, 2, 8192, 512),
    "mini": (4, 256, 4, 8192, 512),
    "small": (4, 512, 8, 8192, 512),
    "gpt2": (12, 768, 12, 50257, 1024),
}


@dataclass
class GPTConfig:
    """Every size and probability of a GPT. Names follow course_lib's BertConfig; `course_lib.hf` maps them to
    transformers' GPT2Config (n_layer, n_embd, n_head, n_inner, n_positions, resid/embd_pdrop, attn_pdrop)."""

    vocab_size: int = 8192
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-5
    initializer_range: float = 0.02

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"GPTConfig.{name} must be a positive integer (1 or more), got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"GPTConfig.hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads}) so "
                f"every head gets hidden_size / num_heads dimensions; try num_heads in "
                f"{[h for h in range(1, 17) if self.hidden_size % h == 0]}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"GPTConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        for name in ("layer_norm_eps", "initializer_range"):
            if not getattr(self, name) > 0:
                raise ValueError(f"GPTConfig.{name} must be > 0, got {getattr(self, name)!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> "GPTConfig":
        """A named size: tiny (2 layers / 128), mini (4 / 256), small (4 / 512), gpt2 (12 / 768, vocab 50257)."""
        if name not in PRESETS:
            raise ValueError(f"unknown GPT preset {name!r}; choose one of {sorted(PRESETS)}")
        layers, hidden, heads, vocab, positions = PRESETS[name]
        values = dict(num_layers=layers, hidden_size=hidden, num_heads=heads, intermediate_size=4 * hidden,
                      vocab_size=vocab, max_position_embeddings=positions)
        return cls(**{**values, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "GPTConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown GPTConfig fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**values)


class GPTCache:
    """The KV cache of a whole GPT: one `KVCache` per block, for a batch of B sequences.

    Made by the model on a call with `use_cache=True` and past_key_values=None; pass it back as `past_key_values`
    with only the new tokens, and the model extends it in place. It remembers the model that made it, because keys
    and values of another model (or another batch) would silently give wrong logits.
    """

    def __init__(self, model: "GPTModel", batch_size: int):
        self.layers = [KVCache() for _ in range(model.config.num_layers)]
        self.batch_size = batch_size
        self._model = model

    def __len__(self) -> int:
        """Number of positions cached so far."""
        return len(self.layers[0])

    def nbytes(self) -> int:
        """Memory held by the cached keys and values: 2 × layers × B × tokens × hidden × bytes per element."""
        return sum(t.numel() * t.element_size() for layer in self.layers if len(layer)
                   for t in (layer.keys, layer.values))


def check_token_ids(input_ids, vocab_size: int) -> None:
    """A ValueError that says what to do unless ``input_ids`` is a non-empty (batch, length) integer tensor of ids
    in ``[0, vocab_size)`` (checked by the model's forward and, before any work, by ``generate``)."""
    if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"input_ids must be an integer (torch.long) tensor of token ids, got "
                         f"{getattr(input_ids, 'dtype', type(input_ids).__name__)}")
    if input_ids.dim() != 2 or input_ids.shape[0] == 0 or input_ids.shape[1] == 0:
        raise ValueError(f"input_ids must be a non-empty batch of token ids, shape (batch >= 1, seq_len >= 1), got "
                         f"{tuple(input_ids.shape)}; for a single sequence use input_ids.unsqueeze(0)")
    if input_ids.min() < 0 or input_ids.max() >= vocab_size:
        raise ValueError(f"token ids must be in [0, {vocab_size}) (the model's vocabulary), got values from "
                         f"{int(input_ids.min())} to {int(input_ids.max())}; was the text encoded with another "
                         f"tokenizer?")


@dataclass
class GPTModelOutput:
    last_hidden_state: torch.Tensor
    past_key_values: GPTCache | None = None
    attentions: tuple | None = None


@dataclass
class CausalLMOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None
    past_key_values: GPTCache | None = None
    attentions: tuple | None = None


class GPTBlock(nn.Module):
    """One pre-LN decoder block: x = x + Attn(LN(x)); x = x + MLP(LN(x)), MLP = Linear -> GELU(tanh) -> Linear.

    Normalising *before* each sublayer (GPT-2) rather than after (BERT, the original Transformer) leaves the
    residual path an identity from input to output, which makes deep stacks easier to train (less dependence on
    learning-rate warm-up; Xiong et al., 2020).
    """

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.attention = MultiHeadSelfAttention(config.hidden_size, config.num_heads,
                                                config.attention_probs_dropout_prob, causal=True)
        self.mlp_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, attention_mask=None, output_attentions: bool = False, cache: KVCache | None = None):
        attended, weights = self.attention(self.attention_norm(x), attention_mask, output_attentions, cache)
        x = x + self.dropout(attended)
        # GPT-2's GELU is the tanh approximation (transformers' "gelu_new"); F.gelu computes it in one kernel.
        x = x + self.dropout(self.output(F.gelu(self.intermediate(self.mlp_norm(x)), approximate="tanh")))
        return x, weights


class GPTModel(nn.Module):
    """Token + learned position embeddings, a stack of causal pre-LN blocks, a final LayerNorm."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.blocks = nn.ModuleList(GPTBlock(config) for _ in range(config.num_layers))
        self.final_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.init_weights()

    def init_weights(self):
        """GPT-2's initialisation: N(0, 0.02) weights, zero biases, unit LayerNorm, and the two projections that
        write into the residual stream (attention output, MLP output) scaled by 1/√(2·layers), so that the sum of
        2·layers residual branches starts at about the scale of one."""
        std = self.config.initializer_range
        for name, module in self.named_modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                residual_branch = name.endswith(".output")
                scale = 1 / math.sqrt(2 * self.config.num_layers) if residual_branch else 1.0
                nn.init.normal_(module.weight, std=std * scale)
            if isinstance(module, nn.Linear):
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, input_ids, attention_mask=None, past_key_values: GPTCache | None = None,
                use_cache: bool = False, output_attentions: bool = False, position_ids=None) -> GPTModelOutput:
        """input_ids (B, n), the new tokens only when `past_key_values` holds p earlier positions;
        attention_mask (B, p + n) of 1 (token) / 0 (padding) over every position so far, or None;
        position_ids (B, n) or None for p, p+1, ..., p+n-1 (with left padding pass the positions that skip the
        padding, as `course_lib.generation.generate` does). Returns the hidden states (B, n, hidden), the cache
        (extended in place) when `use_cache` or `past_key_values` is given, and with `output_attentions` one
        (B, h, n, p + n) weight tensor per block."""
        past = self._check_inputs(input_ids, attention_mask, past_key_values, position_ids)
        cache = past_key_values
        if cache is None and use_cache:
            cache = GPTCache(self, input_ids.shape[0])
        if position_ids is None:
            position_ids = torch.arange(past, past + input_ids.shape[1], device=input_ids.device)
        x = self.dropout(self.token_embeddings(input_ids) + self.position_embeddings(position_ids))
        attentions = []
        for i, block in enumerate(self.blocks):
            x, weights = block(x, attention_mask, output_attentions, None if cache is None else cache.layers[i])
            attentions.append(weights)
        return GPTModelOutput(self.final_norm(x), cache, tuple(attentions) if output_attentions else None)

    def _check_inputs(self, input_ids, attention_mask, cache, position_ids) -> int:
        """Turn the errors that would surface deep inside (index errors, shape mismatches, silently wrong logits
        from a foreign cache) into ValueErrors that say what to do; returns the number of cached positions."""
        config = self.config
        check_token_ids(input_ids, config.vocab_size)
        past = 0
        if cache is not None:
            if not isinstance(cache, GPTCache) or cache._model is not self:
                raise ValueError("past_key_values was not made by this model (a cache holds one model's keys and "
                                 "values); pass past_key_values=None with use_cache=True to start a new one")
            if cache.batch_size != input_ids.shape[0]:
                raise ValueError(f"past_key_values holds {cache.batch_size} sequences but input_ids has "
                                 f"{input_ids.shape[0]}; start a new cache for a new batch")
            past = len(cache)
        total = past + input_ids.shape[1]
        if total > config.max_position_embeddings:
            raise ValueError(f"{past} cached + {input_ids.shape[1]} new tokens = {total} positions, more than "
                             f"max_position_embeddings={config.max_position_embeddings} (the context); keep at most "
                             f"the last {config.max_position_embeddings} tokens")
        if attention_mask is not None:
            if attention_mask.shape != (input_ids.shape[0], total):
                raise ValueError(f"attention_mask must have shape (batch, cached + new tokens) = "
                                 f"{(input_ids.shape[0], total)}, got {tuple(attention_mask.shape)}")
            if attention_mask.dtype.is_floating_point or attention_mask.min() < 0 or attention_mask.max() > 1:
                raise ValueError("attention_mask must be an integer or bool tensor of 1 (token) / 0 (padding)")
        if position_ids is not None and (position_ids.shape[-1] != input_ids.shape[1] or position_ids.min() < 0
                                         or position_ids.max() >= config.max_position_embeddings):
            raise ValueError(f"position_ids must have shape (batch, {input_ids.shape[1]}) with values in "
                             f"[0, {config.max_position_embeddings}), got shape {tuple(position_ids.shape)}")
        return past


class GPTLMHeadModel(nn.Module):
    """GPT with its language-modelling head: logits = hidden · token_embeddingsᵀ (tied, no bias)."""

    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.transformer = GPTModel(config)

    def forward(self, input_ids, attention_mask=None, labels=None, past_key_values: GPTCache | None = None,
                use_cache: bool = False, output_attentions: bool = False, position_ids=None) -> CausalLMOutput:
        """Arguments as `GPTModel.forward`; returns logits (B, n, V). labels (B, n), usually input_ids itself: the
        loss is the mean next-token cross-entropy, logits at t against labels at t + 1 (the shift happens here),
        over the pairs whose label is not -100 and, with an attention_mask, whose two positions are both tokens
        (so neither padding nor a prediction made *from* left padding counts)."""
        out = self.transformer(input_ids, attention_mask, past_key_values, use_cache, output_attentions, position_ids)
        logits = F.linear(out.last_hidden_state, self.transformer.token_embeddings.weight)
        loss = None
        if labels is not None:
            loss = self.next_token_loss(logits, labels, attention_mask)
        return CausalLMOutput(logits, loss, out.past_key_values, out.attentions)

    @staticmethod
    def next_token_loss(logits, labels, attention_mask=None):
        """logits (B, n, V), labels (B, n), attention_mask (B, m >= n) or None -> mean cross-entropy of the pairs
        (logits[:, t], labels[:, t + 1]) that count."""
        if labels.shape != logits.shape[:2]:
            raise ValueError(f"labels must have the shape of input_ids {tuple(logits.shape[:2])}, "
                             f"got {tuple(labels.shape)}")
        targets = labels[:, 1:]
        if attention_mask is not None:
            mask = attention_mask[:, -labels.shape[1]:].bool()
            targets = targets.masked_fill(~(mask[:, 1:] & mask[:, :-1]), -100)
        # Shift the labels, not the logits: a column of -100 at the end keeps logits a free view (no (B, n, V) copy).
        targets = torch.cat([targets, targets.new_full((labels.shape[0], 1), -100)], dim=1)
        if not (targets != -100).any():  # nothing to predict in this batch: a zero that still has a gradient
            return logits.sum() * 0.0
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-100)


__all__ = ["CausalLMOutput", "GPTBlock", "GPTCache", "GPTConfig", "GPTLMHeadModel", "GPTModel", "GPTModelOutput",
           "PRESETS"]
