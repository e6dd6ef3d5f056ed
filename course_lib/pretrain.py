"""Pretraining the course's BERT on the shipped corpus (MLM + NSP), resumably, into a run folder.

    course pretrain --preset mini --minutes 80 --out runs/pretrain          # start, or resume the same folder
    course pretrain --preset mini --minutes 120 --out runs/pretrain         # a larger budget trains on from there
    course pretrain --init-from runs/pretrain/checkpoint --task-text mr subj --minutes 45 --out runs/tapt

The result is ``--out/checkpoint``; the maintainers ship one with ``python tools/export_checkpoint.py RUN``.

The recipe is sized for a laptop CPU (Cramming's lessons): no dropout while pretraining, the MLM output
layer only at masked positions, a learning-rate schedule planned by wall-clock time, and a fixed held-out
evaluation set (held-out documents, fixed NSP pairs and masks) so recorded metrics can be reproduced.

`--init-from` trains on from a finished checkpoint in a new folder; with `--task-text` a fraction of the
batches are MLM-only batches of the tasks' unlabelled *training* sentences (task-adaptive pretraining,
Gururangan et al. 2020; dev and test sentences are never used). The checkpoint records the whole lineage.

`pretrain_gpt` does the same for the GPT (next-token prediction with the byte-level BPE, `course pretrain --model
gpt`); the maintainers ship its result with ``python tools/export_gpt.py RUN``.
"""
import json
import platform
import shutil
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from .checkpoint import load_checkpoint, read_checkpoint_info, save_checkpoint
from .model import BertConfig, BertForPreTraining, set_dropout
from .train import evaluate, train

EVAL_EXAMPLES = 2048
EVAL_SEED = 1234
SUBSET_BATCHES = 4  # of 64 examples: what tests/library/test_checkpoint.py re-evaluates


def heldout_eval_batches(tokenizer, max_length: int = 128, num_examples: int = EVAL_EXAMPLES, batch_size: int = 64):
    """The fixed evaluation set: held-out documents, fixed NSP pairs and masks (the same on every machine)."""
    from .data import build_eval_set, eval_batches
    eval_set = build_eval_set(tokenizer, split="heldout", max_length=max_length, num_examples=num_examples,
                              seed=EVAL_SEED)
    return list(eval_batches(eval_set, batch_size=batch_size))


def pretrain(out_dir, preset: str = "mini", minutes: float | None = None, steps: int | None = None,
             batch_size: int = 32, lr: float = 1e-3, max_length: int = 128, warmup: float = 0.06,
             dropout: float = 0.0, seed: int = 0, eval_every: int = 500, device=None, progress: bool = True,
             command: str | None = None, init_from=None, task_text: Sequence[str] = (),
             task_fraction: float = 0.5) -> dict:
    """Pretrain (or resume pretraining) into `out_dir`; returns the held-out metrics of the final model.

    `init_from`: a checkpoint folder to start from (its architecture replaces `preset`). `task_text`: task names
    (e.g. ``("mr", "subj")``) whose unlabelled training sentences make `task_fraction` of the batches (MLM only)."""
    from .data import InterleavedLoader, mlm_loader, pretraining_loader, unlabelled_task_sentences
    from .tokenizer import load_tokenizer

    out_dir = Path(out_dir)
    tokenizer = load_tokenizer()
    torch.manual_seed(seed)
    if init_from is not None:
        model = load_checkpoint(init_from, BertForPreTraining)
        set_dropout(model, dropout)
        base = read_checkpoint_info(init_from)["metadata"]
        preset = base.get("preset", "custom")
        if max_length > model.config.max_position_embeddings:
            raise ValueError(f"--max-length {max_length} is longer than the {model.config.max_position_embeddings} "
                             f"positions of the checkpoint in {init_from}")
    else:
        config = BertConfig.preset(preset, vocab_size=tokenizer.vocab_size, max_position_embeddings=max_length,
                                   hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
        model, base = BertForPreTraining(config), {}
    loader = pretraining_loader("train", tokenizer, batch_size=batch_size, max_length=max_length, seed=seed)
    if task_text:
        in_domain = mlm_loader(unlabelled_task_sentences(tuple(task_text)), tokenizer, batch_size=batch_size,
                               max_length=max_length, seed=seed)
        loader = InterleavedLoader(loader, in_domain, task_fraction)
    eval_loader = heldout_eval_batches(tokenizer, max_length)
    commands = _log_command(out_dir, command)  # only now that model and data are built: a refused call leaves no folder
    started = time.time()
    history = train(model, loader, eval_loader, lr=lr, warmup=warmup, max_steps=steps,
                    time_budget_s=None if minutes is None else minutes * 60, eval_every=eval_every,
                    eval_batches=8, log_every=50, device=device, seed=seed, progress=progress,
                    checkpoint_dir=out_dir / "state", checkpoint_every_s=300, description="pretraining")
    metrics = evaluate(model, eval_loader)
    state = json.loads((out_dir / "state" / "trainer_state.json").read_text())
    info = {
        # Every call that made these weights, in order: the base checkpoint's, then this folder's.
        "commands": base.get("commands", []) + commands,
        "preset": preset, "batch_size": batch_size, "lr": lr, "max_length": max_length, "warmup": warmup,
        "dropout": dropout, "seed": seed, "steps": base.get("steps", 0) + state["step"],
        "sequences_seen": base.get("sequences_seen", 0) + state["step"] * batch_size,
        "wall_time_s": round(base.get("wall_time_s", 0.0) + state["elapsed_s"], 1),
        "device": str(next(model.parameters()).device), "machine": f"{platform.machine()}, "
        f"{torch.get_num_threads()} threads, torch {torch.__version__}",
        "heldout": {k: round(v, 4) for k, v in metrics.items()},
        "eval_set": {"split": "heldout", "examples": EVAL_EXAMPLES, "seed": EVAL_SEED, "max_length": max_length},
    }
    if init_from is not None:
        info["base"] = {k: base[k] for k in ("steps", "wall_time_s", "lr", "heldout") if k in base}
        info["continued"] = {"steps": state["step"], "wall_time_s": round(state["elapsed_s"], 1),
                             "task_text": list(task_text), "task_fraction": task_fraction if task_text else 0.0}
    save_checkpoint(model.cpu(), out_dir / "checkpoint", metadata=info)
    # The curves travel with the weights (as in the shipped checkpoint), so --init-from any checkpoint continues them.
    (out_dir / "checkpoint" / "history.json").write_text(json.dumps(lineage_history(init_from, history, base)))
    print(f"pretraining finished in {time.time() - started:.0f} s this call; held-out: " +
          ", ".join(f"{k} {v:.4f}" for k, v in metrics.items()))
    return info


def lineage_history(init_from, history: list[dict], base: dict) -> list[dict]:
    """A continued run's history after that of the checkpoint it started from (if that checkpoint kept one), with
    steps and times counted from the start of the lineage (the base's recorded totals), so the curves read as one run."""
    path = None if init_from is None else Path(init_from) / "history.json"
    if path is None or not path.exists():
        return history
    steps, seconds = base.get("steps", 0), base.get("wall_time_s", 0.0)
    return json.loads(path.read_text()) + [{**row, "step": row["step"] + steps, "elapsed_s": row["elapsed_s"] + seconds}
                                           for row in history]


def _log_command(out_dir: Path, command: str | None) -> list[str]:
    """The calls that trained into `out_dir`, in order: a resumed run is made by all of them together. The same
    command twice in a row is one call (the second resumed the first where it was stopped)."""
    path = out_dir / "commands.json"
    commands = json.loads(path.read_text()) if path.exists() else []
    if command and command not in commands[-1:]:
        commands.append(command)
        out_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(commands, indent=1) + "\n")
    return commands


# ----------------------------------------------------------------------------------------------
# The GPT: causal language modelling on the same corpus, with the byte-level BPE
# ----------------------------------------------------------------------------------------------
GPT_EVAL_WINDOWS_DURING_TRAINING = 32  # the first held-out windows, for the curve; the end of a run scores them all
GPT_SUBSET_WINDOWS = 64  # the first held-out windows, that tests/library/test_gpt_pretrained.py re-scores (a few seconds)


def pretrain_gpt(out_dir, preset: str = "tiny", minutes: float | None = None, steps: int | None = None,
                 resume: bool = True, batch_size: int = 16, block_size: int = 256, lr: float = 3e-3,
                 warmup: float = 0.05, seed: int = 0, eval_every: int = 100, device=None, progress: bool = True,
                 command: str | None = None) -> dict:
    """Pretrain a GPT (next-token prediction) into `out_dir`; returns its metadata, held-out perplexity included.

    `out_dir/state` holds the resumable state (weights, AdamW moments, step, data position, history; the random
    state follows from `seed` and the step), written every 5 minutes and at the end: with `resume=True` a later
    call with the same folder and arguments picks up where the last one stopped; `resume=False` starts afresh.
    The schedule (linear warm-up over `warmup` of the run, then linear decay to 0) is planned over `steps` or
    `minutes` of wall-clock time. `out_dir/checkpoint` gets the final model (safetensors, float32), config.json
    and history.json (training loss and held-out perplexity of the first 32 held-out windows every
    `eval_every` steps). The final held-out perplexity is over every held-out window."""
    from .data.language_modeling import heldout_lm_batches, lm_loader
    from .gpt import GPTConfig, GPTLMHeadModel
    from .tokenizer import load_gpt_tokenizer

    out_dir = Path(out_dir)
    if not resume and (out_dir / "state").exists():
        shutil.rmtree(out_dir / "state")
    tokenizer = load_gpt_tokenizer()
    torch.manual_seed(seed)
    # No dropout: a run this short never comes near overfitting a corpus it sees less than once.
    config = GPTConfig.preset(preset, vocab_size=len(tokenizer), max_position_embeddings=block_size,
                              hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0)
    model = GPTLMHeadModel(config)
    loader = lm_loader("train", block_size=block_size, batch_size=batch_size, seed=seed, tokenizer=tokenizer)
    heldout = heldout_lm_batches(block_size=block_size, batch_size=batch_size, tokenizer=tokenizer)
    commands = _log_command(out_dir, command)
    started = time.time()
    history = train(model, loader, heldout, lr=lr, warmup=warmup, max_steps=steps,
                    time_budget_s=None if minutes is None else minutes * 60, eval_every=eval_every,
                    eval_batches=GPT_EVAL_WINDOWS_DURING_TRAINING // batch_size, log_every=10, device=device,
                    seed=seed, progress=progress, checkpoint_dir=out_dir / "state", checkpoint_every_s=300,
                    description="GPT pretraining")
    metrics = evaluate(model, tqdm_batches(heldout, "held-out perplexity", progress))
    state = json.loads((out_dir / "state" / "trainer_state.json").read_text())
    info = {
        "commands": commands, "preset": preset, "batch_size": batch_size, "block_size": block_size, "lr": lr,
        "warmup": warmup, "seed": seed, "steps": state["step"], "tokens_seen": state["step"] * batch_size * block_size,
        "wall_time_s": round(state["elapsed_s"], 1), "device": str(next(model.parameters()).device),
        "machine": f"{platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}",
        "heldout": {"loss": round(metrics["loss"], 4), "perplexity": round(metrics["perplexity"], 3),
                    "windows": sum(len(b["input_ids"]) for b in heldout)},
        "eval_set": {"split": "heldout", "block_size": block_size, "order": "corpus order, non-overlapping windows"},
    }
    save_checkpoint(model.cpu(), out_dir / "checkpoint", metadata=info)
    (out_dir / "checkpoint" / "history.json").write_text(json.dumps(history))
    print(f"GPT pretraining finished in {time.time() - started:.0f} s this call; held-out loss {metrics['loss']:.4f}, "
          f"perplexity {metrics['perplexity']:.2f}")
    return info


def tqdm_batches(batches: list, description: str, progress: bool = True):
    """`batches` with a tqdm progress bar (scoring every held-out window takes about a minute on a CPU)."""
    from tqdm.auto import tqdm

    return tqdm(batches, desc=description, disable=not progress, unit="batch")

