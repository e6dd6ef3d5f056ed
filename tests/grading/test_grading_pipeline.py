"""`course grade` end to end on a simulated class (tests/support/simulated_class.py) of the fixture assignment:
exact points per learner and exercise in the CSV, the same CSV with --jobs 1 and --jobs 2, a consistent
gradebook, feedback without hidden tests, tampering reported by name, and each hostile case (loop,
loop that ignores the interrupt, dead kernel, memory hog, broken files, deleted / duplicated / edited
cells) graded without disturbing the others. Also `course check`, and the collectors' file-name rules.
"""
from __future__ import annotations

import csv
import html
import json
import os
import re
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from course_lib.grading.cells import find_tampering, restore_metadata
from course_lib.grading.collect import find_submissions
from simulated_class import CHAPTER, EXPECTED, FIXTURE_COURSE, answered, notebooks, write_class

COURSE = str(Path(sys.executable).parent / "course")
SOURCE = FIXTURE_COURSE / "solutions"
RELEASE = FIXTURE_COURSE / "notebooks"
CELL_TIMEOUT = 3  # seconds; the course default is 120
MEMORY = "1G"
TIMINGS: dict[int, float] = {}


def course(*args, env=None, timeout=900) -> subprocess.CompletedProcess:
    return subprocess.run([COURSE, *map(str, args)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, env={**os.environ, **(env or {})})


@pytest.fixture(scope="module")
def simulated(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("class")
    write_class(tmp / "inbox")
    outs = {}
    for jobs in (1, 2):
        out = tmp / f"out-jobs{jobs}"
        t0 = time.perf_counter()
        # feedback HTML is checked on the --jobs 2 run only (it does not enter the CSV)
        p = course("grade", tmp / "inbox", "--source", SOURCE, "--out", out, "--jobs", jobs,
                   "--timeout", CELL_TIMEOUT, "--memory-limit", MEMORY, *(["--no-feedback"] if jobs == 1 else []))
        TIMINGS[jobs] = time.perf_counter() - t0
        print(f"course grade --jobs {jobs}: {TIMINGS[jobs]:.1f} s")
        assert p.returncode == 0, p.stdout[-3000:]
        outs[jobs] = (out, p.stdout)
    return outs


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "grades.csv", newline="") as fh:
        return {r["student"]: r for r in csv.DictReader(fh)}


def _num(text: str):
    return None if text == "" else float(text)


pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]


def test_every_learner_gets_exactly_the_expected_points(simulated):
    out, stdout = simulated[2]
    rows = _rows(out)
    assert sorted(rows) == sorted(EXPECTED), stdout[-2000:]
    wrong = []
    for student, (points, status, tampering) in EXPECTED.items():
        r = rows[student]
        got = {gid: _num(r[gid]) for gid in points}
        if got != points or r["status"] != status or r["chapter"] != CHAPTER:
            wrong.append(f"{student}: expected {points} {status}, got {got} {r['status']} ({r['problems']})")
        total = sum(v or 0 for v in points.values())
        assert float(r["points"]) == total, student
        assert float(r["max_points"]) == 6
        assert float(r["pending_manual"]) == (1 if points["why_hidden"] is None else 0), student
        kinds = sorted((t.split(": ", 1)[0], t.split(": ", 1)[1]) for t in r["tampering"].split("; ") if t)
        assert kinds == sorted(tampering), f"{student}: tampering {r['tampering']!r}"
    assert not wrong, "\n".join(wrong)


def test_jobs_2_gives_the_same_csv_as_jobs_1(simulated):
    one = (simulated[1][0] / "grades.csv").read_text()
    two = (simulated[2][0] / "grades.csv").read_text()
    assert one == two
    print(f"grading {len(EXPECTED)} learners: --jobs 1 {TIMINGS[1]:.1f} s, --jobs 2 {TIMINGS[2]:.1f} s")


def test_gradebook_holds_every_learner(simulated):
    from nbgrader.api import Gradebook

    for jobs in (1, 2):
        out = simulated[jobs][0]
        rows = _rows(out)
        with Gradebook(f"sqlite:///{out / 'gradebook.db'}") as gb:
            assert sorted(s.id for s in gb.students) == sorted(EXPECTED)
            for student, (points, _, _) in EXPECTED.items():
                sub = gb.find_submission_notebook(CHAPTER, CHAPTER, student)
                scores = {g.name: g.score for g in sub.grades}
                for gid, want in points.items():
                    if want is None:  # a written answer waiting for the instructor
                        assert gb.find_grade(gid, CHAPTER, CHAPTER, student).needs_manual_grade
                    else:
                        assert scores[gid] == want, (jobs, student, gid)
                assert float(rows[student]["points"]) == sub.score
        # nbgrader's own layout, so formgrader can open the autograded notebooks
        assert (out / "autograded" / "alice_correct" / CHAPTER / f"{CHAPTER}.ipynb").is_file()
        assert (out / "submitted" / "alice_correct" / CHAPTER / f"{CHAPTER}.ipynb").is_file()
        assert not (out / ".work" / CHAPTER / "alice_correct").exists(), "work folders are cleaned up"


def _visible_text(path: Path) -> str:
    raw = path.read_text()
    raw = re.sub(r"<style.*?</style>|<script.*?</script>", " ", raw, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", raw))


def test_feedback_html_has_no_hidden_tests(simulated):
    out = simulated[2][0]
    made = 0
    for student, (_, status, _) in EXPECTED.items():
        fb = out / "feedback" / student / CHAPTER / f"{CHAPTER}.html"
        if status != "graded":
            assert not fb.exists()
            continue
        made += 1
        text = _visible_text(fb)
        assert "add(1, 2) == 3" in text, f"{student}: visible test missing from feedback"
        for hidden in ("add(-5, 5) == 0", "square(torch.tensor(-4.0))", "HIDDEN TESTS"):
            assert hidden not in text, f"{student}: feedback shows hidden test source {hidden!r}"
    assert made == sum(1 for _, s, _ in EXPECTED.values() if s == "graded")


def test_summary_reports_tampering_by_learner_and_cell(simulated):
    out, stdout = simulated[1]
    summary = (out / "summary.txt").read_text()
    for student, (_, _, tampering) in EXPECTED.items():
        for gid, what in tampering:
            line = f"{student} {CHAPTER}: {gid}: {what}"
            assert line in summary and line in stdout, line
    assert "alice_correct" in summary and "Tampering (locked cells" in summary
    assert "alice_correct fx01_fixture:" not in summary


def test_hostile_cases_fail_for_the_right_reason(simulated):
    out = simulated[2][0]
    res = {r["student"]: r for r in json.loads((out / "grades.json").read_text())}

    def err(student, gid="square_tests"):
        return next(c["error"] for c in res[student]["cells"] if c["grade_id"] == gid) or ""

    assert err("dave_loop").startswith("CellTimeoutError: this cell ran longer than 3 s"), err("dave_loop")
    assert err("dana_stubborn").startswith(("CellTimeoutError", "KernelDied")), err("dana_stubborn")
    assert err("erin_crash").startswith("KernelDied"), err("erin_crash")
    assert err("frank_hog").startswith("MemoryError"), err("frank_hog")  # the address-space limit at work
    assert err("carol_partial").startswith("AssertionError: square(3) is not what it should be"), err("carol_partial")
    assert "not a valid notebook" in res["gina_badjson"]["message"]
    assert "not a valid notebook" in res["hugo_notanotebook"]["message"]
    # the per-cell timeout is the 3 s asked for, not the course default of 120 s
    for student in ("dave_loop", "dana_stubborn"):
        assert res[student]["seconds"] < 100, (student, res[student]["seconds"])


# --- course check ---------------------------------------------------------------------------------------
def test_course_check_reports_per_exercise_and_exit_status(tmp_path):
    good, partial = tmp_path / "good_fx01_fixture.ipynb", tmp_path / "partial_fx01_fixture.ipynb"
    nbformat.write(answered(), good)
    nbformat.write(answered(square="    return x + x"), partial)
    p = course("check", good, "--source", RELEASE)
    assert p.returncode == 0, p.stdout
    assert re.search(r"✓ add_tests\s+2/2", p.stdout) and re.search(r"✓ square_tests\s+3/3", p.stdout), p.stdout
    assert "graded by hand" in p.stdout
    p = course("check", partial, "--source", RELEASE)
    assert p.returncode == 1, p.stdout
    assert re.search(r"✗ square_tests\s+0/3", p.stdout) and "square(3) is not what it should be" in p.stdout, p.stdout


def test_course_check_of_a_solution_notebook_uses_its_own_hidden_tests():
    """An instructor checking solutions/CH/CH.ipynb needs no --source: its hidden tests are not "edited locked cells"."""
    p = course("check", FIXTURE_COURSE / "solutions" / "fx01_fixture" / "fx01_fixture.ipynb")
    assert p.returncode == 0, p.stdout
    assert "(all tests)" in p.stdout and not re.search(r"^! ", p.stdout, re.M), p.stdout


def test_cell_timeout_from_course_config_applies(tmp_path):
    """nbgrader_config.py's timeout (COURSE_CELL_TIMEOUT) really stops a looping cell."""
    nb = answered(square="    while True:\n        pass")
    path = tmp_path / "loop_fx01_fixture.ipynb"
    nbformat.write(nb, path)
    t0 = time.perf_counter()
    p = course("check", path, "--source", RELEASE, env={"COURSE_CELL_TIMEOUT": "2"})
    took = time.perf_counter() - t0
    assert p.returncode == 1, p.stdout
    assert re.search(r"✗ square_tests\s+0/3", p.stdout), p.stdout
    assert re.search(r"✓ add_tests\s+2/2", p.stdout), p.stdout
    assert took < 110, f"took {took:.0f} s: the 2 s cell timeout was not applied"


# --- collecting ------------------------------------------------------------------------------------------------
def test_find_submissions_file_name_rules(tmp_path):
    known = ["ch01_background", "ch02_attention", "fx01_fixture"]
    (tmp_path / "a").mkdir()
    for name in ["alice_ch02_attention.ipynb", "bob_smith_ch01_background.ipynb", "a/carol_ch02_attention.ipynb",
                 "random.ipynb", "bad id_ch02_attention.ipynb"]:
        (tmp_path / name).write_text("{}")
    layout = tmp_path / "submitted" / "dave" / "ch01_background"
    layout.mkdir(parents=True)
    (layout / "ch01_background.ipynb").write_text("{}")
    (tmp_path / "erin").mkdir()
    (tmp_path / "erin" / "ch02_attention.ipynb").write_text("{}")
    subs, skipped = find_submissions(tmp_path, known)
    got = sorted((s.student, s.chapter) for s in subs)
    assert got == [("alice", "ch02_attention"), ("bob_smith", "ch01_background"), ("carol", "ch02_attention"),
                   ("dave", "ch01_background"), ("erin", "ch02_attention")]
    assert any("random.ipynb" in s for s in skipped) and any("bad id" in s for s in skipped)
    subs, _ = find_submissions(tmp_path, known, only=["ch01_background"])
    # with a single --chapter, a plain <student>.ipynb is that chapter
    assert sorted(s.student for s in subs) == ["bob_smith", "dave", "random"]


def test_find_submissions_from_zip_and_rejects_unsafe_paths(tmp_path):
    z = tmp_path / "class.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("download/alice_fx01_fixture.ipynb", "{}")
        zf.writestr("download/submitted/bob/fx01_fixture/fx01_fixture.ipynb", "{}")
    subs, _ = find_submissions(z, ["fx01_fixture"], workdir=tmp_path / "w")
    assert sorted(s.student for s in subs) == ["alice", "bob"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../../escape_fx01_fixture.ipynb", "{}")
    with pytest.raises(ValueError, match="unsafe"):
        find_submissions(evil, ["fx01_fixture"], workdir=tmp_path / "w2")


def test_find_tampering_and_restore_metadata():
    release = nbformat.read(RELEASE / CHAPTER / f"{CHAPTER}.ipynb", as_version=4)
    nbs = notebooks()
    assert find_tampering(release, nbs["alice_correct"]) == []
    assert find_tampering(release, nbs["bob_stub"]) == []
    assert [t["what"] for t in find_tampering(release, nbs["kim_edited"])] == ["edited locked cell"]
    dup = nbs["judy_duplicated"]
    clean = nbformat.from_dict(json.loads(json.dumps(dup)))
    slips = restore_metadata(release, clean)
    assert [s["grade_id"] for s in slips] == ["add_tests"]
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in clean.cells]
    assert ids.count("add_tests") == 1
    assert len({c.id for c in clean.cells}) == len(clean.cells)
