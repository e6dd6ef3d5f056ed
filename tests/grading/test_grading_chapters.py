"""The real chapters through the real grader: a learner who hands in the model solutions (the released
notebook with each answer cell filled in from solutions/) gets every autograded point from `course grade`,
with nbgrader's autograde, hidden tests, NBGRADER_EXECUTION, the course's timeout and memory limit.
Chapters are discovered in solutions/, so new ones are covered without editing this file."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from notebook_utils import NOTEBOOKS, SOLUTIONS, chapter_path, chapters, grade_id

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]
COURSE = str(Path(sys.executable).parent / "course")
RELEASED = [ch for ch in chapters(SOLUTIONS) if chapter_path(ch, NOTEBOOKS).is_file()]


def perfect_submission(chapter: str):
    """The learner version with every answer cell (code and written) taken from the solution."""
    sol = {grade_id(c): c.source for c in nbformat.read(chapter_path(chapter, SOLUTIONS), as_version=4).cells
           if c.metadata.get("nbgrader", {}).get("solution")}
    nb = nbformat.read(chapter_path(chapter, NOTEBOOKS), as_version=4)
    for c in nb.cells:
        gid = grade_id(c)
        if c.metadata.get("nbgrader", {}).get("solution") and gid in sol:
            c.source = sol[gid]
    return nb


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if not RELEASED:
        pytest.skip("no released chapter yet")
    tmp = tmp_path_factory.mktemp("chapters")
    (tmp / "inbox").mkdir()
    for ch in RELEASED:
        nbformat.write(perfect_submission(ch), tmp / "inbox" / f"reference_{ch}.ipynb")
    t0 = time.perf_counter()
    p = subprocess.run([COURSE, "grade", tmp / "inbox", "--out", tmp / "out", "--jobs", "2", "--no-feedback"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1700,
                       env={**os.environ, "COURSE_ROOT": str(SOLUTIONS.parent)})
    print(f"course grade of {len(RELEASED)} reference submissions, --jobs 2: {time.perf_counter() - t0:.1f} s")
    assert p.returncode == 0, p.stdout[-3000:]
    return {r["chapter"]: r for r in json.loads((tmp / "out" / "grades.json").read_text())}, p.stdout


@pytest.mark.parametrize("chapter", RELEASED)
def test_model_solutions_get_every_autograded_point(graded, chapter):
    results, stdout = graded
    r = results[chapter]
    assert r["status"] == "graded", r["message"]
    assert r["tampering"] == [], r["tampering"]
    lost = [f"{c['grade_id']}: {c['score']}/{c['max']} {c.get('error') or ''}" for c in r["cells"]
            if c["kind"] == "auto" and c["score"] != c["max"]]
    assert not lost, f"{chapter} graded by nbgrader lost points on the model solution:\n" + "\n".join(lost)
    print(f"{chapter}: graded in {r['seconds']:.1f} s")
