"""Test-session set-up shared by every test file.

* Jupyter and IPython state of the session goes to a temporary folder (JUPYTER_CONFIG_DIR,
  JUPYTER_DATA_DIR, JUPYTER_RUNTIME_DIR, IPYTHONDIR), so the tests neither read a developer's own
  Jupyter settings nor write into them.
* The time each notebook took is printed at the end (``notebook_utils.TIMINGS``).
* "No tests ran" (pytest exit status 5) is turned into a failure: a test command that tests nothing
  must not pass.
"""
from __future__ import annotations

import os
import sys
import tempfile

import pytest

_SESSION_DIR = tempfile.mkdtemp(prefix="course-tests-")
for _var, _sub in {"JUPYTER_CONFIG_DIR": "jupyter-config", "JUPYTER_DATA_DIR": "jupyter-data",
                   "JUPYTER_RUNTIME_DIR": "jupyter-runtime", "IPYTHONDIR": "ipython"}.items():
    os.environ[_var] = os.path.join(_SESSION_DIR, _sub)
    os.makedirs(os.environ[_var], exist_ok=True)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.pop("NBGRADER_EXECUTION", None)


@pytest.fixture(scope="module")
def sessions():
    """``sessions(chapter)``: one graded kernel per chapter (``notebook_utils.graded_session``), opened on
    first use and closed at the end of the test module."""
    from notebook_utils import graded_session

    opened, gens = {}, []

    def get(chapter):
        if chapter not in opened:
            gen = graded_session(chapter)
            opened[chapter] = next(gen)
            gens.append(gen)
        return opened[chapter]

    yield get
    for gen in gens:
        gen.close()


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    from notebook_utils import TIMINGS

    if TIMINGS:
        terminalreporter.section("notebook execution times")
        for name, seconds in sorted(TIMINGS):
            terminalreporter.write_line(f"{seconds:8.1f} s  {name}")
        terminalreporter.write_line(f"{sum(s for _, s in TIMINGS):8.1f} s  total")


def pytest_sessionfinish(session, exitstatus):
    if int(exitstatus) == 5:  # pytest.ExitCode.NO_TESTS_COLLECTED
        print("\nERROR: no tests were collected or run; treating that as a failure.", file=sys.stderr)
        session.exitstatus = 1
    import shutil

    shutil.rmtree(_SESSION_DIR, ignore_errors=True)
