"""nbval checks that the deterministic cells of a chapter give the same output on every run.

Notebooks are committed without outputs, so the reference is made here: the solution notebook is executed once
(nbclient, short demos as under grading: NBGRADER_EXECUTION=1) into a temporary copy, and then
`pytest --nbval-lax` runs that copy again cell by cell in a fresh kernel. Every cell must run without an error, and
the cells marked `# NBVAL_CHECK_OUTPUT` (nbval's convention: seeded, no timings, no plots) must print exactly what
the first run printed; a cell that is not seeded, or prints something that changes from run to run, fails.

Each chapter runs twice, so only the cheap chapters take part (CHAPTERS): test_notebooks.py already runs every
chapter once, and CI's 90 minutes do not have room for a second run of the training chapters. Another chapter joins
by adding its name here and marking its deterministic cells.
"""
from __future__ import annotations

import os
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from notebook_utils import REPO, chapter_path

CHAPTERS = ["ch01_background"]
MARK = "# NBVAL_CHECK_OUTPUT"


def _env() -> dict:
    env = dict(os.environ, NBGRADER_EXECUTION="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def _nbval(notebook, cwd) -> subprocess.CompletedProcess:
    """`pytest --nbval-lax` on one notebook, outside this repository's pytest configuration."""
    return subprocess.run([sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-cell-timeout=600", "-q",
                           "-p", "no:cacheprovider", "-c", os.devnull, "--rootdir", str(cwd), str(notebook)],
                          cwd=cwd, env=_env(), capture_output=True, text=True, timeout=1800)


@pytest.mark.slow
@pytest.mark.timeout(2400)
@pytest.mark.parametrize("chapter", CHAPTERS)
def test_deterministic_cells_repeat_their_output(chapter, tmp_path, monkeypatch):
    nb = nbformat.read(chapter_path(chapter), as_version=4)
    checked = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith(MARK)]
    assert len(checked) >= 3, f"{chapter}: mark at least three deterministic cells with {MARK}"
    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(tmp_path)}}).execute()
    assert all(c.outputs for c in checked), f"{chapter}: a cell marked {MARK} printed nothing to compare"
    reference = tmp_path / f"{chapter}.ipynb"
    nbformat.write(nb, reference)
    run = _nbval(reference, tmp_path)
    assert run.returncode == 0, f"nbval found differences or errors in {chapter}:\n{run.stdout[-6000:]}\n{run.stderr[-2000:]}"
    assert f"{len(nb.cells) - sum(c.cell_type != 'code' for c in nb.cells)} passed" in run.stdout, run.stdout[-2000:]


@pytest.mark.slow
def test_nbval_catches_a_changed_output(tmp_path):
    """The comparison is real: a marked cell whose stored output differs fails, an unmarked one does not."""
    nb = nbformat.v4.new_notebook()
    stored = [nbformat.v4.new_output("stream", name="stdout", text="3\n")]   # not what print(1 + 1) prints
    nb.cells = [nbformat.v4.new_code_cell(f"{MARK}\nprint(1 + 1)", outputs=stored, execution_count=1),
                nbformat.v4.new_code_cell("print(1 + 1)", outputs=stored, execution_count=2)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "changed.ipynb"
    nbformat.write(nb, path)
    run = _nbval(path, tmp_path)
    assert run.returncode != 0 and "1 failed, 1 passed" in run.stdout, run.stdout[-3000:]
