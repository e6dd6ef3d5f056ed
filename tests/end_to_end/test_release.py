"""notebooks/ is exactly what `course release` makes of solutions/, and holds no solution or hidden test.

The release is regenerated into a temporary folder (with a throw-away gradebook) and compared cell by
cell: cell type, source and nbgrader metadata. The same check runs on the fixture course under
tests/fixtures/course, so it is exercised before any chapter exists.
"""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from course_lib.course import release
from notebook_utils import FIXTURE_COURSE, REPO, chapters

pytestmark = pytest.mark.timeout(900)

COURSES = {"course": REPO, "fixture": FIXTURE_COURSE}


def _cells(path: Path):
    nb = nbformat.read(path, as_version=4)
    return [(c.cell_type, c.source, json.dumps(c.metadata.get("nbgrader", {}), sort_keys=True)) for c in nb.cells]


@pytest.fixture(scope="module", params=sorted(COURSES))
def regenerated(request, tmp_path_factory):
    root = COURSES[request.param]
    names = chapters(root / "solutions")
    if not names:
        pytest.skip(f"no chapters in {root / 'solutions'} yet")
    out = tmp_path_factory.mktemp(f"release-{request.param}")
    release(names, source=root / "solutions", to=out, quiet=True)
    return root, names, out


def test_release_matches_notebooks(regenerated):
    root, names, out = regenerated
    problems = []
    released = set(chapters(root / "notebooks"))
    for ch in names:
        if ch not in released:
            problems.append(f"{ch}: missing from notebooks/ (run `course release {ch}`)")
            continue
        want_files = sorted(p.relative_to(out / ch) for p in (out / ch).rglob("*") if p.is_file())
        have_files = sorted(p.relative_to(root / "notebooks" / ch) for p in (root / "notebooks" / ch).rglob("*")
                            if p.is_file() and ".ipynb_checkpoints" not in p.parts)
        if want_files != have_files:
            problems.append(f"{ch}: files differ: release makes {want_files}, notebooks/ has {have_files}")
        want = _cells(out / ch / f"{ch}.ipynb")
        have = _cells(root / "notebooks" / ch / f"{ch}.ipynb")
        if want != have:
            diff = [i for i, (a, b) in enumerate(zip(want, have)) if a != b]
            problems.append(f"{ch}: notebooks/ differs from `course release` output "
                            f"({len(want)} vs {len(have)} cells; first differing cell {diff[0] if diff else min(len(want), len(have))})")
    extra = released - set(names)
    if extra:
        problems.append(f"notebooks/ has chapters that solutions/ has not: {sorted(extra)}")
    assert not problems, "notebooks/ is out of date; run `course release`:\n" + "\n".join(problems)


@pytest.mark.parametrize("course", sorted(COURSES))
def test_no_solutions_or_hidden_tests_in_release(course):
    root = COURSES[course]
    files = sorted((root / "notebooks").rglob("*.ipynb"))
    if not files:
        pytest.skip("nothing released yet")
    bad = []
    for f in files:
        text = f.read_text()
        for marker in ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS", "BEGIN SOLUTION", "END SOLUTION"):
            if marker in text:
                bad.append(f"{f.relative_to(root)}: contains '{marker}'")
        nb = nbformat.read(f, as_version=4)
        for i, c in enumerate(nb.cells):
            if c.cell_type == "code" and (c.outputs or c.execution_count is not None):
                bad.append(f"{f.relative_to(root)}: cell {i} has outputs (release notebooks are stripped)")
                break
    assert not bad, "\n".join(bad)


@pytest.mark.parametrize("course", sorted(COURSES))
def test_hidden_tests_differ_from_visible(course):
    """Every grade cell with hidden tests keeps some visible checks in front of them (ARCHITECTURE.md, Exercises and their tests)."""
    root = COURSES[course]
    bad = []
    for ch in chapters(root / "solutions"):
        nb = nbformat.read(root / "solutions" / ch / f"{ch}.ipynb", as_version=4)
        for c in nb.cells:
            m = c.metadata.get("nbgrader", {})
            if m.get("grade") and "### BEGIN HIDDEN TESTS" in c.source:
                visible = c.source.split("### BEGIN HIDDEN TESTS")[0].strip()
                hidden = c.source.split("### BEGIN HIDDEN TESTS")[1].split("### END HIDDEN TESTS")[0].strip()
                if not hidden or hidden in visible:
                    bad.append(f"{ch}/{m.get('grade_id')}: hidden tests are empty or repeat the visible ones")
    assert not bad, "\n".join(bad)


def test_every_cell_of_every_notebook_has_a_unique_id():
    """nbformat 4.5 cells carry ids (a missing one is a warning today and an error in later nbformat versions); the
    raw files are read, since nbformat.read fills missing ids in silently."""
    files = sorted((REPO / "solutions").rglob("*.ipynb")) + sorted((REPO / "notebooks").rglob("*.ipynb"))
    assert files
    for f in files:
        ids = [cell.get("id") for cell in json.loads(f.read_text())["cells"]]
        assert None not in ids, f"{f.relative_to(REPO)}: cell {ids.index(None)} has no id"
        assert len(set(ids)) == len(ids), f"{f.relative_to(REPO)}: duplicate cell ids"
