"""Conversion between course_lib's BERT and Hugging Face `transformers`' BERT.

The two implementations hold the same tensors under different names, so conversion is a renaming of
state-dict keys. Loading works offline from a local folder (config.json + model.safetensors, as written by
`save_pretrained`); course_lib never downloads anything.
"""
import json
import re
from pathlib import Path

from .model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel

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
    """Load a Hugging Face BERT saved with `save_pretrained` (config.json + model.safetensors) from a local folder."""
    from safetensors.torch import load_file

    folder = Path(path)
    if not folder.is_dir():
        raise FileNotFoundError(
            f"{str(path)!r} is not a local folder. course_lib never downloads models: on a machine with internet, "
            f"run `transformers.BertForPreTraining.from_pretrained({str(path)!r}).save_pretrained('some/folder')` "
            f"and pass that folder here.")
    config_file, weights_file = folder / "config.json", folder / "model.safetensors"
    for needed in (config_file, weights_file):
        if not needed.is_file():
            hint = " (pickled pytorch_model.bin files are not loaded, for safety)" if needed is weights_file else ""
            raise FileNotFoundError(f"{needed} is missing{hint}")
    hf_config = json.loads(config_file.read_text())
    config = config_from_transformers(hf_config)
    state = load_file(weights_file)
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


__all__ = ["config_from_transformers", "config_to_transformers", "from_transformers", "load_hf_directory",
           "state_dict_from_transformers", "state_dict_to_transformers", "to_transformers"]
