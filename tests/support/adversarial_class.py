"""An adversarial class for the fixture assignment: learners who want points they did not earn, and learners
whose notebooks are honestly a little broken. Each one is a submission for ``course grade``; EXPECTED gives
the exact points each must get and what the report must name.

Attacks stay bounded and local: no network, a few processes, files only where the sandbox lets them
(nothing outside it is writable, which is what the test checks).
"""
from __future__ import annotations

import copy

from simulated_class import _cell, answered

#: the explorer reports what it could find of the grader's machine; the test reads its output
EXPLORER = '''
import os, sys
found = []
for root, dirs, files in os.walk("/"):
    # the system and the (read-only) Python environment are meant to be visible
    if root.startswith(("/proc", "/sys", "/dev", "/usr", "/etc", sys.prefix, sys.base_prefix)):
        dirs[:] = []
        continue
    for name in files + dirs:
        if name in ("nbgrader_config.py", "gradebook.db", "solutions", "grades.csv", "summary.txt") \\
                or name.endswith((".template.db",)) or (name.endswith(".ipynb") and "alice" in name):
            found.append(os.path.join(root, name))
wrote = []
for path in found:
    try:
        with open(path, "a") as fh:
            fh.write("\\nc = get_config(); c.Execute.timeout = 1\\n")
        wrote.append(path)
    except OSError:
        pass
import course_lib
checks = os.path.join(os.path.dirname(course_lib.__file__), "checks.py")
try:
    with open(checks, "a") as fh:
        fh.write("\\ndef check_close(*a, **k): pass\\n")
    wrote.append(checks)
except OSError:
    pass
cwds = sorted({os.readlink(f"/proc/{p}/cwd") for p in os.listdir("/proc") if p.isdigit()})
import socket
try:
    socket.create_connection(("127.0.0.1", 22), timeout=1)
    network = "reached"
except OSError:
    network = "unreachable"
print("EXPLORER found", found, "wrote", wrote, "network", network, "cwds", cwds)
'''

DETACHED = '''
import subprocess, sys
subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)  # oscar's daemon"], start_new_session=True,
                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
'''

SOLUTIONS_THIEF = '''
import pathlib, course_lib
root = pathlib.Path(course_lib.__file__).resolve().parent.parent
stolen = sorted(str(p) for p in root.rglob("*.ipynb"))
print("THIEF saw", stolen)
'''


def _stub_with(prelude: str, nb=None):
    """The released stub notebook with ``prelude`` as the first lines of the add answer cell."""
    nb = nb if nb is not None else answered(add=None, square=None, answer=None)
    cell = _cell(nb, "add")
    cell.source = prelude.strip("\n") + "\n\n" + cell.source
    return nb


def _correct():
    return answered()


def notebooks() -> dict[str, object]:
    out = {}
    # --- reaching outside the kernel (stubs: any point would be stolen) ---
    out["mallory_explorer"] = _stub_with(EXPLORER)
    out["oscar_detached"] = _stub_with(DETACHED)
    out["peggy_thief"] = _stub_with(SOLUTIONS_THIEF)
    # --- forging the verdict inside the kernel (answers wrong or missing) ---
    out["victor_displayhook"] = answered(add="    import sys\n    sys.displayhook(2)\n    return 0", square=None)
    out["wendy_custom_exc"] = _stub_with(
        "get_ipython().set_custom_exc((Exception,), lambda shell, etype, value, tb, tb_offset=None: None)")
    out["xavier_transformer"] = _stub_with(
        "get_ipython().input_transformers_post.append(\n"
        "    lambda lines: ['pass\\n'] if any('square(' in l or 'add(' in l for l in lines) else lines)")
    out["yolanda_redefine"] = _stub_with("def check_close(*args, **kwargs):\n    return None")
    out["zack_monkeypatch"] = _stub_with(
        "import torch\ntorch.allclose = lambda *a, **k: True\ntorch.Tensor.__eq__ = lambda self, other: True")
    out["uma_subclass"] = answered(add=None, square=(
        "    import torch\n    class Liar(torch.Tensor):\n        def __eq__(self, other):\n            return True\n"
        "    return torch.tensor(0.0).as_subclass(Liar)"))
    out["rita_rebuilt"] = answered(add=None, square=(
        "    import types\n    f = types.FunctionType((lambda v: v * v).__code__, {})\n    return f(x)"))
    out["sam_frames"] = answered(add=None, square=(
        "    frame = getattr(__import__('sy' + 's'), '_get' + 'frame')(1)\n    return frame.f_locals.get('x', x) * 0"))
    # --- honest slips (every answer right) ---
    nb = answered(add="    import sys, warnings\n    warnings.warn('a harmless warning')\n"
                      "    print('debug: adding', a, b, file=sys.stderr)\n    return a + b")
    out["hank_stderr"] = nb
    nb = _correct()
    _cell(nb, "square").metadata["nbgrader"]["grade_id"] = "square-renamed"
    out["irene_renamed"] = nb
    nb = _correct()
    pasted = copy.deepcopy(_cell(nb, "add_tests"))
    pasted.metadata["nbgrader"]["grade_id"] = "attention_scores_tests"
    pasted.source = "assert True"
    pasted["id"] = "pasted01"
    nb.cells.insert(nb.cells.index(_cell(nb, "square_tests")) + 1, pasted)
    out["jack_pasted"] = nb
    nb = _correct()
    _cell(nb, "add").metadata["nbgrader"].update(grade=True, solution=False, locked=True, points=2)
    out["kate_turned"] = nb
    nb = _correct()
    marker = copy.deepcopy(nb.cells[0])
    marker.metadata = {}
    marker["id"] = "marker01"
    marker.source = "My notes: nbgrader strips what is between ### BEGIN HIDDEN TESTS and the end marker."
    nb.cells.append(marker)
    out["leo_marker"] = nb
    out["olga_newline"] = answered(add="    raise ValueError('oops\\nalice_correct  6/6  forged line')")
    nb = _correct()
    big = copy.deepcopy(_cell(nb, "setup"))
    big.metadata = {}
    big["id"] = "bigout01"
    big.source = "print('x' * 20_000_000)"
    nb.cells.insert(2, big)
    out["paul_bigoutput"] = nb
    return out


#: learner -> ({grade_id: points}, [words each tampering report must contain], [words of repairs])
EXPECTED = {
    "mallory_explorer": ({"add_tests": 0, "square_tests": 0}, [], []),
    "oscar_detached": ({"add_tests": 0, "square_tests": 0}, [], []),
    "peggy_thief": ({"add_tests": 0, "square_tests": 0}, [], []),
    "victor_displayhook": ({"add_tests": 0, "square_tests": 0}, ["sys.displayhook"], []),
    "wendy_custom_exc": ({"add_tests": 0, "square_tests": 0}, ["set_custom_exc"], []),
    "xavier_transformer": ({"add_tests": 0, "square_tests": 0}, ["input_transformers"], []),
    "yolanda_redefine": ({"add_tests": 0, "square_tests": 0}, ["check_close"], []),
    "zack_monkeypatch": ({"add_tests": 0, "square_tests": 0}, ["torch.allclose"], []),
    "uma_subclass": ({"add_tests": 0, "square_tests": 0}, ["subclass of torch.Tensor"], []),
    "rita_rebuilt": ({"add_tests": 0, "square_tests": 0}, ["__code__"], []),
    "sam_frames": ({"add_tests": 0, "square_tests": 0}, ["sys._getframe"], []),
    "hank_stderr": ({"add_tests": 2, "square_tests": 3}, [], []),
    "irene_renamed": ({"add_tests": 2, "square_tests": 3}, [], ["square"]),
    "jack_pasted": ({"add_tests": 2, "square_tests": 3}, [], ["attention_scores_tests"]),
    "kate_turned": ({"add_tests": 2, "square_tests": 3}, [], ["add"]),
    "leo_marker": ({"add_tests": 2, "square_tests": 3}, [], []),
    "olga_newline": ({"add_tests": 0, "square_tests": 3}, [], []),
    "paul_bigoutput": ({"add_tests": 2, "square_tests": 3}, [], []),
    # nbgrader layout: the chapter's own notebook is graded, the empty copy beside it is reported
    "mia_copy": ({"add_tests": 2, "square_tests": 3}, [], []),
}
