"""The nbgrader preprocessors named in the course's ``nbgrader_config.py``.

Imported by nbgrader itself (autograde, validate, generate_feedback), so this module stays light:
nbgrader, nbclient, jupyter_client and the standard library (no torch).

* :class:`GuardedExecute` runs a submission: nbgrader's ``Execute`` with the kernel in the bubblewrap
  sandbox (``sandbox``) under memory and CPU-time limits, an output limit in bytes, the integrity witness
  (``integrity``) armed before the first cell and consulted after every cell, and survival of dead or
  stuck kernels (the cell that killed the kernel fails, later cells are "not run", earlier ones keep
  their points).
* :class:`SaveVerdicts` scores it: nbgrader's ``SaveAutoGrades`` with the course's rule for a graded test
  cell (full points only if it raised nothing and showed no value, and nothing before it tampered with
  the tests; warnings on stderr cost nothing) and the findings written to ``findings.json`` for the report.
* :class:`HideHiddenTestTracebacks` and :class:`ClearHiddenTestsInGradeCells` make feedback: no hidden
  test source, neither in cells nor in tracebacks, and a learner's markdown that quotes the hidden-test
  marker is left alone instead of failing the feedback.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import secrets
import shutil
import tempfile
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from traitlets import Bool, Integer, Unicode

from nbgrader import utils as nbgrader_utils
from nbgrader.preprocessors import ClearHiddenTests, Execute, NbGraderPreprocessor, SaveAutoGrades

from . import sandbox
from .cells import is_autograded_test, is_learner_cell, nbgrader_meta
from .execution import ReliableShellMixin
from .scan import scan_source

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"
#: what GuardedExecute leaves in ``resources`` for SaveVerdicts (one autograde run shares them)
FINDINGS = "course_findings"


#: nbgrader's autograde steps with the course's executor and verdicts in place of Execute and SaveAutoGrades
AUTOGRADE_PREPROCESSORS = [
    "course_lib.grading.preprocessors.GuardedExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "course_lib.grading.preprocessors.SaveVerdicts",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
#: feedback without hidden test source, neither the cells nor their tracebacks
FEEDBACK_PREPROCESSORS = [
    "nbgrader.preprocessors.GetGrades",
    "course_lib.grading.preprocessors.HideHiddenTestTracebacks",
    "course_lib.grading.preprocessors.ClearHiddenTestsInGradeCells",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
]


def parse_size(text) -> int:
    """``"4G"`` -> bytes; ``"512M"``, ``"1.5G"``, plain byte counts; ``0``/``""``/``"none"`` -> 0 (no limit)."""
    if text is None:
        return 0
    if isinstance(text, (int, float)):
        return int(text)
    s = str(text).strip().upper().removesuffix("B").removesuffix("I")
    if s in ("", "0", "NONE", "OFF", "UNLIMITED"):
        return 0
    m = re.fullmatch(r"([0-9.]+)\s*([KMGT]?)", s)
    if not m:
        raise ValueError(f"not a size: {text!r} (use e.g. 4G, 512M)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


def _output_bytes(msg: dict) -> int:
    content = msg.get("content", {})
    if msg.get("msg_type") == "stream":
        return len(content.get("text", ""))
    return len(json.dumps(content.get("data", content), default=str))


def cell_label(cell, index: int) -> str:
    """How a report names a cell: its grade_id, else its position and first line."""
    gid = nbgrader_meta(cell).get("grade_id")
    if gid:
        return gid
    first = next((ln.strip() for ln in str(cell.get("source", "")).splitlines() if ln.strip()), "")
    return f"cell {index + 1} ({first[:40]})" if first else f"cell {index + 1}"


class GuardedExecute(ReliableShellMixin, Execute):
    """nbgrader ``Execute`` with a sandboxed, limited, witnessed kernel that may die without taking the
    submission's earlier points with it, and without nbclient's lost shell wake-up (``execution``), which
    made widget cells wait out their whole timeout."""

    memory_limit = Unicode("4G", help="Address-space limit of each grading kernel, e.g. '4G'; '0' = none."
                           ).tag(config=True)
    cpu_limit = Integer(3600, help="CPU seconds each grading kernel may use in all (0 = no limit)."
                        ).tag(config=True)
    output_limit = Unicode("2M", help="Output one cell may produce, in bytes (e.g. '2M'); more is dropped."
                           ).tag(config=True)
    sandbox = Bool(True, help="Run the kernel in the bubblewrap sandbox (course_lib.grading.sandbox)."
                   ).tag(config=True)
    sandbox_files = Unicode("", help="A folder whose files appear, read-only, in the sandboxed kernel's home "
                            "(the files submitted with the notebook).").tag(config=True)
    disk_limit = Unicode("1G", help="Size of the sandboxed kernel's home and of its /tmp (in memory), and of "
                         "any one file it writes.").tag(config=True)
    sandbox_site = Unicode("", help="The folder holding the course_lib snapshot the kernel imports."
                           ).tag(config=True)
    witness = Bool(True, help="Arm course_lib.grading.integrity before the first cell, check after each."
                   ).tag(config=True)
    stuck_probe_timeout = Integer(10, help="After a cell timed out, seconds to wait for the interrupted "
                                  "kernel to answer again before it is declared stuck and killed."
                                  ).tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", sandbox.PrefixedKernelManager)
        super().__init__(*args, **kwargs)
        self._dead_reason: str | None = None
        self._timed_out = False
        self._ipc: str | None = None
        self._log = None
        self._findings: list[dict] = []
        self._cell_bytes = 0
        self._truncated = False

    # --- the kernel ------------------------------------------------------------------------------------
    async def async_start_new_kernel(self, **kwargs):
        # a short path: ZeroMQ's Unix sockets must fit in 107 bytes
        self._ipc = tempfile.mkdtemp(prefix="cg-", dir="/tmp")
        km = self.km
        km.transport = "ipc"
        km.ip = os.path.join(self._ipc, "k")
        km.connection_file = os.path.join(self._ipc, "kernel.json")
        disk = parse_size(self.disk_limit)
        prefix = sandbox.limits_args(memory_bytes=parse_size(self.memory_limit), cpu_seconds=self.cpu_limit,
                                     file_bytes=disk)
        if self.sandbox:
            if not (self.sandbox_files and self.sandbox_site):
                raise RuntimeError("GuardedExecute.sandbox needs sandbox_files and sandbox_site")
            prefix += sandbox.bwrap_args(files=self.sandbox_files, site=self.sandbox_site, ipc=self._ipc,
                                         env=dict(os.environ), disk_bytes=disk)
        km.command_prefix = prefix
        await super().async_start_new_kernel(**kwargs)

    start_new_kernel = run_sync(async_start_new_kernel)

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        if self.witness:
            log_path = os.path.join(self._ipc, "witness.jsonl")
            open(log_path, "w").close()
            self._log = open(log_path, encoding="utf-8", errors="replace")
            reply = await self._run_quietly(
                f"import course_lib.grading.integrity as _w; _w.arm({log_path!r}); del _w", timeout=120)
            if reply is None or reply["content"].get("status") != "ok":
                raise RuntimeError(f"the grading kernel could not load course_lib: {reply and reply['content']}")
        # the sockets are bound: from now on the kernel can write nothing to the grader's disk
        os.chmod(self._ipc, 0o555)
        return kc

    start_new_kernel_client = run_sync(async_start_new_kernel_client)

    async def _run_quietly(self, code: str, timeout: float) -> dict | None:
        """Run trusted code between cells (no outputs kept, no history); None if the kernel did not answer."""
        try:
            return await self.kc.execute_interactive(code, silent=True, store_history=False, timeout=timeout,
                                                     output_hook=lambda msg: None)
        except (TimeoutError, asyncio.TimeoutError):
            return None

    def _witness(self, cell, index: int) -> None:
        """Ask the witness about the cell that just ran and record what it saw."""
        token, locked = secrets.token_hex(8), not is_learner_cell(cell)
        reply = run_sync(self._run_quietly)(
            f"__import__('course_lib.grading.integrity', fromlist=['check']).check({token!r}, {locked})", timeout=30)
        lines = []
        for line in self._log.read().splitlines():
            try:
                lines.append(json.loads(line))
            except ValueError:
                continue
        seen_token = any(r.get("kind") == "checked" and r.get("token") == token for r in lines)
        for r in lines:
            if r.get("kind") == "event":
                # a locked cell's own top-level code is the course's, not the submission's
                if locked and r.get("function") == "<module>" and r.get("file") != "<string>":
                    continue
                where = f" in `{r['function']}`" if r.get("function") != "<module>" else ""
                what = f"notebook code{where} called {r['event']} ({r.get('detail', '')})"
            elif r.get("kind") == "state":
                what = r["what"]
            else:
                continue
            self._record(cell, index, what)
        if reply is not None and not seen_token:
            self._record(cell, index, "the integrity check did not run (something replaced or intercepted it)")

    def _record(self, cell, index: int, what: str) -> None:
        if not any(f["what"] == what for f in self._findings):
            self._findings.append({"index": index, "cell": cell_label(cell, index), "what": what})

    # --- outputs ---------------------------------------------------------------------------------------
    def output(self, outs, msg, display_id, cell_index):
        limit = parse_size(self.output_limit)
        if limit and msg.get("msg_type") in ("stream", "display_data", "execute_result", "update_display_data"):
            self._cell_bytes += _output_bytes(msg)
            if self._cell_bytes > limit:
                if not self._truncated:
                    self._truncated = True
                    outs.append(NotebookNode(output_type="stream", name="stdout", text=(
                        f"\n[output truncated: this cell produced more than {self.output_limit} bytes of output]\n")))
                return None
        return super().output(outs, msg, display_id, cell_index)

    # --- timeouts --------------------------------------------------------------------------------------
    async def _async_handle_timeout(self, timeout, cell=None):
        self._timed_out = True
        return await super()._async_handle_timeout(timeout, cell)

    async def _async_kernel_responds(self, timeout: float) -> bool:
        kc = self.kc
        msg_id = kc.kernel_info()
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            try:
                msg = await asyncio.wait_for(kc.get_shell_msg(), timeout=left)
            except (asyncio.TimeoutError, TimeoutError):
                return False
            except Exception:  # noqa: BLE001 - queue empty etc.
                return False
            if msg.get("parent_header", {}).get("msg_id") == msg_id:
                return True

    # --- per notebook and per cell -----------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._dead_reason = None
        self._findings = []
        try:
            nb, resources = super().preprocess(nb, resources, km)
        finally:
            if self._log is not None:
                self._log.close()
                self._log = None
            if self._ipc:
                os.chmod(self._ipc, 0o700)
                shutil.rmtree(self._ipc, ignore_errors=True)
                self._ipc = None
        resources[FINDINGS] = list(self._findings)
        return nb, resources

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead_reason is not None:
            cell.outputs = [_error_output(
                "KernelDied", f"not run: {self._dead_reason}; fix that cell and run the notebook again")]
            return cell, resources
        self._timed_out = False
        self._cell_bytes, self._truncated = 0, False
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead_reason = f"the kernel died while running cell {index}"
            self.log.warning("kernel died in cell %s; later cells are not run", index)
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(
                "KernelDied",
                "the Python kernel died while running this cell (os._exit, a crash, or too much memory or CPU time)")]
            return cell, resources
        except CellTimeoutError:
            # the interrupt sent at the time limit was ignored (nbclient gave up waiting for the kernel)
            self._kill_stuck(index)
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(
                "CellTimeoutError",
                f"this cell ran longer than {self.timeout} s and ignored the interrupt; the kernel was stopped")]
            return cell, resources
        if self._timed_out:
            # say in words why the cell failed (the kernel itself only reports a KeyboardInterrupt)
            cell.outputs = [_error_output(
                "CellTimeoutError", f"this cell ran longer than {self.timeout} s and was interrupted")] + [
                o for o in cell.outputs if o.get("ename") != "CellTimeoutError"]
            if not run_sync(self._async_kernel_responds)(self.stuck_probe_timeout):
                self._kill_stuck(index)
                return cell, resources
        if self.witness and self._log is not None:
            self._witness(cell, index)
        return cell, resources

    def _kill_stuck(self, index):
        self._dead_reason = f"the kernel was stuck in cell {index} after its time limit and was stopped"
        self.log.warning("kernel stuck after timeout in cell %s; killing it", index)
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001
            self.log.warning("could not shut down the stuck kernel", exc_info=True)


def test_cell_verdict(cell) -> str | None:
    """Why an executed autograded test cell fails, or None if it passes.

    Unlike nbgrader's rule, output on stderr (a warning, a debug print) costs nothing, and an
    ``execute_result`` anywhere in the cell fails it instead of being read as partial credit: the course's
    test cells never show a value, so one there was put by notebook code (``sys.displayhook``)."""
    for out in cell.get("outputs", []):
        if out.get("output_type") == "error":
            return f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip()
    for out in cell.get("outputs", []):
        if out.get("output_type") == "execute_result":
            return "the test cell showed a value, which a test cell never does: notebook code called the display hook"
    return None


class SaveVerdicts(SaveAutoGrades):
    """nbgrader ``SaveAutoGrades`` with the course's verdicts, and findings for the report.

    A graded test cell scores 0 when :func:`test_cell_verdict` fails it, or when it ran after the first
    tampering found, by the witness in the kernel (``GuardedExecute``) or by the scan of the
    submission's own cells (``scan``): a submission gains nothing from forging a verdict, and keeps the
    points it earned before it tried. Writes ``findings_file`` (in the working folder) for the report."""

    findings_file = Unicode("findings.json", help="Where to write the tampering found and why cells failed."
                            ).tag(config=True)

    def preprocess(self, nb, resources):
        findings, review = list(resources.get(FINDINGS, [])), []
        for index, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and is_learner_cell(cell):
                for line, what, tampering in scan_source(str(cell.source)):
                    (findings if tampering else review).append(
                        {"index": index, "cell": cell_label(cell, index), "what": f"line {line}: {what}"})
        findings.sort(key=lambda f: f["index"])
        self._first_tampering = findings[0]["index"] if findings else None
        self._first_finding = findings[0] if findings else None
        self._failures: dict[str, str] = {}
        nb, resources = super().preprocess(nb, resources)
        with open(self.findings_file, "w") as fh:
            json.dump({"tampering": findings, "review": review, "failures": self._failures}, fh, indent=1)
        return nb, resources

    def preprocess_cell(self, cell, resources, cell_index):
        self._cell_index = cell_index
        return super().preprocess_cell(cell, resources, cell_index)

    def _add_score(self, cell, resources):
        if not is_autograded_test(cell):
            return super()._add_score(cell, resources)
        gid = cell.metadata["nbgrader"]["grade_id"]
        reason = test_cell_verdict(cell)
        if reason is None and self._first_tampering is not None and self._cell_index >= self._first_tampering:
            f = self._first_finding
            reason = f"not counted: it ran after tampering with the tests in {f['cell']} ({f['what']})"
        grade = self.gradebook.find_grade(gid, self.notebook_id, self.assignment_id, self.student_id)
        grade.auto_score = 0.0 if reason else float(cell.metadata["nbgrader"]["points"])
        grade.needs_manual_grade = grade.manual_score is not None
        if reason:
            self._failures[gid] = reason
        self.gradebook.db.commit()


class HideHiddenTestTracebacks(NbGraderPreprocessor):
    """In grade cells with hidden tests, keep only the last line (``Error: message``) of tracebacks.

    Must run before ``ClearHiddenTests`` (it looks for the hidden-test marker in the source).
    """

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and nbgrader_meta(cell).get("grade") and HIDDEN_BEGIN in cell.source:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    evalue = str(out.get("evalue", "")).strip()
                    if out.get("ename") == "NotImplementedError" and not evalue:
                        evalue = "an answer this cell tests is not written yet (it still raises NotImplementedError)"
                    msg = f"{out.get('ename', 'Error')}: {evalue}"
                    out["traceback"] = [f"\x1b[0;31m{msg}\x1b[0m",
                                        "(the traceback is hidden because this cell has hidden tests)"]
        return cell, resources


class ClearHiddenTestsInGradeCells(ClearHiddenTests):
    """nbgrader's ``ClearHiddenTests`` for the course's locked test cells only: a learner's own cell that
    quotes the marker (a note, a string) is the learner's text, not a hidden test."""

    def preprocess_cell(self, cell, resources, cell_index):
        if not (nbgrader_utils.is_grade(cell) and not nbgrader_utils.is_solution(cell)):
            return cell, resources
        return super().preprocess_cell(cell, resources, cell_index)
