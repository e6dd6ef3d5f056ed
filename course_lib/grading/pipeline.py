"""The grading pipeline behind ``course grade`` and ``course check``.

    course grade SUBMISSIONS [--chapter CH] [--jobs N] [--out DIR]

1. **collect**: SUBMISSIONS is a folder or a .zip holding learner notebooks named
   ``<student>_<chapter>.ipynb`` (anywhere inside), or nbgrader's ``submitted/<student>/<chapter>/*.ipynb``
   layout (or ``<student>/<chapter>.ipynb``). ``<chapter>`` is a chapter of the source folder
   (``ch02_attention``); with ``--chapter`` a plain ``<student>.ipynb`` is accepted too. Student ids are
   letters, digits, ``.``, ``-`` and ``_``.
2. **stage**: ``nbgrader generate_assignment`` records each chapter in ``OUT/gradebook.db`` and writes the
   release version to ``OUT/release/`` (what learners received: used to detect tampering).
3. **autograde + feedback**, one learner per worker: every learner is graded in its own nbgrader course
   folder ``OUT/.work/<chapter>/<student>/`` with a private copy of the gradebook, in its own process, so
   ``--jobs N`` learners run at once without sharing a SQLite file. Each kernel has a per-cell timeout and
   an address-space limit (``course_lib.grading.preprocessors.GuardedExecute``); a dead or stuck kernel costs
   only the cells it did not finish.
4. **merge**, serially in this process: the worker's scores, its submitted/autograded/feedback folders
   go into ``OUT/gradebook.db`` and ``OUT/{submitted,autograded,feedback}/`` (nbgrader's own layout, so
   formgrader can be used for the written answers), then ``OUT/grades.csv`` (one row per learner and
   chapter, points per exercise), ``OUT/grades.json`` and ``OUT/summary.txt``.

Tampering: every locked or graded cell of the submission is compared with the release version by its
``grade_id``; an edited, deleted or duplicated locked cell (or changed nbgrader metadata) is reported by
learner and cell. nbgrader itself restores locked cells from the source before running them, so a test
edited to ``pass`` still runs the real test.
"""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

from ..course import (chapter_notebook, chapters, repo_root, resolve_chapters, run_nbgrader_many, tool_env,
                     write_nbgrader_config)

STUDENT_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
DEFAULT_LEARNER_TIMEOUT = 1800


@dataclass
class Submission:
    student: str
    chapter: str
    path: Path
    origin: str  # how it was named in SUBMISSIONS


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
    extra_config: dict = field(default_factory=dict)

    def nbgrader_extra(self) -> dict:
        extra = dict(self.extra_config)
        if self.cell_timeout is not None:
            extra["Execute.timeout"] = int(self.cell_timeout)
            extra["ExecutePreprocessor.timeout"] = int(self.cell_timeout)
        if self.memory_limit is not None:
            extra["GuardedExecute.memory_limit"] = str(self.memory_limit)
        return extra


# --- 1. collect ---------------------------------------------------------------------------------------
def _safe_extract(zpath: Path, dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(zpath) as zf:
        for info in zf.infolist():
            name = info.filename
            target = (dest / name).resolve()
            if not str(target).startswith(str(dest.resolve()) + os.sep) and target != dest.resolve():
                raise SystemExit(f"refusing unsafe path in zip: {name}")
            if info.is_dir():
                target.mkdir(parents=True, exist_ok=True)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
    return dest


def find_submissions(path: Path, known: list[str], only: list[str] | None = None,
                     workdir: Path | None = None) -> tuple[list[Submission], list[str]]:
    """Learner notebooks in a folder or zip. Returns (submissions, skipped file descriptions)."""
    path = Path(path)
    if not path.exists():
        raise SystemExit(f"no such file or folder: {path}")
    if path.is_file():
        if not zipfile.is_zipfile(path):
            raise SystemExit(f"{path} is neither a folder nor a zip file")
        base = _safe_extract(path, (workdir or path.parent) / ".incoming")
    else:
        base = path
    wanted = set(only or known)
    found: dict[tuple[str, str], Submission] = {}
    skipped: list[str] = []
    for f in sorted(base.rglob("*.ipynb")):
        rel = f.relative_to(base)
        if ".ipynb_checkpoints" in rel.parts or any(p.startswith("__MACOSX") for p in rel.parts):
            continue
        student = chapter = None
        parts = rel.parts
        # nbgrader layout: [...]/<student>/<chapter>/<notebook>.ipynb
        if len(parts) >= 3 and parts[-2] in known:
            student, chapter = parts[-3], parts[-2]
        # <student>/<chapter>.ipynb
        elif len(parts) >= 2 and f.stem in known:
            student, chapter = parts[-2], f.stem
        else:
            # <student>_<chapter>.ipynb: longest known chapter name that ends the file name
            for ch in sorted(known, key=len, reverse=True):
                if f.stem.endswith("_" + ch) and len(f.stem) > len(ch) + 1:
                    student, chapter = f.stem[: -len(ch) - 1], ch
                    break
            if student is None and only and len(only) == 1:
                student, chapter = f.stem, only[0]
        if student is None:
            skipped.append(f"{rel}: name does not match <student>_<chapter>.ipynb")
            continue
        if chapter not in wanted:
            continue
        if not STUDENT_RE.match(student):
            skipped.append(f"{rel}: student id {student!r} has characters other than letters, digits, . - _")
            continue
        key = (student, chapter)
        if key in found:
            skipped.append(f"{rel}: second submission of {student}/{chapter} (kept {found[key].origin})")
            continue
        found[key] = Submission(student, chapter, f, str(rel))
    subs = sorted(found.values(), key=lambda s: (s.chapter, s.student))
    return subs, skipped


def submission_extras(path: Path, chapter: str) -> list[Path]:
    """In nbgrader's layout (<student>/<chapter>/<chapter>.ipynb), the files that travel with the notebook:
    timestamp.txt (late penalties), submission_secret.txt (release_feedback needs it), data files."""
    folder = Path(path).parent
    if folder.name != chapter:
        return []
    return sorted(f for f in folder.iterdir() if f.is_file() and f.suffix != ".ipynb")


# --- notebook helpers -------------------------------------------------------------------------------------
def _nbg(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def _src(cell) -> str:
    s = cell.get("source", "")
    return ("".join(s) if isinstance(s, list) else str(s)).strip()


def grade_cells(nb) -> list[dict]:
    """The graded cells of a (release or source) notebook in order: grade_id, points, kind auto/manual."""
    out = []
    for cell in nb.cells:
        m = _nbg(cell)
        if m.get("grade") and m.get("grade_id"):
            auto = cell.cell_type == "code" and not m.get("solution")
            out.append({"grade_id": m["grade_id"], "max": float(m.get("points", 0) or 0),
                        "kind": "auto" if auto else "manual"})
    return out


def read_notebook(path: Path):
    """nbformat v4 notebook, or raise ValueError saying why it is not one."""
    import nbformat

    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ValueError(f"not a text file ({e.reason})") from None
    try:
        nb = nbformat.reads(text, as_version=4)
    except Exception as e:  # NotJSONError, KeyError, ...
        msg = str(e).splitlines()[0][:200] if str(e) else type(e).__name__
        raise ValueError(f"not a valid notebook: {msg}") from None
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        raise ValueError("not a valid notebook: no list of cells")
    return nb


def find_tampering(release_nb, submitted_nb) -> list[dict]:
    """Locked/graded cells of the release that the submission changed, deleted or duplicated."""
    ref = {}
    for cell in release_nb.cells:
        gid = _nbg(cell).get("grade_id")
        if gid:
            ref[gid] = cell
    seen = defaultdict(list)
    for cell in submitted_nb.cells:
        if not isinstance(cell, dict):
            continue
        gid = _nbg(cell).get("grade_id")
        if gid:
            seen[gid].append(cell)
    issues = []
    for gid, rc in ref.items():
        m = _nbg(rc)
        locked = bool(m.get("locked"))
        kind = "locked cell" if locked else "answer cell"
        copies = seen.get(gid, [])
        if not copies:
            issues.append({"grade_id": gid, "what": f"deleted {kind}"})
            continue
        if len(copies) > 1:
            issues.append({"grade_id": gid, "what": f"duplicated {kind} ({len(copies)} copies)"})
        for cp in copies:
            cm = _nbg(cp)
            if locked and (_src(cp) != _src(rc) or cp.get("cell_type") != rc.cell_type):
                issues.append({"grade_id": gid, "what": "edited locked cell"})
                break
            changed = [k for k in ("locked", "grade", "solution", "points", "task")
                       if bool(cm.get(k)) != bool(m.get(k)) or (k == "points" and cm.get(k) != m.get(k))]
            if changed:
                issues.append({"grade_id": gid, "what": f"changed nbgrader metadata ({', '.join(changed)})"})
                break
    for gid, copies in seen.items():
        if gid not in ref and any(_nbg(c).get("grade") or _nbg(c).get("locked") for c in copies):
            issues.append({"grade_id": gid, "what": "unknown graded cell added"})
    return issues


def sanitize(nb):
    """What nbgrader can digest: of duplicated graded/locked cells only the last keeps its nbgrader
    metadata (nbgrader 0.9 crashes on duplicates); nbgrader metadata without a grade_id is dropped;
    cell ids are made unique. The submission's code is left as it is."""
    import uuid

    last = {}
    for i, cell in enumerate(nb.cells):
        gid = _nbg(cell).get("grade_id")
        if gid:
            last[gid] = i
    ids = set()
    for i, cell in enumerate(nb.cells):
        md = cell.setdefault("metadata", {})
        if "nbgrader" in md:
            gid = md["nbgrader"].get("grade_id") if isinstance(md["nbgrader"], dict) else None
            if not gid or last.get(gid) != i:
                del md["nbgrader"]
        if "id" in cell:
            if cell["id"] in ids:
                cell["id"] = uuid.uuid4().hex[:8]
            ids.add(cell["id"])
    return nb


def cell_failures(nb) -> dict[str, str]:
    """grade_id -> 'Ename: message' for graded code cells of an executed notebook that raised."""
    out = {}
    for cell in nb.cells:
        m = _nbg(cell)
        if cell.cell_type != "code" or not m.get("grade_id"):
            continue
        for o in cell.get("outputs", []):
            if o.get("output_type") == "error":
                ev = str(o.get("evalue", "")).strip()
                out[m["grade_id"]] = f"{o.get('ename', 'Error')}: {ev}" if ev else str(o.get("ename", "Error"))
                break
    return out


# --- 3. worker -------------------------------------------------------------------------------------------------
def _kill_tree(pid: int) -> None:
    try:
        import psutil
    except ImportError:  # pragma: no cover
        os.kill(pid, 9)
        return
    try:
        parent = psutil.Process(pid)
        procs = parent.children(recursive=True) + [parent]
    except psutil.NoSuchProcess:
        return
    for p in procs:
        try:
            p.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(procs, timeout=5)


def _run_worker_process(workdir: Path, chapter: str, student: str, feedback: bool, timeout: float,
                        env: dict) -> tuple[int | None, str]:
    cmd = [sys.executable, "-m", "course_lib.grading.pipeline", "_worker", str(workdir), chapter, student]
    if not feedback:
        cmd.append("--no-feedback")
    log = workdir / "grading.log"
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


def _worker_env(workdir: Path, jobs: int) -> dict:
    extra = {
        "JUPYTER_RUNTIME_DIR": workdir / ".runtime",
        "IPYTHONDIR": workdir / ".ipython",
    }
    threads = str(max(1, (os.cpu_count() or 1) // max(1, jobs)))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        if var not in os.environ:
            extra[var] = threads
    return tool_env(extra)


def grade_one(sub: Submission, settings: GradeSettings) -> dict:
    """Grade one learner's chapter in its own nbgrader course folder. Never raises for a bad submission."""
    t0 = time.monotonic()
    out = settings.out
    release_nb_path = chapter_notebook(out / "release", sub.chapter)
    import nbformat

    release_nb = nbformat.read(release_nb_path, as_version=4)
    cells = [dict(c, score=None, error=None) for c in grade_cells(release_nb)]
    result = {"student": sub.student, "chapter": sub.chapter, "notebook": sub.chapter, "origin": sub.origin,
              "path": str(sub.path),
              "status": "graded", "message": "", "cells": cells, "tampering": [], "seconds": 0.0,
              "workdir": None}

    def zero(status: str, message: str) -> dict:
        result["status"], result["message"] = status, message
        for c in cells:
            c["score"] = 0.0
            c["needs_manual_grade"] = False
        result["seconds"] = round(time.monotonic() - t0, 2)
        return result

    try:
        sub_nb = read_notebook(sub.path)
    except ValueError as e:
        return zero("invalid", str(e))
    result["tampering"] = find_tampering(release_nb, sub_nb)

    work = out / ".work" / sub.chapter / sub.student
    if work.exists():
        shutil.rmtree(work)
    dest = work / "submitted" / sub.student / sub.chapter
    dest.mkdir(parents=True)
    nbformat.write(sanitize(sub_nb), dest / f"{sub.chapter}.ipynb")
    for extra in submission_extras(sub.path, sub.chapter):
        shutil.copy(extra, dest / extra.name)
    shutil.copy(out / ".work" / f"{sub.chapter}.template.db", work / "gradebook.db")
    write_nbgrader_config(work, source=settings.source, release=out / "release", extra=settings.nbgrader_extra())
    result["workdir"] = str(work)

    rc, log = _run_worker_process(work, sub.chapter, sub.student, settings.feedback, settings.learner_timeout,
                                  _worker_env(work, settings.jobs))
    autograded = chapter_notebook(work / "autograded" / sub.student, sub.chapter)
    if rc is None:
        return zero("error", f"grading took longer than {settings.learner_timeout:.0f} s and was stopped")
    if rc != 0 or not autograded.is_file():
        tail = [ln for ln in log.splitlines() if "ERROR" in ln or "Error" in ln][-3:]
        return zero("error", "autograde failed: " + (" | ".join(tail) or f"exit code {rc}")[:500])

    # scores from the worker's gradebook, failure messages from the executed notebook
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
    fails = cell_failures(nbformat.read(autograded, as_version=4))
    for c in cells:
        if c["kind"] == "auto" and (c["score"] or 0) < c["max"]:
            c["error"] = fails.get(c["grade_id"], "failed")
    result["seconds"] = round(time.monotonic() - t0, 2)
    return result


def _worker_main(argv: list[str]) -> int:
    """``python -m course_lib.grading.pipeline _worker WORKDIR CHAPTER STUDENT``: autograde + feedback in one
    process (saves an nbgrader start-up per learner). Reads WORKDIR/nbgrader_config.py."""
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("workdir")
    p.add_argument("chapter")
    p.add_argument("student")
    p.add_argument("--no-feedback", action="store_true")
    a = p.parse_args(argv)
    os.chdir(a.workdir)
    _quiet_warnings()
    from nbgrader.apps.autogradeapp import AutogradeApp
    from nbgrader.apps.generatefeedbackapp import GenerateFeedbackApp

    steps = [AutogradeApp] + ([] if a.no_feedback else [GenerateFeedbackApp])
    for app_cls in steps:
        app = app_cls()
        try:
            app.initialize([a.chapter, "--student", a.student, "--force"])
            app.start()
        except SystemExit as e:
            if e.code not in (0, None):
                return int(e.code) if isinstance(e.code, int) else 1
        app_cls.clear_instance()
    return 0


# --- 4. merge ---------------------------------------------------------------------------------------------------
def _copy_tree(src: Path, dst: Path) -> None:
    if dst.exists():
        shutil.rmtree(dst)
    if src.exists():
        shutil.copytree(src, dst)


def merge(result: dict, settings: GradeSettings) -> None:
    """Bring one learner's worker results into OUT (serially: the only writer of OUT/gradebook.db)."""
    from nbgrader.api import Gradebook

    out, s, ch = settings.out, result["student"], result["chapter"]
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
    if result.get("workdir") and not settings.keep_work:
        shutil.rmtree(result["workdir"], ignore_errors=True)


# --- reports -------------------------------------------------------------------------------------------------------
def _fmt(x) -> str:
    if x is None:
        return ""
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def exercise_columns(results: list[dict]) -> list[tuple[str, str, str]]:
    """(chapter, grade_id, column name) in chapter and cell order; names get a chapter prefix only when
    two chapters share a grade_id."""
    seen: dict[str, list[str]] = {}
    order: list[tuple[str, str]] = []
    for r in sorted(results, key=lambda r: r["chapter"]):
        for c in r["cells"]:
            key = (r["chapter"], c["grade_id"])
            if key not in order:
                order.append(key)
                seen.setdefault(c["grade_id"], []).append(r["chapter"])
    return [(ch, gid, gid if len(seen[gid]) == 1 else f"{ch}/{gid}") for ch, gid in order]


def totals(r: dict) -> tuple[float, float, float]:
    """(points so far, max points, points waiting for manual grading)."""
    pts = sum(c["score"] or 0 for c in r["cells"])
    mx = sum(c["max"] for c in r["cells"])
    pending = sum(c["max"] for c in r["cells"] if c.get("needs_manual_grade"))
    return pts, mx, pending


def problems(r: dict) -> str:
    bits = []
    if r["status"] != "graded":
        bits.append(r["message"])
    for c in r["cells"]:
        if c.get("error"):
            bits.append(f"{c['grade_id']}: {c['error'].split(':')[0]}")
    return "; ".join(bits)


def write_csv(results: list[dict], path: Path) -> None:
    cols = exercise_columns(results)
    header = ["student", "chapter", "status", "points", "max_points", "pending_manual"] + [c[2] for c in cols] + [
        "tampering", "problems"]
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        for r in sorted(results, key=lambda r: (r["student"], r["chapter"])):
            pts, mx, pending = totals(r)
            by = {c["grade_id"]: c for c in r["cells"]}
            row = [r["student"], r["chapter"], r["status"], _fmt(pts), _fmt(mx), _fmt(pending)]
            for ch, gid, _ in cols:
                c = by.get(gid) if ch == r["chapter"] else None
                row.append("" if c is None else _fmt(c["score"]))
            row.append("; ".join(f"{t['grade_id']}: {t['what']}" for t in r["tampering"]))
            row.append(problems(r))
            w.writerow(row)


def summary(results: list[dict], skipped: list[str] | None = None, seconds: float | None = None) -> str:
    lines = []
    for ch in sorted({r["chapter"] for r in results}):
        rows = sorted((r for r in results if r["chapter"] == ch), key=lambda r: r["student"])
        ids = [c["grade_id"] for c in rows[0]["cells"]]
        table = [["student", "points"] + ids + ["notes"]]
        for r in rows:
            pts, mx, pending = totals(r)
            cells = []
            for c in r["cells"]:
                if c.get("needs_manual_grade"):
                    cells.append(f"?/{_fmt(c['max'])}")
                else:
                    cells.append(f"{_fmt(c['score'] or 0)}/{_fmt(c['max'])}")
            note = problems(r)
            if r["tampering"]:
                note = ("TAMPERING " + ", ".join(f"{t['grade_id']} {t['what']}" for t in r["tampering"])
                        + ("; " + note if note else ""))
            total = f"{_fmt(pts)}/{_fmt(mx)}" + (f" (+{_fmt(pending)} by hand)" if pending else "")
            table.append([r["student"], total] + cells + [note[:120]])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
        lines.append(f"== {ch} ({len(rows)} learners)")
        for row in table:
            lines.append("  ".join(v.ljust(wd) for v, wd in zip(row, widths)) + "  " + row[-1])
        lines.append("")
    tampered = [(r, t) for r in results for t in r["tampering"]]
    if tampered:
        lines.append("Tampering with locked cells (nbgrader graded the original cells):")
        for r, t in sorted(tampered, key=lambda x: (x[0]["student"], x[0]["chapter"])):
            lines.append(f"  {r['student']} {r['chapter']}: cell '{t['grade_id']}' {t['what']}")
        lines.append("")
    if skipped:
        lines.append("Skipped files:")
        lines.extend(f"  {s}" for s in skipped)
        lines.append("")
    if seconds is not None:
        lines.append(f"Graded {len(results)} submissions in {seconds:.1f} s.")
    return "\n".join(lines)


# --- 2. stage + the whole pipeline -------------------------------------------------------------------------------------
def stage(chapter_names: list[str], settings: GradeSettings) -> None:
    """Record the chapters in OUT/gradebook.db, write their release versions to OUT/release, and keep a
    template gradebook per chapter for the workers."""
    out = settings.out
    (out / ".work").mkdir(parents=True, exist_ok=True)
    write_nbgrader_config(out, source=settings.source, release="release", extra=settings.nbgrader_extra())
    run_nbgrader_many("generate_assignment", chapter_names, cwd=out, args=["--force"],
                      log=out / ".work" / "stage.log")
    for ch in chapter_names:
        shutil.copy(out / "gradebook.db", out / ".work" / f"{ch}.template.db")


def _quiet_warnings() -> None:
    import warnings

    warnings.filterwarnings("ignore", module="nbformat")
    warnings.filterwarnings("ignore", message=".*not in session.*")  # nbgrader's SQLAlchemy autoflush noise


def grade(submissions: Path, settings: GradeSettings, only: list[str] | None = None) -> list[dict]:
    t0 = time.monotonic()
    _quiet_warnings()
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
            say("  skipped", s)
        return []
    needed = sorted({s.chapter for s in subs})
    say(f"{len(subs)} submissions ({', '.join(needed)}); staging ...")
    stage(needed, settings)
    results = []
    jobs = max(1, int(settings.jobs))
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(grade_one, s, settings): s for s in subs}
        for fut in as_completed(futures):
            s = futures[fut]
            try:
                r = fut.result()
            except Exception as e:  # noqa: BLE001 - never let one learner stop the others
                r = {"student": s.student, "chapter": s.chapter, "notebook": s.chapter, "origin": s.origin,
                     "path": str(s.path),
                     "status": "error", "message": f"grader error: {e!r}"[:500], "tampering": [], "seconds": 0,
                     "workdir": None,
                     "cells": [dict(c, score=0.0, needs_manual_grade=False, error=None) for c in grade_cells(
                         __import__("nbformat").read(chapter_notebook(out / "release", s.chapter), as_version=4))]}
            try:
                merge(r, settings)
            except Exception as e:  # noqa: BLE001 - the CSV still gets this learner's row
                r["status"], r["message"] = "error", f"could not record in the gradebook: {e!r}"[:500]
            pts, mx, _ = totals(r)
            say(f"  {r['student']:<16} {r['chapter']:<20} {_fmt(pts):>5}/{_fmt(mx):<5} "
                f"{r['status']:<8} {r['seconds']:6.1f} s")
            results.append(r)
    results.sort(key=lambda r: (r["chapter"], r["student"]))
    if not settings.keep_work:
        shutil.rmtree(out / ".work", ignore_errors=True)
    write_csv(results, out / "grades.csv")
    for r in results:
        r.pop("workdir", None)
    (out / "grades.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    text = summary(results, skipped, time.monotonic() - t0)
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
    ``source=solutions`` (an instructor) to include the hidden tests."""
    import tempfile

    notebook = Path(notebook).resolve()
    root = repo_root()
    source = Path(source).resolve() if source else root / "notebooks"
    known = chapters(source)
    if chapter:
        ch = resolve_chapters([chapter], known)[0]
    else:
        cands = [c for c in known if c in (notebook.stem, notebook.parent.name)] or [
            c for c in known if notebook.stem.endswith("_" + c)]
        if len(cands) != 1:
            print(f"cannot tell the chapter of {notebook.name}; use --chapter (one of {', '.join(known)})")
            return 2
        ch = cands[0]
    with tempfile.TemporaryDirectory(prefix="course-check-") as tmp:
        tmp = Path(tmp)
        inbox = tmp / "inbox"
        inbox.mkdir()
        shutil.copy(notebook, inbox / f"me_{ch}.ipynb")
        settings = GradeSettings(source=source, out=tmp / "out", cell_timeout=cell_timeout,
                                 memory_limit=memory_limit, feedback=False, quiet=True)
        if not quiet:
            print(f"checking {notebook} as {ch} ({'visible tests' if source.name == 'notebooks' else 'all tests'})"
                  " ...", flush=True)
        results = grade(inbox, settings, only=[ch])
    r = results[0]
    failed = r["status"] != "graded"
    if failed:
        print(f"could not grade: {r['message']}")
    for c in r["cells"]:
        if c["kind"] == "manual":
            mark, pts = "·", f"?/{_fmt(c['max'])} (graded by hand)"
        else:
            ok = (c["score"] or 0) >= c["max"]
            failed |= not ok
            mark, pts = ("✓" if ok else "✗"), f"{_fmt(c['score'] or 0)}/{_fmt(c['max'])}"
        line = f"{mark} {c['grade_id']:<28} {pts}"
        if c.get("error"):
            line += f"\n      {c['error'][:400]}"
        print(line)
    for t in r["tampering"]:
        print(f"! cell '{t['grade_id']}': {t['what']} (the original is used when grading)")
    pts, mx, pending = totals(r)
    print(f"total: {_fmt(pts)}/{_fmt(mx)} points" + (f", {_fmt(pending)} graded by hand" if pending else ""))
    return 1 if failed else 0


# --- CLI entry points (called by course_lib.cli) --------------------------------------------------------------------------
def grade_command(args) -> int:
    root = repo_root()
    settings = GradeSettings(source=Path(args.source) if args.source else root / "solutions",
                             out=Path(args.out) if args.out else root / "grading", jobs=args.jobs,
                             cell_timeout=args.timeout, memory_limit=args.memory_limit,
                             learner_timeout=args.learner_timeout, keep_work=args.keep_work,
                             feedback=not args.no_feedback)
    results = grade(Path(args.submissions), settings, only=args.chapter)
    return 0 if results else 1


def check_command(args) -> int:
    return check(Path(args.notebook), chapter=args.chapter, source=args.source, cell_timeout=args.timeout,
                 memory_limit=args.memory_limit)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "_worker":
        sys.exit(_worker_main(sys.argv[2:]))
    sys.exit("usage: course grade ... (this module is the grading pipeline; see `course grade --help`)")
