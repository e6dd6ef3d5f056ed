"""Merging one learner's results into the class gradebook, ``OUT/gradebook.db``, and nbgrader's folders.

Each learner is graded with a private copy of the gradebook (``worker``), so learners can be graded in
parallel without sharing a SQLite file; this module, called serially by the pipeline, is the only
writer of the class gradebook. Scores come from the pipeline's result, not from the worker's database.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from .collect import submission_extras


def _copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    if src.exists():
        shutil.copytree(src, dst)


def merge(result: dict, out: Path, keep_work: bool = False) -> None:
    """Bring one learner's worker results into OUT (serially: the only writer of OUT/gradebook.db)."""
    from nbgrader.api import Gradebook

    s, ch = result["student"], result["chapter"]
    # the learner's original file (not our sanitized copy): nbgrader release_feedback hashes it
    original = Path(result["path"])
    sub_dir = out / "submitted" / s / ch
    if original.parent.resolve() != sub_dir.resolve():
        if sub_dir.exists():
            shutil.rmtree(sub_dir)
        sub_dir.mkdir(parents=True)
        shutil.copy(original, sub_dir / f"{ch}.ipynb")
        for extra in submission_extras(original, ch):
            shutil.copy(extra, sub_dir / extra.name)
    if result.get("workdir"):
        work = Path(result["workdir"])
        for step in ("autograded", "feedback"):
            _copy_tree(work / step / s / ch, out / step / s / ch)
    with Gradebook("sqlite:///" + str(out / "gradebook.db")) as gb:
        gb.update_or_create_student(s)
        gb.update_or_create_submission(ch, s)
        raw = result.get("grades_raw", {})
        for c in result["cells"]:
            g = gb.find_grade(c["grade_id"], result["notebook"], ch, s)
            if c["grade_id"] in raw:
                g.auto_score = raw[c["grade_id"]]["auto_score"]
                g.needs_manual_grade = bool(raw[c["grade_id"]]["needs_manual_grade"]) or g.manual_score is not None
            else:
                g.auto_score = 0.0
                g.needs_manual_grade = g.manual_score is not None
        for name, text in result.get("comments_raw", {}).items():
            try:
                gb.find_comment(name, result["notebook"], ch, s).auto_comment = text
            except Exception:  # noqa: BLE001 - a comment row that does not exist
                pass
        gb.db.commit()
    if result.get("workdir") and not keep_work:
        shutil.rmtree(result["workdir"], ignore_errors=True)
