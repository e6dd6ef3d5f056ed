"""Where the course's things are: the checkout, its nbgrader config, the chapters of a source or release folder.

Standard library only (``course --help`` must stay fast).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

NOTEBOOK_SUFFIX = ".ipynb"


def repo_root() -> Path:
    """The course checkout: $COURSE_ROOT, else the current folder if it is a course checkout, else the
    checkout this package was installed (editable) from."""
    env = os.environ.get("COURSE_ROOT")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd()
    if (cwd / "nbgrader_config.py").is_file() and (cwd / "solutions").is_dir():
        return cwd.resolve()
    here = Path(__file__).resolve().parents[2]
    if (here / "nbgrader_config.py").is_file():
        return here
    return cwd.resolve()


def course_config(root: Path | None = None) -> Path:
    return (root or repo_root()) / "nbgrader_config.py"


def chapters(source: Path) -> list[str]:
    """Assignment names under an nbgrader source/release folder: every sub-folder holding a notebook
    named after it (``chNN_topic/chNN_topic.ipynb``), sorted."""
    source = Path(source)
    if not source.is_dir():
        return []
    return sorted(d.name for d in source.iterdir()
                  if d.is_dir() and not d.name.startswith(".") and (d / f"{d.name}{NOTEBOOK_SUFFIX}").is_file())


def chapter_notebook(folder: Path, chapter: str) -> Path:
    return Path(folder) / chapter / f"{chapter}{NOTEBOOK_SUFFIX}"


def resolve_chapters(names: list[str] | None, available: list[str]) -> list[str]:
    """Match user-given chapter names (``ch02``, ``2``, ``ch02_attention``) against the available ones."""
    if not names:
        return list(available)
    out = []
    for name in names:
        name = name.strip().rstrip("/")
        cand = [c for c in available if c == name]
        if not cand:
            m = re.fullmatch(r"(?:ch)?0*(\d+)", name)
            if m:
                cand = [c for c in available if re.match(rf"[a-z]*0*{int(m.group(1))}_", c)]
        if not cand:
            cand = [c for c in available if c.startswith(name)]
        if len(cand) != 1:
            raise SystemExit(f"unknown chapter {name!r}; available: {', '.join(available) or '(none)'}")
        out.append(cand[0])
    return out
