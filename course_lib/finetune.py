"""Fine-tuning (§3.3) and measuring transfer (§2.3): pretrained vs from scratch vs a frozen encoder.

    course finetune mr --init pretrained --lrs 1e-4 3e-4 --seeds 0 1 2
    course finetune subj --init pretrained --freeze-encoder --train-fraction 0.1

For each configuration, the learning rate is chosen on the dev set with the first seed, then the other seeds
run at that learning rate; test accuracy is only read, never used for a choice. Every run is appended to
course_lib/assets/results.json and the table in course_lib/assets/RESULTS.md is rewritten from it.
"""
import fcntl
import json
import statistics
import time
from pathlib import Path

import torch
from torch import nn

from .checkpoint import SHIPPED_CHECKPOINT, load_checkpoint, read_checkpoint_info
from .model import BertConfig, BertForSequenceClassification, set_dropout
from .train import evaluate, make_optimizer, train

ASSETS = Path(__file__).parent / "assets"
RESULTS_JSON = ASSETS / "results.json"
RESULTS_MD = ASSETS / "RESULTS.md"


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
             lr: float = 1e-4, epochs: int = 3, batch_size: int = 32, max_length: int = 64, warmup: float = 0.1,
             checkpoint=None, device=None, progress: bool = True) -> dict:
    """Fine-tune on a task's training split and report dev and test accuracy (one results row)."""
    from .data import task_loader
    from .tokenizer import load_tokenizer

    tokenizer = load_tokenizer()
    model = build_classifier(init, seed, checkpoint=checkpoint)
    if freeze:
        freeze_encoder(model)
    train_loader = task_loader(task, "train", tokenizer, batch_size, max_length, shuffle=True, seed=seed,
                               fraction=train_fraction)
    dev_loader = task_loader(task, "dev", tokenizer, 128, max_length)
    test_loader = task_loader(task, "test", tokenizer, 128, max_length)
    started = time.perf_counter()
    train(model, train_loader, lr=lr, epochs=epochs, warmup=warmup, device=device, seed=seed, progress=progress,
          optimizer=make_optimizer(model, lr), description=f"{task} {init}{' frozen' if freeze else ''}")
    return {"task": task, "init": init, "freeze_encoder": freeze, "train_fraction": train_fraction, "seed": seed,
            "lr": lr, "epochs": epochs, "dev_accuracy": round(evaluate(model, dev_loader)["accuracy"], 4),
            "test_accuracy": round(evaluate(model, test_loader)["accuracy"], 4),
            "wall_time_s": round(time.perf_counter() - started, 1)}


def load_results() -> dict:
    return json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() else {"pretraining": None, "finetuning": []}


def record(row: dict, command: str) -> None:
    """Add a run to results.json (replacing an earlier run of the same configuration) and rewrite RESULTS.md."""
    with open(RESULTS_JSON.with_suffix(".lock"), "w") as lock:  # several grids may record at once
        fcntl.flock(lock, fcntl.LOCK_EX)
        _record(row, command)


def _record(row: dict, command: str) -> None:
    results = load_results()
    key = ("task", "init", "freeze_encoder", "train_fraction", "seed", "lr", "epochs")
    results["finetuning"] = [r for r in results["finetuning"] if tuple(r[k] for k in key) != tuple(row[k] for k in key)]
    results["finetuning"].append({**row, "command": command})
    RESULTS_JSON.write_text(json.dumps(results, indent=1) + "\n")
    write_results_table(results)


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


def _mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def write_results_table(results: dict) -> None:
    lines = ["# Measured results", "",
             "Made by the commands recorded in `results.json` (each row lists its command) on the machine named there.",
             "Accuracies are percentages; mean ± standard deviation over seeds, at the learning rate chosen on the dev",
             "set with the first seed. Regenerated by every `course finetune` run.", ""]
    pre = results.get("pretraining")
    if pre:
        held = pre["heldout"]
        lines += ["## Pretraining (the shipped checkpoint)", "",
                  f"Preset {pre['preset']}, {pre['steps']} steps of {pre['batch_size']} sequences of "
                  f"{pre['max_length']} tokens, {pre['wall_time_s'] / 60:.0f} min on {pre['device']} ({pre['machine']}), "
                  "made by " + ("this command" if len(pre["commands"]) == 1 else
                                "these commands, run in order (a call on the same `--out` as the one before resumes "
                                "it; `--init-from` trains on from a finished checkpoint)")
                  + ":", "", "```", *pre["commands"], "```", "", *_continued_lines(pre),
                  "| held-out (fixed set of 2,048 examples) | value |", "| --- | --- |",
                  f"| MLM accuracy (masked positions) | {100 * held['mlm_accuracy']:.1f} % |",
                  f"| MLM loss (nats per masked token) | {held['mlm_loss']:.3f} |",
                  f"| NSP accuracy | {100 * held['nsp_accuracy']:.1f} % |",
                  f"| NSP loss (ln 2 = 0.693 is chance) | {held['nsp_loss']:.3f} |", ""]
    chosen = best_runs(results.get("finetuning", []))
    if chosen:
        lines += ["## Fine-tuning", "", "| task | regime | labels used | lr | seeds | dev | test | time per run |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (task, name, fraction), runs in sorted(chosen.items(), key=lambda kv: (kv[0][0], -kv[0][2], kv[0][1])):
            dev, dev_sd = _mean_std([100 * r["dev_accuracy"] for r in runs])
            test, test_sd = _mean_std([100 * r["test_accuracy"] for r in runs])
            seconds = statistics.mean(r["wall_time_s"] for r in runs)
            lines.append(f"| {task.upper()} | {name} | {fraction:.0%} | {runs[0]['lr']:g} | {len(runs)} | "
                         f"{dev:.1f} ± {dev_sd:.1f} | {test:.1f} ± {test_sd:.1f} | {seconds:.0f} s |")
        lines += ["", "Reference points (10-fold cross-validation, Pang & Lee data): MR — Naive Bayes SVM 79.4, "
                  "CNN 81.5, fine-tuned BERT-base about 85-88; SUBJ — NBSVM 93.2, CNN 93.4.", ""]
        lines += transfer_lines(chosen)
    if pre:
        held = pre["heldout"]
        lines += ["## Against the targets of the data issue", "",
                  f"- held-out MLM accuracy ≥ 30 %: {100 * held['mlm_accuracy']:.1f} % "
                  f"({'met' if held['mlm_accuracy'] >= 0.30 else 'missed'})",
                  f"- held-out NSP accuracy ≥ 80 %: {100 * held['nsp_accuracy']:.1f} % "
                  f"({'met' if held['nsp_accuracy'] >= 0.80 else 'missed'}); NSP loss {held['nsp_loss']:.3f} vs "
                  f"ln 2 = 0.693 ({'learned' if held['nsp_loss'] < 0.65 else 'barely learned'})", ""]
    if results.get("gpt"):
        from .pretrain import gpt_results_lines
        lines += gpt_results_lines(results["gpt"])
    if results.get("notes"):  # the maintainers' reading of these numbers (export drops it with the rows it reads)
        lines += ["## Reading the results", "", *[f"- {note}" for note in results["notes"]], ""]
    RESULTS_MD.write_text("\n".join(lines))


def _continued_lines(pre: dict) -> list[str]:
    """How a checkpoint trained on from another one was made (task-adaptive pretraining), and what it started from."""
    more = pre.get("continued")
    if not more:
        return []
    base, mix = pre.get("base", {}), more.get("task_text")
    lines = [f"The last {more['steps']} steps ({more['wall_time_s'] / 60:.0f} min) trained on from the first "
             f"{base.get('steps', '?')}" + (f", with {more['task_fraction']:.0%} of the batches MLM-only batches of the "
                                            f"unlabelled *training* sentences of {' and '.join(t.upper() for t in mix)} "
                                            "(task-adaptive pretraining; no dev or test sentence, no label)" if mix else "")
             + "."]
    if base.get("heldout"):
        held = base["heldout"]
        lines.append(f"Before that phase the held-out figures were MLM {100 * held['mlm_accuracy']:.1f} % "
                     f"(loss {held['mlm_loss']:.3f}), NSP {100 * held['nsp_accuracy']:.1f} % (loss {held['nsp_loss']:.3f}).")
    return [" ".join(lines), ""]


def transfer_lines(chosen: dict) -> list[str]:
    """Pretrained minus scratch test accuracy per task and label fraction (the transfer gain), in points."""
    lines = ["## Transfer gain (pretrained − from scratch, test accuracy, points)", ""]
    for (task, name, fraction), runs in sorted(chosen.items()):
        scratch = chosen.get((task, "from scratch", fraction))
        if name != "pretrained + full fine-tuning" or not scratch:
            continue
        gain = 100 * (statistics.mean(r["test_accuracy"] for r in runs)
                      - statistics.mean(r["test_accuracy"] for r in scratch))
        lines.append(f"- {task.upper()}, {fraction:.0%} of the labels: {gain:+.1f} "
                     f"(target ≥ +5 on MR: {'met' if gain >= 5 else 'missed'})" if task == "mr" else
                     f"- {task.upper()}, {fraction:.0%} of the labels: {gain:+.1f}")
    return lines + [""] if len(lines) > 2 else []


def main(args) -> int:
    import sys
    command = "course " + " ".join(sys.argv[1:])
    best = None
    for i, seed in enumerate(args.seeds):
        lrs = args.lrs if i == 0 else [best["lr"]]  # the grid runs on the first seed only, chosen on dev
        for lr in lrs:
            row = finetune(args.task, args.init, args.freeze_encoder, args.train_fraction, seed, lr, args.epochs,
                           args.batch_size, args.max_length, checkpoint=args.checkpoint, device=args.device)
            print(json.dumps(row))
            if not args.no_record:
                record(row, command)
            if i == 0 and (best is None or row["dev_accuracy"] > best["dev_accuracy"]):
                best = row
    return 0
