"""The `course` subcommands for models: pretrain, finetune, bench (kept free of heavy imports)."""
import argparse

from .cli import command


def _open_fraction(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be between 0 and 1 (exclusive), got {text}")
    return value


@command("pretrain", help="pretrain the course's BERT on the shipped corpus (resumable)",
         target="course_lib.pretrain:main",
         description="Pretrain (MLM + NSP) into --out; running the same command again resumes from the saved "
                     "state. --export copies the finished checkpoint into the package (course_lib/assets/checkpoint).")
def _pretrain_args(p):
    p.add_argument("--out", default="runs/pretrain", help="run folder (state, checkpoint, history)")
    p.add_argument("--preset", default="mini", help="model size: tiny, mini, small, base")
    p.add_argument("--minutes", type=float, help="wall-clock budget; the schedule warms up and decays within it")
    p.add_argument("--steps", type=int, help="optimizer steps (with --minutes: whichever ends first)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--max-length", type=int, default=128, help="tokens per pretraining example")
    p.add_argument("--warmup", type=float, default=0.06, help="fraction of the run spent warming up")
    p.add_argument("--dropout", type=float, default=0.0, help="dropout while pretraining (0, as in Cramming)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=500, help="steps between held-out evaluations")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--threads", type=int, help="torch CPU threads")
    p.add_argument("--init-from", help="a checkpoint folder to train on from (in a new --out); its architecture "
                                        "replaces --preset")
    p.add_argument("--task-text", nargs="+", choices=["mr", "subj"],
                   help="task-adaptive pretraining: mix in MLM-only batches of these tasks' unlabelled training "
                        "sentences (never dev or test)")
    p.add_argument("--task-fraction", type=_open_fraction, default=0.5, help="fraction of the batches from --task-text")
    p.add_argument("--export", action="store_true", help="copy the finished checkpoint into the package and stop")


@command("finetune", help="fine-tune on MR or SUBJ and report dev/test accuracy",
         target="course_lib.finetune:main",
         description="Fine-tune the shipped checkpoint (or the same network from scratch) on a classification task. "
                     "With several --lrs, the learning rate is chosen on dev with the first seed; the other seeds use "
                     "it. Each run is recorded in course_lib/assets/results.json and RESULTS.md.")
def _finetune_args(p):
    p.add_argument("task", choices=["mr", "subj"], help="mr: movie-review polarity; subj: subjectivity")
    p.add_argument("--init", choices=["pretrained", "scratch"], default="pretrained")
    p.add_argument("--freeze-encoder", action="store_true", help="train only the classifier (a linear probe)")
    p.add_argument("--train-fraction", type=float, default=1.0, help="fraction of the training labels (stratified)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--lrs", type=float, nargs="+", default=[1e-4], help="learning-rate grid (first seed only)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--max-length", type=int, default=64)
    p.add_argument("--checkpoint", help="a course_lib checkpoint folder (default: the shipped one)")
    p.add_argument("--device", help="cpu, cuda, mps (default: the best available)")
    p.add_argument("--no-record", action="store_true", help="print results without adding them to results.json")


@command("bench", help="benchmark course_lib's BERT against transformers (prints a table)",
         target="course_lib.commands:_bench_main",
         description="Runs benchmarks/bench_model.py: interleaved medians, ratio course_lib / transformers.")
def _bench_args(p):
    p.add_argument("--presets", nargs="+", default=["tiny", "mini", "base"])
    p.add_argument("--repeats", type=int, default=7)


def _bench_main(args) -> int:
    import subprocess
    import sys
    from pathlib import Path
    script = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_model.py"
    if not script.exists():
        print("benchmarks/ is part of the course repository, not of an installed package: run this from a checkout")
        return 1
    return subprocess.call([sys.executable, str(script), "--presets", *args.presets, "--repeats", str(args.repeats)])
