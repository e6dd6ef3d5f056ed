"""Do widget chapters ever stall under nbclient? Every chapter that builds widgets, N times in a row.

    .venv/bin/python benchmarks/bench_hangs.py                              # every widget chapter, 30 runs each
    .venv/bin/python benchmarks/bench_hangs.py ch03_transformer ch04_pretraining --runs 10
    .venv/bin/python benchmarks/bench_hangs.py --client nbclient            # the unfixed harness: it stalls
    .venv/bin/python benchmarks/bench_hangs.py --client grader              # nbgrader's executor (GuardedExecute)
    .venv/bin/python benchmarks/bench_hangs.py minimal --client nbclient    # the two patterns, reduced

The widget chapters are found, not listed: chapters in solutions/ with a code cell that builds widgets
(``notebook_utils.widget_chapters``). Each run is a fresh kernel on a copy of the chapter's folder with
``NBGRADER_EXECUTION=autograde`` (the long demos are token-sized, as when grading), run top to bottom; runs go
round-robin over the chapters. Clients (``--client``):

* ``fixed`` (default): the test harness, ``tests/support/notebook_utils.NotebookSession``, whose client is
  ``course_lib.grading.execution.CourseNotebookClient`` (nbclient + the stall fix);
* ``nbclient``: the same harness with plain ``nbclient.NotebookClient`` (the harness before the fix);
* ``grader``: nbgrader's executor as the course configures it, ``GuardedExecute`` (which mixes in the fix,
  ``ReliableShellMixin``), running the notebook through its ``preprocess``, as ``nbgrader autograde`` does;
* ``grader-unfixed``: ``GuardedExecute`` with the mixin's shell-channel guard skipped (the grader before the fix).

A hang is counted, never waited out: a watchdog (``notebook_utils.stall_watching``) records a cell whose
execute_reply has not reached the client ``--stall-after`` seconds (default 5) after the kernel reported idle
for it (it normally arrives just before the idle message), says whether the reply was already sitting in the
shell socket, and re-arms the socket so the run goes on (the unfixed client would otherwise sit until the
per-cell timeout and then carry on without an error). A per-cell timeout (``--cell-timeout``, default 120 s as
in nbgrader_config.py) with ``raise_on_iopub_timeout`` counts any other stall. Printed: runs, runs that hung,
stalled cells, the fixed client's lost wake-ups (waits the 1 s slicing had to rescue; 0 = the re-arm alone
did it), and the median run time. Exits 1 if anything hung or failed. Stopped early (Ctrl-C or SIGTERM), it
prints the same summary for the runs that completed.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path

import nbformat

import importlib.util as _importlib_util  # noqa: E402

# benchmarks/_support.py, loaded by its file: works for `python benchmarks/x.py` and for runpy.run_path alike

_spec = _importlib_util.spec_from_file_location("_support", Path(__file__).resolve().with_name("_support.py"))
_support = _importlib_util.module_from_spec(_spec)
_spec.loader.exec_module(_support)
test_support = _support.test_support

ROOT = Path(__file__).resolve().parents[1]
notebook_utils = test_support("notebook_utils")
SOLUTIONS, NotebookError, NotebookSession = (notebook_utils.SOLUTIONS, notebook_utils.NotebookError,
                                             notebook_utils.NotebookSession)
chapter_path, isolated_env, stall_watching = (notebook_utils.chapter_path, notebook_utils.isolated_env,
                                              notebook_utils.stall_watching)
widget_chapters, write_minimal_widget_notebook = (notebook_utils.widget_chapters,
                                                  notebook_utils.write_minimal_widget_notebook)

CLIENTS = ("fixed", "nbclient", "grader", "grader-unfixed")
ENV = {"NBGRADER_EXECUTION": "autograde"}


_MINIMAL: list[Path] = []


def notebook_of(name: str) -> Path:
    """A chapter of solutions/, ``minimal`` (the two widget patterns reduced to a notebook:
    notebook_utils.MINIMAL_WIDGET_CELLS) or the path of any notebook."""
    if name == "minimal":
        if not _MINIMAL:
            _MINIMAL.append(write_minimal_widget_notebook(Path(tempfile.mkdtemp(prefix="hang-minimal-"))))
        return _MINIMAL[0]
    return Path(name) if name.endswith(".ipynb") else chapter_path(name, SOLUTIONS)


def run_harness(chapter: str, client: str, cell_timeout: int, stall_after: float) -> dict:
    """One top-to-bottom run with tests/support/notebook_utils.NotebookSession."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    client_class = NotebookClient if client == "nbclient" else None  # None: the harness's own (fixed) client
    t0 = time.perf_counter()
    failure = None
    with NotebookSession(notebook_of(chapter), timeout=cell_timeout, env=ENV, client_class=client_class,
                         client_kwargs={"raise_on_iopub_timeout": True}, watch_stalls=stall_after) as s:
        try:
            s.run_all()
        except CellTimeoutError as e:
            failure = f"timeout: {str(e).splitlines()[0]}"
        except (DeadKernelError, NotebookError) as e:
            failure = f"error: {str(e).splitlines()[0]}"
        stalls, lost = s.stalls, getattr(s.client, "lost_wakeups", 0)
    return {"seconds": time.perf_counter() - t0, "stalls": stalls, "lost_wakeups": lost, "failure": failure}


def grader_class(fixed: bool):
    from nbclient.util import run_sync

    from course_lib.grading.execution import ReliableShellMixin
    from course_lib.grading.preprocessors import GuardedExecute

    if fixed:
        return stall_watching(GuardedExecute)

    class UnguardedExecute(GuardedExecute):
        """GuardedExecute without the shell-channel guard that ReliableShellMixin adds (the grader before the fix)."""

        async def async_start_new_kernel_client(self):
            return await super(ReliableShellMixin, self).async_start_new_kernel_client()

        start_new_kernel_client = run_sync(async_start_new_kernel_client)

    return stall_watching(UnguardedExecute)


def run_grader(chapter: str, client: str, cell_timeout: int, stall_after: float) -> dict:
    """One run through GuardedExecute.preprocess, as nbgrader autograde runs it: in the bubblewrap sandbox, the
    chapter's folder as the submitted files, a snapshot of course_lib as the library (the kernel inherits this
    process's environment, which is pointed at a scratch HOME for the run)."""
    from course_lib.grading import sandbox

    with tempfile.TemporaryDirectory(prefix=f"hang-{Path(chapter).stem}-") as tmp:
        rundir = Path(tmp) / "run"
        shutil.copytree(notebook_of(chapter).parent, rundir,
                        ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        site = sandbox.snapshot_course_lib(Path(tmp) / "site")
        saved = dict(os.environ)
        os.environ.clear()
        os.environ.update(isolated_env(Path(tmp) / "home", ENV))
        try:
            ep = grader_class(fixed=client == "grader")(timeout=cell_timeout, sandbox_files=str(rundir),
                                                        sandbox_site=str(site))
            ep.stall_after = stall_after
            nb = nbformat.read(rundir / notebook_of(chapter).name, as_version=4)
            t0 = time.perf_counter()
            ep.preprocess(nb, {"metadata": {"path": str(rundir)}})
            seconds = time.perf_counter() - t0
        finally:
            os.environ.clear()
            os.environ.update(saved)
    errors = [(i, o.get("ename")) for i, c in enumerate(nb.cells) if c.cell_type == "code"
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    failure = None
    if errors:
        kind = "timeout" if any(e == "CellTimeoutError" for _, e in errors) else "error"
        failure = f"{kind}: " + ", ".join(f"cell {i} {e}" for i, e in errors[:3])
    return {"seconds": seconds, "stalls": ep.stalls, "lost_wakeups": getattr(ep, "lost_wakeups", 0),
            "failure": failure}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("chapters", nargs="*",
                    help="chapter folders, 'minimal' or .ipynb paths (default: every chapter in solutions/ that builds widgets)")
    ap.add_argument("--runs", type=int, default=30, help="runs per chapter (default 30)")
    ap.add_argument("--client", choices=CLIENTS, default="fixed", help="which client executes (default: fixed)")
    ap.add_argument("--cell-timeout", type=int, default=120, help="per-cell timeout in seconds (default 120)")
    ap.add_argument("--stall-after", type=float, default=5.0,
                    help="seconds after the kernel's idle without a reply that count as a hang (default 5)")
    args = ap.parse_args()
    names = args.chapters or widget_chapters(SOLUTIONS)
    unknown = [c for c in names if not notebook_of(c).is_file()]
    if unknown:
        ap.error(f"no solution notebook for {unknown}; widget chapters are {widget_chapters(SOLUTIONS)}")
    if args.runs < 1:
        ap.error("--runs must be at least 1")
    run = run_grader if args.client.startswith("grader") else run_harness

    print(f"client {args.client}; {args.runs} runs of {', '.join(names)}; NBGRADER_EXECUTION=autograde; "
          f"per-cell timeout {args.cell_timeout} s; a reply missing {args.stall_after:g} s after idle = a hang",
          flush=True)
    results: dict[str, list[dict]] = {c: [] for c in names}
    # `kill` (SIGTERM) stops the loop like Ctrl-C does, so a stopped loop still prints its counts
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        for r in range(args.runs):
            for chapter in names:
                res = run(chapter, args.client, args.cell_timeout, args.stall_after)
                results[chapter].append(res)
                notes = [str(s) for s in res["stalls"]] + ([res["failure"]] if res["failure"] else [])
                print(f"run {r + 1}/{args.runs}  {chapter:<20} {res['seconds']:7.1f} s  "
                      f"{'HANG ' if res['stalls'] or (res['failure'] or '').startswith('timeout') else ''}"
                      f"{'; '.join(notes)}", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: the counts below are of the runs that completed", flush=True)
        names = [c for c in names if results[c]]
        if not names:
            return 1

    print(f"\n{'chapter':<20} {'runs':>5} {'hung':>5} {'stalled cells':>14} {'lost wake-ups':>14} "
          f"{'failed':>7} {'median run':>11}")
    bad = False
    for chapter in names:
        rs = results[chapter]
        hung = sum(bool(x["stalls"]) or (x["failure"] or "").startswith("timeout") for x in rs)
        failed = sum(bool(x["failure"]) for x in rs)
        bad |= bool(hung or failed)
        print(f"{chapter:<20} {len(rs):>5} {hung:>5} {sum(len(x['stalls']) for x in rs):>14} "
              f"{sum(x['lost_wakeups'] for x in rs):>14} {failed:>7} {statistics.median(x['seconds'] for x in rs):>10.1f}s")
    print("verdict:", "HANGS" if bad else "no hangs")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
