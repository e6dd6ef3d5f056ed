"""What the sandbox and parallel workers cost: `course grade` on the simulated class (tests/support/simulated_class.py)
with and without the sandbox, with --jobs 1 and --jobs 2, the four runs interleaved ``--repeats`` times.

Prints, per configuration, the median over learners of the seconds one learner took (the broken files,
graded in no time, left out) and the median wall time of the whole class; then the ratios.

    python benchmarks/bench_grading.py [--repeats 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FIXTURE = REPO / "tests" / "fixtures" / "course"
COURSE = str(Path(sys.executable).parent / "course")
CONFIGS = [("sandbox", 1), ("no sandbox", 1), ("sandbox", 2), ("no sandbox", 2)]


def write_class(inbox: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "tests" / "support" / "simulated_class.py"), str(inbox)], check=True,
                   stdout=subprocess.DEVNULL, cwd=REPO / "tests")


def grade(inbox: Path, out: Path, sandbox: bool, jobs: int) -> tuple[float, list[float]]:
    cmd = [COURSE, "grade", str(inbox), "--source", str(FIXTURE / "solutions"), "--out", str(out), "--jobs",
           str(jobs), "--timeout", "3", "--memory-limit", "2G", "--no-feedback"] + ([] if sandbox else ["--no-sandbox"])
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wall = time.perf_counter() - t0
    results = json.loads((out / "grades.json").read_text())
    return wall, [r["seconds"] for r in results if r["status"] == "graded"]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=1)
    a = p.parse_args()
    walls = {c: [] for c in CONFIGS}
    learners = {c: [] for c in CONFIGS}
    with tempfile.TemporaryDirectory() as tmp:
        inbox = Path(tmp) / "inbox"
        write_class(inbox)
        for rep in range(a.repeats):
            for i, (mode, jobs) in enumerate(CONFIGS):
                wall, per = grade(inbox, Path(tmp) / f"out-{rep}-{i}", mode == "sandbox", jobs)
                walls[(mode, jobs)].append(wall)
                learners[(mode, jobs)] += per
                print(f"  run {rep + 1}: {mode:<10} --jobs {jobs}: class {wall:6.1f} s", flush=True)
    print(f"\n{'configuration':<22} {'per learner (median)':>22} {'class wall time (median)':>26}")
    med = {}
    for c in CONFIGS:
        med[c] = (statistics.median(learners[c]), statistics.median(walls[c]))
        print(f"{c[0] + ' --jobs ' + str(c[1]):<22} {med[c][0]:>20.1f} s {med[c][1]:>24.1f} s")
    for jobs in (1, 2):
        print(f"sandbox / no sandbox, --jobs {jobs}: per learner {med[('sandbox', jobs)][0] / med[('no sandbox', jobs)][0]:.2f}, "
              f"class {med[('sandbox', jobs)][1] / med[('no sandbox', jobs)][1]:.2f}")
    print(f"--jobs 2 / --jobs 1, sandbox: class {med[('sandbox', 2)][1] / med[('sandbox', 1)][1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
