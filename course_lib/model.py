"""BERT in one readable file: config, embeddings, post-LN encoder, pretraining and classification heads.

Same math as the original BERT (and transformers' `modeling_bert.py`), so weights convert one to one
(see `course_lib.hf`). Two things make it faster to train on a laptop CPU: attention goes through
`F.scaled_dot_product_attention` unless the attention weights are asked for, and with MLM labels the
vocabulary-sized output layer is computed only at the masked positions.
"""
from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from .attention import MultiHeadSelfAttention

PRESETS = {
    # name: (num_layers, hidden_size, num_heads, vocab_size). FFN width is 4x hidden, as in BERT.
    "tiny": (2, 128, 2, 8192),
    "mini": (4, 256, 4, 8192),
    "small": (4, 512, 8, 8192),
    "base": (12, 768, 12, 30522),
    "large": (24, 1024, 16, 30522),
}


@dataclass
class BertConfig:
    """Every size and probability of a BERT. Field names follow transformers' BertConfig where it has one."""

    vocab_size: int = 8192
    hidden_size: int = 256
    num_layers: int = 4
    num_heads: int = 4
    intermediate_size: int = 1024
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    hidden_dropout_prob: float = 0.1
    attention_probs_dropout_prob: float = 0.1
    layer_norm_eps: float = 1e-12
    initializer_range: float = 0.02
    pad_token_id: int = 0

    def __post_init__(self):
        for name in ("vocab_size", "hidden_size", "num_layers", "num_heads", "intermediate_size",
                     "max_position_embeddings", "type_vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ValueError(
                f"hidden_size ({self.hidden_size}) must be divisible by num_heads ({self.num_heads}) so every "
                f"head gets hidden_size / num_heads dimensions; try num_heads in "
                f"{[h for h in range(1, 17) if self.hidden_size % h == 0]}")
        for name in ("hidden_dropout_prob", "attention_probs_dropout_prob"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(f"BertConfig.{name} must be in [0, 1), got {getattr(self, name)!r}")
        if not 0 <= self.pad_token_id < self.vocab_size:
            raise ValueError(f"pad_token_id ({self.pad_token_id}) must be in [0, vocab_size={self.vocab_size})")

    @classmethod
    def preset(cls, name: str, **overrides) -> "BertConfig":
        """A named size: tiny (2 layers / 128), mini (4 / 256), small (4 / 512), base (12 / 768), large (24 / 1024)."""
        if name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
        layers, hidden, heads, vocab = PRESETS[name]
        values = dict(num_layers=layers, hidden_size=hidden, num_heads=heads, intermediate_size=4 * hidden,
                      vocab_size=vocab)
        return cls(**{**values, **overrides})

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict) -> "BertConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ValueError(f"unknown BertConfig fields {sorted(unknown)}; known fields: {sorted(known)}")
        return cls(**values)


def layer_norm(x, weight, bias, eps: float = 1e-12):
    """LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * weight + bias, with the biased variance
    (divide by d, not d - 1). Chapter 3 writes the formula out; the encoder runs it as torch's fused kernel, which
    computes the same (tests/chapters/test_reference_twins.py holds the two together)."""
    return F.layer_norm(x, x.shape[-1:], weight, bias, eps)


def gelu(x):
    """The exact GELU, x·Φ(x) = 0.5·x·(1 + erf(x / √2)), with Φ the standard normal CDF (BERT's activation); as
    with :func:`layer_norm`, chapter 3 writes it out and the encoder runs torch's fused kernel."""
    return F.gelu(x)


class LayerNorm(nn.LayerNorm):
    """``nn.LayerNorm``'s parameters (so weights map one to one onto transformers'), computed by :func:`layer_norm`."""

    def forward(self, x):
        return layer_norm(x, self.weight, self.bias, self.eps)


@dataclass
class BertOutput:
    last_hidden_state: torch.Tensor
    pooler_output: torch.Tensor
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class PreTrainingOutput:
    mlm_logits: torch.Tensor
    nsp_logits: torch.Tensor
    loss: torch.Tensor | None = None
    mlm_loss: torch.Tensor | None = None
    nsp_loss: torch.Tensor | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


@dataclass
class ClassifierOutput:
    logits: torch.Tensor
    loss: torch.Tensor | None = None
    hidden_states: tuple | None = None
    attentions: tuple | None = None


class BertEmbeddings(nn.Module):
    """Token + learned position + segment (token type) embeddings, then LayerNorm and dropout."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size, padding_idx=config.pad_token_id)
        self.position_embeddings = nn.Embedding(config.max_position_embeddings, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids, token_type_ids):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.word_embeddings(input_ids) + self.position_embeddings(positions) + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.layer_norm(x))


class EncoderLayer(nn.Module):
    """One post-LN Transformer encoder layer: x = LN(x + Attn(x)); x = LN(x + FFN(x))."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.attention = MultiHeadSelfAttention(config.hidden_size, config.num_heads,
                                                config.attention_probs_dropout_prob)
        self.attention_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.intermediate = nn.Linear(config.hidden_size, config.intermediate_size)
        self.output = nn.Linear(config.intermediate_size, config.hidden_size)
        self.output_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, x, attention_mask=None, output_attentions: bool = False):
        attended, weights = self.attention(x, attention_mask, output_attentions)
        x = self.attention_norm(x + self.dropout(attended))
        x = self.output_norm(x + self.dropout(self.output(gelu(self.intermediate(x)))))
        return x, weights


class BertEncoder(nn.Module):
    def __init__(self, config: BertConfig):
        super().__init__()
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.num_layers))

    def forward(self, x, attention_mask=None, output_attentions=False, output_hidden_states=False):
        hidden_states, attentions = [x], []
        for layer in self.layers:
            x, weights = layer(x, attention_mask, output_attentions)
            hidden_states.append(x)
            attentions.append(weights)
        return (x, tuple(hidden_states) if output_hidden_states else None,
                tuple(attentions) if output_attentions else None)


class BertPreTrainedModel(nn.Module):
    """Shared weight initialisation (as in BERT: N(0, 0.02) weights, zero biases, unit LayerNorm)."""

    def init_weights(self):
        std = self.config.initializer_range
        for module in self.modules():
            if isinstance(module, (nn.Linear, nn.Embedding)):
                nn.init.normal_(module.weight, mean=0.0, std=std)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
            if isinstance(module, nn.Embedding) and module.padding_idx is not None:
                with torch.no_grad():
                    module.weight[module.padding_idx].zero_()
            if isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)


class BertModel(BertPreTrainedModel):
    """Embeddings, a stack of encoder layers and the tanh pooler on [CLS]."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.encoder = BertEncoder(config)
        self.pooler = nn.Linear(config.hidden_size, config.hidden_size)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> BertOutput:
        """input_ids (B, n); attention_mask (B, n) with 1 = token, 0 = padding; token_type_ids (B, n) of 0/1."""
        self._check_inputs(input_ids, attention_mask, token_type_ids)
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        x = self.embeddings(input_ids, token_type_ids)
        x, hidden_states, attentions = self.encoder(x, attention_mask, output_attentions, output_hidden_states)
        pooled = torch.tanh(self.pooler(x[:, 0]))
        return BertOutput(x, pooled, hidden_states, attentions)

    def _check_inputs(self, input_ids, attention_mask, token_type_ids):
        """Turn the errors that would surface deep inside (index errors, CUDA asserts) into plain ValueErrors."""
        config = self.config
        if not isinstance(input_ids, torch.Tensor) or input_ids.dtype not in (torch.int64, torch.int32):
            raise ValueError(f"input_ids must be an integer (torch.long) tensor, got "
                             f"{getattr(input_ids, 'dtype', type(input_ids).__name__)}")
        if input_ids.dim() != 2:
            raise ValueError(f"input_ids must have shape (batch, seq_len), got {tuple(input_ids.shape)}; "
                             f"for a single sequence use input_ids.unsqueeze(0)")
        if input_ids.shape[1] > config.max_position_embeddings:
            raise ValueError(f"sequence length {input_ids.shape[1]} exceeds max_position_embeddings="
                             f"{config.max_position_embeddings}; truncate the input (tokenizer(..., truncation=True, "
                             f"max_length={config.max_position_embeddings}))")
        if input_ids.numel() and (input_ids.min() < 0 or input_ids.max() >= config.vocab_size):
            raise ValueError(f"token ids must be in [0, {config.vocab_size}), got values from {int(input_ids.min())} "
                             f"to {int(input_ids.max())}; was the text encoded with a different tokenizer?")
        for name, tensor, high in (("attention_mask", attention_mask, 2), ("token_type_ids", token_type_ids,
                                                                             config.type_vocab_size)):
            if tensor is None:
                continue
            if tensor.shape != input_ids.shape:
                raise ValueError(f"{name} must have the same shape as input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(tensor.shape)}")
            if tensor.dtype.is_floating_point or tensor.dtype == torch.bool and name == "token_type_ids":
                raise ValueError(f"{name} must be an integer tensor, got {tensor.dtype}")
            if tensor.numel() and (tensor.min() < 0 or tensor.max() >= high):
                raise ValueError(f"{name} values must be in [0, {high}), got values from {int(tensor.min())} "
                                 f"to {int(tensor.max())}")


class MaskedLMHead(nn.Module):
    """transform -> GELU -> LayerNorm -> decoder tied to the word embeddings (with its own bias)."""

    def __init__(self, config: BertConfig, word_embeddings: nn.Embedding):
        super().__init__()
        self.transform = nn.Linear(config.hidden_size, config.hidden_size)
        self.layer_norm = LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))
        self.word_embeddings = [word_embeddings]  # a list, so the tied weight is not registered twice

    def forward(self, x):
        x = self.layer_norm(gelu(self.transform(x)))
        return F.linear(x, self.word_embeddings[0].weight, self.bias)


class BertForPreTraining(BertPreTrainedModel):
    """BERT with its two pretraining heads: masked language modelling and next-sentence prediction."""

    def __init__(self, config: BertConfig):
        super().__init__()
        self.config = config
        self.bert = BertModel(config)
        self.mlm_head = MaskedLMHead(config, self.bert.embeddings.word_embeddings)
        self.nsp_head = nn.Linear(config.hidden_size, 2)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None, next_sentence_label=None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> PreTrainingOutput:
        """labels (B, n): the original token id at masked positions, -100 elsewhere; next_sentence_label (B,):
        0 = B follows A, 1 = B is random. With `labels`, `mlm_logits` holds only the masked positions, shape
        (num_masked, V) in the order of labels[labels != -100]; without, it is (B, n, V)."""
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions, output_hidden_states)
        nsp_logits = self.nsp_head(out.pooler_output)
        loss = mlm_loss = nsp_loss = None
        if labels is not None:
            if labels.shape != input_ids.shape:
                raise ValueError(f"labels must have the shape of input_ids {tuple(input_ids.shape)}, "
                                 f"got {tuple(labels.shape)}")
            masked = labels != -100
            mlm_logits = self.mlm_head(out.last_hidden_state[masked])
            mlm_loss = (F.cross_entropy(mlm_logits.float(), labels[masked]) if masked.any()
                        else mlm_logits.sum() * 0.0)  # no masked token in the batch: nothing to learn
            loss = mlm_loss
        else:
            mlm_logits = self.mlm_head(out.last_hidden_state)
        if next_sentence_label is not None:
            nsp_loss = F.cross_entropy(nsp_logits.float(), next_sentence_label.view(-1))
            loss = nsp_loss if loss is None else loss + nsp_loss
        return PreTrainingOutput(mlm_logits, nsp_logits, loss, mlm_loss, nsp_loss, out.hidden_states, out.attentions)


class BertForSequenceClassification(BertPreTrainedModel):
    """BERT with a linear classifier on the pooled [CLS] representation (fine-tuning, §3.3)."""

    def __init__(self, config: BertConfig, num_labels: int = 2):
        super().__init__()
        if num_labels < 2:
            raise ValueError(f"num_labels must be at least 2, got {num_labels}")
        self.config = config
        self.num_labels = num_labels
        self.bert = BertModel(config)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.classifier = nn.Linear(config.hidden_size, num_labels)
        self.init_weights()

    def forward(self, input_ids, attention_mask=None, token_type_ids=None, labels=None,
                output_attentions: bool = False, output_hidden_states: bool = False) -> ClassifierOutput:
        out = self.bert(input_ids, attention_mask, token_type_ids, output_attentions, output_hidden_states)
        logits = self.classifier(self.dropout(out.pooler_output))
        loss = None if labels is None else F.cross_entropy(logits.float(), labels.view(-1))
        return ClassifierOutput(logits, loss, out.hidden_states, out.attentions)


def set_dropout(model: nn.Module, p: float) -> None:
    """Set every dropout rate of `model` (and its config) to `p`: pretraining runs without dropout (as in
    Cramming), fine-tuning on a few thousand sentences needs it back."""
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = p
    model.config.hidden_dropout_prob = model.config.attention_probs_dropout_prob = p


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters, each tied or shared tensor counted once (as `model.parameters()` yields it)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
