"""Helpers for tests that execute course notebooks.

Everything runs on a copy of the notebook's folder in a temporary directory, with a kernel whose
HOME / JUPYTER_* / IPYTHONDIR point into that directory (tests/conftest.py also isolates the whole
test session the same way), so nothing a notebook writes lands in the checkout.

Typical uses::

    from notebook_utils import SOLUTIONS, chapter_path, execute_with_answer, cell_error, NotebookSession

    # a wrong answer, fresh kernel, top to bottom until the test cell (simple, slower)
    nb = execute_with_answer(chapter_path("ch02_attention"), "softmax", WRONG_SOFTMAX, stop_after="softmax_tests")
    assert "maximum" in cell_error(nb, "softmax_tests")

    # many wrong answers against one kernel (fast): run the notebook up to the answer once, then try each
    with NotebookSession(chapter_path("ch02_attention")) as s:
        s.run_until("softmax")                       # everything before the answer cell
        for src in WRONG_SOFTMAXES:
            r = s.try_answer("softmax", src, "softmax_tests")
            assert not r.ok, src
            assert "softmax" in r.error

``try_answer`` removes the names the original answer cell defines, runs the replacement, runs the
test cell (the instructor version, with its hidden tests), then restores the original answer, so the
session can go on.

The client is :class:`course_lib.grading.execution.CourseNotebookClient` (nbclient's ``NotebookClient``
with the fix of the widget-cell stall, the same mixin the grading executor uses); ``client_class`` picks
another one (``nbclient.NotebookClient`` reproduces the stall). ``watch_stalls=seconds`` counts a cell
whose ``execute_reply`` has not reached the client that long after the kernel went idle
(``NotebookSession.stalls``; tests/grading/test_no_hangs.py and benchmarks/bench_hangs.py).
"""
from __future__ import annotations

import ast
import asyncio
import os
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parents[2]
SOLUTIONS = REPO / "solutions"
NOTEBOOKS = REPO / "notebooks"
FIXTURE_COURSE = REPO / "tests" / "fixtures" / "course"
DEFAULT_TIMEOUT = 600
#: ARCHITECTURE.md, Chapters: each notebook runs top to bottom in at most 3 minutes on a 2-core CPU, the course in 10
NOTEBOOK_BUDGET_S = 180.0
COURSE_BUDGET_S = 600.0

#: (notebook, seconds) of every full run made through this module, printed at the end of pytest
TIMINGS: list[tuple[str, float]] = []


# --- discovery ----------------------------------------------------------------------------------------
def chapters(folder: Path = SOLUTIONS) -> list[str]:
    """Chapter folders holding a notebook of the same name (``chNN_topic/chNN_topic.ipynb``)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    return sorted(d.name for d in folder.iterdir() if d.is_dir() and (d / f"{d.name}.ipynb").is_file())


#: code that builds Jupyter widgets: ipywidgets (interact, Output, sliders), plotly FigureWidgets, course_lib.viz's
#: explorers (``attention_explorer(``, ``viz.next_token_explorer(``, ``AttentionExplorer(``: built by library code)
WIDGET_CODE = r"\bipywidgets\b|\binteract(ive)?\(|\bFigureWidget\(|\b\w+_explorer\(|\b\w+Explorer\("


#: the two widget patterns that stalled (ch04's fill-mask Output widget, ch03's interact), reduced to a notebook
MINIMAL_WIDGET_CELLS = [
    "import ipywidgets as widgets, plotly.graph_objects as go\nfrom IPython.display import display",
    "out = widgets.Output()\n"
    "def update(_=None):\n"
    "    with out:\n"
    "        out.clear_output(wait=True)\n"
    "        go.Figure(go.Bar(x=[1, 2, 3], y=[3, 1, 2])).show()\n"
    "update()\ndisplay(out)",
    "def show(i=0):\n    go.Figure(go.Scatter(y=[i, 1, 2])).show()\n"
    "widgets.interact(show, i=widgets.IntSlider(value=0, min=0, max=10));",
]


def write_minimal_widget_notebook(folder: Path) -> Path:
    """:data:`MINIMAL_WIDGET_CELLS` as ``folder/minimal/minimal.ipynb``; returns its path."""
    path = Path(folder) / "minimal" / "minimal.ipynb"
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in MINIMAL_WIDGET_CELLS]), path)
    return path


def widget_chapters(folder: Path = SOLUTIONS) -> list[str]:
    """Chapters whose notebook has a code cell that builds widgets (:data:`WIDGET_CODE`)."""
    import re

    found = []
    for chapter in chapters(folder):
        nb = nbformat.read(chapter_path(chapter, folder), as_version=4)
        if any(c.cell_type == "code" and re.search(WIDGET_CODE, c.source) for c in nb.cells):
            found.append(chapter)
    return found


def chapter_path(chapter: str, folder: Path = SOLUTIONS) -> Path:
    return Path(folder) / chapter / f"{chapter}.ipynb"


def nbgrader_meta(cell) -> dict:
    return (cell.get("metadata") or {}).get("nbgrader") or {}


def grade_id(cell) -> str | None:
    return nbgrader_meta(cell).get("grade_id")


def is_autograded_test(cell) -> bool:
    m = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_answer(cell) -> bool:
    m = nbgrader_meta(cell)
    return cell.cell_type == "code" and bool(m.get("solution"))


def find_cell(nb, gid: str) -> int:
    for i, cell in enumerate(nb.cells):
        if grade_id(cell) == gid:
            return i
    raise KeyError(f"no cell with grade_id {gid!r}")


def answer_cells_for(nb, test_gid: str) -> list[str]:
    """grade_ids of the answer cells a test cell checks: the answer cells after the previous autograded
    test cell; when there are none (a second test cell for the same answer), those of the previous one."""
    idx = find_cell(nb, test_gid)
    deps: list[str] = []
    previous: list[str] = []
    for cell in nb.cells[:idx]:
        if is_autograded_test(cell):
            previous = deps or previous
            deps = []
        elif is_answer(cell):
            deps.append(grade_id(cell))
    return deps or previous


def make_stub(source: str) -> str:
    """What nbgrader's release makes of an answer cell's code (``ClearSolutions``): each
    ``### BEGIN SOLUTION`` ... ``### END SOLUTION`` region becomes ``# YOUR CODE HERE`` /
    ``raise NotImplementedError()`` at the same indentation; a cell without markers becomes the stub."""
    import re

    if "### BEGIN SOLUTION" not in source:
        return "# YOUR CODE HERE\nraise NotImplementedError()"
    return re.sub(r"(?m)^([ \t]*)### BEGIN SOLUTION.*?^[ \t]*### END SOLUTION[^\n]*",
                  lambda m: f"{m.group(1)}# YOUR CODE HERE\n{m.group(1)}raise NotImplementedError()",
                  source, flags=re.S)


def stub_sources(chapter: str, release: Path = NOTEBOOKS, source: Path = SOLUTIONS) -> dict[str, str]:
    """grade_id -> source of every answer cell in the released (learner) version; when the chapter is
    not released yet, the stubs are made from the solution the way nbgrader does (:func:`make_stub`)."""
    if chapter_path(chapter, release).is_file():
        nb = nbformat.read(chapter_path(chapter, release), as_version=4)
        return {grade_id(c): c.source for c in nb.cells if is_answer(c)}
    nb = nbformat.read(chapter_path(chapter, source), as_version=4)
    return {grade_id(c): make_stub(c.source) for c in nb.cells if is_answer(c)}


def bound_names(source: str) -> set[str]:
    """Top-level names a cell binds (def, class, assignment, import, for/with targets)."""
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        tree = ast.parse("\n".join(lines))
    except SyntaxError:
        return set()
    names: set[str] = set()

    def targets(t):
        if isinstance(t, ast.Name):
            names.add(t.id)
        elif isinstance(t, (ast.Tuple, ast.List)):
            for e in t.elts:
                targets(e)
        elif isinstance(t, ast.Starred):
            targets(t.value)

    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            for t in node.targets:
                targets(t)
        elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
            targets(node.target)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            for a in node.names:
                names.add((a.asname or a.name).split(".")[0])
        elif isinstance(node, (ast.For, ast.AsyncFor)):
            targets(node.target)
        elif isinstance(node, (ast.With, ast.AsyncWith)):
            for item in node.items:
                if item.optional_vars is not None:
                    targets(item.optional_vars)
    return names


# --- environment ---------------------------------------------------------------------------------------
def isolated_env(home: Path, extra: dict | None = None, nbgrader_execution: bool = False) -> dict:
    """os.environ with HOME, JUPYTER_{CONFIG,DATA,RUNTIME}_DIR and IPYTHONDIR inside ``home``, and
    the Hugging Face libraries told to stay offline."""
    home = Path(home)
    env = dict(os.environ)
    dirs = {"HOME": home, "JUPYTER_CONFIG_DIR": home / ".jupyter", "JUPYTER_DATA_DIR": home / ".local/share/jupyter",
            "JUPYTER_RUNTIME_DIR": home / ".local/share/jupyter/runtime", "IPYTHONDIR": home / ".ipython"}
    for key, path in dirs.items():
        path.mkdir(parents=True, exist_ok=True)
        env[key] = str(path)
    env.update({"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1",
                "PYDEVD_DISABLE_FILE_VALIDATION": "1", "MPLBACKEND": "Agg"})
    env.pop("NBGRADER_EXECUTION", None)
    if nbgrader_execution:
        env["NBGRADER_EXECUTION"] = "validate"
    env.update({k: str(v) for k, v in (extra or {}).items()})
    return env


# --- running cells ---------------------------------------------------------------------------------------
@dataclass
class CellResult:
    ok: bool
    ename: str | None = None
    evalue: str | None = None
    outputs: list = field(default_factory=list, repr=False)
    seconds: float = 0.0

    @property
    def error(self) -> str | None:
        return None if self.ok else f"{self.ename}: {self.evalue}"

    @property
    def text(self) -> str:
        """All stream and text/plain output of the cell."""
        bits = []
        for o in self.outputs:
            if o.get("output_type") == "stream":
                bits.append(o.get("text", ""))
            elif "data" in o and "text/plain" in o["data"]:
                bits.append(o["data"]["text/plain"])
        return "".join(bits)


class NotebookError(AssertionError):
    pass


def _result(cell, seconds) -> CellResult:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return CellResult(False, o.get("ename"), o.get("evalue"), list(cell.outputs), seconds)
    return CellResult(True, outputs=list(cell.get("outputs", [])), seconds=seconds)


@dataclass
class Stall:
    """A cell whose execute_reply had not reached the client ``seconds`` after the kernel reported idle."""
    cell: int
    seconds: float
    reply_waiting: bool  # the reply was already in the client's shell socket (read from zmq EVENTS)

    def __str__(self):
        where = "waiting unread in the shell socket" if self.reply_waiting else "not in the shell socket"
        return f"cell {self.cell}: no execute_reply {self.seconds:.0f} s after the kernel went idle (reply {where})"


def stall_watching(client_class):
    """``client_class`` plus a watchdog: when a cell's reply is still missing ``stall_after`` seconds after the
    kernel's idle message for that cell (normally it comes just before it), the cell is recorded in ``stalls``
    and the shell socket is re-armed (``socket.get(zmq.EVENTS)`` on the asyncio socket), which delivers a reply
    that was sitting there (the unfixed client would otherwise wait until the cell timeout). Until it fires the
    watchdog does not touch the socket, so it cannot cause what it detects."""
    from nbclient.util import run_sync

    class StallWatching(client_class):
        stall_after: float = 5.0

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.stalls: list[Stall] = []
            self._cell_token = 0
            self._running = False

        async def async_execute_cell(self, cell, cell_index, *args, **kwargs):
            self._cell_token += 1
            self._running = True
            try:
                return await super().async_execute_cell(cell, cell_index, *args, **kwargs)
            finally:
                self._running = False

        execute_cell = run_sync(async_execute_cell)

        def process_message(self, msg, cell, cell_index):
            if msg["msg_type"] == "status" and msg["content"].get("execution_state") == "idle":
                asyncio.get_running_loop().call_later(self.stall_after, self._check_stall, self._cell_token,
                                                      cell_index)
            return super().process_message(msg, cell, cell_index)

        def _check_stall(self, token, cell_index):
            if not self._running or token != self._cell_token or self.kc is None:
                return
            import zmq

            sock = self.kc.shell_channel.socket
            waiting = bool(sock is not None and not sock.closed and sock.get(zmq.EVENTS) & zmq.POLLIN)
            self.stalls.append(Stall(cell_index, self.stall_after, waiting))
            self.log.warning("stall: %s", self.stalls[-1])

    StallWatching.__name__ = StallWatching.__qualname__ = f"StallWatching{client_class.__name__}"
    return StallWatching


class NotebookSession:
    """One kernel running (a copy of) a notebook: cells by index or grade_id, or any source."""

    def __init__(self, notebook: Path, *, timeout: int = DEFAULT_TIMEOUT, nbgrader_execution: bool = False,
                 env: dict | None = None, workdir: Path | None = None, client_class=None,
                 client_kwargs: dict | None = None, watch_stalls: float | None = None):
        from course_lib.grading.execution import CourseNotebookClient

        self.path = Path(notebook)
        self.nb = nbformat.read(self.path, as_version=4)
        self._tmp = None
        if workdir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix=f"nb-{self.path.stem}-")
            workdir = Path(self._tmp.name)
        self.workdir = Path(workdir)
        self.rundir = self.workdir / "run"
        shutil.copytree(self.path.parent, self.rundir, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
        self.env = isolated_env(self.workdir / "home", env, nbgrader_execution)
        cls = client_class or CourseNotebookClient
        if watch_stalls:
            cls = stall_watching(cls)
        kwargs = dict(timeout=timeout, kernel_name="python3", allow_errors=True,
                      resources={"metadata": {"path": str(self.rundir)}})
        kwargs.update(client_kwargs or {})
        self.client = cls(self.nb, **kwargs)
        if watch_stalls:
            self.client.stall_after = float(watch_stalls)
        self._ctx = None
        self.next_cell = 0
        self.cell_seconds: dict[int, float] = {}

    @property
    def stalls(self) -> list[Stall]:
        """Stalls seen so far (only with ``watch_stalls``)."""
        return list(getattr(self.client, "stalls", []))

    def __enter__(self):
        self._ctx = self.client.setup_kernel(env=self.env, cwd=str(self.rundir))
        self._ctx.__enter__()
        self.client.wait_for_reply(self.client.kc.kernel_info())
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._ctx is not None:
            ctx, self._ctx = self._ctx, None
            try:
                ctx.__exit__(None, None, None)
            except Exception:  # noqa: BLE001 - a dead kernel
                pass
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    # -- single cells --
    def index(self, key) -> int:
        return key if isinstance(key, int) else find_cell(self.nb, key)

    def run_cell(self, key) -> CellResult:
        i = self.index(key)
        cell = self.nb.cells[i]
        if cell.cell_type != "code":
            return CellResult(True)
        t0 = time.perf_counter()
        self.client.execute_cell(cell, i)
        dt = time.perf_counter() - t0
        self.cell_seconds[i] = dt
        return _result(cell, dt)

    def run_source(self, source: str) -> CellResult:
        cell = nbformat.v4.new_code_cell(source)
        self.nb.cells.append(cell)  # nbclient stores the executed cell back at its index
        t0 = time.perf_counter()
        try:
            cell = self.client.execute_cell(cell, len(self.nb.cells) - 1)
        finally:
            self.nb.cells.pop()
        return _result(cell, time.perf_counter() - t0)

    # -- ranges --
    def run_until(self, key, inclusive: bool = False) -> None:
        """Run cells from where the session is up to (not including, unless inclusive) ``key``;
        raise NotebookError at the first cell that fails."""
        stop = self.index(key) + (1 if inclusive else 0)
        while self.next_cell < stop:
            i = self.next_cell
            r = self.run_cell(i)
            self.next_cell += 1
            if not r.ok:
                gid = grade_id(self.nb.cells[i])
                raise NotebookError(f"{self.path.name}: cell {i}{f' ({gid})' if gid else ''} failed: {r.error}")

    def run_all(self) -> float:
        """Run the rest of the notebook; returns the seconds spent in cells."""
        self.run_until(len(self.nb.cells))
        return sum(self.cell_seconds.values())

    # -- answers --
    def forget(self, answer_gid: str) -> None:
        names = sorted(bound_names(self.nb.cells[self.index(answer_gid)].source))
        if names:
            self.run_source(f"for _n in {names!r}:\n    globals().pop(_n, None)\ndel _n")

    def try_answer(self, answer_gid: str, source: str, test_gid: str, restore: bool = True) -> CellResult:
        """Replace one answer cell by ``source``, run the test cell, restore the original answer.
        Returns the test cell's result (``ok`` False = the test caught it)."""
        return self.try_answers({answer_gid: source}, test_gid, restore)

    def try_answers(self, sources: dict[str, str], test_gid: str, restore: bool = True) -> CellResult:
        for gid, src in sources.items():
            self.forget(gid)
            self.run_source(src)
        test = self.nb.cells[self.index(test_gid)]
        result = self.run_source(test.source)
        if restore:
            for gid in sources:
                r = self.run_source(self.nb.cells[self.index(gid)].source)
                if not r.ok:
                    raise NotebookError(f"restoring answer {gid!r} failed: {r.error}")
        return result


def execute_notebook(path: Path, *, timeout: int = DEFAULT_TIMEOUT, nbgrader_execution: bool = False,
                     record: bool = True):
    """Run a notebook top to bottom in a fresh kernel; raise NotebookError at the first failing cell.
    Returns (executed notebook, seconds)."""
    with NotebookSession(path, timeout=timeout, nbgrader_execution=nbgrader_execution) as s:
        seconds = s.run_all()
    if record:
        TIMINGS.append((str(Path(path).relative_to(REPO)) if Path(path).is_relative_to(REPO) else str(path),
                        seconds))
    return s.nb, seconds


def execute_with_answer(path: Path, answer_gid: str, source: str, *, stop_after: str | None = None,
                        timeout: int = DEFAULT_TIMEOUT, nbgrader_execution: bool = False):
    """Run a notebook top to bottom (errors allowed) with one answer cell's source replaced, in a
    fresh kernel, optionally stopping after the cell ``stop_after``. Returns the executed notebook; use
    :func:`cell_error` on it."""
    with NotebookSession(path, timeout=timeout, nbgrader_execution=nbgrader_execution) as s:
        s.nb.cells[s.index(answer_gid)].source = source
        last = s.index(stop_after) if stop_after else len(s.nb.cells) - 1
        for i in range(last + 1):
            s.run_cell(i)
    return s.nb


def cell_error(nb, gid: str) -> str | None:
    """'Ename: message' of the first error output of a cell, or None."""
    cell = nb.cells[find_cell(nb, gid)]
    r = _result(cell, 0.0)
    return r.error


# --- the wrong-answer test modules (tests/chapters/test_chNN_wrong_answers.py) --------------------------------------
def prepared_session(notebook: Path, cells: list[str], **kwargs):
    """A kernel on one torch thread that has run `cells` (setup, solutions, read-only helpers) once, in order.
    The wrong-answer modules use it as their module fixture, then swap one answer at a time (try_answer).
    Whether each grade cell passes on its solution and fails on its stub is test_notebooks.py's job."""
    with NotebookSession(notebook, **kwargs) as session:
        assert session.run_source("import torch; torch.set_num_threads(1)").ok
        for gid in cells:
            r = session.run_cell(gid)
            assert r.ok, f"cell {gid} failed: {r.error}"
        yield session


def assert_rejected(session: NotebookSession, answer_gid: str, source: str, test_gid: str, *phrases: str) -> str:
    """`test_gid` fails with `source` in place of answer `answer_gid`, with a message that says each of `phrases`
    (case-insensitive). Returns the error, 'Ename: message'."""
    r = session.try_answer(answer_gid, source, test_gid)
    assert not r.ok, f"{test_gid} accepted a wrong answer:\n{source}"
    for phrase in phrases:
        assert phrase.lower() in (r.evalue or "").lower(), \
            f"{test_gid}: expected a message mentioning {phrase!r}, got {r.error}"
    return r.error


def assert_accepted(session: NotebookSession, answer_gid: str, source: str, test_gid: str) -> None:
    r = session.try_answer(answer_gid, source, test_gid)
    assert r.ok, f"{test_gid} rejected a correct answer ({r.error}):\n{source}"


def grade_points(notebook: Path) -> dict[str, float]:
    """grade_id -> points of each graded cell, after checking that grade_ids are unique and outputs stripped."""
    nb = nbformat.read(notebook, as_version=4)
    ids = [grade_id(c) for c in nb.cells if grade_id(c)]
    assert len(ids) == len(set(ids)), f"grade_ids must be unique: {sorted(i for i in ids if ids.count(i) > 1)}"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.execution_count is None and not cell.outputs, "commit the notebook with outputs stripped"
    return {grade_id(c): nbgrader_meta(c).get("points", 0) for c in nb.cells if nbgrader_meta(c).get("grade")}


# --- exercises from nbgrader metadata (test_leaks, test_reference_guard, test_independence) ------------------------
@dataclass
class Exercise:
    """One exercise: its answer cells, the autograded test cells that grade them, and the names the answers define."""
    chapter: str
    answers: list[str]
    tests: list[str]
    names: list[str]


def defined_names(source: str) -> list[str]:
    """Functions and classes a cell defines at top level, in order."""
    try:
        tree = ast.parse("\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return []
    return [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))]


def exercises(chapter: str, folder: Path = SOLUTIONS) -> list[Exercise]:
    """Every exercise of a chapter, discovered from nbgrader metadata (answer cells, autograded test cells)."""
    nb = nbformat.read(chapter_path(chapter, folder), as_version=4)
    found: dict[tuple, Exercise] = {}
    for cell in nb.cells:
        if is_autograded_test(cell):
            answers = tuple(answer_cells_for(nb, grade_id(cell)))
            if not answers:
                continue
            ex = found.setdefault(answers, Exercise(chapter, list(answers), [], []))
            ex.tests.append(grade_id(cell))
    for ex in found.values():
        for gid in ex.answers:
            ex.names += defined_names(nb.cells[find_cell(nb, gid)].source)
    return list(found.values())


def graded_cells(notebook: Path) -> list[str]:
    """grade_ids of the code cells nbgrader knows, in notebook order: the locked setup and helper cells, every
    answer cell and every autograded test cell (so the tests' visible helpers exist, as in a grading run);
    demos and live training are left out."""
    nb = nbformat.read(notebook, as_version=4)
    return [grade_id(c) for c in nb.cells if c.cell_type == "code" and grade_id(c)]


def graded_session(chapter: str, **kwargs):
    """A module fixture's body: a kernel (grading mode, one torch thread) that has run :func:`graded_cells`
    (their solutions pass: test_notebooks.py checks that)."""
    cache = os.environ.get("COURSE_LIB_CACHE") or str(Path.home() / ".cache" / "course_lib")
    kwargs.setdefault("nbgrader_execution", True)
    kwargs.setdefault("env", {"COURSE_LIB_CACHE": cache})
    notebook = chapter_path(chapter)
    yield from prepared_session(notebook, graded_cells(notebook), **kwargs)
