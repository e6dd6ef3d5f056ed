"""Fine-tuning (§3.3) and measuring transfer (§2.3): pretrained vs from scratch vs a frozen encoder.

    course finetune mr --init pretrained --lrs 1e-4 3e-4 --seeds 0 1 2
    course finetune subj --init pretrained --freeze-encoder --train-fraction 0.1

For each configuration, the learning rate is chosen on the dev set with the first seed, then the other seeds
run at that learning rate; with ``--select-epoch`` the number of epochs is chosen on dev too (the best of epochs
2 .. ``--epochs``, BERT's grid of 2, 3 or 4); test accuracy is only read, once, never used for a choice. Every run
is recorded in ``--out/results.json`` (default ``runs/finetune/`` under the current folder); the package's own
``assets/results.json`` (the shipped measurements) is only read here: the maintainers' tools/ remake it.
"""
import copy
import fcntl
import json
import time
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from .checkpoint import SHIPPED_CHECKPOINT, load_checkpoint, read_checkpoint_info
from .model import BertConfig, BertForSequenceClassification, set_dropout
from .runtime import device as best_device
from .runtime import set_seed
from .train import evaluate, linear_warmup_decay, make_optimizer, to_device

#: the shipped measurements (read only here; tools/results_table.py remakes them and RESULTS.md)
RESULTS_JSON = Path(__file__).parent / "assets" / "results.json"
#: where `course finetune` records its runs unless told otherwise (relative: under the current folder)
DEFAULT_RESULTS_DIR = Path("runs") / "finetune"
#: what makes two runs the same configuration (a later one replaces the earlier in a results file)
RUN_KEY = ("task", "init", "freeze_encoder", "train_fraction", "seed", "lr", "epochs", "select_epoch", "by_length")
#: with select_epoch, the first epoch whose weights may be kept (BERT fine-tunes for 2, 3 or 4 epochs)
FIRST_SELECTED_EPOCH = 2


def run_key(row: dict) -> tuple:
    """The configuration of a results row (rows recorded before epoch selection and length-grouped batches existed
    ran without them)."""
    return tuple(row.get(k, False) if k in ("select_epoch", "by_length") else row[k] for k in RUN_KEY)


def baseline_key(row: dict) -> tuple:
    """The configuration of a baseline row (`course_lib.bag_of_words`)."""
    return row["task"], row["model"], row["train_fraction"], row["seed"]


#: the lists of a results file, and what makes two of their rows the same configuration
RESULT_SECTIONS = {"finetuning": run_key, "baselines": baseline_key}


def freeze_encoder(model) -> int:
    """Stop gradients for every encoder (`model.bert`) parameter, keeping the head trainable; returns the number
    of trainable parameters left."""
    for param in model.bert.parameters():
        param.requires_grad_(False)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def fine_tune_step(model, batch, optimizer, scheduler=None, max_grad_norm: float = 1.0) -> float:
    """One step: forward, cross-entropy, backward, clip, optimizer (and scheduler) step, zero the gradients."""
    model.train()
    logits = model(batch["input_ids"], batch.get("attention_mask"), batch.get("token_type_ids"))
    logits = getattr(logits, "logits", logits)
    loss = nn.functional.cross_entropy(logits, batch["labels"])
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
    optimizer.step()
    if scheduler is not None:
        scheduler.step()
    optimizer.zero_grad()
    return loss.item()


def fine_tune(model, train_loader, lr: float, epochs: int, warmup: float = 0.1, max_grad_norm: float = 1.0,
              device=None, seed: int = 0, progress: bool = True, description: str = "fine-tuning",
              after_epoch=None) -> list[float]:
    """`epochs` passes of :func:`fine_tune_step` over `train_loader`: AdamW without decay on biases and LayerNorm
    weights (`make_optimizer`), the learning rate warmed up over the first `warmup` of the steps, then decayed
    linearly to 0 at the last one. `after_epoch(epoch)` (1, 2, ...), if given, runs after each pass. Returns the
    loss of every step."""
    dev = torch.device(device) if device is not None else best_device()
    set_seed(seed)  # the dropout masks
    model.to(dev)
    optimizer = make_optimizer(model, lr)
    total = epochs * len(train_loader)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: linear_warmup_decay(step, warmup * total, total))
    losses = []
    with tqdm(total=total, desc=description, disable=not progress, unit="step", dynamic_ncols=True) as bar:
        for epoch in range(1, epochs + 1):
            for batch in train_loader:
                losses.append(fine_tune_step(model, to_device(batch, dev), optimizer, scheduler, max_grad_norm))
                bar.update(1)
                bar.set_postfix(loss=f"{losses[-1]:.3f}", refresh=False)
            if after_epoch is not None:
                after_epoch(epoch)
    model.eval()
    return losses


def build_classifier(init: str = "pretrained", seed: int = 0, dropout: float = 0.1, checkpoint=None):
    """A 2-class BertForSequenceClassification: the shipped (or given) checkpoint's encoder, or the same
    architecture freshly initialised ("scratch"), with a new classification head either way."""
    source = Path(checkpoint) if checkpoint else SHIPPED_CHECKPOINT
    torch.manual_seed(seed)  # the new head (and a scratch encoder) start from the seed
    if init == "pretrained":
        model = load_checkpoint(source, BertForSequenceClassification, num_labels=2)
    elif init == "scratch":
        model = BertForSequenceClassification(BertConfig.from_dict(read_checkpoint_info(source)["config"]), 2)
    else:
        raise ValueError(f"init must be 'pretrained' or 'scratch', got {init!r}")
    set_dropout(model, dropout)
    return model


def finetune(task: str, init: str = "pretrained", freeze: bool = False, train_fraction: float = 1.0, seed: int = 0,
             lr: float = 1e-4, epochs: int = 3, select_epoch: bool = False, batch_size: int = 32, max_length: int = 64,
             by_length: bool = False, warmup: float = 0.1, checkpoint=None, device=None, progress: bool = True) -> dict:
    """Fine-tune on a task's training split and report dev and test accuracy (one results row).

    With `select_epoch`, dev accuracy is measured after every epoch from the second on and the weights of the best
    one are kept (the row's `epoch`, with every measurement in `dev_by_epoch`); test accuracy is read once, on the
    kept weights. Without, the weights after the last epoch are the result. `by_length`: training batches of texts
    of similar length (`task_loader`'s; less padding, so faster), otherwise plain random batches."""
    from .data import task_loader
    from .tokenizer import load_tokenizer

    tokenizer = load_tokenizer()
    model = build_classifier(init, seed, checkpoint=checkpoint)
    if freeze:
        freeze_encoder(model)
    train_loader = task_loader(task, "train", tokenizer, batch_size, max_length, shuffle=True, seed=seed,
                               fraction=train_fraction, by_length=by_length)
    dev_loader = task_loader(task, "dev", tokenizer, 128, max_length, by_length=True)
    test_loader = task_loader(task, "test", tokenizer, 128, max_length, by_length=True)
    started = time.perf_counter()
    dev_by_epoch, kept = {}, {}

    def keep_the_best(epoch):
        if epoch < min(FIRST_SELECTED_EPOCH, epochs):
            return
        dev_by_epoch[epoch] = evaluate(model, dev_loader)["accuracy"]
        if not kept or dev_by_epoch[epoch] > dev_by_epoch[kept["epoch"]]:  # a tie keeps the earlier epoch
            kept.update(epoch=epoch, state=copy.deepcopy(model.state_dict()))

    fine_tune(model, train_loader, lr, epochs, warmup, device=device, seed=seed, progress=progress,
              description=f"{task} {init}{' frozen' if freeze else ''}",
              after_epoch=keep_the_best if select_epoch else None)
    row = {"task": task, "init": init, "freeze_encoder": freeze, "train_fraction": train_fraction, "seed": seed,
           "lr": lr, "epochs": epochs}
    if by_length:
        row["by_length"] = True
    if select_epoch:
        model.load_state_dict(kept["state"])
        row.update(select_epoch=True, epoch=kept["epoch"], dev_accuracy=round(dev_by_epoch[kept["epoch"]], 4),
                   dev_by_epoch=[round(dev_by_epoch[e], 4) for e in sorted(dev_by_epoch)])
    else:
        row["dev_accuracy"] = round(evaluate(model, dev_loader)["accuracy"], 4)
    row.update(test_accuracy=round(evaluate(model, test_loader)["accuracy"], 4),
               wall_time_s=round(time.perf_counter() - started, 1))
    return row


def finetune_grid(task: str, seeds, lrs, results_dir=DEFAULT_RESULTS_DIR, command: str | None = None, **options) -> list[dict]:
    """Fine-tune with every learning rate of ``lrs`` on the first seed, then the other ``seeds`` at the rate with the
    best dev accuracy; print each row and (unless ``results_dir`` is None) record it in ``results_dir/results.json``.
    ``options``: the other keywords of :func:`finetune`."""
    rows, best = [], None
    for i, seed in enumerate(seeds):
        for lr in (lrs if i == 0 else [best["lr"]]):  # the grid runs on the first seed only, chosen on dev
            row = finetune(task, seed=seed, lr=lr, **options)
            print(json.dumps(row))
            if results_dir is not None:
                record(row, command or "", Path(results_dir) / "results.json")
            if i == 0 and (best is None or row["dev_accuracy"] > best["dev_accuracy"]):
                best = row
            rows.append(row)
    return rows


def load_results(path: Path = RESULTS_JSON) -> dict:
    return json.loads(Path(path).read_text()) if Path(path).exists() else {"pretraining": None, "finetuning": []}


def record(row: dict, command: str, path: Path, section: str = "finetuning") -> None:
    """Add a run to the ``section`` list of the results file ``path`` (replacing an earlier run of the same
    configuration)."""
    key = RESULT_SECTIONS[section]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_suffix(".lock"), "w") as lock:  # several grids may record at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        results = load_results(path)
        results[section] = [r for r in results.get(section, []) if key(r) != key(row)] + [{**row, "command": command}]
        path.write_text(json.dumps(results, indent=1) + "\n")


def regime(row: dict) -> str:
    if row["init"] == "scratch":
        return "from scratch, frozen random encoder" if row["freeze_encoder"] else "from scratch"
    return "pretrained, frozen encoder (linear probe)" if row["freeze_encoder"] else "pretrained + full fine-tuning"


def best_runs(rows: list[dict]) -> dict:
    """For each (task, regime, fraction): the runs at the learning rate with the best dev accuracy of seed 0."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["task"], regime(row), row["train_fraction"]), []).append(row)
    chosen = {}
    for key, group in groups.items():
        first_seed = min(r["seed"] for r in group)
        best_lr = max((r for r in group if r["seed"] == first_seed), key=lambda r: r["dev_accuracy"])["lr"]
        chosen[key] = [r for r in group if r["lr"] == best_lr]
    return chosen
