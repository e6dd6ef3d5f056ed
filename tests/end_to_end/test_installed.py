"""A regular (non-editable) install of the package works when its files are read-only: nothing in course_lib writes
into its own folder at run time. The package is installed into a fresh virtual environment that borrows this
environment's dependencies (a path entry, so this environment's own, editable course_lib stays out of sight);
its course_lib is made read-only, and then the learner's and the maintainers' commands run from there."""
from __future__ import annotations

import ast
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from notebook_utils import REPO

pytestmark = pytest.mark.slow


def _run(cmd, **kwargs):
    kwargs.setdefault("env", _env())
    p = subprocess.run([str(c) for c in cmd], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kwargs)
    assert p.returncode == 0, f"{' '.join(map(str, cmd))} failed ({p.returncode}):\n{p.stdout[-4000:]}"
    return p.stdout


def _notebook_imports() -> str:
    """Every course_lib import statement of the solution notebooks' code cells."""
    lines = set()
    for nb in sorted((REPO / "solutions").glob("ch*/ch*.ipynb")):
        for cell in json.loads(nb.read_text())["cells"]:
            if cell["cell_type"] != "code":
                continue
            try:
                tree = ast.parse("".join(cell["source"]))
            except SyntaxError:  # IPython magics
                continue
            for node in ast.walk(tree):
                if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib") or \
                        isinstance(node, ast.Import) and any(a.name.startswith("course_lib") for a in node.names):
                    lines.add(ast.unparse(node))
    assert len(lines) > 5, lines
    return "\n".join(sorted(lines))


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(the new environment's bin folder, its read-only course_lib folder)."""
    tmp = tmp_path_factory.mktemp("installed")
    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", venv])
    python = venv / "bin" / "python"
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip())
    (site / "borrowed-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    source = tmp / "source"  # a copy: building in the checkout would leave build/ and *.egg-info there
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        source.mkdir(exist_ok=True)
        shutil.copy(REPO / name, source / name)
    shutil.copytree(REPO / "course_lib", source / "course_lib", ignore=shutil.ignore_patterns("__pycache__", "*.lock"))
    # the wheel is built by this environment's setuptools (the new one's own may be too old), installed by the new pip
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index", "-w",
          tmp / "wheels", source], cwd=tmp, timeout=600)
    (wheel,) = (tmp / "wheels").glob("course_lib-*.whl")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", wheel], cwd=tmp, timeout=600)
    package = site / "course_lib"
    where = _run([python, "-c", "import course_lib; print(course_lib.__file__)"], cwd=tmp).strip()
    assert Path(where).parent == package, f"the new environment imports course_lib from {where}"
    for path in [package, *package.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))
    before = _snapshot(package)
    yield venv / "bin", package
    # root may write into read-only folders: what is there must also be exactly what the install put there
    assert _snapshot(package) == before, "a command wrote into the installed package"
    for path in [package, *package.rglob("*")]:  # let pytest clean up its temporary folder
        path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _snapshot(package: Path) -> dict:
    return {str(p.relative_to(package)): (p.stat().st_size, p.stat().st_mtime_ns) for p in package.rglob("*")}


def _env(tmp_path=None):
    """This environment without what would let the new one import another course_lib."""
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "COURSE_ROOT")}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    # the new environment borrows its dependencies' code (the .pth above) but not their commands: nbgrader runs
    # `alembic` from PATH, which a real install would have put into the new environment's bin/
    env["PATH"] = os.pathsep.join([env.get("PATH", ""), str(Path(sys.executable).parent)])
    env.setdefault("COURSE_LIB_CACHE", str(Path.home() / ".cache" / "course_lib"))
    return env


def test_the_notebooks_imports_work(installed, tmp_path):
    bin_dir, _ = installed
    _run([bin_dir / "python", "-c", _notebook_imports()], cwd=tmp_path, env=_env(tmp_path), timeout=600)


def test_course_check_grades_a_solution_notebook(installed, tmp_path):
    bin_dir, _ = installed
    notebook = REPO / "solutions" / "ch02_attention" / "ch02_attention.ipynb"
    # --source solutions: the solution's cells hold the hidden tests too, so they are compared with the source
    out = _run([bin_dir / "course", "check", notebook, "--source", REPO / "solutions"], cwd=REPO, env=_env(tmp_path),
               timeout=900)
    assert "total: 22/22 points" in out or ("total:" in out and "✗" not in out), out


def test_finetune_help_and_a_short_pretraining_run_write_only_into_out(installed, tmp_path):
    bin_dir, package = installed
    assert "--out" in _run([bin_dir / "course", "finetune", "--help"], cwd=tmp_path, env=_env(tmp_path), timeout=300)
    _run([bin_dir / "course", "pretrain", "--steps", "2", "--out", "tmp", "--preset", "tiny", "--batch-size", "4",
          "--max-length", "32", "--eval-every", "1000", "--threads", "1"], cwd=tmp_path, env=_env(tmp_path),
         timeout=900)
    assert (tmp_path / "tmp" / "checkpoint" / "model.safetensors").is_file()
    assert not any(p.stat().st_mode & stat.S_IWUSR for p in [package, *package.rglob("*")])
