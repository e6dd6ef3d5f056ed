"""A simulated class for the fixture assignment ``fx01_fixture`` (tests/fixtures/course): one learner per
behaviour the grading pipeline must survive, and the exact points each must get.

Run ``python tests/support/simulated_class.py DIR`` to write the submissions into DIR (for trying `course grade`
by hand); tests import :func:`write_class` and :data:`EXPECTED`.
"""
from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

import nbformat

FIXTURE_COURSE = Path(__file__).resolve().parents[1] / "fixtures" / "course"
CHAPTER = "fx01_fixture"
RELEASE = FIXTURE_COURSE / "notebooks" / CHAPTER / f"{CHAPTER}.ipynb"

STUB = "    # YOUR CODE HERE\n    raise NotImplementedError()"
ADD_OK = "    return a + b"
SQUARE_OK = "    return x * x"
ANSWER = "Hidden tests use other inputs, so hard-coding the visible cases does not pass."

# body of square() per learner (the only thing most of them get wrong)
SQUARE_BODIES = {
    "loop": "    while True:\n        pass",
    # swallows the KeyboardInterrupt nbgrader sends at the timeout: the kernel must be stopped
    "stubborn": "    import time\n    while True:\n        try:\n            time.sleep(0.05)\n"
                "        except KeyboardInterrupt:\n            pass",
    "crash": "    import os\n    os._exit(1)",
    "hog": "    hog = []\n    while True:\n        hog.append(bytearray(50 * 2**20))",
    "partial": "    return x + x",
}

# learner -> expected points per graded cell (add_tests 2, square_tests 3, why_hidden 1 by hand:
# None = waiting for manual grading), plus expected status and tampering kinds
EXPECTED = {
    "alice_correct": ({"add_tests": 2, "square_tests": 3, "why_hidden": None}, "graded", []),
    "bob_stub": ({"add_tests": 0, "square_tests": 0, "why_hidden": 0}, "graded", []),
    "carol_partial": ({"add_tests": 2, "square_tests": 0, "why_hidden": None}, "graded", []),
    "dave_loop": ({"add_tests": 2, "square_tests": 0, "why_hidden": None}, "graded", []),
    "dana_stubborn": ({"add_tests": 2, "square_tests": 0, "why_hidden": None}, "graded", []),
    "erin_crash": ({"add_tests": 2, "square_tests": 0, "why_hidden": None}, "graded", []),
    "frank_hog": ({"add_tests": 2, "square_tests": 0, "why_hidden": None}, "graded", []),
    "gina_badjson": ({"add_tests": 0, "square_tests": 0, "why_hidden": 0}, "invalid", []),
    "hugo_notanotebook": ({"add_tests": 0, "square_tests": 0, "why_hidden": 0}, "invalid", []),
    "ivan_deleted": ({"add_tests": 2, "square_tests": 3, "why_hidden": None}, "graded",
                     [("square_tests", "deleted locked cell")]),
    "judy_duplicated": ({"add_tests": 2, "square_tests": 3, "why_hidden": None}, "graded",
                        [("add_tests", "duplicated locked cell (2 copies)")]),
    "kim_edited": ({"add_tests": 2, "square_tests": 0, "why_hidden": None}, "graded",
                   [("square_tests", "edited locked cell")]),
}


def _release():
    return nbformat.read(RELEASE, as_version=4)


def _cell(nb, gid):
    for c in nb.cells:
        if c.metadata.get("nbgrader", {}).get("grade_id") == gid:
            return c
    raise KeyError(gid)


def answered(add=ADD_OK, square=SQUARE_OK, answer=ANSWER):
    nb = _release()
    if add is not None:
        _cell(nb, "add").source = _cell(nb, "add").source.replace(STUB, add)
    if square is not None:
        _cell(nb, "square").source = _cell(nb, "square").source.replace(STUB, square)
    if answer is not None:
        _cell(nb, "why_hidden").source = answer
    return nb


def notebooks() -> dict[str, object]:
    """learner -> notebook (or raw text for the broken files)."""
    out = {
        "alice_correct": answered(),
        "bob_stub": _release(),
        "carol_partial": answered(square=SQUARE_BODIES["partial"]),
        "dave_loop": answered(square=SQUARE_BODIES["loop"]),
        "dana_stubborn": answered(square=SQUARE_BODIES["stubborn"]),
        "erin_crash": answered(square=SQUARE_BODIES["crash"]),
        "frank_hog": answered(square=SQUARE_BODIES["hog"]),
        "gina_badjson": '{"cells": [ {"cell_type": "code", "source": "x = 1"',  # truncated JSON
        "hugo_notanotebook": json.dumps({"hello": "this is JSON but not a notebook"}),
    }
    nb = answered()
    nb.cells = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") != "square_tests"]
    out["ivan_deleted"] = nb
    nb = answered()
    i = nb.cells.index(_cell(nb, "add_tests"))
    nb.cells.insert(i + 1, copy.deepcopy(nb.cells[i]))
    out["judy_duplicated"] = nb
    nb = answered(square=None)  # square left as the stub ...
    _cell(nb, "square_tests").source = "pass"  # ... and its test "fixed"
    out["kim_edited"] = nb
    return out


def write_class(dest: Path, learners=None) -> list[Path]:
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, nb in notebooks().items():
        if learners is not None and name not in learners:
            continue
        p = dest / f"{name}_{CHAPTER}.ipynb"
        if isinstance(nb, str):
            p.write_text(nb)
        else:
            nbformat.write(nb, p)
        paths.append(p)
    return paths


if __name__ == "__main__":
    for p in write_class(Path(sys.argv[1] if len(sys.argv) > 1 else "simulated-class")):
        print(p)
