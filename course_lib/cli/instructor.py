"""The instructor's commands: ``course release`` (notebooks/ from solutions/) and ``course grade`` (a class)."""
from __future__ import annotations

from pathlib import Path

from .learner import LIMIT_OPTIONS
from .options import Command, add_options, given

RELEASE_OPTIONS = {
    "source": "instructor folder (default solutions/)",
    "to": "release folder (default notebooks/; another folder uses a throw-away gradebook)",
}


def _release_arguments(p):
    from ..course.release import release

    p.add_argument("chapters", nargs="*", metavar="CHAPTER", help="e.g. ch02_attention, ch02 or 2")
    add_options(p, release, RELEASE_OPTIONS)


def _release(args) -> int:
    from ..course.release import release

    release(args.chapters, **given(args, RELEASE_OPTIONS))
    return 0


GRADE_OPTIONS = {
    "jobs": {"flag": ("--jobs", "-j"), "help": "learners graded in parallel"},
    "out": {"default": None, "help": "output folder (default grading/, where formgrader looks)"},
    "source": {"default": None, "help": "instructor folder (default solutions/)"},
    "learner_timeout": "wall-clock limit for one learner's notebook in seconds",
    "feedback": {"flag": "--no-feedback", "help": "skip the feedback HTML"},
    "keep_work": "keep the per-learner work folders (debugging)",
    "sandbox": {"flag": "--no-sandbox", "help": "grade without the bubblewrap sandbox (submissions then run with "
                                                "this machine in reach; the summary says so)"},
    **LIMIT_OPTIONS,
}


def _grade_arguments(p):
    from ..grading.pipeline import GradeSettings

    p.add_argument("submissions", help="folder or .zip with learner notebooks")
    p.add_argument("--chapter", action="append", help="grade only this chapter (repeatable)")
    add_options(p, GradeSettings, GRADE_OPTIONS)


def _grade(args) -> int:
    from ..course.layout import repo_root
    from ..grading.pipeline import GradeSettings, grade

    settings = given(args, GRADE_OPTIONS)
    root = repo_root()
    settings["source"] = Path(settings["source"] or root / "solutions")
    settings["out"] = Path(settings["out"] or root / "grading")
    results = grade(Path(args.submissions), GradeSettings(**settings), only=args.chapter)
    return 0 if results else 1


COMMANDS = (
    Command("release", "regenerate notebooks/ from solutions/ with nbgrader (all chapters by default)",
            _release_arguments, _release,
            description="Run nbgrader generate_assignment for each chapter: solutions are replaced by stubs and "
                        "hidden tests are removed. Never edit notebooks/ by hand."),
    Command("grade", "grade a class: collect, autograde, feedback, CSV and summary", _grade_arguments, _grade,
            description="SUBMISSIONS: a folder or .zip of learner notebooks named <student>_<chapter>.ipynb "
                        "(e.g. alice_ch02_attention.ipynb), or nbgrader's <student>/<chapter>/<chapter>.ipynb "
                        "layout. Writes OUT/grades.csv (one row per learner and chapter, points per exercise), "
                        "OUT/feedback/<student>/<chapter>/*.html, OUT/summary.txt and the gradebook OUT/gradebook.db."),
)
