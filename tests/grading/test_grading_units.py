"""Units of the grading package that need no kernel: the scan of learner cells, the metadata repair, the
report's escaping, the collectors' id rules, the sandbox's command line, and `course grade` refusing to run
without bubblewrap unless told --no-sandbox."""
from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from course_lib.grading import sandbox
from course_lib.grading.cells import restore_metadata
from course_lib.grading.collect import STUDENT_RE
from course_lib.grading.report import plain
from course_lib.grading.scan import scan_source
from simulated_class import CHAPTER, RELEASE, _cell, answered

COURSE = str(Path(sys.executable).parent / "course")

HONEST = [
    "def softmax(x, dim=-1):\n    e = (x - x.amax(dim=dim, keepdim=True)).exp()\n    return e / e.sum(dim=dim, keepdim=True)",
    "import torch\nimport torch.nn as nn\nclass Head(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.proj = nn.Linear(4, 4)\n    def forward(self, x):\n        return self.proj(x)",
    "%time y = 1 + 1\nprint(type(y).__name__)",
    "import numpy as np\nnp.random.seed(0)\nrng = np.random.default_rng(0)",
]
TAMPERING = {
    "import torch\ntorch.allclose = lambda *a, **k: True": "torch.allclose",
    "get_ipython().set_custom_exc((Exception,), None)": "set_custom_exc",
    "ip = get_ipython()\nip.input_transformers_post.append(f)": "input_transformers_post",
    "import sys\nsys.settrace(None)": "sys.settrace",
    "f = g.__code__": "__code__",
    "import torch\nclass T(torch.Tensor):\n    pass": "subclass of torch.Tensor",
    "import ctypes": "ctypes",
    "from torch import nn\nnn.functional = None": "nn.functional",
}


@pytest.mark.parametrize("source", HONEST)
def test_the_scan_finds_nothing_in_honest_code(source):
    assert scan_source(source) == []


@pytest.mark.parametrize("source,word", sorted(TAMPERING.items()))
def test_the_scan_names_each_tool_of_tampering(source, word):
    findings = scan_source(source)
    assert any(word in what and tampering for _, what, tampering in findings), findings


def test_rare_honest_tools_are_for_review_only():
    findings = scan_source("setattr(self, 'layer0', None)\nvalue = eval('1 + 1')")
    assert findings and not any(tampering for _, _, tampering in findings), findings


def test_restore_metadata_repairs_slips_and_drops_unknown_cells():
    release = nbformat.read(RELEASE, as_version=4)
    nb = answered()
    _cell(nb, "square").metadata["nbgrader"]["grade_id"] = "renamed"
    _cell(nb, "add").metadata["nbgrader"].update(grade=True, solution=False, locked=True)
    stray = copy.deepcopy(_cell(nb, "add_tests"))
    stray.metadata["nbgrader"]["grade_id"], stray["id"] = "from_another_chapter", "stray001"
    stray.source = "assert attention_weights is not None"
    nb.cells.append(stray)
    slips = restore_metadata(release, nb)
    assert {s["grade_id"] for s in slips} == {"square", "add", "from_another_chapter"}, slips
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    assert ids == [c.metadata.get("nbgrader", {}).get("grade_id") for c in release.cells] + [None]
    assert _cell(nb, "add").metadata["nbgrader"] == _cell(release, "add").metadata["nbgrader"]


def test_plain_keeps_a_message_on_one_line():
    assert plain("oops\nforged line\x1b[31m") == "oops\\nforged line\\x1b[31m"
    assert len(plain("x" * 1000, 50)) == 50


def test_student_ids_are_matched_whole():
    assert STUDENT_RE.fullmatch("alice.b-2_c")
    assert not STUDENT_RE.fullmatch("alice\n") and not STUDENT_RE.fullmatch("../bob")


def test_the_sandbox_hides_the_network_the_processes_and_the_checkout(tmp_path):
    args = sandbox.bwrap_args(files=tmp_path / "f", site=tmp_path / "s", ipc=tmp_path / "i", env={})
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv"):
        assert flag in args
    tmp_at = next(i for i in range(len(args)) if args[i:i + 2] == ["--tmpfs", "/tmp"])
    env_at = args.index(str(sandbox.python_roots()[0]))
    assert tmp_at < env_at, "the private /tmp must be mounted first: a .venv under /tmp would be hidden"
    repo = str(Path(__file__).resolve().parents[2])
    assert not any(a == repo or a.startswith(repo + "/solutions") or a.startswith(repo + "/course_lib")
                   for a in args), "the checkout itself must not be bound into the sandbox"


def test_course_grade_refuses_without_bubblewrap_unless_told(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    nbformat.write(answered(), inbox / f"alice_{CHAPTER}.ipynb")
    source = RELEASE.parents[2] / "solutions"
    env = {**os.environ, "PATH": str(tmp_path)}  # no bwrap on this PATH
    p = subprocess.run([COURSE, "grade", inbox, "--source", source, "--out", tmp_path / "out"], env=env,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert p.returncode == 2 and "bubblewrap is not installed" in p.stdout and "--no-sandbox" in p.stdout, p.stdout
    p = subprocess.run([COURSE, "grade", inbox, "--source", source, "--out", tmp_path / "out", "--no-sandbox",
                        "--no-feedback"], env={**os.environ}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stdout[-2000:]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert summary.startswith("WARNING: these grades were NOT isolated"), summary[:300]
