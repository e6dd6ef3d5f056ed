"""Every solution notebook runs top to bottom without an error, and every autograded test cell fails
against the released stub and passes against the solution.

The time each notebook took is printed at the end of the run. The budget of ARCHITECTURE.md (3 minutes per notebook on
a 2-core CPU) is a speed target, so it is checked by a benchmark, `benchmarks/bench_notebooks.py` (median of
interleaved runs), not asserted here: one CI run on a shared machine once took 488 s for a chapter whose every
other run took 128 s. A run over budget here gives a NotebookBudgetWarning naming its slowest cells; a cell
that hangs still fails (the kernel's per-cell timeout, then pytest's).

One kernel per chapter: the solution notebook runs cell by cell; right after each autograded test cell
has passed, the answer cells it checks are swapped for their released stubs (the names they defined are
removed first), the test cell runs again and must raise, and the solutions are put back before the
notebook goes on. Chapters and cells are discovered from nbgrader metadata, so new chapters are covered
without editing this file. The fixture course under tests/fixtures/course goes through the same checks.
"""
from __future__ import annotations

import functools
import os
import re
import time
import warnings

import nbformat
import pytest

from notebook_utils import (FIXTURE_COURSE, NOTEBOOK_BUDGET_S, REPO, TIMINGS, NotebookSession, answer_cells_for,
                            bound_names, chapter_path, chapters, grade_id, is_autograded_test, stub_sources)

BUDGET_S = float(os.environ.get("COURSE_NOTEBOOK_BUDGET_S", NOTEBOOK_BUDGET_S))


class NotebookBudgetWarning(UserWarning):
    """A notebook took longer than BUDGET_S in this run (benchmarks/bench_notebooks.py gives the verdict)."""


COURSES = {"course": REPO, "fixture": FIXTURE_COURSE}
CASES = [(course, ch) for course, root in sorted(COURSES.items()) for ch in chapters(root / "solutions")]


def _grade_cases():
    out = []
    for course, ch in CASES:
        nb = nbformat.read(chapter_path(ch, COURSES[course] / "solutions"), as_version=4)
        out += [(course, ch, grade_id(c)) for c in nb.cells if is_autograded_test(c)]
    return out


GRADE_CASES = _grade_cases()


@functools.cache
def run_chapter(course: str, chapter: str) -> dict:
    root = COURSES[course]
    path = chapter_path(chapter, root / "solutions")
    stubs = stub_sources(chapter, root / "notebooks", root / "solutions")
    result = {"error": None, "seconds": 0.0, "checks": {}}
    t0 = time.perf_counter()
    with NotebookSession(path, timeout=int(BUDGET_S * 4)) as s:  # per cell: a hang guard, well above a stall
        for i, cell in enumerate(s.nb.cells):
            r = s.run_cell(i)
            if not r.ok:
                gid = grade_id(cell)
                result["error"] = f"cell {i}{f' ({gid})' if gid else ''} failed: {r.error}"
                break
            if not is_autograded_test(cell):
                continue
            gid = grade_id(cell)
            check = {"solution_passed": True, "answers": answer_cells_for(s.nb, gid), "stub_error": None}
            if check["answers"]:
                missing = [a for a in check["answers"] if a not in stubs]
                if missing:
                    check["stub_error"] = f"answer cells {missing} are not in the release"
                else:
                    t = s.try_answers({a: stubs[a] for a in check["answers"]}, gid)
                    check["stub_error"] = t.error  # None = the test passed on the stub: bad
                    check["answer_names"] = set().union(*(bound_names(s.nb.cells[s.index(a)].source)
                                                          for a in check["answers"]))
            result["checks"][gid] = check
    result["seconds"] = sum(s.cell_seconds.values())
    result["cell_seconds"] = dict(s.cell_seconds)
    result["wall"] = time.perf_counter() - t0
    TIMINGS.append((f"{path.relative_to(REPO)}", result["seconds"]))
    return result


@pytest.mark.slow
@pytest.mark.timeout(int(BUDGET_S * 4) + 120)
@pytest.mark.parametrize("course,chapter", CASES, ids=[f"{c}-{ch}" for c, ch in CASES])
def test_solution_notebook_runs(course, chapter):
    r = run_chapter(course, chapter)
    assert r["error"] is None, f"{chapter}: {r['error']}"
    if r["seconds"] > BUDGET_S:
        slowest = sorted(r["cell_seconds"].items(), key=lambda kv: -kv[1])[:3]
        warnings.warn(NotebookBudgetWarning(
            f"{chapter} took {r['seconds']:.0f} s top to bottom in this run, over the {BUDGET_S:.0f} s budget "
            f"(slowest cells: {', '.join(f'cell {i} {t:.0f} s' for i, t in slowest)}). Check it on an idle machine "
            f"with: python benchmarks/bench_notebooks.py {chapter}"))


@pytest.mark.slow
@pytest.mark.timeout(int(BUDGET_S * 4) + 120)
@pytest.mark.parametrize("course,chapter,gid", GRADE_CASES, ids=[f"{c}-{ch}-{g}" for c, ch, g in GRADE_CASES])
def test_grade_cell_fails_on_stub_passes_on_solution(course, chapter, gid):
    r = run_chapter(course, chapter)
    if r["error"] is not None and gid not in r["checks"]:
        pytest.fail(f"the solution notebook stopped before {gid}: {r['error']}")
    check = r["checks"][gid]
    assert check["solution_passed"]
    assert check["answers"], f"{gid}: no answer cell precedes this test cell"
    assert check["stub_error"] is not None, (
        f"{chapter}/{gid} passes with the released stub of {check['answers']}: the test does not test the answer")
    # It must fail *because* the answer is missing: the stub's NotImplementedError, or a name the answer defines.
    missing = re.fullmatch(r"NameError: name '(\w+)' is not defined", check["stub_error"])
    assert check["stub_error"].startswith("NotImplementedError") or (
        missing and missing.group(1) in check["answer_names"]), (
        f"{chapter}/{gid} fails on the stub for another reason than the missing answer: {check['stub_error']}")


def test_chapters_discovered():
    """The fixture course is always there, so these checks never silently test nothing."""
    assert ("fixture", "fx01_fixture") in CASES
    assert any(c == "fixture" for c, _, _ in GRADE_CASES)
