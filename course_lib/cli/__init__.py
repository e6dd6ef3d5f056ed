"""The ``course`` command: one parser per audience.

    learner     course lab, course check            (course_lib/cli/learner.py)
    instructor  course release, course grade        (course_lib/cli/instructor.py)
    models      course pretrain, course finetune    (course_lib/cli/models.py)

Each command's options and their defaults come from the signature of the library function (or the settings
dataclass) that it runs (:mod:`course_lib.cli.options`), so a default is written once, in the library. A command's
options are only built when that command runs (they import the library: torch, nbgrader), so ``course --help``
starts in a fraction of a second.

Bad input is reported by raising ``ValueError`` or ``FileNotFoundError`` with a message that says what was wrong and
what to do: :func:`main` prints it as ``course NAME: error: ...`` (exit status 2, like a bad option) instead of a
traceback; ``COURSE_DEBUG=1`` shows the traceback too.
"""
from __future__ import annotations

import argparse
import os
import sys

from . import instructor, learner, models
from .options import Command

AUDIENCES = (learner, instructor, models)


def commands() -> dict[str, Command]:
    return {cmd.name: cmd for audience in AUDIENCES for cmd in audience.COMMANDS}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole parser; with ``only``, the options of that command alone are built (the others list their help)."""
    parser = argparse.ArgumentParser(
        prog="course", description="The course's command line: learners use `lab` and `check`, instructors "
                                   "`release` and `grade`, and `pretrain` / `finetune` make the models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for cmd in commands().values():
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.description or cmd.help)
        if only is None or only == cmd.name:
            cmd.add_arguments(p)
        p.set_defaults(run=cmd.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    chosen = next((a for a in argv if not a.startswith("-")), "")  # "": no command's options (`course --help`)
    parser = build_parser(only=chosen)
    args = parser.parse_args(argv)
    if not getattr(args, "run", None):
        parser.print_help()
        return 2
    try:
        rc = args.run(args)
    except (ValueError, FileNotFoundError) as e:
        if os.environ.get("COURSE_DEBUG"):
            raise
        print(f"course {args.command}: error: {e}", file=sys.stderr)
        return 2
    return int(rc or 0)
