"""The learner's commands: ``course lab`` (their own copy of the course, in JupyterLab) and ``course check``."""
from __future__ import annotations

import argparse

from .options import Command, add_options, given

LAB_OPTIONS = {
    "my_work": {"flag": "--dir", "help": "your work folder (default: my-work/ in the course checkout)"},
    "port": "port (0: the first free one from 8888)",
    "ip": "address to listen on",
    "token": "access token (default: a random one, printed in the URL)",
    "open_browser": {"flag": "--no-browser", "help": "do not open a browser"},
    "dry_run": "prepare the folder and print the URL only",
}


def _lab_arguments(p):
    from ..course.lab import lab

    add_options(p, lab, LAB_OPTIONS)
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="after --: more options for jupyter lab")


def _lab(args) -> int:
    from ..course.lab import lab

    extra = args.jupyter_args[1:] if args.jupyter_args[:1] == ["--"] else args.jupyter_args
    return lab(**given(args, LAB_OPTIONS), jupyter_args=extra)


CHECK_OPTIONS = {
    "chapter": "chapter, when the file name does not tell",
    "source": "where the tests come from (default notebooks/: the visible tests; instructors: solutions/ for the "
              "hidden tests too, the default for a notebook in solutions/)",
}
#: the grading limits, shared by `course check` and `course grade`
LIMIT_OPTIONS = {
    "cell_timeout": {"flag": "--timeout", "type": int,
                     "help": "per-cell time limit in seconds (default: nbgrader_config.py's)"},
    "memory_limit": "address-space limit of each grading kernel, e.g. 4G (default: nbgrader_config.py's)",
}


def _check_arguments(p):
    from ..grading.pipeline import check

    p.add_argument("notebook", help="your notebook, e.g. my-work/ch02_attention/ch02_attention.ipynb")
    add_options(p, check, {**CHECK_OPTIONS, **LIMIT_OPTIONS})


def _check(args) -> int:
    from ..grading.pipeline import check

    return check(args.notebook, **given(args, {**CHECK_OPTIONS, **LIMIT_OPTIONS}))


COMMANDS = (
    Command("lab", "copy the course into your own folder (first time; later only new chapters) and open JupyterLab "
                   "there", _lab_arguments, _lab,
            description="Start JupyterLab on your personal copy of the course (my-work/ by default). Chapters you "
                        "already have are never overwritten; new chapters are added."),
    Command("check", "run your notebook the way the autograder will and show points per exercise",
            _check_arguments, _check,
            description="Grade NOTEBOOK like the autograder (fresh kernel, locked cells restored, top to bottom) and "
                        "print, per exercise, points earned/possible and the failure message. Exit status 1 if any "
                        "autograded exercise failed."),
)
