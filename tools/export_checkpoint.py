"""Ship a finished pretraining run: copy RUN/checkpoint into course_lib/assets/checkpoint, evaluate it on the small
held-out subset the tests re-check, and record it in results.json and RESULTS.md.

    python tools/export_checkpoint.py RUN            # RUN: the --out folder of `course pretrain`

Fine-tuning rows made from the previous weights are dropped, from the shipped results and from the learning-curve
grid's record (from-scratch rows stay when the architecture is the same: they never read the weights). Then
`python tools/learning_curves.py mr subj` runs exactly the dropped runs again, and
`python tools/results_table.py --merge tools/learning_curves --replace-finetuning` ships them.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from _repo import ASSETS, REPO, source_course_lib
from results_table import RESULTS_JSON, RESULTS_MD, write

source_course_lib()
from course_lib.checkpoint import load_checkpoint, read_checkpoint_info  # noqa: E402 - after the checkout check
from course_lib.finetune import load_results  # noqa: E402
from course_lib.pretrain import SUBSET_BATCHES, heldout_eval_batches  # noqa: E402
from course_lib.tokenizer import load_tokenizer  # noqa: E402
from course_lib.train import evaluate  # noqa: E402


GRID_RECORD = REPO / "tools" / "learning_curves" / "results.json"  # tools/learning_curves.py's record


def export(out_dir, shipped: Path = ASSETS / "checkpoint", results_json: Path = RESULTS_JSON,
           results_md: Path = RESULTS_MD, grid_record: Path = GRID_RECORD) -> Path:
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
    same_architecture = previous_config == info["config"]
    results = load_results(results_json)
    results["finetuning"] = drop_stale_finetuning(results, same_architecture, "the shipped results")
    if grid_record.exists():
        grid = load_results(grid_record)
        grid["finetuning"] = drop_stale_finetuning(grid, same_architecture, grid_record.name)
        grid_record.write_text(json.dumps(grid, indent=1) + "\n")
    results.pop("notes", None)  # they read the results of the previous weights
    results["pretraining"] = {**info["metadata"], "heldout_subset": {
        "examples": SUBSET_BATCHES * 64, **{k: round(v, 5) for k, v in metrics.items()}}}
    write(results, results_json, results_md)
    return shipped


def drop_stale_finetuning(results: dict, same_architecture: bool, where: str) -> list[dict]:
    """The fine-tuning rows new weights cannot change: from scratch reads only the architecture, so those rows stay
    if it is unchanged."""
    rows = results.get("finetuning", [])
    kept = [r for r in rows if r["init"] == "scratch" and same_architecture]
    if len(kept) < len(rows):
        print(f"{len(rows) - len(kept)} fine-tuning runs in {where} were made from the previous checkpoint and are "
              "dropped: remake them with python tools/learning_curves.py mr subj")
    return kept


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the --out folder of a finished `course pretrain`")
    args = parser.parse_args(argv)
    print(f"exported to {export(args.run)}")


if __name__ == "__main__":
    main()
