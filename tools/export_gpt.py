"""Ship a finished GPT pretraining run and record what it scores (maintainer tooling).

    python tools/export_gpt.py runs/gpt          # -> course_lib/assets/gpt/ + results.json["gpt"] + RESULTS.md

1. Copies `runs/gpt/checkpoint/{model.safetensors, config.json, history.json}` into `course_lib/assets/gpt/`
   (after loading it: something that does not load is never shipped).
2. Scores the shipped weights on the first `SUBSET_WINDOWS` held-out windows: tests/library/test_gpt_pretrained.py
   re-evaluates exactly these and compares.
3. Baselines on the same held-out predictions (every window's tokens 1..n-1, each given what precedes it in
   its window; the same byte-level BPE ids), with counts from the training stream:
   - unigram, add-one (Laplace) smoothed: P(w) = (c(w) + 1) / (N + V);
   - bigram, add-one smoothed (chapter 1's `course_lib.ngram` model): P(w | v) = (c(v, w) + 1) / (c(v) + V);
   - bigram, interpolated Kneser-Ney with the usual discount d = 0.75 (not tuned on the held-out text):
     P(w | v) = max(c(v, w) - d, 0) / c(v) + d * N1+(v .) / c(v) * Pcont(w), with the continuation
     distribution add-one smoothed, Pcont(w) = (N1+(. w) + 1) / (N1+(. .) + V), so that a token never seen
     after anything in training keeps a probability; a context never seen in training falls back to Pcont.
4. Samples from fixed prompts at fixed seeds: greedy, temperature 0.8, top-p 0.9.
Then rewrites RESULTS.md from results.json (tools/results_table.py).
"""
from __future__ import annotations

import argparse
import json
import math
import shutil
from pathlib import Path

from _repo import ASSETS, source_course_lib
from results_table import RESULTS_JSON, write

source_course_lib()

import numpy as np  # noqa: E402  (after the check that this checkout's course_lib is the one imported)
import torch  # noqa: E402

from course_lib.checkpoint import load_gpt_checkpoint, load_pretrained_gpt, read_checkpoint_info  # noqa: E402
from course_lib.data import heldout_lm_batches, lm_token_stream, lm_windows  # noqa: E402
from course_lib.finetune import load_results  # noqa: E402
from course_lib.generation import generate  # noqa: E402
from course_lib.pretrain import GPT_SUBSET_WINDOWS  # noqa: E402
from course_lib.tokenizer import GPT_EOS_ID, load_gpt_tokenizer  # noqa: E402
from course_lib.train import evaluate  # noqa: E402

SHIPPED_GPT = ASSETS / "gpt"

PROMPTS = ["The history of the city", "She looked at him and said", "In the year 1850,"]
SAMPLE_SEED = 0
NEW_TOKENS = 40


def heldout_pairs(block_size: int) -> tuple[np.ndarray, np.ndarray]:
    """(previous, next) token ids of every prediction the GPT makes on the held-out windows."""
    windows = lm_windows("heldout", block_size).numpy()
    return windows[:, :-1].reshape(-1), windows[:, 1:].reshape(-1)


def baseline_perplexities(block_size: int, discount: float = 0.75) -> dict:
    vocab_size = len(load_gpt_tokenizer())
    train = lm_token_stream("train").astype(np.int64)
    previous, following = heldout_pairs(block_size)
    unigram = np.bincount(train, minlength=vocab_size).astype(np.float64)
    unigram_nll = -np.log((unigram[following] + 1) / (unigram.sum() + vocab_size)).mean()

    # Bigram counts, sparse: pair code v * V + w -> count.
    codes, pair_counts = np.unique(train[:-1] * vocab_size + train[1:], return_counts=True)
    context_total = np.bincount(codes // vocab_size, weights=pair_counts, minlength=vocab_size)
    context_types = np.bincount(codes // vocab_size, minlength=vocab_size).astype(np.float64)  # N1+(v .)
    continuation = np.bincount(codes % vocab_size, minlength=vocab_size).astype(np.float64)  # N1+(. w)
    wanted = previous.astype(np.int64) * vocab_size + following
    where = np.clip(np.searchsorted(codes, wanted), 0, len(codes) - 1)
    seen = np.where(codes[where] == wanted, pair_counts[where], 0).astype(np.float64)
    c_v = context_total[previous]
    add_one_nll = -np.log((seen + 1) / (c_v + vocab_size)).mean()
    p_cont = (continuation + 1) / (continuation.sum() + vocab_size)
    with np.errstate(divide="ignore", invalid="ignore"):
        kn = np.where(c_v > 0, np.maximum(seen - discount, 0) / c_v
                      + discount * context_types[previous] / c_v * p_cont[following], p_cont[following])
    return {"predictions": int(len(following)),
            "unigram_add_one": math.exp(unigram_nll), "bigram_add_one": math.exp(add_one_nll),
            "bigram_kneser_ney": math.exp(-np.log(kn).mean()), "kneser_ney_discount": discount}


def samples() -> list[dict]:
    model, tokenizer = load_pretrained_gpt(), load_gpt_tokenizer()
    settings = [("greedy", {}), ("temperature 0.8", {"do_sample": True, "temperature": 0.8}),
                ("top-p 0.9", {"do_sample": True, "top_p": 0.9})]
    rows = []
    for prompt in PROMPTS:
        ids = torch.tensor([tokenizer.encode(prompt)])
        for name, kwargs in settings:
            generator = torch.Generator().manual_seed(SAMPLE_SEED) if kwargs else None
            out = generate(model, ids, NEW_TOKENS, eos_token_id=GPT_EOS_ID, generator=generator, **kwargs)
            rows.append({"prompt": prompt, "decoding": name, "seed": SAMPLE_SEED if kwargs else None,
                         "new_tokens": NEW_TOKENS, "text": tokenizer.decode(out[0, ids.shape[1]:])})
    return rows


def export(run_dir: Path) -> dict:
    source = run_dir / "checkpoint"
    load_gpt_checkpoint(source)  # refuse to ship something that does not load
    SHIPPED_GPT.mkdir(parents=True, exist_ok=True)
    for name in ("model.safetensors", "config.json", "history.json"):
        shutil.copyfile(source / name, SHIPPED_GPT / name)
    info = read_checkpoint_info(SHIPPED_GPT)["metadata"]
    subset = heldout_lm_batches(block_size=info["block_size"], max_windows=GPT_SUBSET_WINDOWS)
    metrics = evaluate(load_pretrained_gpt(), subset)
    results = load_results(RESULTS_JSON)
    results["gpt"] = {**info,
                      "heldout_subset": {"windows": GPT_SUBSET_WINDOWS, "loss": round(metrics["loss"], 5),
                                         "perplexity": round(metrics["perplexity"], 4)},
                      "baselines": baseline_perplexities(info["block_size"]), "samples": samples(),
                      "export_command": f"python tools/export_gpt.py {run_dir}"}
    write(results)
    return results["gpt"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="the --out folder of the pretraining run")
    args = parser.parse_args(argv)
    gpt = export(args.run_dir)
    print(json.dumps({k: gpt[k] for k in ("steps", "heldout", "heldout_subset", "baselines")}, indent=1))


if __name__ == "__main__":
    main()
