"""The whole grading run behind ``course grade`` and ``course check``.

    course grade SUBMISSIONS [--chapter CH] [--jobs N] [--out DIR]

1. **collect** (``collect``): the learner notebooks in a folder or a .zip.
2. **stage**: ``nbgrader generate_assignment`` records each chapter in ``OUT/gradebook.db`` and writes the
   release version (what learners received) to ``OUT/release/``; a snapshot of ``course_lib`` is copied for
   the sandboxed kernels (``sandbox``).
3. **grade**, one learner per worker process (``worker``), ``--jobs`` at a time: the submission is compared
   with the release (``cells``: tampering reported, metadata slips repaired), then autograded and given
   feedback in its own nbgrader course folder ``OUT/.work/<chapter>/<student>/`` with a private copy of the
   gradebook. Its kernel runs in the sandbox with a per-cell timeout and memory, CPU and output limits;
   the course's preprocessors (``preprocessors``) score it.
4. **merge** (``gradebook``), serially in this process, then the reports (``report``): ``OUT/grades.csv``,
   ``OUT/grades.json``, ``OUT/summary.txt``.
"""
from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..course import chapter_notebook, chapters, repo_root, resolve_chapters, run_nbgrader_many, tool_env, \
    write_nbgrader_config
from . import sandbox, worker
from .cells import cell_failures, find_tampering, grade_cells, read_notebook, restore_metadata
from .collect import Submission, find_submissions, submission_extras
from .gradebook import merge
from .report import fmt_points, plain, summary, totals, write_csv

DEFAULT_LEARNER_TIMEOUT = 1800


@dataclass
class GradeSettings:
    source: Path
    out: Path
    cell_timeout: int | None = None  # None: the course config's
    memory_limit: str | None = None  # None: the course config's
    learner_timeout: float = DEFAULT_LEARNER_TIMEOUT
    jobs: int = 1
    keep_work: bool = False
    feedback: bool = True
    quiet: bool = False
    sandbox: bool = True
    extra_config: dict = field(default_factory=dict)

    def nbgrader_extra(self) -> dict:
        extra = dict(self.extra_config)
        if self.cell_timeout is not None:
            extra["Execute.timeout"] = int(self.cell_timeout)
            extra["ExecutePreprocessor.timeout"] = int(self.cell_timeout)
        if self.memory_limit is not None:
            extra["GuardedExecute.memory_limit"] = str(self.memory_limit)
        # set here, not only in the course's config: a grading run never falls back to nbgrader's defaults
        from .preprocessors import AUTOGRADE_PREPROCESSORS, FEEDBACK_PREPROCESSORS

        extra["Autograde.autograde_preprocessors"] = AUTOGRADE_PREPROCESSORS
        extra["GenerateFeedback.preprocessors"] = FEEDBACK_PREPROCESSORS
        extra["OverwriteCells.add_missing_cells"] = True
        extra["ClearHiddenTestsInGradeCells.enforce_metadata"] = False
        extra["GuardedExecute.sandbox"] = bool(self.sandbox)
        return extra


def _worker_env(workdir: Path, jobs: int) -> dict:
    import os

    extra = {"JUPYTER_RUNTIME_DIR": workdir / ".runtime", "IPYTHONDIR": workdir / ".ipython"}
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if var not in os.environ:
            extra[var] = threads
    return tool_env(extra)


def _new_result(sub: Submission, release_nb) -> dict:
    return {"student": sub.student, "chapter": sub.chapter, "notebook": sub.chapter, "origin": sub.origin,
            "path": str(sub.path), "status": "graded", "message": "", "tampering": [], "slips": [], "review": [],
            "seconds": 0.0, "workdir": None,
            "cells": [dict(c, score=None, error=None) for c in grade_cells(release_nb)]}


def grade_one(sub: Submission, settings: GradeSettings) -> dict:
    """Grade one learner's chapter in its own nbgrader course folder. Never raises for a bad submission."""
    import nbformat

    t0 = time.monotonic()
    out = settings.out
    release_nb = nbformat.read(chapter_notebook(out / "release", sub.chapter), as_version=4)
    result = _new_result(sub, release_nb)
    cells = result["cells"]

    def zero(status: str, message: str) -> dict:
        result["status"], result["message"] = status, plain(message, 500)
        for c in cells:
            c["score"], c["needs_manual_grade"] = 0.0, False
        result["seconds"] = round(time.monotonic() - t0, 2)
        return result

    try:
        sub_nb = read_notebook(sub.path)
    except ValueError as e:
        return zero("invalid", str(e))
    result["tampering"] = find_tampering(release_nb, sub_nb)
    result["slips"] = restore_metadata(release_nb, sub_nb)

    work = out / ".work" / sub.chapter / sub.student
    if work.exists():
        shutil.rmtree(work)
    dest = work / "submitted" / sub.student / sub.chapter
    dest.mkdir(parents=True)
    (work / "files").mkdir()
    nbformat.write(sub_nb, dest / f"{sub.chapter}.ipynb")
    for extra in submission_extras(sub.path, sub.chapter):
        shutil.copy(extra, dest / extra.name)
        shutil.copy(extra, work / "files" / extra.name)  # data files a notebook opens by name
    shutil.copy(out / ".work" / f"{sub.chapter}.template.db", work / "gradebook.db")
    write_nbgrader_config(work, source=settings.source, release=out / "release", extra={
        **settings.nbgrader_extra(), "GuardedExecute.sandbox_files": str(work / "files"),
        "GuardedExecute.sandbox_site": str(out / ".work" / "site")})
    result["workdir"] = str(work)

    rc, log = worker.run(work, sub.chapter, sub.student, feedback=settings.feedback,
                         timeout=settings.learner_timeout, env=_worker_env(work, settings.jobs))
    autograded = chapter_notebook(work / "autograded" / sub.student, sub.chapter)
    if rc is None:
        return zero("error", f"grading took longer than {settings.learner_timeout:.0f} s and was stopped")
    if rc not in (0, worker.FEEDBACK_FAILED) or not autograded.is_file():
        tail = [ln for ln in log.splitlines() if "ERROR" in ln or "Error" in ln][-3:]
        return zero("error", "autograde failed: " + (" | ".join(tail) or f"exit code {rc}"))
    if rc == worker.FEEDBACK_FAILED:
        result["message"] = "the feedback could not be made (the scores count)"

    # scores from the worker's gradebook, reasons from the verdicts and the executed notebook
    from nbgrader.api import Gradebook

    with Gradebook("sqlite:///" + str(work / "gradebook.db")) as gb:
        snb = gb.find_submission_notebook(sub.chapter, sub.chapter, sub.student)
        by_name = {g.name: g for g in snb.grades}
        comments = {c.name: c.auto_comment for c in snb.comments}
        for c in cells:
            g = by_name.get(c["grade_id"])
            if g is None:
                c["score"], c["needs_manual_grade"] = 0.0, False
                continue
            c["auto_score"] = g.auto_score
            c["needs_manual_grade"] = bool(g.needs_manual_grade)
            c["score"] = None if g.manual_score is None and g.auto_score is None else float(g.score)
            c["comment"] = comments.get(c["grade_id"])
        result["grades_raw"] = {g.name: {"auto_score": g.auto_score, "needs_manual_grade": g.needs_manual_grade}
                                for g in snb.grades}
        result["comments_raw"] = comments
    findings_path = work / "findings.json"
    findings = json.loads(findings_path.read_text()) if findings_path.is_file() else {}
    result["tampering"] += [{"grade_id": f["cell"], "what": f["what"]} for f in findings.get("tampering", [])]
    result["review"] = [{"grade_id": f["cell"], "what": f["what"]} for f in findings.get("review", [])]
    fails = {**cell_failures(nbformat.read(autograded, as_version=4)), **findings.get("failures", {})}
    for c in cells:
        if c["kind"] == "auto" and (c["score"] or 0) < c["max"]:
            c["error"] = plain(fails.get(c["grade_id"], "failed"), 1000)
    result["seconds"] = round(time.monotonic() - t0, 2)
    return result


# --- stage + the whole run ------------------------------------------------------------------------------
def stage(chapter_names: list[str], settings: GradeSettings) -> None:
    """Record the chapters in OUT/gradebook.db, write their release versions to OUT/release, keep a
    template gradebook per chapter for the workers, and snapshot course_lib for the sandboxed kernels."""
    out = settings.out
    (out / ".work").mkdir(parents=True, exist_ok=True)
    write_nbgrader_config(out, source=settings.source, release="release", extra=settings.nbgrader_extra())
    run_nbgrader_many("generate_assignment", chapter_names, cwd=out, args=["--force"],
                      log=out / ".work" / "stage.log")
    for ch in chapter_names:
        shutil.copy(out / "gradebook.db", out / ".work" / f"{ch}.template.db")
    sandbox.snapshot_course_lib(out / ".work" / "site")


def _failed_result(sub: Submission, out: Path, message: str) -> dict:
    import nbformat

    r = _new_result(sub, nbformat.read(chapter_notebook(out / "release", sub.chapter), as_version=4))
    r["status"], r["message"] = "error", plain(message, 500)
    for c in r["cells"]:
        c["score"], c["needs_manual_grade"] = 0.0, False
    return r


def grade(submissions: Path, settings: GradeSettings, only: list[str] | None = None) -> list[dict]:
    t0 = time.monotonic()
    worker._quiet_warnings()
    if settings.sandbox and (reason := sandbox.unavailable_reason()):
        raise ValueError(reason)
    out = settings.out = Path(settings.out).resolve()
    settings.source = Path(settings.source).resolve()
    out.mkdir(parents=True, exist_ok=True)
    known = chapters(settings.source)
    only = resolve_chapters(only, known) if only else None
    subs, skipped = find_submissions(Path(submissions), known, only, workdir=out / ".work")
    say = (lambda *a: None) if settings.quiet else (lambda *a: print(*a, flush=True))
    if not subs:
        say("no submissions found")
        for s in skipped:
            say("  skipped", plain(s))
        return []
    needed = sorted({s.chapter for s in subs})
    say(f"{len(subs)} submissions ({', '.join(needed)}); staging ...")
    if not settings.sandbox:
        say("WARNING: --no-sandbox: submissions run with this machine in reach; the grades are not isolated")
    stage(needed, settings)
    results = []
    with ThreadPoolExecutor(max_workers=max(1, int(settings.jobs))) as pool:
        futures = {pool.submit(grade_one, s, settings): s for s in subs}
        for fut in as_completed(futures):
            s = futures[fut]
            try:
                r = fut.result()
            except Exception as e:  # noqa: BLE001 - never let one learner stop the others
                r = _failed_result(s, out, f"grader error: {e!r}")
            try:
                merge(r, out, settings.keep_work)
            except Exception as e:  # noqa: BLE001 - the CSV still gets this learner's row
                r["status"], r["message"] = "error", plain(f"could not record in the gradebook: {e!r}", 500)
            pts, mx, _ = totals(r)
            say(f"  {r['student']:<16} {r['chapter']:<20} {fmt_points(pts):>5}/{fmt_points(mx):<5} "
                f"{r['status']:<8} {r['seconds']:6.1f} s")
            results.append(r)
    results.sort(key=lambda r: (r["chapter"], r["student"]))
    if not settings.keep_work:
        shutil.rmtree(out / ".work", ignore_errors=True)
    write_csv(results, out / "grades.csv")
    for r in results:
        r.pop("workdir", None)
    (out / "grades.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = summary(results, skipped, time.monotonic() - t0, sandboxed=settings.sandbox)
    (out / "summary.txt").write_text(text + "\n")
    say("")
    say(text)
    say(f"CSV: {out / 'grades.csv'}   feedback: {out / 'feedback'}")
    return results


# --- course check ------------------------------------------------------------------------------------------------------
def check(notebook: Path, *, chapter: str | None = None, source: Path | None = None, cell_timeout=None,
          memory_limit=None, quiet=False) -> int:
    """Grade one notebook like the autograder would, print points per exercise; 1 if anything failed.

    By default the locked tests come from the released notebooks (visible tests only); pass
    ``source=solutions`` (an instructor) to include the hidden tests. A notebook of a ``solutions/`` folder
    itself (an instructor checking a chapter) is checked against that folder, hidden tests included."""
    import tempfile

    notebook = Path(notebook).resolve()
    root = repo_root()
    instructor = source is None and notebook.parent.parent.name == "solutions"
    if instructor:
        source = notebook.parent.parent
    source = Path(source).resolve() if source else root / "notebooks"
    known = chapters(source)
    if chapter:
        ch = resolve_chapters([chapter], known)[0]
    else:
        cands = [c for c in known if c in (notebook.stem, notebook.parent.name)] or [
            c for c in known if notebook.stem.endswith("_" + c)]
        if len(cands) != 1:
            raise ValueError(f"cannot tell the chapter of {notebook.name}; use --chapter (one of {', '.join(known)})")
        ch = cands[0]
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        tmp = Path(tmp)
        inbox = tmp / "inbox"
        inbox.mkdir()
        if instructor:
            # the hidden tests are the source's, not an edit of the release's locked cells: hand in what a learner
            # with these answers would (grading puts the hidden tests back)
            import nbformat
            from nbgrader.preprocessors import ClearHiddenTests

            submitted, _ = ClearHiddenTests().preprocess(nbformat.read(notebook, as_version=4), {})
            nbformat.write(submitted, inbox / f"me_{ch}.ipynb")
        else:
            shutil.copy(notebook, inbox / f"me_{ch}.ipynb")
        # the learner's own code on the learner's own machine: the sandbox where there is one
        settings = GradeSettings(source=source, out=tmp / "out", cell_timeout=cell_timeout,
                                 memory_limit=memory_limit, feedback=False, quiet=True,
                                 sandbox=sandbox.unavailable_reason() is None)
        if not quiet:
            print(f"checking {notebook} as {ch} ({'visible tests' if source.name == 'notebooks' else 'all tests'})"
                  " ...", flush=True)
        results = grade(inbox, settings, only=[ch])
    r = results[0]
    failed = r["status"] != "graded"
    if failed:
        print(f"could not grade: {plain(r['message'])}")
    for c in r["cells"]:
        if c["kind"] == "manual":
            mark, pts = "·", f"?/{fmt_points(c['max'])} (graded by hand)"
        else:
            ok = (c["score"] or 0) >= c["max"]
            failed |= not ok
            mark, pts = ("✓" if ok else "✗"), f"{fmt_points(c['score'] or 0)}/{fmt_points(c['max'])}"
        line = f"{mark} {c['grade_id']:<28} {pts}"
        if c.get("error"):
            line += f"\n      {plain(c['error'], 400)}"
        print(line)
    for t in r["tampering"]:
        print(f"! {plain(t['grade_id'], 80)}: {plain(t['what'])}")
    for t in r.get("slips", []):
        print(f"~ {plain(t['grade_id'], 80)}: {plain(t['what'])}")
    pts, mx, pending = totals(r)
    print(f"total: {fmt_points(pts)}/{fmt_points(mx)} points" + (f", {fmt_points(pending)} graded by hand" if pending else ""))
    return 1 if failed else 0
