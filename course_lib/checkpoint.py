"""Saving and loading models as safetensors + JSON (never pickles), and the shipped pretrained checkpoint."""
import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from .model import BertConfig, BertForPreTraining, BertForSequenceClassification, BertModel

SHIPPED_CHECKPOINT = Path(__file__).parent / "assets" / "checkpoint"
_MODEL_CLASSES = {cls.__name__: cls for cls in (BertModel, BertForPreTraining, BertForSequenceClassification)}


def save_checkpoint(model, directory, tokenizer=None, metadata: dict | None = None) -> Path:
    """Write model.safetensors + config.json (+ the tokenizer's files) into `directory`."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(state, directory / "model.safetensors")
    info = {"model_class": type(model).__name__, "config": model.config.to_dict(), "metadata": metadata or {}}
    if isinstance(model, BertForSequenceClassification):
        info["num_labels"] = model.num_labels
    (directory / "config.json").write_text(json.dumps(info, indent=2) + "\n")
    if tokenizer is not None:
        tokenizer.save_pretrained(str(directory / "tokenizer"))
    return directory


def read_checkpoint_info(directory) -> dict:
    """The config.json of a checkpoint: model class, BertConfig fields and metadata (e.g. how it was made)."""
    config_file = Path(directory) / "config.json"
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} is missing: is {directory} a course_lib checkpoint folder?")
    return json.loads(config_file.read_text())


def load_checkpoint(directory, model_class=None, device=None, num_labels: int | None = None):
    """Rebuild the model saved in `directory`. `model_class` may differ from the saved one to reuse the
    encoder (e.g. BertForSequenceClassification from a pretraining checkpoint: the new head starts fresh)."""
    directory = Path(directory)
    info = read_checkpoint_info(directory)
    weights_file = directory / "model.safetensors"
    if not weights_file.is_file():
        raise FileNotFoundError(f"{weights_file} is missing")
    saved_class = _MODEL_CLASSES[info["model_class"]]
    model_class = model_class or saved_class
    config = BertConfig.from_dict(info["config"])
    if model_class is BertForSequenceClassification:
        model = model_class(config, num_labels=num_labels or info.get("num_labels", 2))
    else:
        model = model_class(config)
    state = load_file(weights_file)
    if model_class is not saved_class:  # keep only the encoder, under the new model's naming
        encoder = {k.removeprefix("bert."): v for k, v in state.items() if k.startswith("bert.") or saved_class is BertModel}
        state = encoder if model_class is BertModel else {f"bert.{k}": v for k, v in encoder.items()}
    own = model.state_dict()
    for key, tensor in state.items():
        if key not in own:
            raise ValueError(f"{weights_file}: unexpected tensor {key!r} for {model_class.__name__}")
        if tensor.shape != own[key].shape:
            raise ValueError(f"{weights_file}: {key!r} has shape {tuple(tensor.shape)} but {model_class.__name__} "
                             f"with this config expects {tuple(own[key].shape)}")
    missing = [k for k in own if k not in state]
    fresh_head = model_class is not saved_class
    if missing and not (fresh_head and all(not k.startswith("bert.") for k in missing)):
        raise ValueError(f"{weights_file} lacks {len(missing)} tensors, e.g. {missing[:3]}")
    model.load_state_dict(state, strict=False)
    return model.to(device or torch.device("cpu")).eval()


def load_pretrained(model_class=BertForPreTraining, device=None, num_labels: int | None = None):
    """The course's pretrained BERT (shipped in the package, no download) and its tokenizer: (model, tokenizer)."""
    from .tokenizer import load_tokenizer

    if not (SHIPPED_CHECKPOINT / "model.safetensors").is_file():
        raise FileNotFoundError(f"the shipped checkpoint is missing from {SHIPPED_CHECKPOINT}; "
                                f"remake it with the `course pretrain` command in course_lib/assets/RESULTS.md")
    model = load_checkpoint(SHIPPED_CHECKPOINT, model_class, device, num_labels)
    return model, load_tokenizer()


SHIPPED_GPT = Path(__file__).parent / "assets" / "gpt"


def load_gpt_checkpoint(directory, device=None):
    """Rebuild the `GPTLMHeadModel` saved in `directory` (by `save_checkpoint`), float32, in eval mode."""
    from .gpt import GPTConfig, GPTLMHeadModel

    directory = Path(directory)
    info = read_checkpoint_info(directory)
    if info["model_class"] != GPTLMHeadModel.__name__:
        raise ValueError(f"{directory} holds a {info['model_class']}, not a GPTLMHeadModel")
    weights_file = directory / "model.safetensors"
    if not weights_file.is_file():
        raise FileNotFoundError(f"{weights_file} is missing")
    model = GPTLMHeadModel(GPTConfig.from_dict(info["config"]))
    state = {key: tensor.float() for key, tensor in load_file(weights_file).items()}
    model.load_state_dict(state)  # strict: a missing or extra tensor is an error, not a silently fresh layer
    return model.to(device or torch.device("cpu")).eval()


def load_pretrained_gpt(device=None):
    """The course's pretrained GPT, shipped in the package (no download), in eval mode; its tokenizer is
    `course_lib.tokenizer.load_gpt_tokenizer()`. How it was made and what it scores: assets/RESULTS.md."""
    if not (SHIPPED_GPT / "model.safetensors").is_file():
        raise FileNotFoundError(f"the shipped GPT is missing from {SHIPPED_GPT}; remake it with the commands in "
                                f"course_lib/assets/README.md")
    return load_gpt_checkpoint(SHIPPED_GPT, device)
