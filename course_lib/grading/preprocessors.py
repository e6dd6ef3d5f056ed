"""nbgrader plug-ins used by this course's ``nbgrader_config.py``.

Imported by nbgrader itself (autograde / validate / generate_feedback), so this module must stay
light: nbgrader, nbclient and the standard library only (no torch).

* :class:`GuardedExecute` -- nbgrader's ``Execute`` preprocessor, hardened for hostile submissions:
  - a per-kernel memory limit (``RLIMIT_AS`` applied to the kernel process with ``prlimit``), so a
    memory hog gets ``MemoryError`` in its own cell instead of taking the grading machine down;
  - a kernel that dies (``os._exit``, segfault, OOM kill) no longer aborts the whole submission: the
    cell that killed it gets an error, the cells after it are marked "not run", and everything that
    passed before it keeps its points;
  - a kernel that ignores the interrupt sent after a per-cell timeout (an infinite loop that swallows
    ``KeyboardInterrupt``) is killed and treated like a dead kernel, instead of making every later
    cell wait for its own timeout.
* :class:`HideHiddenTestTracebacks` -- for feedback: in grade cells that contain hidden tests, replace
  the traceback of an error by its last line (the plain-words message), so feedback HTML never shows
  hidden test source (``ClearHiddenTests`` only clears the cell's source, not its traceback).
"""
from __future__ import annotations

import asyncio
import re
import resource
import time

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync
from nbformat.notebooknode import NotebookNode
from traitlets import Integer, Unicode

from nbgrader.preprocessors import Execute, NbGraderPreprocessor

_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


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
        raise ValueError(f"not a memory size: {text!r} (use e.g. 4G, 512M)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _error_output(ename: str, evalue: str) -> NotebookNode:
    return NotebookNode(output_type="error", ename=ename, evalue=evalue,
                        traceback=[f"\x1b[0;31m{ename}\x1b[0m: {evalue}"])


class GuardedExecute(Execute):
    """nbgrader ``Execute`` with a memory limit and survival of dead or stuck kernels."""

    memory_limit = Unicode(
        "4G",
        help="Address-space limit (RLIMIT_AS) of each grading kernel, e.g. '4G', '512M'; '0' = none.",
    ).tag(config=True)

    stuck_probe_timeout = Integer(
        10,
        help="After a cell timed out, seconds to wait for the interrupted kernel to answer again "
        "before it is declared stuck and killed.",
    ).tag(config=True)

    _dead_reason: str | None = None
    _timed_out: bool = False

    # --- memory limit -------------------------------------------------------------------------
    async def async_start_new_kernel(self, **kwargs):
        await super().async_start_new_kernel(**kwargs)
        limit = parse_size(self.memory_limit)
        if limit:
            pid = self._kernel_pid()
            if pid is None:
                self.log.warning("memory limit not applied: kernel pid unknown")
            else:
                resource.prlimit(pid, resource.RLIMIT_AS, (limit, limit))
                self.log.info("kernel %s: address-space limit %s bytes", pid, limit)

    # nbclient binds the sync wrapper to its own coroutine: re-bind it to ours
    start_new_kernel = run_sync(async_start_new_kernel)

    def _kernel_pid(self):
        km = self.km
        prov = getattr(km, "provisioner", None)
        pid = getattr(prov, "pid", None) if prov is not None else None
        if pid is None:
            proc = getattr(prov, "process", None) or getattr(km, "kernel", None)
            pid = getattr(proc, "pid", None)
        return pid

    # --- timeouts --------------------------------------------------------------------------------
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

    # --- per cell -----------------------------------------------------------------------------
    def preprocess(self, nb, resources=None, km=None):
        self._dead_reason = None
        self._timed_out = False
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code":
            return cell, resources
        if self._dead_reason is not None:
            cell.outputs = [_error_output(
                "KernelDied", f"not run: {self._dead_reason}; fix that cell and run the notebook again")]
            return cell, resources
        self._timed_out = False
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._dead_reason = f"the kernel died while running cell {index}"
            self.log.warning("kernel died in cell %s; later cells are not run", index)
            cell.outputs = list(cell.get("outputs", [])) + [_error_output(
                "KernelDied",
                "the Python kernel died while running this cell (os._exit, a crash, or too much memory)")]
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

    def _kill_stuck(self, index):
        self._dead_reason = f"the kernel was stuck in cell {index} after its time limit and was stopped"
        self.log.warning("kernel stuck after timeout in cell %s; killing it", index)
        try:
            run_sync(self.km.shutdown_kernel)(now=True)
        except Exception:  # noqa: BLE001
            self.log.warning("could not shut down the stuck kernel", exc_info=True)


HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"


class HideHiddenTestTracebacks(NbGraderPreprocessor):
    """In grade cells with hidden tests, keep only the last line (``Error: message``) of tracebacks.

    Must run before ``ClearHiddenTests`` (it looks for the hidden-test marker in the source).
    """

    def preprocess_cell(self, cell, resources, index):
        nbg = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "code" and nbg.get("grade") and HIDDEN_BEGIN in cell.source:
            for out in cell.get("outputs", []):
                if out.get("output_type") == "error":
                    evalue = str(out.get("evalue", "")).strip()
                    if out.get("ename") == "NotImplementedError" and not evalue:
                        evalue = "an answer this cell tests is not written yet (it still raises NotImplementedError)"
                    msg = f"{out.get('ename', 'Error')}: {evalue}"
                    out["traceback"] = [f"\x1b[0;31m{msg}\x1b[0m",
                                        "(the traceback is hidden because this cell has hidden tests)"]
        return cell, resources
