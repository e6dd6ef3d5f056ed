"""The JupyterHub round trip of README.md ("A whole class on JupyterHub") on one machine: nbgrader's
exchange in a temporary folder, two learners simulated with `--student` (on a hub each is a Unix user
and nbgrader takes the user name), the instructor's config being
the course's nbgrader_config.py (exchange and course id from NBGRADER_EXCHANGE / COURSE_ID).

release_assignment -> fetch_assignment -> submit -> collect -> course grade -> release_feedback ->
fetch_feedback, on the fixture assignment.
"""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from notebook_utils import REPO
from simulated_class import CHAPTER, FIXTURE_COURSE, answered

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]
BIN = Path(sys.executable).parent
COURSE_ID = "llm-bert-test"


def run(cmd, cwd, env, check=True):
    p = subprocess.run(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    if check:
        assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed:\n{p.stdout[-3000:]}"
    return p


def test_exchange_round_trip(tmp_path):
    exchange = tmp_path / "exchange"
    exchange.mkdir()
    exchange.chmod(0o777)
    base = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "NBGRADER_EXCHANGE": str(exchange),
            "COURSE_ID": COURSE_ID}

    # the instructor's checkout: the course's own config, pointed at the fixture assignment
    instructor = tmp_path / "checkout"
    instructor.mkdir()
    (instructor / "nbgrader_config.py").write_text(
        "c = get_config()\n"
        f"load_subconfig({str(REPO / 'nbgrader_config.py')!r})\n"
        f"c.CourseDirectory.root = {str(instructor)!r}\n"
        f"c.CourseDirectory.source_directory = {str(FIXTURE_COURSE / 'solutions')!r}\n"
        f"c.CourseDirectory.release_directory = {str(FIXTURE_COURSE / 'notebooks')!r}\n"
        f"c.CourseDirectory.db_url = 'sqlite:///{instructor / 'grading' / 'gradebook.db'}'\n")
    (instructor / "grading").mkdir()
    env_i = {**base, "USER": "instructor", "LOGNAME": "instructor"}
    run([BIN / "nbgrader", "db", "assignment", "add", CHAPTER], instructor, env_i)
    run([BIN / "nbgrader", "release_assignment", CHAPTER, "--force"], instructor, env_i)

    # two learners: the global config of a hub (/etc/jupyter/nbgrader_config.py) in their folder
    hub_config = (f"c = get_config()\nc.CourseDirectory.course_id = {COURSE_ID!r}\n"
                  f"c.Exchange.root = {str(exchange)!r}\n")
    for student, nb in (("alice", answered()), ("bob", None)):
        home = tmp_path / student
        home.mkdir()
        (home / "nbgrader_config.py").write_text(hub_config)
        env_s = {**base, "USER": student, "LOGNAME": student, "HOME": str(home)}
        env_s.pop("NBGRADER_EXCHANGE")
        run([BIN / "nbgrader", "fetch_assignment", CHAPTER], home, env_s)
        fetched = home / CHAPTER / f"{CHAPTER}.ipynb"
        assert fetched.is_file()
        if nb is not None:
            nbformat.write(nb, fetched)
        run([BIN / "nbgrader", "submit", CHAPTER, "--student", student], home, env_s)

    run([BIN / "nbgrader", "collect", CHAPTER], instructor, env_i)
    submitted = instructor / "grading" / "submitted"
    assert sorted(p.name for p in submitted.iterdir()) == ["alice", "bob"]

    run([BIN / "course", "grade", submitted, "--chapter", CHAPTER, "--source", FIXTURE_COURSE / "solutions",
         "--out", instructor / "grading", "--timeout", "30"], instructor, env_i)
    with open(instructor / "grading" / "grades.csv", newline="") as fh:
        rows = {r["student"]: r for r in csv.DictReader(fh)}
    assert (rows["alice"]["add_tests"], rows["alice"]["square_tests"]) == ("2", "3")
    assert (rows["bob"]["add_tests"], rows["bob"]["square_tests"]) == ("0", "0")

    # the README's after-grading commands, in the checkout
    run([BIN / "nbgrader", "generate_feedback", CHAPTER, "--force"], instructor, env_i)
    run([BIN / "nbgrader", "export", "--to", "grading/gradebook.csv"], instructor, env_i)
    with open(instructor / "grading" / "gradebook.csv", newline="") as fh:
        exported = {r["student_id"]: float(r["raw_score"]) for r in csv.DictReader(fh)}
    assert exported == {"alice": 5.0, "bob": 0.0}

    run([BIN / "nbgrader", "release_feedback", CHAPTER], instructor, env_i)
    home = tmp_path / "alice"
    env_s = {**base, "USER": "alice", "LOGNAME": "alice", "HOME": str(home)}
    env_s.pop("NBGRADER_EXCHANGE")
    run([BIN / "nbgrader", "fetch_feedback", CHAPTER, "--student", "alice"], home, env_s)
    feedback = list((home / CHAPTER / "feedback").rglob("*.html"))
    assert feedback, "alice received no feedback"
    assert "square(-4) == 16" not in feedback[0].read_text()
