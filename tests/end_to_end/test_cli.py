"""The `course` command: help everywhere, the subcommand registry, `course lab` (the learner's own copy,
never overwritten; JupyterLab really serving it), and `make venv` being idempotent."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from course_lib import cli
from course_lib.cli.options import Command
from course_lib.course import free_port, sync_my_work, write_lab_overrides
from notebook_utils import FIXTURE_COURSE, REPO, chapters

COURSE = str(Path(sys.executable).parent / "course")


def test_course_help_lists_the_commands():
    t0 = time.perf_counter()
    p = subprocess.run([COURSE, "--help"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert p.returncode == 0, p.stdout
    for name in ("lab", "release", "check", "grade"):
        assert re.search(rf"^\s+{name}\s", p.stdout, re.M), p.stdout
    print(f"course --help: {time.perf_counter() - t0:.1f} s")


@pytest.mark.parametrize("name", sorted(cli.commands()))
def test_every_command_has_help(name, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main([name, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: course " + name)


def test_no_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "COMMAND" in capsys.readouterr().out


def _with_command(monkeypatch, command):
    commands = {**cli.commands(), command.name: command}
    monkeypatch.setattr(cli, "commands", lambda: commands)


def test_bad_input_is_one_line_not_a_traceback(monkeypatch, capsys):
    def run(args):
        raise ValueError("--task-fraction must be in [0, 1), got 1.5")

    _with_command(monkeypatch, Command("failing", "a test command", lambda p: None, run))
    monkeypatch.delenv("COURSE_DEBUG", raising=False)
    assert cli.main(["failing"]) == 2
    assert capsys.readouterr().err == "course failing: error: --task-fraction must be in [0, 1), got 1.5\n"
    monkeypatch.setenv("COURSE_DEBUG", "1")
    with pytest.raises(ValueError, match="task-fraction"):
        cli.main(["failing"])


@pytest.mark.parametrize("argv,expected", [
    (["finetune", "mr", "--checkpoint", "no/such/folder", "--no-record"], "no/such/folder/config.json is missing"),
    (["pretrain", "--init-from", "no/such/folder", "--task-text", "mr", "--task-fraction", "1.5", "--out", "{run}"],
     "argument --task-fraction: must be between 0 and 1"),
    (["pretrain", "--preset", "huge", "--steps", "1", "--out", "{run}"], "unknown preset 'huge'"),
    (["pretrain", "--init-from", "no/such/folder", "--steps", "1", "--out", "{run}"], "no/such/folder/config.json"),
])
def test_real_commands_report_bad_input_in_one_line(argv, expected, tmp_path):
    argv = [a.replace("{run}", str(tmp_path / "run")) for a in argv]
    p = subprocess.run([COURSE, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=300)
    assert p.returncode == 2, p.stdout + p.stderr
    assert "Traceback" not in p.stderr, p.stderr
    last = p.stderr.strip().splitlines()[-1]  # a bad option's usage comes first (argparse), then the error
    assert last.startswith(f"course {argv[0]}: error:") and expected in last, p.stderr
    assert not (tmp_path / "run").exists(), "a run refused for bad input must not leave a run folder behind"


def test_options_are_built_only_for_the_command_that_runs(monkeypatch):
    built = []
    _with_command(monkeypatch, Command("fake", "a test command", lambda p: built.append(p.prog) or
                                       p.add_argument("--steps", type=int, default=1), lambda args: 7 + args.steps))
    assert cli.main(["fake", "--steps", "3"]) == 10 and built == ["course fake"]
    p = subprocess.run([sys.executable, "-c", "import sys; from course_lib import cli; cli.build_parser(only='');"
                        "print(sorted(m for m in ('torch', 'nbgrader', 'jupyter_client') if m in sys.modules))"],
                       stdout=subprocess.PIPE, text=True, timeout=120, check=True)
    assert p.stdout.strip() == "[]", "`course --help` imports heavy modules: " + p.stdout


def test_option_defaults_are_the_library_functions_own():
    import inspect

    from course_lib.course.lab import lab
    from course_lib.finetune import finetune
    from course_lib.grading.pipeline import GradeSettings
    from course_lib.pretrain import pretrain

    for name, function, options in (("pretrain", pretrain, {"max_length", "task_fraction", "steps"}),
                                    ("finetune", finetune, {"epochs", "max_length", "init", "train_fraction"}),
                                    ("lab", lab, {"port", "ip"}),
                                    ("grade", GradeSettings, {"jobs", "learner_timeout"})):
        argv = [name] + (["mr"] if name == "finetune" else ["x"] if name == "grade" else [])
        args = cli.build_parser(only=name).parse_args(argv)
        for option in options:
            assert getattr(args, option) == inspect.signature(function).parameters[option].default, (name, option)
    args = cli.build_parser(only="finetune").parse_args(["finetune", "mr"])
    assert args.seed == [inspect.signature(finetune).parameters["seed"].default] and args.freeze is False
    args = cli.build_parser(only="grade").parse_args(["grade", "x", "--no-sandbox", "-j", "2"])
    assert args.sandbox is False and args.feedback is True and args.jobs == 2


def test_pretrain_gives_each_model_its_own_defaults(monkeypatch, capsys):
    """An option BERT and the GPT share but default differently (--preset, --batch-size, --lr, ...) is passed only
    when given, so `course pretrain --model gpt` trains with pretrain_gpt's defaults, not pretrain's."""
    import inspect

    from course_lib.cli import models

    parser = cli.build_parser(only="pretrain")
    for model, (function, options) in list(models.PRETRAINERS.items()):
        defaults = {n: p.default for n, p in inspect.signature(function()).parameters.items() if n in options}
        received = {}

        def record(out, **kwargs):
            received.clear()
            received.update(kwargs)

        monkeypatch.setitem(models.PRETRAINERS, model, (lambda: record, options))
        models._pretrain(parser.parse_args(["pretrain", "--model", model, "--out", "x"]))
        assert {**defaults, **{n: v for n, v in received.items() if n in options}} == defaults, model
        models._pretrain(parser.parse_args(["pretrain", "--model", model, "--out", "x", "--batch-size", "7"]))
        assert received["batch_size"] == 7
    with pytest.raises(SystemExit):
        parser.parse_args(["pretrain", "--help"])
    assert "(default: 32 for bert, 16 for gpt)" in " ".join(capsys.readouterr().out.split())


def test_sync_my_work_adds_but_never_overwrites(tmp_path):
    notebooks = tmp_path / "notebooks"
    shutil.copytree(FIXTURE_COURSE / "notebooks", notebooks)
    my = tmp_path / "my-work"
    added, _ = sync_my_work(notebooks, my)
    assert added == ["fx01_fixture"]
    mine = my / "fx01_fixture" / "fx01_fixture.ipynb"
    mine.write_text(mine.read_text().replace("raise NotImplementedError()", "return a + b", 1))
    edited = mine.read_text()
    # a course update: the chapter changes upstream, a new chapter and a new data file appear
    (notebooks / "fx01_fixture" / "fx01_fixture.ipynb").write_text("{}")
    (notebooks / "fx01_fixture" / "data.txt").write_text("new")
    shutil.copytree(notebooks / "fx01_fixture", notebooks / "fx02_more", ignore=shutil.ignore_patterns("*.ipynb"))
    shutil.copy(FIXTURE_COURSE / "notebooks" / "fx01_fixture" / "fx01_fixture.ipynb",
                notebooks / "fx02_more" / "fx02_more.ipynb")
    added, files = sync_my_work(notebooks, my)
    assert added == ["fx02_more"]
    assert files == [str(Path("fx01_fixture") / "data.txt")]
    assert mine.read_text() == edited
    added, files = sync_my_work(notebooks, my)
    assert added == [] and files == []


def test_lab_overrides_hide_the_news(tmp_path):
    path = write_lab_overrides(tmp_path)
    data = json.loads(path.read_text())
    assert data["@jupyterlab/apputils-extension:notification"] == {"fetchNews": "false", "checkForUpdates": False}
    assert path == tmp_path / "share" / "jupyter" / "lab" / "settings" / "overrides.json"


def test_lab_dry_run_prints_the_url(tmp_path, monkeypatch):
    root = tmp_path / "course"
    shutil.copytree(FIXTURE_COURSE, root)
    (root / "nbgrader_config.py").write_text("c = get_config()\n")
    p = subprocess.run([COURSE, "lab", "--dry-run", "--port", "8999", "--token", "abc"], cwd=tmp_path,
                       env={**os.environ, "COURSE_ROOT": str(root)}, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=120)
    assert p.returncode == 0, p.stdout
    assert "http://127.0.0.1:8999/lab/tree/fx01_fixture/fx01_fixture.ipynb?token=abc" in p.stdout
    assert (root / "my-work" / "fx01_fixture" / "fx01_fixture.ipynb").is_file()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_course_lab_serves_the_course(tmp_path):
    """`course lab` starts JupyterLab on the learner's copy; the notebook is there through the REST API."""
    home = tmp_path / "home"
    env = {**os.environ, "HOME": str(home), "JUPYTER_CONFIG_DIR": str(home / "cfg"),
           "JUPYTER_DATA_DIR": str(home / "data"), "JUPYTER_RUNTIME_DIR": str(home / "rt"),
           "IPYTHONDIR": str(home / "ipy")}
    port, token, my = free_port(18888), "t0ken", tmp_path / "my-work"
    proc = subprocess.Popen([COURSE, "lab", "--no-browser", "--port", str(port), "--token", token, "--dir", str(my)],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)
    try:
        deadline, last = time.time() + 180, None
        while time.time() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/contents?token={token}", timeout=5) as r:
                    listing = json.load(r)
                break
            except Exception as e:  # noqa: BLE001 - not up yet
                last = e
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(1)
        else:
            pytest.fail(f"JupyterLab did not answer: {last}")
        names = sorted(item["name"] for item in listing["content"])
        assert names == chapters(REPO / "notebooks"), names
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/lab?token={token}", timeout=10) as r:
            assert r.status == 200 and b"JupyterLab" in r.read()
    finally:
        os.killpg(proc.pid, 15)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
    out = proc.stdout.read()
    assert f"http://127.0.0.1:{port}/" in out and f"token={token}" in out


def test_make_venv_is_quick_when_nothing_changed():
    if not (REPO / ".venv" / ".course-installed").is_file() or shutil.which("make") is None:
        pytest.skip("not run through `make test`")
    t0 = time.perf_counter()
    p = subprocess.run(["make", "-s", "venv"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=600)
    took = time.perf_counter() - t0
    assert p.returncode == 0, p.stdout
    assert "up to date" in p.stdout, p.stdout
    assert took < 15, f"make venv took {took:.1f} s with nothing changed"
