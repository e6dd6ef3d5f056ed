"""Ship a finished pretraining run: copy RUN/checkpoint into course_lib/assets/checkpoint, evaluate it on the small
held-out subset the tests re-check, and record it in results.json and RESULTS.md.

    python tools/export_checkpoint.py RUN            # RUN: the --out folder of `course pretrain`

Fine-tuning rows made from the previous weights are dropped (from-scratch rows stay when the architecture is the
same: they never read the weights); remake them with tools/transfer_results.sh.
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from _repo import ASSETS, source_course_lib
from results_table import RESULTS_JSON, RESULTS_MD, write

source_course_lib()
from course_lib.checkpoint import load_checkpoint, read_checkpoint_info  # noqa: E402 - after the checkout check
from course_lib.finetune import load_results  # noqa: E402
from course_lib.pretrain import SUBSET_BATCHES, heldout_eval_batches  # noqa: E402
from course_lib.tokenizer import load_tokenizer  # noqa: E402
from course_lib.train import evaluate  # noqa: E402


def export(out_dir, shipped: Path = ASSETS / "checkpoint", results_json: Path = RESULTS_JSON,
           results_md: Path = RESULTS_MD) -> Path:
    """Copy a finished run's checkpoint (and its training history) into ``shipped`` and record it in results.json."""
    source = Path(out_dir) / "checkpoint"
    load_checkpoint(source)  # refuse to ship something that does not load
    previous = shipped / "config.json"
    previous_config = read_checkpoint_info(shipped)["config"] if previous.exists() else None
    shipped.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json", "history.json"):
        shutil.copyfile(source / name, shipped / name)
    info = read_checkpoint_info(source)
    # A small fixed subset that the test suite re-evaluates quickly to check the shipped weights.
    subset = heldout_eval_batches(load_tokenizer(), info["metadata"]["max_length"])[:SUBSET_BATCHES]
    metrics = evaluate(load_checkpoint(shipped), subset)
    results = load_results(results_json)
    # Fine-tuning from scratch never reads the weights, only the architecture: those rows stay if it is unchanged.
    kept = [r for r in results.get("finetuning", []) if r["init"] == "scratch" and previous_config == info["config"]]
    dropped = len(results.get("finetuning", [])) - len(kept)
    if dropped:
        print(f"{dropped} recorded fine-tuning runs were made from the previous checkpoint and are dropped: remake them "
              "with tools/transfer_results.sh")
    results["finetuning"] = kept
    results.pop("notes", None)  # they read the results of the previous weights
    results["pretraining"] = {**info["metadata"], "heldout_subset": {
        "examples": SUBSET_BATCHES * 64, **{k: round(v, 5) for k, v in metrics.items()}}}
    write(results, results_json, results_md)
    return shipped


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the --out folder of a finished `course pretrain`")
    args = parser.parse_args(argv)
    print(f"exported to {export(args.run)}")


if __name__ == "__main__":
    main()
