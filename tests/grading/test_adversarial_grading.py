"""`course grade` on an adversarial class (tests/support/adversarial_class.py): every learner gets exactly the
expected points, the attackers gain nothing and are named in the summary, the honest slips keep every
point, and nothing outside the graded learner's own sandbox changes: the checkout's course_lib/, the
fixture's solutions/, the template gradebook and the other learners' files are byte-identical afterwards.
"""
from __future__ import annotations

import csv
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

import adversarial_class
from course_lib.grading import sandbox
from simulated_class import CHAPTER, FIXTURE_COURSE, answered

COURSE = str(Path(sys.executable).parent / "course")
REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(1500)]


def _tree_hash(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file() and "__pycache__" not in p.parts:
            h.update(str(p.relative_to(root)).encode())
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    if sandbox.unavailable_reason():
        pytest.fail(sandbox.unavailable_reason())  # .ci/run installs bubblewrap: never skip here
    tmp = tmp_path_factory.mktemp("adversarial")
    inbox = tmp / "inbox"
    inbox.mkdir()
    for name, nb in adversarial_class.notebooks().items():
        nbformat.write(nb, inbox / f"{name}_{CHAPTER}.ipynb")
    layout = inbox / "mia_copy" / CHAPTER
    layout.mkdir(parents=True)
    nbformat.write(answered(), layout / f"{CHAPTER}.ipynb")
    nbformat.write(answered(add=None, square=None, answer=None), layout / f"{CHAPTER}-Copy1.ipynb")
    (inbox / f"nick\n_{CHAPTER}.ipynb").write_text(nbformat.writes(answered()))
    before = {"course_lib": _tree_hash(REPO / "course_lib"), "solutions": _tree_hash(FIXTURE_COURSE / "solutions"),
              "inbox": _tree_hash(inbox)}
    out = tmp / "out"
    t0 = time.perf_counter()
    p = subprocess.run([COURSE, "grade", inbox, "--source", FIXTURE_COURSE / "solutions", "--out", out,
                        "--jobs", "2", "--timeout", "10", "--memory-limit", "2G", "--keep-work"],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=1400,
                       env=dict(os.environ))
    print(f"course grade of {len(adversarial_class.EXPECTED)} adversarial learners, --jobs 2: "
          f"{time.perf_counter() - t0:.1f} s")
    assert p.returncode == 0, p.stdout[-4000:]
    time.sleep(2)  # a process the sandbox failed to end would have time to write now
    after = {"course_lib": _tree_hash(REPO / "course_lib"), "solutions": _tree_hash(FIXTURE_COURSE / "solutions"),
             "inbox": _tree_hash(inbox)}
    with open(out / "grades.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    return {"out": out, "stdout": p.stdout, "rows": rows, "before": before, "after": after,
            "summary": (out / "summary.txt").read_text()}


def test_every_learner_gets_exactly_the_expected_points(graded):
    rows = graded["rows"]
    assert sorted(rows) == sorted(adversarial_class.EXPECTED), graded["stdout"][-3000:]
    wrong = []
    for student, (points, _, _) in adversarial_class.EXPECTED.items():
        got = {gid: float(rows[student][gid]) for gid in points}
        if got != {k: float(v) for k, v in points.items()}:
            wrong.append(f"{student}: expected {points}, got {got}: {rows[student]['problems']} "
                         f"{rows[student]['tampering']}")
    assert not wrong, "\n".join(wrong)


def test_every_attempt_is_named_in_the_summary_and_the_csv(graded):
    rows, text = graded["rows"], graded["summary"]
    for student, (_, tampering, repairs) in adversarial_class.EXPECTED.items():
        for word in tampering:
            assert word in rows[student]["tampering"], f"{student}: {word!r} not in {rows[student]['tampering']!r}"
            assert any(student in ln and word in ln for ln in text.splitlines()), f"{student}: {word} not in summary"
        for word in repairs:
            assert word in rows[student]["repaired"], f"{student}: {word!r} not in {rows[student]['repaired']!r}"
        if not tampering:
            assert rows[student]["tampering"] == "", f"{student} was reported without cause: {rows[student]['tampering']}"


def test_the_sandbox_hid_the_grader_and_ended_every_process(graded):
    assert graded["before"] == graded["after"], "course_lib/, solutions/ or a learner's file changed"
    work = graded["out"] / ".work"
    template = work / f"{CHAPTER}.template.db"
    started = min(d.stat().st_mtime for d in (work / CHAPTER).iterdir())
    assert template.stat().st_mtime <= started, "the template gradebook changed while learners were graded"
    autograded = graded["out"] / "autograded" / "mallory_explorer" / CHAPTER / f"{CHAPTER}.ipynb"
    text = autograded.read_text()
    assert "EXPLORER found [] wrote [] network unreachable cwds ['/home/learner']" in text, text[:3000]
    import psutil

    daemons = [p.pid for p in psutil.process_iter(["cmdline"]) if "oscar's daemon" in " ".join(p.info["cmdline"] or [])]
    assert not daemons, f"a process started by a submission outlived its kernel: {daemons}"
    thief = (graded["out"] / "autograded" / "peggy_thief" / CHAPTER / f"{CHAPTER}.ipynb").read_text()
    assert "THIEF saw []" in thief


def test_honest_slips_cost_nothing_and_are_reported(graded):
    rows, text = graded["rows"], graded["summary"]
    assert "nbgrader metadata restored" in rows["kate_turned"]["repaired"]
    assert "unknown graded cell" in rows["jack_pasted"]["repaired"]
    results = {r["student"]: r for r in json.loads((graded["out"] / "grades.json").read_text())}
    error = next(c["error"] for c in results["olga_newline"]["cells"] if c["grade_id"] == "add_tests")
    assert error == "ValueError: oops\\nalice_correct  6/6  forged line", error  # one line, the newline shown
    assert not any("forged line" in ln and not ln.startswith("  ") for ln in text.splitlines())
    assert "mia_copy/fx01_fixture/fx01_fixture-Copy1.ipynb: a copy" in text
    assert "nick\\n_fx01_fixture.ipynb" in text and "student id" in text
    feedback = graded["out"] / "feedback" / "leo_marker" / CHAPTER / f"{CHAPTER}.html"
    assert feedback.is_file(), "the feedback of a notebook quoting the hidden-test marker was not made"
    assert "truncated" in (graded["out"] / "autograded" / "paul_bigoutput" / CHAPTER / f"{CHAPTER}.ipynb").read_text()
