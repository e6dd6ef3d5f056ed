"""``course release``: the learner notebooks (notebooks/) generated from the instructor sources (solutions/)."""
from __future__ import annotations

from pathlib import Path

from .layout import chapter_notebook, chapters, repo_root, resolve_chapters
from .nbgrader_apps import run_nbgrader_many, write_nbgrader_config


def release(chapter_names: list[str] | None = None, *, source: Path | None = None, to: Path | None = None,
            quiet: bool = False) -> list[Path]:
    """Regenerate the learner notebooks from the instructor sources with ``nbgrader generate_assignment``.

    Default: every chapter of ``solutions/`` into ``notebooks/``, recording the assignments in the
    course gradebook. With ``source``/``to`` (used by the tests), a throw-away nbgrader course folder is
    used instead, so the course's own gradebook is not touched."""
    root = repo_root()
    source = Path(source).resolve() if source else root / "solutions"
    names = resolve_chapters(chapter_names, chapters(source))
    if not names:
        raise SystemExit(f"no chapters found in {source}")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="course-release-") as tmp:
        if to is None and source == root / "solutions":
            cwd, dest = root, root / "notebooks"
            (root / "grading").mkdir(exist_ok=True)
        else:
            dest = Path(to).resolve() if to else source.parent / "notebooks"
            cwd = Path(tmp)
            write_nbgrader_config(cwd, source=source, release=dest, root=root)
        if not quiet:
            print(f"release {', '.join(names)} -> {dest}", flush=True)
        run_nbgrader_many("generate_assignment", names, cwd=cwd, args=["--force"])
        out = [chapter_notebook(dest, ch) for ch in names]
    for nb in out:
        _normalise_release(nb)
    return out


def _normalise_release(path: Path) -> None:
    """Make the generated notebook stable: no outputs, null execution counts, writable."""
    import nbformat

    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
    nbformat.write(nb, path)
    path.chmod(0o644)
