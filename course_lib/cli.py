"""The ``course`` command.

    course lab                      set up your own copy of the notebooks and open JupyterLab
    course release [CHAPTER...]     regenerate notebooks/ from solutions/ (instructors)
    course check NOTEBOOK           grade one notebook the way the autograder will
    course grade SUBMISSIONS        grade a whole class (instructors)

Adding a subcommand (e.g. ``pretrain``, ``finetune``, ``bench``): in a module listed in
``COMMAND_MODULES`` (``course_lib/commands.py`` is imported if it exists), write

    from course_lib.cli import command

    @command("pretrain", help="pretrain a small BERT", target="course_lib.train:pretrain_main")
    def _(p):                       # p: the argparse sub-parser; add this command's options
        p.add_argument("--steps", type=int, default=1000)

``target`` is ``"module:function"``; the function receives the parsed ``argparse.Namespace`` and returns
an exit code (``None`` = 0). It is imported only when its command runs, so ``course --help`` stays fast:
keep the top of a commands module free of heavy imports (torch, transformers).

Bad input is reported by raising ``ValueError`` or ``FileNotFoundError`` with a message that says what was
wrong and what to do: ``main`` prints it as ``course NAME: error: ...`` (exit status 2, like a bad option)
instead of a traceback; ``COURSE_DEBUG=1`` shows the traceback too.
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from dataclasses import dataclass
from typing import Callable

#: modules that register more subcommands with @command when imported (missing ones are skipped)
COMMAND_MODULES = ["course_lib.commands"]


@dataclass
class Command:
    name: str
    help: str
    target: str  # "module:function"
    add_arguments: Callable[[argparse.ArgumentParser], None]
    description: str | None = None


REGISTRY: dict[str, Command] = {}


def command(name: str, *, help: str, target: str, description: str | None = None):
    """Decorator registering a subcommand; the decorated function adds its arguments."""
    def deco(add_arguments):
        REGISTRY[name] = Command(name, help, target, add_arguments, description)
        return add_arguments
    return deco


# --- built-in commands ----------------------------------------------------------------------------
@command("lab", help="copy the course into your own folder (first time; later only new chapters) "
                     "and open JupyterLab there", target="course_lib.course:lab",
         description="Start JupyterLab on your personal copy of the course (my-work/ by default). "
                     "Chapters you already have are never overwritten; new chapters are added.")
def _lab_args(p):
    p.add_argument("--dir", help="your work folder (default: my-work/ in the course checkout)")
    p.add_argument("--port", type=int, default=0, help="port (default: first free from 8888)")
    p.add_argument("--ip", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--token", help="access token (default: a random one, printed in the URL)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--dry-run", action="store_true", help="prepare the folder and print the URL only")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER,
                   help="after --: more options for jupyter lab")


@command("release", help="regenerate notebooks/ from solutions/ with nbgrader (all chapters by default)",
         target="course_lib.cli:_release_main",
         description="Run nbgrader generate_assignment for each chapter: solutions are replaced by "
                     "stubs and hidden tests are removed. Never edit notebooks/ by hand.")
def _release_args(p):
    p.add_argument("chapters", nargs="*", metavar="CHAPTER", help="e.g. ch02_attention, ch02 or 2")
    p.add_argument("--source", help="instructor folder (default solutions/)")
    p.add_argument("--to", help="release folder (default notebooks/; another folder uses a throw-away gradebook)")


def _add_grading_limits(p):
    p.add_argument("--timeout", type=int, default=None,
                   help="per-cell time limit in seconds (default: nbgrader_config.py, 120)")
    p.add_argument("--memory-limit", default=None,
                   help="address-space limit of each grading kernel, e.g. 4G (default: nbgrader_config.py)")


@command("check", help="run your notebook the way the autograder will and show points per exercise",
         target="course_lib.grading.pipeline:check_command",
         description="Grade NOTEBOOK like the autograder (fresh kernel, locked cells restored, top to "
                     "bottom) and print, per exercise, points earned/possible and the failure message. "
                     "Exit status 1 if any autograded exercise failed.")
def _check_args(p):
    p.add_argument("notebook", help="your notebook, e.g. my-work/ch02_attention/ch02_attention.ipynb")
    p.add_argument("--chapter", help="chapter, when the file name does not tell")
    p.add_argument("--source", help="where the tests come from (default notebooks/: the visible tests; "
                                    "instructors: solutions/ for the hidden tests too)")
    _add_grading_limits(p)


@command("grade", help="grade a class: collect, autograde, feedback, CSV and summary",
         target="course_lib.grading.pipeline:grade_command",
         description="SUBMISSIONS: a folder or .zip of learner notebooks named <student>_<chapter>.ipynb "
                     "(e.g. alice_ch02_attention.ipynb), or nbgrader's <student>/<chapter>/<chapter>.ipynb "
                     "layout. Writes OUT/grades.csv (one row per learner and chapter, points per exercise), "
                     "OUT/feedback/<student>/<chapter>/*.html, OUT/summary.txt and the gradebook OUT/gradebook.db.")
def _grade_args(p):
    p.add_argument("submissions", help="folder or .zip with learner notebooks")
    p.add_argument("--chapter", action="append", help="grade only this chapter (repeatable)")
    p.add_argument("--jobs", "-j", type=int, default=1, help="learners graded in parallel (default 1)")
    p.add_argument("--out", help="output folder (default grading/, where formgrader looks)")
    p.add_argument("--source", help="instructor folder (default solutions/)")
    p.add_argument("--learner-timeout", type=float, default=1800,
                   help="wall-clock limit for one learner's notebook in seconds (default 1800)")
    p.add_argument("--no-feedback", action="store_true", help="skip the feedback HTML")
    p.add_argument("--keep-work", action="store_true", help="keep the per-learner work folders (debugging)")
    p.add_argument("--no-sandbox", action="store_true",
                   help="grade without the bubblewrap sandbox (submissions then run with this machine in reach; "
                        "the summary says so)")
    _add_grading_limits(p)


def _release_main(args) -> int:
    from pathlib import Path

    from .course import release

    release(args.chapters, source=Path(args.source) if args.source else None,
            to=Path(args.to) if args.to else None)
    return 0


# --- plumbing -----------------------------------------------------------------------------------------
def _load_plugins() -> None:
    for mod in COMMAND_MODULES:
        try:
            importlib.import_module(mod)
        except ModuleNotFoundError as e:
            if e.name != mod:
                raise


def build_parser() -> argparse.ArgumentParser:
    _load_plugins()
    parser = argparse.ArgumentParser(
        prog="course", description="The course's command line: learners use `lab` and `check`, "
                                   "instructors `release` and `grade`.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in REGISTRY.values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help)
        cmd.add_arguments(p)
        p.set_defaults(_target=cmd.target)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "_target", None):
        parser.print_help()
        return 2
    if getattr(args, "jupyter_args", None) and args.jupyter_args[0] == "--":
        args.jupyter_args = args.jupyter_args[1:]
    module, func = args._target.split(":")
    try:
        rc = getattr(importlib.import_module(module), func)(args)
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("COURSE_DEBUG"):
            raise
        print(f"course {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)


if __name__ == "__main__":
    sys.exit(main())
