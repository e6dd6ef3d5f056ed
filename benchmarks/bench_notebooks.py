"""How long each chapter's solution notebook takes top to bottom, against the budget in ARCHITECTURE.md (Chapters)
(each notebook at most 3 minutes on a 2-core CPU, the whole course at most 10).

    .venv/bin/python benchmarks/bench_notebooks.py                          # every chapter, 3 runs each
    .venv/bin/python benchmarks/bench_notebooks.py ch04_pretraining --repeats 5

Every run is a fresh kernel in a scratch folder (the same harness as tests/chapters/test_notebooks.py) and the time is
the sum of the cells' times. Runs go round-robin over the chapters, so a burst of load on the machine lands on
one run of a chapter, not on all of them; the verdict reads the median. Printed per chapter: median, min and
max, and the slowest cells of the median run. Exits 1 if a chapter's median or the course's total is over budget.

This is a benchmark, not a test: absolute times on a shared 2-core machine are noise (one CI run once saw a
chapter take 488 s whose every other run took 128 s), so the test suite reports the times it sees and this
script, run on an idle machine, is what the budget is checked with.
"""
import argparse
import importlib.util as _importlib_util
import statistics
import sys
from pathlib import Path

import nbformat

# benchmarks/_support.py, loaded by its file: works for `python benchmarks/x.py` and for runpy.run_path alike

_spec = _importlib_util.spec_from_file_location("_support", Path(__file__).resolve().with_name("_support.py"))
_support = _importlib_util.module_from_spec(_spec)
_spec.loader.exec_module(_support)
test_support = _support.test_support


_nb = test_support("notebook_utils")  # the harness and budgets the notebook tests use
COURSE_BUDGET_S, NOTEBOOK_BUDGET_S, SOLUTIONS = _nb.COURSE_BUDGET_S, _nb.NOTEBOOK_BUDGET_S, _nb.SOLUTIONS
NotebookSession, chapter_path, chapters = _nb.NotebookSession, _nb.chapter_path, _nb.chapters


def run_once(chapter: str) -> dict[int, float]:
    """Seconds per code cell of one top-to-bottom run; raises at the first failing cell."""
    with NotebookSession(chapter_path(chapter, SOLUTIONS), timeout=int(NOTEBOOK_BUDGET_S * 4)) as s:
        s.run_all()
        return dict(s.cell_seconds)


def first_line(source: str) -> str:
    line = next((ln for ln in source.splitlines() if ln.strip()), "")
    return line if len(line) <= 60 else line[:57] + "..."


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*", help="chapter folders (default: every chapter in solutions/)")
    ap.add_argument("--repeats", type=int, default=3, help="runs per chapter (default 3)")
    ap.add_argument("--slowest", type=int, default=3, help="cells listed per chapter (default 3)")
    args = ap.parse_args()
    names = args.chapters or chapters(SOLUTIONS)
    unknown = [c for c in names if not chapter_path(c, SOLUTIONS).is_file()]
    if unknown:
        ap.error(f"no solution notebook for {unknown}; chapters are {chapters(SOLUTIONS)}")
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")

    runs: dict[str, list[dict[int, float]]] = {c: [] for c in names}
    for r in range(args.repeats):
        for chapter in names:
            cells = run_once(chapter)
            runs[chapter].append(cells)
            print(f"run {r + 1}/{args.repeats}  {chapter:<22} {sum(cells.values()):7.1f} s", flush=True)

    print(f"\nmedian of {args.repeats} run(s) per chapter; budget {NOTEBOOK_BUDGET_S:.0f} s each, "
          f"{COURSE_BUDGET_S:.0f} s for the course")
    print(f"{'chapter':<22} {'median':>8} {'min':>8} {'max':>8}  verdict")
    over = False
    total = 0.0
    for chapter in names:
        totals = [sum(cells.values()) for cells in runs[chapter]]
        median = statistics.median(totals)
        total += median
        ok = median <= NOTEBOOK_BUDGET_S
        over |= not ok
        print(f"{chapter:<22} {median:7.1f}s {min(totals):7.1f}s {max(totals):7.1f}s  {'ok' if ok else 'OVER BUDGET'}")
        median_run = min(runs[chapter], key=lambda cells: abs(sum(cells.values()) - median))
        nb_cells = nbformat.read(chapter_path(chapter, SOLUTIONS), as_version=4).cells
        for i, seconds in sorted(median_run.items(), key=lambda kv: -kv[1])[: args.slowest]:
            print(f"{'':<24}cell {i:>3}: {seconds:6.1f} s  {first_line(nb_cells[i].source)}")
    course_ok = total <= COURSE_BUDGET_S
    print(f"{'course (sum of medians)':<22} {total:7.1f}s  {'ok' if course_ok else 'OVER BUDGET'}")
    return 0 if not over and course_ok else 1


if __name__ == "__main__":
    sys.exit(main())
