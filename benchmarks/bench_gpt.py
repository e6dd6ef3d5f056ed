"""course_lib's GPT vs transformers' GPT2LMHeadModel: same weights, same batch, interleaved runs.

    python benchmarks/bench_gpt.py [--presets mini gpt2] [--repeats 5] [--threads N] [--skip train generate cache]

Prints three tables:
1. training step (forward with labels = input_ids, backward, AdamW) per preset, median seconds and the ratio
   course_lib / transformers (transformers with its default sdpa attention);
2. generation throughput, new tokens per second of greedy decoding with the KV cache, course_lib `generate`
   vs transformers `generate`, batch 1 and 8, 256 new tokens after a 16-token prompt, same weights;
3. the KV cache at 64, 256 and 1,024 tokens so far: the time of the step that produces the next token with
   the cache (one position through the model) and without it (the whole sequence again), the speed-up, and the
   cache's measured memory next to the formula 2 × layers × tokens × hidden × bytes (batch 1, float32).
Timings alternate between the two sides so that both see the same machine load; only ratios measured side by
side in one run are meaningful on a shared machine.
"""
import argparse
import platform
import statistics
import time

import torch
import transformers

from course_lib.generation import generate
from course_lib.gpt import GPTConfig, GPTLMHeadModel
from course_lib.hf import gpt_to_transformers

TRAIN_BATCH = {"tiny": 32, "mini": 32, "small": 16, "gpt2": 4}


def timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def interleaved(fns, repeats):
    """Median seconds of each function, after one warm-up each, alternating between them."""
    for fn in fns:
        fn()
    times = [[] for _ in fns]
    for _ in range(repeats):
        for i, fn in enumerate(fns):
            times[i].append(timed(fn))
    return [statistics.median(t) for t in times]


def model_pair(name, **overrides):
    torch.manual_seed(0)
    ours = GPTLMHeadModel(GPTConfig.preset(name, hidden_dropout_prob=0.0, attention_probs_dropout_prob=0.0,
                                           **overrides))
    return ours, gpt_to_transformers(ours)  # same weights; default (sdpa) attention


def bench_train_step(name, repeats, seq_len):
    ours, theirs = model_pair(name)
    ours.train(), theirs.train()
    ids = torch.randint(0, ours.config.vocab_size, (TRAIN_BATCH[name], seq_len),
                        generator=torch.Generator().manual_seed(0))
    optimizers = [torch.optim.AdamW(m.parameters(), lr=1e-5) for m in (ours, theirs)]

    def step(model, optimizer):
        model(ids, labels=ids).loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    return ours.config, interleaved([lambda: step(ours, optimizers[0]), lambda: step(theirs, optimizers[1])], repeats)


def bench_generation(name, batch, new_tokens, repeats):
    ours, theirs = model_pair(name)
    ours.eval(), theirs.eval()
    prompt = torch.randint(0, ours.config.vocab_size, (batch, 16), generator=torch.Generator().manual_seed(1))
    results = {}

    def run_ours():
        results["ours"] = generate(ours, prompt, new_tokens)

    def run_theirs():
        # min_new_tokens: exactly new_tokens on both sides, whatever the random weights predict
        results["theirs"] = theirs.generate(prompt, max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                            do_sample=False, pad_token_id=0)

    times = interleaved([run_ours, run_theirs], repeats)
    same = torch.equal(results["ours"], results["theirs"])
    return [batch * new_tokens / t for t in times], same


def bench_cache(name, lengths, repeats):
    ours, _ = model_pair(name, max_position_embeddings=max(lengths) + 1)
    ours.eval()
    config = ours.config
    rows = []
    for tokens in lengths:
        ids = torch.randint(0, config.vocab_size, (1, tokens + 1), generator=torch.Generator().manual_seed(2))
        with torch.no_grad():
            cache = ours(ids[:, :tokens], use_cache=True).past_key_values
            memory = cache.nbytes()
            filled = len(cache)

            def with_cache():
                ours(ids[:, tokens:], past_key_values=cache, use_cache=True)
                for layer in cache.layers:  # undo the append, so every repeat starts from `tokens` positions
                    layer.keys, layer.values = layer.keys[:, :, :filled], layer.values[:, :, :filled]

            def without_cache():
                ours(ids)

            cached, full = interleaved([with_cache, without_cache], repeats)
        formula = 2 * config.num_layers * tokens * config.hidden_size * 4
        rows.append((tokens, cached, full, memory, formula))
    return config, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["mini", "gpt2"], choices=sorted(TRAIN_BATCH),
                        help="presets for the training step")
    parser.add_argument("--generation-preset", default="mini", choices=sorted(TRAIN_BATCH))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--new-tokens", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's choice)")
    parser.add_argument("--skip", nargs="*", default=[], choices=["train", "generate", "cache"])
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    transformers.logging.set_verbosity_error()
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}, transformers {transformers.__version__}, cpu; "
          f"median of {args.repeats} interleaved runs after one warm-up\n")
    if "train" not in args.skip:
        print(f"training step, sequence length {args.seq_len}\n")
        print("| preset | batch | course_lib (s) | transformers (s) | ratio |")
        print("| --- | --- | --- | --- | --- |")
        for name in args.presets:
            config, (ours, theirs) = bench_train_step(name, args.repeats, args.seq_len)
            print(f"| {name} ({config.num_layers}/{config.hidden_size}, vocab {config.vocab_size}) | "
                  f"{TRAIN_BATCH[name]} | {ours:.4f} | {theirs:.4f} | {ours / theirs:.2f} |", flush=True)
    if "generate" not in args.skip:
        print(f"\ngreedy generation with the KV cache, {args.generation_preset}, 16-token prompt, "
              f"{args.new_tokens} new tokens\n")
        print("| batch | course_lib (tokens/s) | transformers (tokens/s) | ratio | same tokens |")
        print("| --- | --- | --- | --- | --- |")
        for batch in (1, 8):
            (ours, theirs), same = bench_generation(args.generation_preset, batch, args.new_tokens, args.repeats)
            print(f"| {batch} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} | {same} |", flush=True)
    if "cache" not in args.skip:
        config, rows = bench_cache(args.generation_preset, (64, 256, 1024), args.repeats)
        print(f"\nKV cache, {args.generation_preset} ({config.num_layers} layers, hidden {config.hidden_size}, "
              f"context raised to {config.max_position_embeddings}), batch 1, float32: the step that produces "
              f"the next token\n")
        print("| tokens so far | with cache (ms) | without (ms) | speed-up | cache memory (MiB) | "
              "2 × layers × tokens × hidden × 4 B (MiB) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for tokens, cached, full, memory, formula in rows:
            print(f"| {tokens} | {cached * 1000:.2f} | {full * 1000:.2f} | {full / cached:.1f} | "
                  f"{memory / 2**20:.3f} | {formula / 2**20:.3f} |", flush=True)


if __name__ == "__main__":
    main()
