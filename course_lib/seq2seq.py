"""The original Transformer of "Attention Is All You Need" (Vaswani et al., 2017): an encoder and a decoder.

The encoder reads the source sentence with bidirectional self-attention; the decoder writes the target one token
at a time with causal self-attention (it sees only what it has written), cross-attention (queries from the
target, keys and values from the encoder's output: where in the source to look) and a ReLU feed-forward layer.
Every sublayer is post-LN, x = LN(x + Sublayer(x)); token embeddings are scaled by √d and added to the fixed
sinusoidal positions. Same math as `torch.nn.Transformer` (batch_first, norm_first=False, relu), including its
one LayerNorm after the last encoder and the last decoder layer, so weights map one to one (`course_lib.hf`).

Decoding: `greedy_search` (with a KV cache) and `beam_search` (beam width >= 1, a length penalty).
"""
import math
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .attention import KVCache, MultiHeadCrossAttention, MultiHeadSelfAttention
from .positions import sinusoidal_positions

PRESETS = {
    # name: (encoder layers, decoder layers, hidden_size, num_heads); FFN width 4x hidden, as in the paper.
    "tiny": (2, 2, 64, 2),
    "mini": (3, 3, 128, 4),
    "small": (4, 4, 256, 4),
    "base": (6, 6, 512, 8),  # the paper's base model
}


@dataclass
class Seq2SeqConfig:
    """Sizes, probabilities and special token ids of an encoder-decoder; the special ids are the target side's."""

    src_vocab_size: int = 1000
    tgt_vocab_size: int = 1000
    hidden_size: int = 128
    num_encoder_layers: int = 3
    num_decoder_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 512
    max_position_embeddings: int = 128
    dropout: float = 0.1
    layer_norm_eps: float = 1e-5
    pad_token_id: int = 0
    bos_token_id: int = 1
    eos_token_id: int = 2

    def __post_init__(self):
        for name in ("src_vocab_size", "tgt_vocab_size", "hidden_size", "num_encoder_layers", "num_decoder_layers",
                     "num_heads", "intermediate_size", "max_position_embeddings"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"Seq2SeqConfig.{name} must be a positive integer (1 or more), got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(f"Seq2SeqConfig.hidden_size ({self.hidden_size}) must be divisible by num_heads "
                             f"({self.num_heads}); try num_heads in "
                             f"{[h for h in range(1, 17) if self.hidden_size % h == 0]}")
        if self.hidden_size % 2:
            raise ValueError(f"Seq2SeqConfig.hidden_size must be even (sinusoidal positions come in sin/cos pairs), "
                             f"got {self.hidden_size}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"Seq2SeqConfig.dropout must be in [0, 1), got {self.dropout!r}")
        for name in ("pad_token_id", "bos_token_id", "eos_token_id"):
            if not 0 <= getattr(self, name) < self.tgt_vocab_size:
                raise ValueError(f"Seq2SeqConfig.{name} must be in [0, tgt_vocab_size={self.tgt_vocab_size}), got "
                                 f"{getattr(self, name)!r}")

    @classmethod
    def preset(cls, name: str, **overrides) -> "Seq2SeqConfig":
        """tiny (2+2 layers / 64), mini (3+3 / 128), small (4+4 / 256), base (6+6 / 512, the paper's)."""
        if name not in PRESETS:
            raise ValueError(f"unknown Seq2Seq preset {name!r}; choose one of {sorted(PRESETS)}")
        enc, dec, hidden, heads = PRESETS[name]
        values = dict(num_encoder_layers=enc, num_decoder_layers=dec, hidden_size=hidden, num_heads=heads,
                      intermediate_size=4 * hidden)
        return cls(**{**values, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "Seq2SeqConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown Seq2SeqConfig fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**values)


class FeedForward(nn.Module):
    """The position-wise FFN of the paper: Linear -> ReLU -> dropout -> Linear."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):
        return self.output(self.dropout(F.relu(self.intermediate(x))))


class EncoderLayer(nn.Module):
    """x = LN(x + SelfAttn(x)); x = LN(x + FFN(x)), bidirectional: every source token sees every other."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.self_attention = MultiHeadSelfAttention(config.hidden_size, config.num_heads, config.dropout)
        self.self_attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, src_mask=None):
        x = self.self_attention_norm(x + self.dropout(self.self_attention(x, src_mask)[0]))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x)))


class DecoderLayer(nn.Module):
    """x = LN(x + CausalSelfAttn(x)); x = LN(x + CrossAttn(x, memory)); x = LN(x + FFN(x))."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.self_attention = MultiHeadSelfAttention(config.hidden_size, config.num_heads, config.dropout, causal=True)
        self.self_attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.cross_attention = MultiHeadCrossAttention(config.hidden_size, config.num_heads, config.dropout)
        self.cross_attention_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.feed_forward = FeedForward(config)
        self.feed_forward_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x, memory, src_mask=None, tgt_mask=None, cache=None, output_attentions=False):
        """cache: (self-attention KVCache, cross-attention KVCache) or None. Returns (x, cross-attention weights)."""
        self_cache, cross_cache = cache if cache is not None else (None, None)
        x = self.self_attention_norm(x + self.dropout(self.self_attention(x, tgt_mask, cache=self_cache)[0]))
        attended, weights = self.cross_attention(x, memory, src_mask, output_attentions, cross_cache)
        x = self.cross_attention_norm(x + self.dropout(attended))
        return self.feed_forward_norm(x + self.dropout(self.feed_forward(x))), weights


@dataclass
class Seq2SeqOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None
    cross_attentions: tuple | None = None


class Seq2SeqTransformer(nn.Module):
    """Source embeddings -> encoder -> memory; target embeddings + memory -> decoder -> generator (to logits)."""

    def __init__(self, config: Seq2SeqConfig):
        super().__init__()
        self.config = config
        self.src_embeddings = nn.Embedding(config.src_vocab_size, config.hidden_size)
        self.tgt_embeddings = nn.Embedding(config.tgt_vocab_size, config.hidden_size)
        # fixed, so a buffer (not a parameter), and rebuilt rather than saved
        self.register_buffer("positions", sinusoidal_positions(config.max_position_embeddings, config.hidden_size),
                             persistent=False)
        self.dropout = nn.Dropout(config.dropout)
        self.encoder_layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_encoder_layers))
        self.encoder_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder_layers = nn.ModuleList(DecoderLayer(config) for _ in range(config.num_decoder_layers))
        self.decoder_norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.generator = nn.Linear(config.hidden_size, config.tgt_vocab_size)
        for p in self.parameters():  # Xavier/Glorot, as torch.nn.Transformer and the paper's code initialise
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def embed(self, embeddings: nn.Embedding, ids, offset: int = 0):
        """ids (B, n) -> (B, n, hidden): token embedding × √hidden + sinusoidal position (offset for a cache)."""
        n = ids.shape[1]
        if offset + n > self.config.max_position_embeddings:
            raise ValueError(f"{offset + n} positions exceed max_position_embeddings="
                             f"{self.config.max_position_embeddings}; shorten the sentence or raise the config's limit")
        scaled = embeddings(ids) * math.sqrt(self.config.hidden_size)
        return self.dropout(scaled + self.positions[offset:offset + n])

    def encode(self, src_ids, src_mask=None):
        """src_ids (B, m), src_mask (B, m) of 1 (token) / 0 (padding) or None -> memory (B, m, hidden)."""
        self._check_ids(src_ids, self.config.src_vocab_size, "src_ids")
        x = self.embed(self.src_embeddings, src_ids)
        for layer in self.encoder_layers:
            x = layer(x, src_mask)
        return self.encoder_norm(x)

    def decode(self, tgt_ids, memory, src_mask=None, tgt_mask=None, cache: list | None = None,
               output_attentions: bool = False):
        """tgt_ids (B, n) (with a cache: the new tokens only), memory (B, m, hidden) -> (hidden (B, n, hidden),
        cross-attention weights per layer (B, h, n, m) or None). tgt_mask (B, cached + n) of 1/0 or None; cache:
        from `new_cache()`, extended in place."""
        self._check_ids(tgt_ids, self.config.tgt_vocab_size, "tgt_ids")
        offset = len(cache[0][0]) if cache is not None else 0
        x = self.embed(self.tgt_embeddings, tgt_ids, offset)
        weights = []
        for i, layer in enumerate(self.decoder_layers):
            x, w = layer(x, memory, src_mask, tgt_mask, None if cache is None else cache[i], output_attentions)
            weights.append(w)
        return self.decoder_norm(x), (tuple(weights) if output_attentions else None)

    def new_cache(self) -> list:
        """One (self-attention, cross-attention) KVCache pair per decoder layer, for step-by-step decoding."""
        return [(KVCache(), KVCache()) for _ in self.decoder_layers]

    def forward(self, src_ids, tgt_ids, src_mask=None, tgt_mask=None, labels=None,
                output_attentions: bool = False) -> Seq2SeqOutput:
        """Teacher forcing: tgt_ids (B, n) is the target the decoder reads, BOS y1 .. y_{n-1}; labels (B, n) what it
        should predict at each position, y1 .. y_n EOS, already shifted (-100 or padding in tgt_mask: ignored).
        Returns logits (B, n, tgt_vocab), the mean cross-entropy with labels, and with `output_attentions` the
        decoder's cross-attention weights (the alignment between target and source)."""
        memory = self.encode(src_ids, src_mask)
        hidden, cross = self.decode(tgt_ids, memory, src_mask, tgt_mask, output_attentions=output_attentions)
        logits = self.generator(hidden)
        loss = None
        if labels is not None:
            if labels.shape != tgt_ids.shape:
                raise ValueError(f"labels must have the shape of tgt_ids {tuple(tgt_ids.shape)}, got "
                                 f"{tuple(labels.shape)}")
            if tgt_mask is not None:
                labels = labels.masked_fill(tgt_mask == 0, -100)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), labels.reshape(-1), ignore_index=-100)
        return Seq2SeqOutput(logits, loss, cross)

    @staticmethod
    def _check_ids(ids, vocab_size, name):
        if not isinstance(ids, torch.Tensor) or ids.dtype not in (torch.int64, torch.int32) or ids.dim() != 2:
            raise ValueError(f"{name} must be an integer tensor of shape (batch, length), got "
                             f"{getattr(ids, 'dtype', type(ids).__name__)} {tuple(getattr(ids, 'shape', ()))}")
        if ids.numel() == 0:
            raise ValueError(f"{name} is empty, shape {tuple(ids.shape)}; give at least one token per sentence")
        if ids.min() < 0 or ids.max() >= vocab_size:
            raise ValueError(f"{name} must be in [0, {vocab_size}), got values from {int(ids.min())} to "
                             f"{int(ids.max())}")


@torch.no_grad()
def greedy_search(model: Seq2SeqTransformer, src_ids, src_mask=None, max_new_tokens: int = 50) -> torch.Tensor:
    """The most likely next token at each step, with the KV cache: (B, m) sources -> (B, 1 + new) targets that
    start with BOS; a row stops at its EOS (padding after it), the loop when every row has stopped."""
    config = model.config
    memory = model.encode(src_ids, src_mask)
    batch = src_ids.shape[0]
    tokens = torch.full((batch, 1), config.bos_token_id, dtype=torch.long, device=src_ids.device)
    finished = torch.zeros(batch, dtype=torch.bool, device=src_ids.device)
    cache, step = model.new_cache(), tokens
    for _ in range(max_new_tokens):
        hidden, _ = model.decode(step, memory, src_mask, cache=cache)
        next_token = model.generator(hidden[:, -1]).argmax(-1).masked_fill(finished, config.pad_token_id)
        finished |= next_token == config.eos_token_id
        tokens = torch.cat([tokens, next_token[:, None]], dim=1)
        if finished.all():
            break
        step = next_token[:, None]
    return tokens


@torch.no_grad()
def beam_search(model: Seq2SeqTransformer, src_ids, src_mask=None, max_new_tokens: int = 50, beam_width: int = 4,
                length_penalty: float = 1.0) -> torch.Tensor:
    """Keep the `beam_width` most likely partial targets at each step instead of one; returns (B, 1 + new) targets
    that start with BOS (the best finished hypothesis of each source, padded after its EOS).

    A hypothesis y1 .. y_L (L tokens generated, EOS included) is ranked by
        score = (log p(y1) + ... + log p(y_L)) / L ** length_penalty,
    so length_penalty = 0 ranks by total log-probability (which favours short outputs, every token costing
    probability), 1 by the mean per token, and values above 1 favour longer outputs (as transformers'
    `length_penalty`). A hypothesis that reaches max_new_tokens without EOS is ranked the same way. The search for a
    source stops as soon as no live beam could still beat its best finished hypothesis (an exact test: the result is
    that of running every beam to max_new_tokens); beam_width = 1 is greedy search.
    """
    if not isinstance(beam_width, int) or beam_width < 1:
        raise ValueError(f"beam_width must be an integer >= 1 (1 = greedy), got {beam_width!r}")
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
    config, W = model.config, beam_width
    batch = src_ids.shape[0]
    memory = model.encode(src_ids, src_mask)
    # every source is repeated once per beam: row b * W + j is beam j of source b
    memory = memory.repeat_interleave(W, dim=0)
    beam_src_mask = None if src_mask is None else src_mask.repeat_interleave(W, dim=0)
    beams = torch.full((batch * W, 1), config.bos_token_id, dtype=torch.long, device=src_ids.device)
    scores = torch.full((batch, W), float("-inf"), device=src_ids.device)
    scores[:, 0] = 0.0  # the W beams start identical: keep one, so the first step does not pick one token W times
    best = [(float("-inf"), None)] * batch  # per source: the best finished (normalised score, generated tokens)
    done = [False] * batch

    def normalised(total, length):
        return total / length ** length_penalty

    for step in range(1, max_new_tokens + 1):
        hidden, _ = model.decode(beams, memory, beam_src_mask)
        log_probs = model.generator(hidden[:, -1]).float().log_softmax(-1)  # (B·W, V)
        vocab = log_probs.shape[-1]
        candidates = (scores[:, :, None] + log_probs.view(batch, W, vocab)).view(batch, W * vocab)
        # 2W candidates: even if W of them end in EOS, W live ones remain
        top_scores, top_index = candidates.topk(min(2 * W, W * vocab), dim=-1)
        next_beams, next_scores = [], torch.full((batch, W), float("-inf"), device=src_ids.device)
        for b in range(batch):
            kept = []  # (total log-probability, row of the beam it extends, token) of the live beams, best first
            for total, index in zip(top_scores[b].tolist(), top_index[b].tolist()):
                if done[b] or total == float("-inf") or len(kept) == W:
                    break
                beam, token = divmod(index, vocab)
                if token == config.eos_token_id:
                    sequence = torch.cat([beams[b * W + beam, 1:], beams.new_tensor([token])])
                    best[b] = max(best[b], (normalised(total, step), sequence), key=lambda h: h[0])
                else:
                    kept.append((total, b * W + beam, token))
            while len(kept) < W:  # fewer live candidates than beams (a finished source, a tiny vocabulary)
                kept.append((float("-inf"), b * W, config.pad_token_id))
            for j, (total, row, token) in enumerate(kept):
                next_scores[b, j] = total
                next_beams.append(torch.cat([beams[row], beams.new_tensor([token])]))
            best_live = next_scores[b].max().item()
            # log-probabilities only add up to <= 0, so a live beam's best possible final score is its score now
            # divided by the largest length it could reach (length_penalty >= 0), or by the smallest (< 0)
            reach = max_new_tokens if length_penalty >= 0 else min(step + 1, max_new_tokens)
            if best_live == float("-inf") or normalised(best_live, reach) <= best[b][0]:
                done[b] = True
        beams, scores = torch.stack(next_beams), next_scores
        if all(done):
            break
    for b in range(batch):
        if not done[b]:  # max_new_tokens reached: live beams compete as they are
            for j in range(W):
                if scores[b, j] > float("-inf"):
                    full_length = (normalised(scores[b, j].item(), beams.shape[1] - 1), beams[b * W + j, 1:])
                    best[b] = max(best[b], full_length, key=lambda h: h[0])
    best = [sequence for _, sequence in best]
    out = torch.full((batch, 1 + max(len(s) for s in best)), config.pad_token_id, dtype=torch.long,
                     device=src_ids.device)
    out[:, 0] = config.bos_token_id
    for b, sequence in enumerate(best):
        out[b, 1:1 + len(sequence)] = sequence
    return out


__all__ = ["DecoderLayer", "EncoderLayer", "FeedForward", "PRESETS", "Seq2SeqConfig", "Seq2SeqOutput",
           "Seq2SeqTransformer", "beam_search", "greedy_search"]
