"""Conversion between course_lib's models and Hugging Face `transformers`' BERT and GPT-2, and between
course_lib's Seq2SeqTransformer and `torch.nn.Transformer` (+ its embeddings and output layer).

The two implementations hold the same tensors under different names, so conversion is a renaming of
state-dict keys (for GPT-2 also a transpose, and a split of its fused query/key/value projection). Loading
works offline from a local folder (config.json + model.safetensors, as written by `save_pretrained`);
course_lib never downloads anything.
"""
import json
import re
from pathlib import Path

import torch

from .gpt import GPTConfig, GPTLMHeadModel, GPTModel
from .model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel
from .seq2seq import Seq2SeqConfig, Seq2SeqTransformer

# (transformers name, course_lib name) for the parts of one encoder layer and the rest of BertModel.
_LAYER_NAMES = [
    ("attention.self.query", "attention.query"),
    ("attention.self.key", "attention.key"),
    ("attention.self.value", "attention.value"),
    ("attention.output.dense", "attention.output"),
    ("attention.output.LayerNorm", "attention_norm"),
    ("intermediate.dense", "intermediate"),
    ("output.dense", "output"),
    ("output.LayerNorm", "output_norm"),
]
_MODEL_NAMES = [
    ("embeddings.word_embeddings", "embeddings.word_embeddings"),
    ("embeddings.position_embeddings", "embeddings.position_embeddings"),
    ("embeddings.token_type_embeddings", "embeddings.token_type_embeddings"),
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    ("pooler.dense", "pooler"),
]
_HEAD_NAMES = [
    ("cls.predictions.transform.dense", "mlm_head.transform"),
    ("cls.predictions.transform.LayerNorm", "mlm_head.layer_norm"),
    ("cls.predictions.bias", "mlm_head.bias"),
    ("cls.seq_relationship", "nsp_head"),
    ("classifier", "classifier"),
]
# Tensors transformers keeps that course_lib does not: the decoder tied to the word embeddings, and buffers.
_SKIPPED_HF_KEYS = re.compile(r"(cls\.predictions\.decoder\.(weight|bias)|.*position_ids|.*token_type_ids)$")

_CONFIG_NAMES = {  # course_lib field -> transformers BertConfig attribute
    "vocab_size": "vocab_size", "hidden_size": "hidden_size", "num_layers": "num_hidden_layers",
    "num_heads": "num_attention_heads", "intermediate_size": "intermediate_size",
    "max_position_embeddings": "max_position_embeddings", "type_vocab_size": "type_vocab_size",
    "hidden_dropout_prob": "hidden_dropout_prob", "attention_probs_dropout_prob": "attention_probs_dropout_prob",
    "layer_norm_eps": "layer_norm_eps", "initializer_range": "initializer_range", "pad_token_id": "pad_token_id",
}


def _rename(name: str, prefix_hf: str, to_course: bool) -> str:
    """One state-dict key from transformers' naming to course_lib's (or back)."""
    src, dst = (0, 1) if to_course else (1, 0)
    bert_hf, bert_course = prefix_hf, ("bert." if prefix_hf else "")
    own_prefix = bert_hf if to_course else bert_course
    other_prefix = bert_course if to_course else bert_hf
    for pair in _HEAD_NAMES:
        if name.startswith(pair[src] + ".") or name == pair[src]:
            return pair[dst] + name[len(pair[src]):]
    if not name.startswith(own_prefix):
        raise KeyError(name)
    rest = name[len(own_prefix):]
    layer = re.match(r"encoder\.layers?\.(\d+)\.(.*)$", rest)
    if layer:
        index, rest = layer.groups()
        for pair in _LAYER_NAMES:
            if rest.startswith(pair[src] + "."):
                layer_prefix = "encoder.layers." if to_course else "encoder.layer."
                return f"{other_prefix}{layer_prefix}{index}.{pair[dst]}{rest[len(pair[src]):]}"
        raise KeyError(name)
    for pair in _MODEL_NAMES:
        if rest.startswith(pair[src] + "."):
            return other_prefix + pair[dst] + rest[len(pair[src]):]
    raise KeyError(name)


def config_from_transformers(hf_config) -> BertConfig:
    """A course_lib BertConfig from a transformers BertConfig (or its dict)."""
    values = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    if values.get("hidden_act", "gelu") != "gelu":
        raise ValueError(f"only BERT's exact GELU activation is supported, got hidden_act={values['hidden_act']!r}")
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise ValueError("only absolute (learned) position embeddings are supported")
    return BertConfig(**{ours: values[theirs] for ours, theirs in _CONFIG_NAMES.items() if theirs in values})


def config_to_transformers(config: BertConfig, **extra):
    from transformers import BertConfig as HFBertConfig
    return HFBertConfig(**{theirs: getattr(config, ours) for ours, theirs in _CONFIG_NAMES.items()}, **extra)


def _course_class_for(hf_model):
    name = type(hf_model).__name__
    classes = {"BertModel": BertModel, "BertForPreTraining": BertForPreTraining,
               "BertForSequenceClassification": BertForSequenceClassification}
    if name not in classes:
        raise ValueError(f"cannot convert {name}; supported: {sorted(classes)}")
    return classes[name]


def state_dict_from_transformers(hf_state: dict, prefix: str = "bert.") -> dict:
    """Rename a transformers state dict to course_lib keys (prefix "" for a bare BertModel)."""
    converted = {}
    for name, tensor in hf_state.items():
        if _SKIPPED_HF_KEYS.match(name):
            continue
        converted[_rename(name, prefix, to_course=True)] = tensor
    return converted


def state_dict_to_transformers(state: dict, prefix: str = "bert.") -> dict:
    converted = {_rename(name, prefix, to_course=False): tensor for name, tensor in state.items()}
    if "mlm_head.bias" in state:  # transformers keeps the tied decoder as its own (tied) entries
        converted["cls.predictions.decoder.weight"] = state["bert.embeddings.word_embeddings.weight"]
        converted["cls.predictions.decoder.bias"] = state["mlm_head.bias"]
    return converted


def from_transformers(hf_model):
    """A course_lib model with the same weights as a transformers BertModel / BertForPreTraining /
    BertForSequenceClassification (in the same train/eval mode)."""
    cls = _course_class_for(hf_model)
    config = config_from_transformers(hf_model.config)
    kwargs = {"num_labels": hf_model.config.num_labels} if cls is BertForSequenceClassification else {}
    model = cls(config, **kwargs)
    prefix = "" if cls is BertModel else "bert."
    model.load_state_dict(state_dict_from_transformers(hf_model.state_dict(), prefix), strict=True)
    return model.train(hf_model.training)


def to_transformers(model):
    """The transformers equivalent of a course_lib model, with the same weights."""
    import transformers
    name = type(model).__name__
    extra = {"num_labels": model.num_labels} if isinstance(model, BertForSequenceClassification) else {}
    hf_config = config_to_transformers(model.config, **extra)
    hf_model = getattr(transformers, name)(hf_config)
    prefix = "" if isinstance(model, BertModel) else "bert."
    missing, unexpected = hf_model.load_state_dict(state_dict_to_transformers(model.state_dict(), prefix), strict=False)
    missing = [k for k in missing if not _SKIPPED_HF_KEYS.match(k)]
    if missing or unexpected:
        raise ValueError(f"conversion to transformers left missing keys {missing} and unexpected keys {unexpected}")
    return hf_model.train(model.training)


def load_hf_directory(path, model_class=BertForPreTraining):
    """Load a Hugging Face BERT or GPT-2 saved with `save_pretrained` (config.json + model.safetensors) from a local
    folder. A GPT-2 folder (model_type "gpt2") gives a GPTLMHeadModel and ignores `model_class`."""
    from safetensors.torch import load_file

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{str(path)!r} is not a local folder. course_lib never downloads models: on a machine with internet, "
            f"run `transformers.BertForPreTraining.from_pretrained({str(path)!r}).save_pretrained('some/folder')` "
            f"(GPT2LMHeadModel for a GPT-2) and pass that folder here.")
    config_file, weights_file = folder / "config.json", folder / "model.safetensors"
    for needed in (config_file, weights_file):
        if not needed.is_file():
            hint = " (pickled pytorch_model.bin files are not loaded, for safety)" if needed is weights_file else ""
            raise FileNotFoundError(f"{needed} is missing{hint}")
    hf_config = json.loads(config_file.read_text())
    state = load_file(weights_file)
    if hf_config.get("model_type") == "gpt2":
        return _load_gpt_directory(folder, hf_config, state)
    config = config_from_transformers(hf_config)
    # Checkpoints differ in whether the encoder's keys start with "bert."; look at the keys to know.
    prefix = "bert." if any(k.startswith("bert.") for k in state) else ""
    converted = state_dict_from_transformers(state, prefix)
    if model_class is BertModel:
        converted = {k[len("bert."):]: v for k, v in converted.items() if k.startswith("bert.")}
        model = BertModel(config)
    else:
        if model_class is BertForSequenceClassification:
            model = model_class(config, num_labels=len(hf_config.get("id2label", {0: 0, 1: 1})))
        else:
            model = model_class(config)
        converted = {k if k.startswith(("bert.", "mlm_head", "nsp_head", "classifier")) else "bert." + k: v
                     for k, v in converted.items()}
    own = model.state_dict()
    missing = sorted(set(own) - set(converted))
    wanted = {k: v for k, v in converted.items() if k in own}
    for key, tensor in wanted.items():
        if tensor.shape != own[key].shape:
            raise ValueError(f"{key}: checkpoint has shape {tuple(tensor.shape)}, model expects {tuple(own[key].shape)}")
    model.load_state_dict(wanted, strict=False)
    if missing:
        # e.g. a classifier head that the checkpoint never had: it keeps its fresh initialisation
        heads_only = all(k.startswith(("classifier", "mlm_head", "nsp_head", "bert.pooler")) for k in missing)
        if not heads_only:
            raise ValueError(f"checkpoint {folder} lacks encoder weights: {missing[:5]}")
    return model.eval()



# --- GPT-2 ------------------------------------------------------------------------------------------------
# transformers' GPT-2 keeps OpenAI's original layout: `Conv1D` layers store their weight as (in, out), the
# transpose of nn.Linear's (out, in), and one c_attn layer computes [query | key | value] side by side.
# (transformers name, course_lib name) inside one block, then outside the blocks; every Conv1D weight is transposed.
_GPT_BLOCK_NAMES = [
    ("ln_1", "attention_norm"),
    ("attn.c_proj", "attention.output"),
    ("ln_2", "mlp_norm"),
    ("mlp.c_fc", "intermediate"),
    ("mlp.c_proj", "output"),
]
_GPT_MODEL_NAMES = [("wte", "token_embeddings"), ("wpe", "position_embeddings"), ("ln_f", "final_norm")]
_GPT_CONV1D = ("attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj")
_GPT_QKV = ("query", "key", "value")
# lm_head.weight is the token embedding matrix again (tied); old checkpoints also hold causal-mask buffers.
_GPT_SKIPPED_HF_KEYS = re.compile(r"(lm_head\.weight|.*\.attn\.(masked_)?bias)$")

_GPT_CONFIG_NAMES = {  # course_lib field -> transformers GPT2Config attribute
    "vocab_size": "vocab_size", "hidden_size": "n_embd", "num_layers": "n_layer", "num_heads": "n_head",
    "intermediate_size": "n_inner", "max_position_embeddings": "n_positions",
    "hidden_dropout_prob": "resid_pdrop", "attention_probs_dropout_prob": "attn_pdrop",
    "layer_norm_eps": "layer_norm_epsilon", "initializer_range": "initializer_range",
}


def gpt_config_from_transformers(hf_config) -> GPTConfig:
    """A course_lib GPTConfig from a transformers GPT2Config (or its dict); refuses the variants GPT-2's
    architecture does not have (another activation, unscaled or layer-scaled attention, cross-attention)."""
    values = hf_config if isinstance(hf_config, dict) else hf_config.to_dict()
    values = {**values, "n_inner": values.get("n_inner") or 4 * values["n_embd"]}  # None means 4 x hidden
    refused = {"activation_function": ("gelu_new", "gelu_pytorch_tanh"), "scale_attn_weights": (True,),
               "scale_attn_by_inverse_layer_idx": (False,), "add_cross_attention": (False,)}
    for name, allowed in refused.items():
        if name in values and values[name] not in allowed:
            raise ValueError(f"GPT2Config.{name}={values[name]!r} is not GPT-2's architecture; course_lib's GPT "
                             f"supports {name} in {list(allowed)}")
    if values.get("embd_pdrop", values["resid_pdrop"]) != values["resid_pdrop"]:
        raise ValueError(f"course_lib's GPT uses one hidden dropout rate for embeddings and residuals, got "
                         f"embd_pdrop={values['embd_pdrop']} and resid_pdrop={values['resid_pdrop']}")
    return GPTConfig(**{ours: values[theirs] for ours, theirs in _GPT_CONFIG_NAMES.items() if theirs in values})


def gpt_config_to_transformers(config: GPTConfig, **extra):
    """A transformers GPT2Config for `config`; `extra` sets further GPT2Config attributes (e.g. eos_token_id)."""
    from transformers import GPT2Config
    values = {theirs: getattr(config, ours) for ours, theirs in _GPT_CONFIG_NAMES.items()}
    # GPT2Config's default BOS/EOS is OpenAI's <|endoftext|> = 50256, which a smaller vocabulary does not have
    special = {} if config.vocab_size > 50256 else {"bos_token_id": None, "eos_token_id": None}
    return GPT2Config(**values, embd_pdrop=config.hidden_dropout_prob, activation_function="gelu_new",
                      **{**special, **extra})


def _gpt_outside_blocks(rest: str, name: str, to_course: bool) -> tuple[str, str]:
    """(source, destination) module names of a key outside the blocks (embeddings, final LayerNorm)."""
    for hf_name, course_name in _GPT_MODEL_NAMES:
        source, destination = (hf_name, course_name) if to_course else (course_name, hf_name)
        if rest.startswith(source + "."):
            return source, destination
    raise KeyError(f"unexpected GPT key {name!r}")


def gpt_state_dict_from_transformers(hf_state: dict, prefix: str = "transformer.") -> dict:
    """transformers GPT-2 tensors -> course_lib keys (prefix "" for a bare GPT2Model): Conv1D weights transposed,
    c_attn split into query, key and value."""
    converted = {}
    for name, tensor in hf_state.items():
        if _GPT_SKIPPED_HF_KEYS.match(name):
            continue
        if not name.startswith(prefix):
            raise KeyError(f"unexpected GPT-2 key {name!r}")
        rest, ours_prefix = name[len(prefix):], prefix
        block = re.match(r"h\.(\d+)\.(.*)$", rest)
        if not block:
            old, new = _gpt_outside_blocks(rest, name, to_course=True)
            converted[ours_prefix + new + rest[len(old):]] = tensor
            continue
        index, rest = block.groups()
        layer, kind = rest.rsplit(".", 1)
        if layer in _GPT_CONV1D and kind == "weight":
            tensor = tensor.t()
        ours = f"{ours_prefix}blocks.{index}."
        if layer == "attn.c_attn":
            for part, piece in zip(_GPT_QKV, tensor.chunk(3, dim=0)):
                converted[f"{ours}attention.{part}.{kind}"] = piece.contiguous()
            continue
        new = dict(_GPT_BLOCK_NAMES).get(layer)
        if new is None:
            raise KeyError(f"unexpected GPT-2 key {name!r}")
        converted[f"{ours}{new}.{kind}"] = tensor.contiguous()
    return converted


def gpt_state_dict_to_transformers(state: dict, prefix: str = "transformer.") -> dict:
    """The inverse of gpt_state_dict_from_transformers (plus lm_head.weight, tied to wte, for an LM model)."""
    converted = {}
    back = {new: old for old, new in _GPT_BLOCK_NAMES}
    for name, tensor in state.items():
        rest = name[len(prefix):]
        block = re.match(r"blocks\.(\d+)\.(.*)\.(weight|bias)$", rest)
        if not block:
            new, old = _gpt_outside_blocks(rest, name, to_course=False)
            converted[prefix + old + rest[len(new):]] = tensor
            continue
        index, layer, kind = block.groups()
        theirs = f"{prefix}h.{index}."
        if layer.startswith("attention.") and layer.split(".")[1] in _GPT_QKV:
            if layer != "attention.query":
                continue  # key and value join query's entry
            parts = [state[f"{prefix}blocks.{index}.attention.{part}.{kind}"] for part in _GPT_QKV]
            converted[f"{theirs}attn.c_attn.{kind}"] = torch.cat(parts, dim=0).t().contiguous() \
                if kind == "weight" else torch.cat(parts)
            continue
        old = back[layer]
        converted[f"{theirs}{old}.{kind}"] = tensor.t().contiguous() if kind == "weight" and old in _GPT_CONV1D \
            else tensor
    if prefix:
        converted["lm_head.weight"] = converted[f"{prefix}wte.weight"]
    return converted


def gpt_from_transformers(hf_model):
    """A course_lib GPTLMHeadModel (from a GPT2LMHeadModel) or GPTModel (from a GPT2Model) with the same weights,
    in the same train/eval mode."""
    name = type(hf_model).__name__
    classes = {"GPT2LMHeadModel": (GPTLMHeadModel, "transformer."), "GPT2Model": (GPTModel, "")}
    if name not in classes:
        raise ValueError(f"cannot convert {name}; supported: {sorted(classes)}")
    cls, prefix = classes[name]
    if prefix and hf_model.lm_head.weight.data_ptr() != hf_model.transformer.wte.weight.data_ptr():
        raise ValueError("this GPT2LMHeadModel's lm_head is not tied to its token embeddings; course_lib's GPT "
                         "always ties them")
    model = cls(gpt_config_from_transformers(hf_model.config))
    model.load_state_dict(gpt_state_dict_from_transformers(hf_model.state_dict(), prefix), strict=True)
    return model.train(hf_model.training)


def gpt_to_transformers(model, attn_implementation: str = "sdpa"):
    """The transformers GPT2LMHeadModel (or GPT2Model) with the same weights as a course_lib GPTLMHeadModel (or
    GPTModel); attn_implementation="eager" for one that can return attention weights."""
    import transformers
    names = {GPTLMHeadModel: ("GPT2LMHeadModel", "transformer."), GPTModel: ("GPT2Model", "")}
    if type(model) not in names:
        raise ValueError(f"cannot convert {type(model).__name__}; supported: GPTLMHeadModel, GPTModel")
    hf_name, prefix = names[type(model)]
    hf_config = gpt_config_to_transformers(model.config, attn_implementation=attn_implementation)
    hf_model = getattr(transformers, hf_name)(hf_config)
    hf_model.load_state_dict(gpt_state_dict_to_transformers(model.state_dict(), prefix), strict=True)
    if prefix:
        hf_model.tie_weights()
    return hf_model.train(model.training)


def _load_gpt_directory(folder: Path, hf_config: dict, state: dict) -> GPTLMHeadModel:
    model = GPTLMHeadModel(gpt_config_from_transformers(hf_config))
    # Checkpoints differ in whether the keys start with "transformer." (OpenAI's gpt2 on the Hub does not).
    if not any(k.startswith("transformer.") for k in state):
        state = {"transformer." + k: v for k, v in state.items()}
    converted = gpt_state_dict_from_transformers(state, "transformer.")
    own = model.state_dict()
    missing, unexpected = sorted(set(own) - set(converted)), sorted(set(converted) - set(own))
    if missing or unexpected:
        raise ValueError(f"checkpoint {folder} does not fit a GPT-2 of its config: missing {missing[:5]}, "
                         f"unexpected {unexpected[:5]}")
    for key, tensor in converted.items():
        if tensor.shape != own[key].shape:
            raise ValueError(f"{key}: checkpoint has shape {tuple(tensor.shape)}, model expects "
                             f"{tuple(own[key].shape)}")
    model.load_state_dict(converted)
    return model.eval()


# --- Seq2SeqTransformer <-> torch.nn.Transformer ------------------------------------------------------------
# nn.MultiheadAttention keeps query, key and value as one in_proj (3·hidden, hidden) stacked in that order.
_TORCH_LAYER_NAMES = {  # course_lib name inside a layer -> torch name ("norm2" differs between encoder and decoder)
    "encoder": [("self_attention.output", "self_attn.out_proj"), ("self_attention_norm", "norm1"),
                ("feed_forward.intermediate", "linear1"), ("feed_forward.output", "linear2"),
                ("feed_forward_norm", "norm2")],
    "decoder": [("self_attention.output", "self_attn.out_proj"), ("self_attention_norm", "norm1"),
                ("cross_attention.output", "multihead_attn.out_proj"), ("cross_attention_norm", "norm2"),
                ("feed_forward.intermediate", "linear1"), ("feed_forward.output", "linear2"),
                ("feed_forward_norm", "norm3")],
}
_TORCH_ATTENTION = {"self_attention": "self_attn", "cross_attention": "multihead_attn"}


def _torch_name_pairs(config: Seq2SeqConfig) -> tuple[list, list]:
    """The names for both conversion directions: (course_lib name, nn.Transformer name) of every parameter that maps
    one to one, and ([query, key, value] names, the nn.Transformer name of their packed in_proj) of every attention."""
    one_to_one = [(f"{side}_norm.{kind}", f"{side}.norm.{kind}") for side in ("encoder", "decoder")
                  for kind in ("weight", "bias")]
    packed = []
    for side, count in (("encoder", config.num_encoder_layers), ("decoder", config.num_decoder_layers)):
        attentions = {k: v for k, v in _TORCH_ATTENTION.items() if side == "decoder" or k != "cross_attention"}
        for i in range(count):
            ours, theirs = f"{side}_layers.{i}.", f"{side}.layers.{i}."
            for kind in ("weight", "bias"):
                one_to_one += [(f"{ours}{old}.{kind}", f"{theirs}{new}.{kind}")
                               for old, new in _TORCH_LAYER_NAMES[side]]
                packed += [([f"{ours}{attention}.{part}.{kind}" for part in ("query", "key", "value")],
                            f"{theirs}{torch_name}.in_proj_{kind}") for attention, torch_name in attentions.items()]
    return one_to_one, packed


def seq2seq_to_torch(model: Seq2SeqTransformer) -> dict:
    """The same model as torch parts with the same weights: {"transformer": nn.Transformer (batch_first,
    post-LN, relu), "src_embeddings", "tgt_embeddings": nn.Embedding, "generator": nn.Linear}. nn.Transformer
    does not embed: feed it embeddings × √hidden + sinusoidal positions (`Seq2SeqTransformer.embed`)."""
    from torch import nn

    config = model.config
    transformer = nn.Transformer(config.hidden_size, config.num_heads, config.num_encoder_layers,
                                 config.num_decoder_layers, config.intermediate_size, config.dropout,
                                 layer_norm_eps=config.layer_norm_eps, batch_first=True, norm_first=False)
    state = model.state_dict()
    one_to_one, packed = _torch_name_pairs(config)
    converted = {theirs: state[ours] for ours, theirs in one_to_one}
    converted.update({theirs: torch.cat([state[name] for name in ours]) for ours, theirs in packed})
    transformer.load_state_dict(converted, strict=True)
    src = nn.Embedding(config.src_vocab_size, config.hidden_size)
    tgt = nn.Embedding(config.tgt_vocab_size, config.hidden_size)
    generator = nn.Linear(config.hidden_size, config.tgt_vocab_size)
    src.load_state_dict(model.src_embeddings.state_dict())
    tgt.load_state_dict(model.tgt_embeddings.state_dict())
    generator.load_state_dict(model.generator.state_dict())
    return {name: part.train(model.training) for name, part in
            (("transformer", transformer), ("src_embeddings", src), ("tgt_embeddings", tgt), ("generator", generator))}


def seq2seq_from_torch(transformer, src_embeddings, tgt_embeddings, generator, **config_fields) -> Seq2SeqTransformer:
    """A Seq2SeqTransformer with the weights of a torch.nn.Transformer (post-LN, relu) and its embeddings and
    output layer; sizes are read from the modules, `config_fields` sets the rest (max_position_embeddings, the
    special token ids)."""
    import torch.nn.functional as F

    encoder_layer, decoder_layer = transformer.encoder.layers[0], transformer.decoder.layers[0]
    if encoder_layer.norm_first or decoder_layer.norm_first:
        raise ValueError("this nn.Transformer is pre-LN (norm_first=True); Seq2SeqTransformer is the original post-LN")
    if encoder_layer.activation is not F.relu or decoder_layer.activation is not F.relu:
        raise ValueError("this nn.Transformer's activation is not ReLU; Seq2SeqTransformer uses the paper's ReLU")
    config = Seq2SeqConfig(
        src_vocab_size=src_embeddings.num_embeddings, tgt_vocab_size=tgt_embeddings.num_embeddings,
        hidden_size=encoder_layer.self_attn.embed_dim, num_heads=encoder_layer.self_attn.num_heads,
        num_encoder_layers=len(transformer.encoder.layers), num_decoder_layers=len(transformer.decoder.layers),
        intermediate_size=encoder_layer.linear1.out_features, dropout=encoder_layer.dropout.p,
        layer_norm_eps=encoder_layer.norm1.eps, **config_fields)
    model = Seq2SeqTransformer(config)
    theirs = transformer.state_dict()
    one_to_one, packed = _torch_name_pairs(config)
    converted = {ours: theirs[name] for ours, name in one_to_one}
    for ours, name in packed:
        converted.update(zip(ours, theirs[name].chunk(3)))
    for name, module in (("src_embeddings", src_embeddings), ("tgt_embeddings", tgt_embeddings),
                         ("generator", generator)):
        converted.update({f"{name}.{k}": v for k, v in module.state_dict().items()})
    model.load_state_dict(converted, strict=True)
    return model.train(transformer.training)

__all__ = ["config_from_transformers", "config_to_transformers", "from_transformers", "gpt_config_from_transformers",
           "gpt_config_to_transformers", "gpt_from_transformers", "gpt_state_dict_from_transformers",
           "gpt_state_dict_to_transformers", "gpt_to_transformers", "load_hf_directory", "seq2seq_from_torch",
           "seq2seq_to_torch",
           "state_dict_from_transformers", "state_dict_to_transformers", "to_transformers"]
