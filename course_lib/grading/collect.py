"""Finding the submissions: a folder or a .zip of learner notebooks, in the layouts instructors get.

``<student>_<chapter>.ipynb`` anywhere inside (as most learning platforms export them), nbgrader's
``<student>/<chapter>/<chapter>.ipynb`` (from ``nbgrader collect``; other notebooks beside it are reported as
copies, not graded), ``<student>/<chapter>.ipynb``, and with a single chapter a plain ``<student>.ipynb``.
Student ids are letters, digits, ``.``, ``-`` and ``_`` (matched whole).
"""
from __future__ import annotations

import os
import re
import shutil
import zipfile
from dataclasses import dataclass
from pathlib import Path

STUDENT_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


@dataclass
class Submission:
    student: str
    chapter: str
    path: Path
    origin: str  # how it was named in SUBMISSIONS


# --- 1. collect ---------------------------------------------------------------------------------------
def _safe_extract(zpath: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zpath) as zf:
        for info in zf.infolist():
            name = info.filename
            target = (dest / name).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
                raise ValueError(f"refusing unsafe path in zip: {name!r}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return dest


def find_submissions(path: Path, known: list[str], only: list[str] | None = None,
                     workdir: Path | None = None) -> tuple[list[Submission], list[str]]:
    """Learner notebooks in a folder or zip. Returns (submissions, skipped file descriptions)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{path} is neither a folder nor a zip file")
        base = _safe_extract(path, (workdir or path.parent) / ".incoming")
    else:
        base = path
    wanted = set(only or known)
    found: dict[tuple[str, str], Submission] = {}
    skipped: list[str] = []
    for f in sorted(base.rglob("*.ipynb")):
        rel = f.relative_to(base)
        if ".ipynb_checkpoints" in rel.parts or any(p.startswith("__MACOSX") for p in rel.parts):
            continue
        student = chapter = None
        parts = rel.parts
        # nbgrader layout: [...]/<student>/<chapter>/<chapter>.ipynb (another notebook there is a copy,
        # graded only when the chapter's own is missing)
        if len(parts) >= 3 and parts[-2] in known:
            student, chapter = parts[-3], parts[-2]
            others = sorted(g.name for g in f.parent.glob("*.ipynb") if g != f)
            if f.stem != chapter and (f"{chapter}.ipynb" in others or any(o < f.name for o in others)):
                skipped.append(f"{rel}: a copy beside {student}'s notebook for {chapter}, not graded")
                continue
        # <student>/<chapter>.ipynb
        elif len(parts) >= 2 and f.stem in known:
            student, chapter = parts[-2], f.stem
        else:
            # <student>_<chapter>.ipynb: longest known chapter name that ends the file name
            for ch in sorted(known, key=len, reverse=True):
                if f.stem.endswith("_" + ch) and len(f.stem) > len(ch) + 1:
                    student, chapter = f.stem[: -len(ch) - 1], ch
                    break
            if student is None and only and len(only) == 1:
                student, chapter = f.stem, only[0]
        if student is None:
            skipped.append(f"{rel}: name does not match <student>_<chapter>.ipynb")
            continue
        if chapter not in wanted:
            continue
        if not STUDENT_RE.fullmatch(student):
            skipped.append(f"{rel}: student id {student!r} has characters other than letters, digits, . - _")
            continue
        key = (student, chapter)
        if key in found:
            skipped.append(f"{rel}: second submission of {student}/{chapter} (kept {found[key].origin})")
            continue
        found[key] = Submission(student, chapter, f, str(rel))
    subs = sorted(found.values(), key=lambda s: (s.chapter, s.student))
    return subs, skipped


def submission_extras(path: Path, chapter: str) -> list[Path]:
    """In nbgrader's layout (<student>/<chapter>/<chapter>.ipynb), the files that travel with the notebook:
    timestamp.txt (late penalties), submission_secret.txt (release_feedback needs it), data files."""
    folder = Path(path).parent
    if folder.name != chapter:
        return []
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix != ".ipynb")


