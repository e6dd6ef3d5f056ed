"""course_lib's BERT vs transformers' BertForPreTraining: same weights, same batch, interleaved runs.

    python benchmarks/bench_model.py [--presets tiny mini base] [--repeats 7] [--threads N] [--profile]

Prints, per preset, the median seconds of a forward pass (no labels: full MLM logits on both sides) and of a
full training step (forward with MLM + NSP labels, backward, AdamW), and the ratio course_lib / transformers.
With --profile, then where each side's train step spends its time (torch.profiler: self time per operator).
Then the latency of a forward pass that returns every layer's attention probabilities for a 64-token input
(what the attention explorer does on each edit). Timings alternate between the two models so that both see
the same machine load; only ratios measured side by side in one run are meaningful on a shared machine.
"""
import argparse
import platform
import statistics
import time

import torch
import transformers

from course_lib import BertConfig, BertForPreTraining
from course_lib.hf import to_transformers

BATCH = {"tiny": 32, "mini": 32, "small": 16, "base": 8}


def make_batch(config, batch_size, seq_len, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(5, config.vocab_size, (batch_size, seq_len), generator=g)
    selected = torch.rand(ids.shape, generator=g) < 0.15
    labels = torch.where(selected, ids, torch.full_like(ids, -100))
    inputs = dict(input_ids=torch.where(selected, torch.full_like(ids, 4), ids), attention_mask=torch.ones_like(ids),
                  token_type_ids=(torch.arange(seq_len) >= seq_len // 2).long().expand(batch_size, -1).contiguous())
    return inputs, labels, torch.randint(0, 2, (batch_size,), generator=g)


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def setup(name, seq_len, device):
    """Both models with the same weights, a batch, and for each side: forward() and train_step()."""
    config = BertConfig.preset(name)
    torch.manual_seed(0)
    ours = BertForPreTraining(config).to(device)
    theirs = to_transformers(ours).to(device)  # same weights; default (sdpa) attention
    inputs, labels, nsp = (t.to(device) if isinstance(t, torch.Tensor) else {k: v.to(device) for k, v in t.items()}
                           for t in make_batch(config, BATCH[name], seq_len))

    def forward(model):
        with torch.no_grad():
            model(**inputs)

    def train_step(model, opt):
        out = model(**inputs, labels=labels, next_sentence_label=nsp)
        out.loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    sides = {}
    for side, model in (("course_lib", ours), ("transformers", theirs)):
        opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
        sides[side] = (model, lambda model=model: forward(model), lambda model=model, opt=opt: train_step(model, opt))
    return config, sides


def bench_preset(name, repeats, seq_len, device):
    config, sides = setup(name, seq_len, device)
    (ours, ours_forward, ours_step), (theirs, theirs_forward, theirs_step) = sides.values()
    rows = {}
    for what, fns in (("forward", (ours_forward, theirs_forward)), ("train step", (ours_step, theirs_step))):
        ours.train(what != "forward"), theirs.train(what != "forward")
        for fn in fns:  # warm-up
            fn()
        times = ([], [])
        for _ in range(repeats):
            for i, fn in enumerate(fns):
                times[i].append(timed(fn))
        rows[what] = (statistics.median(times[0]), statistics.median(times[1]))
    return config, rows


def print_profile(name, seq_len, device, steps=3, top=8):
    """Each side's self time per operator over `steps` train steps (after two warm-up steps), the `top` largest."""
    from torch.profiler import ProfilerActivity, profile

    for side, (model, _, train_step) in setup(name, seq_len, device)[1].items():
        model.train()
        train_step(), train_step()
        with profile(activities=[ProfilerActivity.CPU]) as prof:
            for _ in range(steps):
                train_step()
        events = prof.key_averages()
        total = sum(e.self_cpu_time_total for e in events)
        print(f"\n{name}, {side}: {total / steps / 1e6:.3f} s per profiled train step\n")
        print("| operator | ms per step | share |\n| --- | --- | --- |")
        for e in sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]:
            print(f"| {e.key} | {e.self_cpu_time_total / steps / 1e3:.1f} | {e.self_cpu_time_total / total:.1%} |")


def explorer_latency(repeats):
    config = BertConfig.preset("mini")  # the shipped checkpoint's size
    model = BertForPreTraining(config).eval()
    ids = torch.randint(5, config.vocab_size, (1, 64))
    times = []
    for i in range(repeats + 2):
        with torch.no_grad():
            t = timed(lambda: model.bert(ids, output_attentions=True, output_hidden_states=True))
        if i >= 2:
            times.append(t)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["tiny", "mini", "base"], choices=sorted(BATCH))
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--profile", action="store_true", help="then print each side's time per operator")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    device = torch.device(args.device)
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, device {device}")
    print(f"sequence length {args.seq_len}, median of {args.repeats} interleaved runs after one warm-up\n")
    print("| preset | batch | what | course_lib (s) | transformers (s) | ratio |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in args.presets:
        config, rows = bench_preset(name, args.repeats, args.seq_len, device)
        for what, (ours, theirs) in rows.items():
            print(f"| {name} ({config.num_layers}/{config.hidden_size}, vocab {config.vocab_size}) | {BATCH[name]} | "
                  f"{what} | {ours:.4f} | {theirs:.4f} | {ours / theirs:.2f} |", flush=True)
    if args.profile:
        for name in args.presets:
            print_profile(name, args.seq_len, device)
    latency = explorer_latency(args.repeats * 3)
    print(f"\nforward with attention probabilities and hidden states, 64 tokens, mini: {latency * 1000:.1f} ms (median)")


if __name__ == "__main__":
    main()
