"""The commands that make the models: ``course pretrain`` and ``course finetune``.

``course pretrain --model`` chooses what to pretrain: each entry of :data:`PRETRAINERS` names the library function
whose keyword parameters become options (those listed in its table; the run gets only its own), so another model
joins with one entry.
"""
from __future__ import annotations

import argparse
import sys

from .options import Command, add_options, given


def open_fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


def _command_line() -> str:
    """How this run was started, as recorded in the checkpoint and the results."""
    return "course " + " ".join(sys.argv[1:])


BERT_PRETRAIN_OPTIONS = {
    "preset": "model size: tiny, mini, small, base",
    "minutes": "wall-clock budget; the schedule warms up and decays within it",
    "steps": "optimizer steps (with --minutes: whichever ends first)",
    "batch_size": "sequences per optimizer step",
    "lr": "peak learning rate",
    "max_length": "tokens per pretraining example",
    "warmup": "fraction of the run spent warming up",
    "dropout": "dropout while pretraining (Cramming uses none)",
    "seed": "seed of the initialisation, the data order and the masks",
    "eval_every": "steps between held-out evaluations",
    "device": "cpu, cuda, mps (default: the best available)",
    "init_from": "a checkpoint folder to train on from (in a new --out); its architecture replaces --preset",
    "task_text": {"choices": ["mr", "subj"], "help": "task-adaptive pretraining: mix in MLM-only batches of these "
                                                     "tasks' unlabelled training sentences (never dev or test)"},
    "task_fraction": {"type": open_fraction, "help": "fraction of the batches from --task-text"},
}


GPT_PRETRAIN_OPTIONS = {
    **{name: BERT_PRETRAIN_OPTIONS[name] for name in ("preset", "minutes", "steps", "batch_size", "lr", "warmup", "seed",
                                                       "eval_every", "device")},
    "block_size": "GPT: tokens per training window (the context length)",
    "resume": "GPT: start afresh, discarding the state saved in --out",
}


def _pretrain_bert():
    from ..pretrain import pretrain

    return pretrain


def _pretrain_gpt():
    from ..pretrain import pretrain_gpt

    return pretrain_gpt


#: --model NAME: (the function that pretrains it, taking the run folder first; the options it takes).
PRETRAINERS = {"bert": (_pretrain_bert, BERT_PRETRAIN_OPTIONS), "gpt": (_pretrain_gpt, GPT_PRETRAIN_OPTIONS)}


def _defaults_by_model() -> dict[str, dict[str, object]]:
    """{option: {model: the default of that model's function}} for every option of every model."""
    import inspect

    defaults: dict[str, dict[str, object]] = {}
    for model, (function, options) in PRETRAINERS.items():
        parameters = inspect.signature(function()).parameters
        for name in options:
            defaults.setdefault(name, {})[model] = parameters[name].default
    return defaults


def _pretrain_arguments(p):
    p.add_argument("--model", choices=sorted(PRETRAINERS), default="bert", help="what to pretrain (default bert)")
    p.add_argument("--out", default="runs/pretrain", help="run folder: state, checkpoint, history (default "
                                                          "runs/pretrain, under the current folder)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    defaults = _defaults_by_model()
    added: set[str] = set()
    for function, options in PRETRAINERS.values():  # an option two models share is added once
        specs = {}
        for name, spec in options.items():
            if name in added:
                continue
            by_model = defaults[name]
            if len({repr(v) for v in by_model.values()}) > 1:
                # the models differ: the option defaults to None, and the chosen model's function uses its own
                spec = {"help": spec} if isinstance(spec, str) else dict(spec)
                spec["help"] += " (default: " + ", ".join(f"{v} for {m}" for m, v in by_model.items()) + ")"
                spec["default"] = None
            specs[name] = spec
        add_options(p, function(), specs)
        added |= set(options)


def _pretrain(args) -> int:
    function, options = PRETRAINERS[args.model]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    # an option left out (None) is not passed: the model's own default applies
    chosen = {name: value for name, value in given(args, options).items() if value is not None}
    function()(args.out, **chosen, command=_command_line())
    return 0


FINETUNE_OPTIONS = {
    "init": {"choices": ["pretrained", "scratch"], "help": "start from the pretrained encoder or from scratch"},
    "freeze": {"flag": "--freeze-encoder", "help": "train only the classifier (a linear probe)"},
    "train_fraction": "fraction of the training labels (stratified)",
    "seed": {"flag": "--seeds", "many": True, "help": "seeds, one run each"},
    "lr": {"flag": "--lrs", "many": True, "help": "learning-rate grid (first seed only; chosen on dev)"},
    "epochs": "passes over the training split",
    "select_epoch": "keep the weights of the epoch (from the second on) with the best dev accuracy",
    "batch_size": "examples per step",
    "max_length": "tokens per example",
    "by_length": "train on batches of texts of similar length (less padding: faster)",
    "checkpoint": "a course_lib checkpoint folder (default: the shipped one)",
    "device": "cpu, cuda, mps (default: the best available)",
}


def _finetune_arguments(p):
    from ..finetune import DEFAULT_RESULTS_DIR, finetune

    p.add_argument("task", choices=["mr", "subj"], help="mr: movie-review polarity; subj: subjectivity")
    add_options(p, finetune, FINETUNE_OPTIONS)
    p.add_argument("--out", default=str(DEFAULT_RESULTS_DIR),
                   help="folder whose results.json gets every run (default %(default)s, under the current folder)")
    p.add_argument("--no-record", action="store_true", help="print the results only")


def _finetune(args) -> int:
    from ..finetune import finetune_grid

    options = given(args, FINETUNE_OPTIONS)
    seeds, lrs = options.pop("seed"), options.pop("lr")
    finetune_grid(args.task, seeds=seeds, lrs=lrs, results_dir=None if args.no_record else args.out,
                  command=_command_line(), **options)
    return 0


COMMANDS = (
    Command("pretrain", "pretrain the course's BERT or GPT on the shipped corpus (resumable)", _pretrain_arguments,
            _pretrain,
            description="Pretrain (MLM + NSP) into --out; running the same command again resumes from the saved "
                        "state. The finished checkpoint is --out/checkpoint (maintainers ship one with "
                        "tools/export_checkpoint.py)."),
    Command("finetune", "fine-tune on MR or SUBJ and report dev/test accuracy", _finetune_arguments, _finetune,
            description="Fine-tune the shipped checkpoint (or the same network from scratch) on a classification "
                        "task. With several --lrs, the learning rate is chosen on dev with the first seed; the other "
                        "seeds use it. Each run is printed and recorded in --out/results.json."),
)
