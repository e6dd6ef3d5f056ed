"""The learning curves of transfer learning: test accuracy against the share of labelled training data used.

    python tools/learning_curves.py mr [--fractions 0.01 0.03 0.1 0.3 1] [--regimes pretrained scratch probe]
    python tools/learning_curves.py --status

For each task, fraction (smallest first) and regime (pretrained + full fine-tuning, from scratch, linear probe on
the frozen pretrained encoder): seed 0 runs every learning rate of the regime's grid for 4 epochs, keeping the
epoch (2, 3 or 4) with the best dev accuracy (`course finetune --select-epoch`), on batches of texts of similar
length (`--by-length`: about half the padding of random batches); seeds 1 and 2 then run at the
rate whose seed-0 run scored best on dev. Test accuracy is read once per run and never chooses anything. The
bag-of-words baseline (`course_lib.bag_of_words`) runs first on the same subsets (seconds per run).

The grid is long on a CPU (each fraction costs its share of four epochs per run), so it is built to span several
sessions: every run is recorded in `tools/learning_curves/results.json` as soon as it ends (the file is committed),
and a call skips every configuration already recorded there, so it resumes where the last one stopped. Each row
carries the `course finetune` command that makes it alone. When the grid is complete, its rows replace the
fine-tuning rows of the shipped results
(`python tools/results_table.py --merge tools/learning_curves --replace-finetuning`).
"""
from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from _repo import REPO, source_course_lib

RECORD = REPO / "tools" / "learning_curves" / "results.json"
FRACTIONS = (0.01, 0.03, 0.1, 0.3, 1.0)
SEEDS = (0, 1, 2)
EPOCHS = 4
#: learning-rate grids: from BERT-base's fine-tuning range (2e-5 to 5e-5) up to this model's pretraining rate for the
#: whole model; larger ones for the probe (a single linear layer on fixed features: at 1 % and 3 % of the labels it
#: chose 1e-2, then the top of its grid, so the grid goes on to 1e-1)
GRIDS = {"pretrained": (3e-5, 1e-4, 3e-4, 1e-3), "scratch": (3e-5, 1e-4, 3e-4, 1e-3),
         "probe": (3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1)}
SETTINGS = {"pretrained": {"init": "pretrained", "freeze": False}, "scratch": {"init": "scratch", "freeze": False},
            "probe": {"init": "pretrained", "freeze": True}}


def command(task, regime, fraction, seed, lr) -> str:
    """The `course finetune` command of one run."""
    settings = SETTINGS[regime]
    return shlex.join(["course", "finetune", task, "--init", settings["init"], *(["--freeze-encoder"] if
                       settings["freeze"] else []), "--train-fraction", f"{fraction:g}", "--seeds", str(seed),
                       "--lrs", f"{lr:g}", "--epochs", str(EPOCHS), "--select-epoch", "--by-length"])


def run_grid(task, regime, fraction, record_path: Path) -> None:
    from course_lib.finetune import finetune, load_results, record, run_key

    settings = SETTINGS[regime]
    done = {run_key(r): r for r in load_results(record_path)["finetuning"]}

    def run(seed, lr):
        row = {"task": task, "init": settings["init"], "freeze_encoder": settings["freeze"],
               "train_fraction": fraction, "seed": seed, "lr": lr, "epochs": EPOCHS, "select_epoch": True,
               "by_length": True}
        if run_key(row) in done:
            return done[run_key(row)]
        row = finetune(task, settings["init"], settings["freeze"], fraction, seed, lr, EPOCHS, select_epoch=True,
                       by_length=True)
        record(row, command(task, regime, fraction, seed, lr), record_path)
        print(json.dumps(row), flush=True)
        return row

    first = [run(SEEDS[0], lr) for lr in GRIDS[regime]]
    best = max(first, key=lambda r: r["dev_accuracy"])  # the first of equal scores: the smaller rate
    for seed in SEEDS[1:]:
        run(seed, best["lr"])


def run_baselines(task, fraction, record_path: Path) -> None:
    """The bag-of-words baseline on the same subsets (one run with all the labels: the subset is then the split)."""
    from course_lib.bag_of_words import bag_of_words_baseline
    from course_lib.finetune import baseline_key, load_results, record

    done = {baseline_key(r) for r in load_results(record_path).get("baselines", [])}
    for seed in SEEDS if fraction < 1 else SEEDS[:1]:
        if (task, "bag of words", fraction, seed) in done:
            continue
        row = bag_of_words_baseline(task, fraction, seed)
        call = f"bag_of_words_baseline({task!r}, train_fraction={fraction:g}, seed={seed})"
        record(row, f"python -c 'from course_lib.bag_of_words import bag_of_words_baseline; print({call})'",
               record_path, section="baselines")
        print(json.dumps(row), flush=True)


def progress(rows, task, fraction, regime) -> tuple[int, int]:
    """How many of a grid's runs are recorded, out of how many: seed 0 at every rate, then the other seeds at the rate
    seed 0 chose (counted once seed 0 is complete; runs at a rate chosen before the grid grew do not count)."""
    settings = SETTINGS[regime]
    runs = {(r["seed"], r["lr"]): r for r in rows if r["task"] == task and r["train_fraction"] == fraction
            and r["init"] == settings["init"] and r["freeze_encoder"] == settings["freeze"]}
    first = [runs[SEEDS[0], lr] for lr in GRIDS[regime] if (SEEDS[0], lr) in runs]
    done = len(first)
    if done == len(GRIDS[regime]):
        best = max(first, key=lambda r: r["dev_accuracy"])["lr"]
        done += sum((seed, best) in runs for seed in SEEDS[1:])
    return done, len(GRIDS[regime]) + len(SEEDS) - 1


def status(record_path: Path) -> None:
    """How many of each task's runs are recorded."""
    from course_lib.finetune import load_results

    rows = load_results(record_path)["finetuning"]
    for task in ("mr", "subj"):
        for fraction in FRACTIONS:
            print(f"{task:>4} {fraction:>4g}: " + ", ".join(
                "{} {}/{}".format(name, *progress(rows, task, fraction, name)) for name in SETTINGS))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("tasks", nargs="*", help="mr and/or subj (none: print --status)")
    parser.add_argument("--fractions", nargs="+", type=float, default=list(FRACTIONS))
    parser.add_argument("--regimes", nargs="+", choices=list(SETTINGS), default=list(SETTINGS))
    parser.add_argument("--baselines-only", action="store_true",
                        help="run only the bag-of-words baselines (a few seconds each; they run first otherwise)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1: run two tasks side by side)")
    parser.add_argument("--record", type=Path, default=RECORD, help="results file (default %(default)s)")
    parser.add_argument("--status", action="store_true", help="print how much of the grid is recorded")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.tasks) - {"mr", "subj"})
    if unknown:
        parser.error(f"unknown task(s) {', '.join(unknown)}: the tasks are mr and subj")
    source_course_lib()
    if args.status or not args.tasks:
        status(args.record)
        return 0
    import torch

    torch.set_num_threads(args.threads)
    for task in args.tasks:
        for fraction in sorted(args.fractions):
            run_baselines(task, fraction, args.record)
        for fraction in sorted(args.fractions) if not args.baselines_only else []:
            for regime in args.regimes:
                run_grid(task, regime, fraction, args.record)
    return 0


if __name__ == "__main__":
    sys.exit(main())
