"""`course lab` stopped with SIGTERM or SIGINT stops its server too (it asks the server to stop and waits for
it) instead of leaving it running. The server is a stand-in: a short Python child that records the signal
it got and exits, started by the real `course_lib.course.lab.lab` with `lab_command` swapped for it."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

FAKE_SERVER = """
import os, signal, sys, time
def stop(signum, frame):
    open(sys.argv[2], "w").write(signal.Signals(signum).name)
    sys.exit(0)
signal.signal(signal.SIGTERM, stop)
open(sys.argv[1], "w").write(str(os.getpid()))
time.sleep(60)
"""

LAB = """
import signal, sys
import course_lib.course.lab as course
signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal, whatever the test runner ignores
fake, pid_file, stopped_file = sys.argv[1:4]
course.lab_command = lambda *args, **kwargs: [sys.executable, fake, pid_file, stopped_file]
course.write_lab_overrides = lambda *args, **kwargs: None  # not into this venv's share/jupyter
sys.exit(course.lab(sys.argv[4], port=8999, token="t", ip="127.0.0.1", open_browser=False))
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_stopping_course_lab_stops_its_server(tmp_path, signum):
    fake, pid_file, stopped_file = tmp_path / "fake_server.py", tmp_path / "server.pid", tmp_path / "stopped"
    fake.write_text(textwrap.dedent(FAKE_SERVER))
    env = {**os.environ, "COURSE_ROOT": str(tmp_path)}  # a course without notebooks: nothing to copy
    log = tmp_path / "lab.log"  # a file, not a pipe: a server left running would hold a pipe open
    with log.open("w") as out:
        lab = subprocess.Popen([sys.executable, "-c", LAB, str(fake), str(pid_file), str(stopped_file),
                                str(tmp_path / "my-work")], env=env, stdout=out, stderr=subprocess.STDOUT)
    server = None
    try:
        deadline = time.time() + 60
        while not (pid_file.is_file() and pid_file.read_text()):
            assert lab.poll() is None and time.time() < deadline, log.read_text()
            time.sleep(0.05)
        server = int(pid_file.read_text())
        lab.send_signal(signum)
        lab.wait(timeout=30)
        out = log.read_text()
        deadline = time.time() + 5
        while _alive(server) and time.time() < deadline:
            time.sleep(0.05)
        assert not _alive(server), f"the server outlived `course lab` stopped with {signum.name}:\n{out}"
        assert stopped_file.is_file(), f"the server was not asked to stop (SIGTERM), it was killed:\n{out}"
        assert stopped_file.read_text() == "SIGTERM"
        assert lab.returncode == 0, out
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)


STUBBORN = """
import signal, sys, time
from course_lib.course import run_until_stopped
server = ("import os, signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print(os.getpid(), flush=True);"
          "time.sleep(60)")
sys.exit(run_until_stopped([sys.executable, "-c", server], grace_s=1.0))
"""


def test_a_server_that_ignores_the_stop_request_is_killed_after_the_grace_time():
    lab = subprocess.Popen([sys.executable, "-c", STUBBORN], stdout=subprocess.PIPE, text=True)
    server = None
    try:
        server = int(lab.stdout.readline())
        t0 = time.monotonic()
        lab.send_signal(signal.SIGTERM)
        assert lab.wait(timeout=20) == 0
        assert 0.9 < time.monotonic() - t0 < 15, "killed before the grace time, or long after it"
        assert not _alive(server)
    finally:
        if lab.poll() is None:
            lab.kill()
            lab.wait()
        if server is not None and _alive(server):
            os.kill(server, signal.SIGKILL)
