"""How quickly the attention explorer answers a text edit (target: median <= 100 ms for 64 tokens on CPU).

    .venv/bin/python benchmarks/bench_explorer.py              # shipped checkpoint if present, else a random "mini" BERT
    .venv/bin/python benchmarks/bench_explorer.py --preset base --threads 2 --edits 20

One "edit" = setting the text box to a new 64-token input (what pressing Enter does) until the figure data of
all three views are updated and their widget messages are serialised exactly as the kernel would send them
(plotly's widget serialiser + jupyter_client's JSON packer). Every edit uses a new text, so the model cache
never helps. Also printed: the split between model run and drawing, a layer change (no model run), a
cached text, and an edit at the model's maximum length. Browser rendering time is not included.
"""
import argparse
import random
import statistics
import time

import torch

WORDS = ("the old man walked slowly along the river because he wanted to see the boats that came in from the sea "
         "every morning while his daughter stayed at home reading a long novel about a family in london during "
         "the war and her brother worked in a small shop near the station selling newspapers coffee and bread").split()


def texts_of_length(tok, n_tokens: int, count: int) -> list[str]:
    """`count` different texts that tokenise to exactly `n_tokens` tokens ([CLS] and [SEP] included)."""
    out: list[str] = []
    for seed in range(count * 5):
        rng = random.Random(seed)
        chosen: list[str] = []
        n = len(tok("")["input_ids"])
        for _ in range(20 * n_tokens):
            if n == n_tokens:
                break
            word = rng.choice(WORDS)
            m = len(tok(" ".join(chosen + [word]))["input_ids"])
            if m <= n_tokens:  # skip a word that would overshoot
                chosen, n = chosen + [word], m
        text = " ".join(chosen)
        if n == n_tokens and text not in out:
            out.append(text)
        if len(out) == count:
            return out
    raise RuntimeError(f"could not build {count} texts of {n_tokens} tokens")


def _serialisation_timer(figs):
    """JSON-pack every message the FigureWidgets send to the browser, as a kernel would; returns the running
    total of the packing time (added to the edit's time, since a kernel does it before the next message)."""
    from jupyter_client.session import json_packer
    from plotly.serializers import _py_to_js

    acc = {"seconds": 0.0, "bytes": 0}

    def on_msg(change):
        if change["new"] is None:
            return
        state = _py_to_js(change["new"], None)  # ipywidgets already did this (timed with the edit)
        t = time.perf_counter()
        packed = json_packer(state)  # what the kernel's session adds before sending
        acc["seconds"] += time.perf_counter() - t
        acc["bytes"] += len(packed)

    for fig in figs:
        fig.observe(on_msg, names=["_py2js_update", "_py2js_restyle", "_py2js_relayout"])
    return acc


def load(preset: str):
    from course_lib import BertConfig, BertForPreTraining

    if preset == "shipped":
        try:
            from course_lib import load_pretrained

            model, tok = load_pretrained(device="cpu")
            return model.eval(), tok, "shipped checkpoint"
        except FileNotFoundError:
            preset = "mini"
    from course_lib import load_tokenizer

    tok = load_tokenizer()
    torch.manual_seed(0)
    model = BertForPreTraining(BertConfig.preset(preset, vocab_size=len(tok))).eval()
    return model, tok, f"random '{preset}' preset"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="shipped", help="shipped (default; falls back to mini), tiny, mini, small, base")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared 2-core machine)")
    ap.add_argument("--skip-max", action="store_true", help="skip the edit at the model's maximum length")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from course_lib.viz import attention_explorer

    model, tok, source = load(args.preset)
    cfg = model.config
    texts = texts_of_length(tok, args.tokens, args.edits + 3)
    ex = attention_explorer(model, tok, texts[0])
    acc = _serialisation_timer([ex.head_fig, ex.model_fig, ex.qk_fig])
    total, model_s, ser_s, sizes = [], [], [], []
    for i, text in enumerate(texts[1:]):
        acc["seconds"], acc["bytes"] = 0.0, 0
        t = time.perf_counter()
        ex.text_box.value = text  # the observer runs synchronously: returns after the figures are updated
        dt = time.perf_counter() - t  # includes the JSON packing, done inside the edit
        assert ex.message_text == "" and len(ex.tokens) == args.tokens, ex.message_text
        if i >= 2:  # warm-up
            total.append(dt)
            model_s.append(ex.data.seconds)
            ser_s.append(acc["seconds"])
            sizes.append(acc["bytes"])

    def ms(xs):
        return f"{1000 * statistics.median(xs):6.1f} ms (min {1000 * min(xs):.1f}, max {1000 * max(xs):.1f})"

    layer_s = []
    for i in range(20):
        t = time.perf_counter()
        ex.layer_slider.value = (ex.layer + 1) % cfg.num_layers
        layer_s.append(time.perf_counter() - t)
    cached = []
    for text in texts[-10:]:  # the most recent edits are still in the explorer's cache
        t = time.perf_counter()
        ex.text_box.value = text
        cached.append(time.perf_counter() - t)

    print(f"attention explorer latency: {source}, {cfg.num_layers} layers x {cfg.num_heads} heads, hidden "
          f"{cfg.hidden_size}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    print(f"  text edit -> updated figure data ({args.tokens} tokens, {len(total)} edits):")
    print(f"    end to end (median)      {ms(total)}   target <= 100 ms: {'PASS' if statistics.median(total) <= 0.1 else 'FAIL'}")
    print(f"    of which model + q·k     {ms(model_s)}")
    print(f"    of which message packing {ms(ser_s)}  ({statistics.median(sizes) / 1024:.0f} KiB per edit)")
    print(f"  layer change (no model run) {ms(layer_s)}")
    print(f"  text seen before (cached)   {ms(cached)}")
    if not args.skip_max:
        long_texts = texts_of_length(tok, cfg.max_position_embeddings, 2)
        runs, layer_runs = [], []
        for text in long_texts + [long_texts[0] + " and then some more words to truncate"]:
            t = time.perf_counter()
            ex.text_box.value = text
            runs.append(time.perf_counter() - t)
            t = time.perf_counter()
            ex.layer_slider.value = (ex.layer + 1) % cfg.num_layers
            layer_runs.append(time.perf_counter() - t)
        print(f"  at the maximum length ({cfg.max_position_embeddings} tokens; model view pooled to "
              f"{ex._tile}x{ex._tile} per head): text edit {ms(runs)}, layer change {ms(layer_runs)}; "
              f"truncation notice shown: {'truncated' in ex.message_text}")
    return statistics.median(total)


if __name__ == "__main__":
    main()
