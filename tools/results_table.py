"""Remake course_lib/assets/RESULTS.md from results.json, or merge new fine-tuning runs into results.json first.

    python tools/results_table.py                          # RESULTS.md from the shipped results.json
    python tools/results_table.py --merge runs/finetune    # add the runs that `course finetune --out` recorded there
    python tools/results_table.py --merge tools/learning_curves --sections baselines   # only the bag-of-words rows
    python tools/results_table.py --merge tools/learning_curves --replace-finetuning   # the grid replaces the old rows

RESULTS.md holds only measured numbers (each with the command that made it) and the published reference points
they are read against.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from _repo import ASSETS, source_course_lib

RESULTS_JSON = ASSETS / "results.json"
RESULTS_MD = ASSETS / "RESULTS.md"


def _mean_std(values):
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def render(results: dict) -> str:
    """RESULTS.md: the measured numbers of ``results`` and the published references they are read against."""
    lines = ["# Measured results", "",
             "Made by the commands recorded in `results.json` (each row lists its command) on the machine named there.",
             "Accuracies are percentages; mean ± standard deviation over seeds, at the learning rate chosen on the dev",
             "set with the first seed.", ""]
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
    from course_lib.finetune import best_runs

    chosen = best_runs(results.get("finetuning", []))
    if chosen:
        lines += ["## Fine-tuning", "", "| task | regime | labels used | lr | epochs | seeds | dev | test | time per run |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for (task, name, fraction), runs in sorted(chosen.items(), key=lambda kv: (kv[0][0], -kv[0][2], kv[0][1])):
            dev, dev_sd = _mean_std([100 * r["dev_accuracy"] for r in runs])
            test, test_sd = _mean_std([100 * r["test_accuracy"] for r in runs])
            seconds = statistics.mean(r["wall_time_s"] for r in runs)
            lines.append(f"| {task.upper()} | {name} | {fraction:.0%} | {runs[0]['lr']:g} | {_epochs(runs)} | {len(runs)} "
                         f"| {dev:.1f} ± {dev_sd:.1f} | {test:.1f} ± {test_sd:.1f} | {seconds:.0f} s |")
        lines += ["", "Reference points (10-fold cross-validation, Pang & Lee data): MR — Naive Bayes SVM 79.4, "
                  "CNN 81.5, fine-tuned BERT-base about 85-88; SUBJ — NBSVM 93.2, CNN 93.4.", ""]
        lines += transfer_lines(chosen)
    if results.get("baselines"):
        lines += baseline_lines(results["baselines"])
    if results.get("gpt"):
        lines += gpt_lines(results["gpt"])
    if results.get("notes"):  # the maintainers' reading of these numbers (export drops it with the rows it reads)
        lines += ["## Reading the results", "", *[f"- {note}" for note in results["notes"]], ""]
    return "\n".join(lines)


def gpt_lines(gpt: dict) -> list[str]:
    """The section of the shipped GPT (results.json["gpt"], written by tools/export_gpt.py)."""
    held, base = gpt["heldout"], gpt["baselines"]
    lines = ["## The shipped GPT (causal language model, byte-level BPE)", "",
             f"Preset {gpt['preset']}, {gpt['steps']} steps of {gpt['batch_size']} windows of {gpt['block_size']} "
             f"tokens ({gpt['tokens_seen']:,} tokens), peak lr {gpt['lr']:g}, {gpt['wall_time_s'] / 60:.0f} min on "
             f"{gpt['device']} ({gpt['machine']}), made by", "", "```", *gpt["commands"], gpt["export_command"],
             "```", "",
             f"Held-out perplexity per BPE token over the same {base['predictions']:,} next-token predictions "
             f"({held['windows']:,} held-out windows of {gpt['block_size']} tokens; every token after a window's first, "
             "given what precedes it in its window). The n-gram models are counted on the training token stream "
             "(smoothing as named; Kneser-Ney: interpolated, discount "
             f"{base['kneser_ney_discount']}, add-one continuation counts; see tools/export_gpt.py):", "",
             "| model | held-out perplexity |", "| --- | --- |",
             f"| unigram, add-one | {base['unigram_add_one']:.1f} |",
             f"| bigram, add-one (chapter 1's smoothing) | {base['bigram_add_one']:.1f} |",
             f"| bigram, interpolated Kneser-Ney | {base['bigram_kneser_ney']:.1f} |",
             f"| the shipped GPT | {held['perplexity']:.1f} |", "",
             "The training curve (loss every 10 steps; held-out perplexity of the first 32 windows every "
             "`eval_every` steps) is `gpt/history.json`. Samples (new tokens after the prompt; sampled rows draw "
             "with `torch.Generator().manual_seed(seed)`):", "", "| prompt | decoding | seed | continuation |",
             "| --- | --- | --- | --- |"]
    for row in gpt["samples"]:
        text = row["text"].replace("|", "\\|").replace("\n", " ")
        seed = "-" if row["seed"] is None else row["seed"]
        lines.append(f"| {row['prompt']} | {row['decoding']} | {seed} | {text} |")
    return lines + [""]


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


def _epochs(runs: list[dict]) -> str:
    """The epochs a setting trained: the fixed number, or (with select_epoch) the ones dev chose, e.g. "3, 4 of 4"."""
    if not any(r.get("select_epoch") for r in runs):
        return ", ".join(str(e) for e in sorted({r["epochs"] for r in runs}))
    return ", ".join(str(e) for e in sorted({r["epoch"] for r in runs})) + f" of {max(r['epochs'] for r in runs)}"


def baseline_lines(rows: list[dict]) -> list[str]:
    """The bag-of-words baseline (results.json["baselines"], `course_lib.bag_of_words`) per task and label fraction."""
    groups: dict = {}
    for row in rows:
        groups.setdefault((row["task"], row["train_fraction"]), []).append(row)
    lines = ["## Bag-of-words baseline (logistic regression on unigrams and bigrams, no pretraining)", "",
             "The same stratified subsets of the training labels as the fine-tuning runs (the same fraction and seed "
             "pick the same sentences); the L2 strength chosen on dev for each run; test read once. With all the "
             "labels the subset is the whole split, so one run.", "",
             "| task | labels used | runs | L2 chosen | n-grams | dev | test | time per run |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for (task, fraction), runs in sorted(groups.items(), key=lambda kv: (kv[0][0], -kv[0][1])):
        dev, dev_sd = _mean_std([100 * r["dev_accuracy"] for r in runs])
        test, test_sd = _mean_std([100 * r["test_accuracy"] for r in runs])
        l2s = ", ".join(f"{l2:g}" for l2 in sorted({r["l2"] for r in runs}))
        features = statistics.mean(r["features"] for r in runs)
        seconds = statistics.mean(r["wall_time_s"] for r in runs)
        spread = (lambda sd: f" ± {sd:.1f}") if len(runs) > 1 else (lambda sd: "")
        lines.append(f"| {task.upper()} | {fraction:.0%} | {len(runs)} | {l2s} | {features:,.0f} | {dev:.1f}{spread(dev_sd)} "
                     f"| {test:.1f}{spread(test_sd)} | {seconds:.0f} s |")
    return lines + [""]


def transfer_lines(chosen: dict) -> list[str]:
    """Pretrained minus scratch test accuracy per task and label fraction (the transfer gain), in points."""
    lines = ["## Transfer gain (pretrained − from scratch, test accuracy, points)", ""]
    for (task, name, fraction), runs in sorted(chosen.items()):
        scratch = chosen.get((task, "from scratch", fraction))
        if name != "pretrained + full fine-tuning" or not scratch:
            continue
        gain = 100 * (statistics.mean(r["test_accuracy"] for r in runs)
                      - statistics.mean(r["test_accuracy"] for r in scratch))
        lines.append(f"- {task.upper()}, {fraction:.0%} of the labels: {gain:+.1f}")
    return lines + [""] if len(lines) > 2 else []


def write(results: dict, results_json: Path = RESULTS_JSON, results_md: Path = RESULTS_MD) -> None:
    results_json.write_text(json.dumps(results, indent=1) + "\n")
    results_md.write_text(render(results))


def merge(results: dict, new: dict, sections=None) -> dict:
    """``results`` with the fine-tuning and baseline rows of ``new`` added (a row replaces one of the same
    configuration); ``sections``: only those lists (default: all)."""
    from course_lib.finetune import RESULT_SECTIONS

    merged = dict(results)
    for section, key in RESULT_SECTIONS.items():
        if (section in results or section in new) and (sections is None or section in sections):
            rows = {key(r): r for r in results.get(section, [])}
            rows.update({key(r): r for r in new.get(section, [])})
            merged[section] = list(rows.values())
    return merged


def combine(results: dict, runs: list[dict], sections=None, replace_finetuning: bool = False) -> dict:
    """``results`` with each of ``runs`` merged in (:func:`merge`); with ``replace_finetuning``, none of the fine-tuning
    rows of ``results`` is kept, only those of ``runs``."""
    if replace_finetuning:
        results = {**results, "finetuning": []}
    for new in runs:
        results = merge(results, new, sections)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--merge", nargs="+", default=[], metavar="RUN_DIR",
                        help="folders of `course finetune --out` runs whose results.json rows are added")
    parser.add_argument("--sections", nargs="+", choices=["finetuning", "baselines"], default=None,
                        help="merge only these lists (default: both)")
    parser.add_argument("--replace-finetuning", action="store_true",
                        help="drop every shipped fine-tuning row first (a new protocol replaces the old one, so the "
                             "two are never mixed in one learning-rate choice)")
    args = parser.parse_args(argv)
    from course_lib.finetune import load_results

    results = combine(load_results(RESULTS_JSON), [load_results(Path(d) / "results.json") for d in args.merge],
                      args.sections, args.replace_finetuning)
    write(results)
    print(f"wrote {RESULTS_MD} ({len(results['finetuning'])} fine-tuning runs)")


if __name__ == "__main__":
    source_course_lib()
    main()
