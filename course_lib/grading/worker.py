"""One learner's grading, in a process of its own: nbgrader's autograde, then its feedback.

``python -m course_lib.grading.worker WORKDIR CHAPTER STUDENT [--no-feedback]`` runs in WORKDIR, an
nbgrader course folder made for this learner alone (its ``nbgrader_config.py``, a private copy of the
gradebook, ``submitted/``); the grading kernel it starts runs in the sandbox and sees none of it. One
process for both steps saves an nbgrader start-up per learner. Exit status: 0, or ``FEEDBACK_FAILED``
when the scores are in the gradebook but the feedback could not be made (the scores still count).
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

FEEDBACK_FAILED = 3


def _quiet_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", module="nbformat")
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy autoflush noise


def _run_app(app_cls, chapter: str, student: str) -> int:
    app = app_cls()
    try:
        app.initialize([chapter, "--student", student, "--force"])
        app.start()
    except SystemExit as e:
        if e.code not in (0, None):
            return int(e.code) if isinstance(e.code, int) else 1
    finally:
        app_cls.clear_instance()
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m course_lib.grading.worker")
    p.add_argument("workdir")
    p.add_argument("chapter")
    p.add_argument("student")
    p.add_argument("--no-feedback", action="store_true")
    a = p.parse_args(argv)
    os.chdir(a.workdir)
    _quiet_warnings()
    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp

    rc = _run_app(AutogradeApp, a.chapter, a.student)
    if rc != 0 or a.no_feedback:
        return rc
    try:
        rc = _run_app(GenerateFeedbackApp, a.chapter, a.student)
    except Exception:  # noqa: BLE001 - nbgrader raised instead of exiting; the scores are saved
        rc = 1
    return 0 if rc == 0 else FEEDBACK_FAILED


def _kill_tree(pid: int) -> None:
    import psutil

    try:
        parent = psutil.Process(pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for proc in procs:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def run(workdir: Path, chapter: str, student: str, *, feedback: bool, timeout: float,
        env: dict) -> tuple[int | None, str]:
    """Run the worker for one learner; (exit status or None if it ran out of time, its log)."""
    cmd = [sys.executable, "-m", "course_lib.grading.worker", str(workdir), chapter, student]
    if not feedback:
        cmd.append("--no-feedback")
    log = Path(workdir) / "grading.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, cwd=workdir, env=env, stdout=fh, stderr=subprocess.STDOUT,
                                start_new_session=True)
        try:
            rc = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _kill_tree(proc.pid)
            proc.wait()
            rc = None
    return rc, log.read_text(errors="replace")


if __name__ == "__main__":
    sys.exit(main())
