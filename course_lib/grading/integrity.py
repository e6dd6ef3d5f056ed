"""The grading kernel's witness: loaded before a submission's first cell, it records what the notebook's
own code does to the machinery the tests rely on, and writes it where the notebook cannot take it back.

Python has no isolation inside one process, so a submission can in principle change anything the test
cells use: replace ``torch.allclose``, install an IPython exception handler or input transformer, walk
frames, rebuild a function with other globals, subclass ``torch.Tensor`` to lie in comparisons. What it
cannot do is make those changes without Python noticing:

* an **audit hook** (PEP 578; hooks cannot be removed once added) sees frame access, tracing, ``gc``
  object walks, ``ctypes``, rebuilt functions and code objects, restricted attribute access and changes
  to classes, and records each one made *directly by notebook code* (code compiled from a cell or from a
  string), not by the libraries the notebook calls;
* :func:`check`, which the grader calls after every cell, compares what the tests use (the attributes
  of ``builtins``, ``torch``, ``torch.nn.functional``, ``numpy``, ``math`` and ``course_lib``, IPython's
  hooks, the trace function) with the snapshot taken before the first cell, and lists ``torch.Tensor``
  subclasses defined by the notebook.

Both write JSON lines to a file descriptor opened by :func:`arm` on a file the grader created and keeps
reading; a line written cannot be unwritten by the notebook. The grader scores every graded cell that
ran after the first finding 0 and reports the finding by learner and cell (``preprocessors``).

Standard library only; torch, numpy and IPython are looked at only if the notebook has them loaded.
"""
from __future__ import annotations

import builtins
import json
import os
import sys

#: audit events that notebook code has no honest reason to raise in this course
WATCHED_EVENTS = frozenset({
    "sys._getframe", "sys._current_frames", "sys.settrace", "sys.setprofile", "sys.addaudithook",
    "function.__new__", "code.__new__", "object.__setattr__", "object.__delattr__", "object.__getattr__",
    "gc.get_objects", "gc.get_referrers", "gc.get_referents",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.addressof", "ctypes.cdata", "ctypes.string_at",
    "ctypes.wstring_at", "ctypes.call_function", "ctypes.create_string_buffer",
})
#: modules whose attributes the tests rely on (and course_lib.* as they are imported)
WATCHED_MODULES = ("builtins", "math", "torch", "torch.nn", "torch.nn.functional", "torch.testing", "numpy",
                   "numpy.testing")

#: what ipykernel rebinds around each execution (error and display hooks)
_SWAPPED_BY_KERNEL = {"display hook", "exception hook", "display publisher"}

_state: dict = {}
_MISSING = object()


def _is_notebook_code(filename: str) -> bool:
    """Code compiled from a cell (``/tmp/ipykernel_*/...py``, ``<ipython-input-...>``) or from a string."""
    if filename.startswith(_state["library_prefixes"]):
        return False
    return not filename.startswith(("<frozen", "<decorator-gen", "<__array_function__"))


def _write(record: dict) -> None:
    line = (json.dumps(record, default=repr)[:2000] + "\n").encode()
    try:
        os.write(_state["fd"], line)
    except OSError:
        pass


def _audit(event: str, args: tuple) -> None:
    if event not in WATCHED_EVENTS or _state.get("busy"):
        return
    _state["busy"] = True  # sys._getframe below raises an audit event of its own
    try:
        frame = sys._getframe(1)
        code = frame.f_code
        if not _is_notebook_code(code.co_filename):
            return
        if event == "object.__setattr__" or event == "object.__delattr__":
            target = args[0] if args else None
            if isinstance(target, type) and getattr(target, "__module__", None) == "__main__":
                return  # the notebook changing a class it defined itself
        detail = ", ".join(repr(a)[:80] for a in args[:2])
        _write({"kind": "event", "event": event, "detail": detail, "function": code.co_name,
                "file": code.co_filename, "line": frame.f_lineno})
    except Exception:  # noqa: BLE001 - a witness must never break the kernel
        pass
    finally:
        _state["busy"] = False


def _from_notebook(value) -> bool:
    """Whether a function, method or callable object was written in the notebook."""
    for obj in (value, getattr(value, "__func__", None), getattr(type(value), "__call__", None)):
        code = getattr(obj, "__code__", None)
        if code is not None and _is_notebook_code(code.co_filename):
            return True
    return False


def _ipython_hooks() -> dict:
    ip = getattr(builtins, "get_ipython", lambda: None)()
    if ip is None:
        return {}
    return {
        "custom exception handler (set_custom_exc)": tuple(getattr(ip, "custom_exceptions", ())),
        "input transformers": tuple(getattr(ip, "input_transformers_cleanup", ()))
        + tuple(getattr(ip, "input_transformers_post", ())),
        "AST transformers": tuple(getattr(ip, "ast_transformers", ())),
        "display hook": (getattr(ip, "displayhook", None), sys.displayhook),
        "exception hook": (sys.excepthook,),
        "display publisher": (getattr(ip, "display_pub", None),),
    }


def _event_callbacks() -> list:
    ip = getattr(builtins, "get_ipython", lambda: None)()
    events = getattr(ip, "events", None)
    out = []
    for name, callbacks in (getattr(events, "callbacks", None) or {}).items():
        for cb in callbacks:
            code = getattr(cb, "__code__", None) or getattr(getattr(cb, "__func__", None), "__code__", None)
            if code is not None and _is_notebook_code(code.co_filename):
                out.append(f"{name}: {getattr(cb, '__qualname__', cb)!r}")
    return out


def _snapshot_module(name: str) -> None:
    module = sys.modules.get(name)
    if module is not None and name not in _state["modules"]:
        _state["modules"][name] = dict(vars(module))


def _watched_module_names() -> list[str]:
    names = [n for n in WATCHED_MODULES if n in sys.modules]
    names += sorted(n for n in list(sys.modules) if n == "course_lib" or n.startswith("course_lib."))
    return names


def _tensor_subclasses() -> list[str]:
    torch = sys.modules.get("torch")
    if torch is None:
        return []
    found, todo = [], list(type.__subclasses__(torch.Tensor))
    while todo:
        cls = todo.pop()
        todo += type.__subclasses__(cls)
        codes = [getattr(v, "__code__", None) for v in vars(cls).values()]
        if cls.__module__ == "__main__" or any(c is not None and _is_notebook_code(c.co_filename) for c in codes):
            found.append(cls.__qualname__)
    return found


def arm(log_path: str) -> None:
    """Take the snapshot and start witnessing; called by the grader before the submission's first cell."""
    if _state:
        return
    import course_lib
    import course_lib.checks  # noqa: F401 - loaded clean, before any notebook code, so it is in the snapshot

    site = os.path.dirname(os.path.dirname(os.path.abspath(course_lib.__file__)))
    # plus site-packages folders that a .pth file or --system-site-packages adds from elsewhere (as the sandbox
    # mounts them: sandbox.python_roots), read from sys.path before any notebook code runs
    borrowed = [p for p in sys.path if os.path.basename(p.rstrip("/")) in ("site-packages", "dist-packages")]
    prefixes = {sys.prefix, sys.base_prefix, os.path.realpath(sys.prefix), os.path.realpath(sys.base_prefix),
                site, os.path.realpath(site), *borrowed, *map(os.path.realpath, borrowed)}
    _state.update(fd=os.open(log_path, os.O_WRONLY | os.O_APPEND), busy=False, modules={},
                  library_prefixes=tuple(p.rstrip("/") + "/" for p in prefixes), hooks=_ipython_hooks())
    for name in _watched_module_names():
        _snapshot_module(name)
    sys.addaudithook(_audit)


def _course_names(locked: bool) -> list[str]:
    """Names that locked cells bound to the test helpers (``course_lib.checks``) or to modules (``torch``,
    ``F``) must keep their values, for the test cells call them: returns those the notebook rebound (a
    helper to anything else, a module to something the notebook made)."""
    ip = getattr(builtins, "get_ipython", lambda: None)()
    namespace = getattr(ip, "user_ns", None) or vars(sys.modules["__main__"])
    protected = _state.setdefault("course_names", {})
    if locked:
        for name, value in namespace.items():
            if name not in protected and not name.startswith("_") and (
                    type(value).__name__ == "module" or getattr(value, "__module__", None) == "course_lib.checks"):
                protected[name] = value
        return []
    rebound = []
    for name, value in protected.items():
        now = namespace.get(name, _MISSING)
        if now is value:
            continue
        if getattr(value, "__module__", None) == "course_lib.checks" or _from_notebook(now) \
                or getattr(type(now), "__module__", None) == "__main__":
            rebound.append(name)
    return rebound


def check(token: str, locked: bool = False) -> None:
    """Compare with the snapshot and write what changed, then ``token`` (the grader's proof that this
    function, and not a stand-in, ran). ``locked``: the cell that just ran is one of the course's."""
    findings = [f"`{name}`, which a locked cell defines, was redefined or deleted by the notebook"
                for name in _course_names(locked)]
    for what, value in _ipython_hooks().items():
        before = _state["hooks"].get(what)
        if what in _SWAPPED_BY_KERNEL:
            # ipykernel itself swaps these around every cell: only the notebook's own are findings
            if any(_from_notebook(v) for v in value):
                findings.append(f"IPython's {what} was replaced by notebook code")
        elif before is not None and (len(value) != len(before) or any(a is not b for a, b in zip(value, before))):
            findings.append(f"IPython's {what} was changed")
    findings += [f"IPython event callback defined in the notebook: {cb}" for cb in _event_callbacks()]
    if sys.gettrace() is not None or sys.getprofile() is not None:
        findings.append("a trace or profile function is set (sys.settrace / sys.setprofile)")
    for name in _watched_module_names():
        if name not in _state["modules"]:
            _snapshot_module(name)  # imported after the first cell: watched from now on
            continue
        before, now = _state["modules"][name], vars(sys.modules[name])
        # only what the notebook made: libraries rebind their own functions too (torch wraps manual_seed)
        changed = [attr for attr, value in before.items()
                   if attr in now and now[attr] is not value and _from_notebook(now[attr])]
        findings += [f"{name}.{attr} was replaced" for attr in changed[:5]]
    findings += [f"the notebook defines a torch.Tensor subclass, {cls}, whose comparisons tests cannot trust"
                 for cls in _tensor_subclasses()]
    for finding in findings:
        _write({"kind": "state", "what": finding})
    _write({"kind": "checked", "token": token})
