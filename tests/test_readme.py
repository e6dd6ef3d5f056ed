"""Every command in README.md's code blocks is real: `course ...` lines parse with the `course` command's
own parser (the commands themselves run in the other tests), `make` targets exist, `nbgrader`
subcommands exist, and the Python snippets compile. What each command does is exercised by
test_cli.py, test_release.py, test_grading_pipeline.py, test_exchange.py and by CI (`make test`)."""
from __future__ import annotations

import re
import shlex
import subprocess
import textwrap

import pytest

from course_lib import cli
from notebook_utils import REPO

README = (REPO / "README.md").read_text()
BLOCKS = re.findall(r"```(\w*)\n(.*?)```", README, flags=re.S)
NBGRADER_APPS = {"db", "release_assignment", "fetch_assignment", "submit", "collect", "generate_feedback",
                 "export", "release_feedback", "fetch_feedback", "generate_assignment", "autograde",
                 "zip_collect", "validate", "list", "formgrader", "quickstart"}


def _commands():
    out = []
    for lang, body in BLOCKS:
        if lang not in ("bash", "sh", ""):
            continue
        for line in body.splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#") and re.match(r"(make|course|nbgrader|mkdir|conda|git)\b", line):
                out.append(line)
    return out


COMMANDS = _commands()


def test_readme_starts_with_the_two_commands():
    first = README.split("```bash\n", 1)[1].split("```", 1)[0]
    assert [ln.split("#")[0].strip() for ln in first.strip().splitlines()] == ["make lab", "make test"]


def test_readme_has_the_sections():
    for heading in ("## Two commands", "## For learners", "## For instructors", "### A whole class on JupyterHub",
                    "## For contributors"):
        assert heading in README


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_is_real(line):
    for part in line.split("&&"):
        words = shlex.split(part.strip())
        if words[0] == "course":
            args = cli.build_parser().parse_args(words[1:])
            assert args.run
        elif words[0] == "make":
            targets = [w for w in words[1:] if "=" not in w and not w.startswith("-")]
            p = subprocess.run(["make", "-n", *targets], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True, timeout=60)
            assert p.returncode == 0, p.stdout
        elif words[0] == "nbgrader":
            assert words[1] in NBGRADER_APPS, words


def test_readme_python_snippets_compile():
    snippets = [body for lang, body in BLOCKS if lang == "python"]
    assert snippets
    for body in snippets:
        compile(textwrap.dedent(body), "README.md", "exec")


def test_readme_links_stay_in_the_repository():
    """Links are web addresses or files of this repository (a clone has nothing beside it)."""
    targets = re.findall(r"\]\(([^)\s]+)\)", README)
    assert targets
    for target in targets:
        if re.match(r"https?://", target):
            continue
        path = (REPO / target.split("#")[0]).resolve()
        assert path.is_relative_to(REPO.resolve()) and path.exists(), f"README links {target}, not a file of the repo"
    assert "../" not in README, "README refers to something outside the repository"
