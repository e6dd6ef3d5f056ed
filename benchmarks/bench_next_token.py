"""How quickly the next-token explorer answers (target: median <= 100 ms for a 64-token prompt on CPU).

    .venv/bin/python benchmarks/bench_next_token.py              # the shipped GPT if present, else a random "mini" GPT
    .venv/bin/python benchmarks/bench_next_token.py --preset small --threads 2 --edits 30

One "edit" = setting the prompt box to a new 64-token prompt (what pressing Enter or clicking a token does) until
the bar chart's data are updated and the widget messages are serialised as the kernel would send them (plotly's
widget serialiser + jupyter_client's JSON packer). Every edit is a new prompt, so the logits cache never helps.
Also printed: the model's share, a slider move (filters only, no model run), and a click on a token (a new
prompt: one token longer). Browser rendering time is not included.
"""
import argparse
import random
import statistics
import time

import torch

# its sibling (this folder is on sys.path when the script runs): the same words and serialiser timing
from bench_explorer import WORDS, _serialisation_timer


def prompts_of_length(tok, n_tokens: int, count: int) -> list[str]:
    """`count` different prompts that tokenise to exactly `n_tokens` tokens."""
    out: list[str] = []
    for seed in range(count * 20):
        rng = random.Random(seed)
        words: list[str] = []
        while len(tok(" ".join(words))["input_ids"]) < n_tokens:
            words.append(rng.choice(WORDS))
        text = " ".join(words)
        ids = tok(text)["input_ids"]
        if len(ids) > n_tokens:  # trim to exactly n tokens, cutting at a token boundary
            text = tok.decode(ids[-n_tokens:] if len(ids) - n_tokens < 3 else ids[:n_tokens])
        if len(tok(text)["input_ids"]) == n_tokens and text not in out:
            out.append(text)
        if len(out) == count:
            return out
    raise RuntimeError(f"could not build {count} prompts of {n_tokens} tokens")


def load(preset: str):
    from course_lib import GPTConfig, GPTLMHeadModel

    if preset == "shipped":
        try:
            from course_lib.checkpoint import load_pretrained_gpt
            from course_lib.tokenizer import load_gpt_tokenizer

            return load_pretrained_gpt(device="cpu"), load_gpt_tokenizer(), "shipped GPT"
        except (ImportError, FileNotFoundError):
            preset = "mini"
    from course_lib import load_tokenizer

    tok = load_tokenizer()
    torch.manual_seed(0)
    return GPTLMHeadModel(GPTConfig.preset(preset, vocab_size=len(tok))).eval(), tok, f"random '{preset}' GPT"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--preset", default="shipped", help="shipped (default; falls back to mini), tiny, mini, small")
    ap.add_argument("--tokens", type=int, default=64)
    ap.add_argument("--edits", type=int, default=30)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: a shared 2-core machine)")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    from course_lib.viz import next_token_explorer

    model, tok, source = load(args.preset)
    cfg = model.config
    prompts = prompts_of_length(tok, args.tokens, args.edits + 3)
    ex = next_token_explorer(model, tok, prompts[0], top_p=0.9)
    acc = _serialisation_timer([ex.fig])
    total, ser_s, sizes, sliders, clicks = [], [], [], [], []
    for i, prompt in enumerate(prompts[1:]):
        acc["seconds"], acc["bytes"] = 0.0, 0
        t = time.perf_counter()
        ex.prompt_box.value = prompt  # the observer runs synchronously: returns after the chart is updated
        dt = time.perf_counter() - t
        assert ex.message_text == "" and ex.data.num_prompt_tokens == args.tokens, (ex.message_text, ex.data)
        if i >= 2:  # warm-up
            total.append(dt)
            ser_s.append(acc["seconds"])
            sizes.append(acc["bytes"])
        t = time.perf_counter()
        ex.temperature_slider.value = 0.5 + (i % 5) * 0.25
        sliders.append(time.perf_counter() - t)
    from course_lib.viz.next_token import _last_logits

    model_s = []
    for prompt in prompts[3:]:  # what an edit runs of the model: the layers, and the LM head on the last position
        t = time.perf_counter()
        _last_logits(model, tok, prompt, cfg.max_position_embeddings)
        model_s.append(time.perf_counter() - t)
    for _ in range(10):
        t = time.perf_counter()
        ex.append(0)
        clicks.append(time.perf_counter() - t)

    def ms(xs):
        return f"{1000 * statistics.median(xs):6.1f} ms (min {1000 * min(xs):.1f}, max {1000 * max(xs):.1f})"

    print(f"next-token explorer latency: {source}, {cfg.num_layers} layers, hidden {cfg.hidden_size}, vocabulary "
          f"{cfg.vocab_size:,}, torch {torch.__version__}, {torch.get_num_threads()} thread(s), CPU")
    print(f"  prompt edit -> updated chart data ({args.tokens} tokens, {len(total)} edits):")
    print(f"    end to end (median)      {ms(total)}   target <= 100 ms: "
          f"{'PASS' if statistics.median(total) <= 0.1 else 'FAIL'}")
    print(f"    of which the model       {ms(model_s)}")
    print(f"    message packing          {ms(ser_s)}  ({statistics.median(sizes) / 1024:.1f} KiB per edit)")
    print(f"  slider move (no model run) {ms(sliders)}")
    print(f"  click on a token (+1 token) {ms(clicks)}")
    return statistics.median(total)


if __name__ == "__main__":
    main()
