"""``course lab``: the learner's own copy of the course (added to, never overwritten) and JupyterLab on it."""
from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

from .layout import chapters, repo_root

LAB_OVERRIDES = {
    "@jupyterlab/apputils-extension:notification": {"fetchNews": "false", "checkForUpdates": False},
}


def sync_my_work(notebooks: Path, my_work: Path) -> tuple[list[str], list[str]]:
    """Copy the learner notebooks into the learner's own folder: a chapter (or file) that is not there
    yet is added; nothing that exists is ever overwritten. Returns (added chapters, added files)."""
    my_work.mkdir(parents=True, exist_ok=True)
    added_chapters, added_files = [], []
    for ch in chapters(notebooks):
        src_dir, dst_dir = notebooks / ch, my_work / ch
        new_chapter = not dst_dir.exists()
        for src in sorted(src_dir.rglob("*")):
            if src.is_dir() or ".ipynb_checkpoints" in src.parts:
                continue
            dst = dst_dir / src.relative_to(src_dir)
            if dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
            dst.chmod(0o644)
            if not new_chapter:
                added_files.append(str(dst.relative_to(my_work)))
        if new_chapter:
            added_chapters.append(ch)
    return added_chapters, added_files


def write_lab_overrides(prefix: Path | None = None) -> Path:
    """Hide JupyterLab's "news" pop-up and update check: settings/overrides.json in the environment."""
    path = Path(prefix or sys.prefix) / "share" / "jupyter" / "lab" / "settings" / "overrides.json"
    data = {}
    if path.is_file():
        try:
            data = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError:
            data = {}
    merged = dict(data)
    for plugin, values in LAB_OVERRIDES.items():
        merged[plugin] = {**data.get(plugin, {}), **values}
    if merged != data or not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(merged, indent=2) + "\n")
    return path


def free_port(start: int = 8888, host: str = "127.0.0.1") -> int:
    for port in range(start, start + 100):
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
            return port
    raise SystemExit(f"no free port in {start}..{start + 99}")


def lab_command(my_work: Path, *, port: int, token: str, ip: str = "127.0.0.1", open_browser: bool = True,
                extra: list[str] | None = None) -> list[str]:
    cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={my_work}", f"--ip={ip}", f"--port={port}",
           "--ServerApp.port_retries=0", f"--IdentityProvider.token={token}"]
    if not open_browser:
        cmd.append("--no-browser")
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    return cmd + list(extra or [])


STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


def run_until_stopped(cmd: list[str], *, stop_signals=STOP_SIGNALS, grace_s: float = 30.0, **popen_kwargs) -> int:
    """Run a long-lived child (a server) and wait for it. SIGINT, SIGTERM or SIGHUP sent to this process is
    passed on to the child as SIGTERM (the request to shut down cleanly that servers honour; a terminal's
    Ctrl-C reaches the child itself too), and this keeps waiting until the child has exited: stopping this
    process never leaves the child running. A child still running `grace_s` seconds after the first request
    is killed (not sooner: people press Ctrl-C twice, and a killed JupyterLab would leave its kernels running).
    A signal this process ignores (`nohup`) stays ignored. Returns 0 when the child ended on request, else its
    exit status (128 + N for a child killed by signal N)."""
    child = subprocess.Popen(cmd, **popen_kwargs)
    requests: list[int] = []
    timer = threading.Timer(grace_s, lambda: _kill(child))
    timer.daemon = True

    def request_stop(signum, frame):
        requests.append(signum)
        try:
            child.terminate()
        except ProcessLookupError:
            pass
        if len(requests) == 1:
            timer.start()

    previous = {}
    if threading.current_thread() is threading.main_thread():  # handlers can only be set there
        for signum in stop_signals:
            if signal.getsignal(signum) is not signal.SIG_IGN:
                previous[signum] = signal.signal(signum, request_stop)
    try:
        code = child.wait()  # a handler runs during the wait, which then goes on (PEP 475)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        timer.cancel()
        if child.poll() is None:  # an exception here: the child must not outlive this process either
            _kill(child)
            child.wait()
    if requests:
        return 0
    return code if code >= 0 else 128 - code


def _kill(child: subprocess.Popen) -> None:
    try:
        child.kill()
    except ProcessLookupError:
        pass


def lab(my_work: str | Path | None = None, *, port: int = 0, ip: str = "127.0.0.1", token: str | None = None,
        open_browser: bool = True, dry_run: bool = False, jupyter_args: list[str] | tuple = ()) -> int:
    """``course lab``: copy what is new in notebooks/ into ``my_work`` (default: my-work/ in the checkout) and run
    JupyterLab there until it is stopped. ``port`` 0: the first free one from 8888; ``token`` None: a random one."""
    root = repo_root()
    notebooks = root / "notebooks"
    my_work = Path(my_work).resolve() if my_work else root / "my-work"
    added, files = sync_my_work(notebooks, my_work)
    if added:
        print(f"Copied to your folder {my_work}: {', '.join(added)}")
    for f in files:
        print(f"New file added to your copy: {f}")
    print(f"Your work lives in {my_work} (never overwritten by course updates).")
    write_lab_overrides()
    port = port or free_port()
    token = token or secrets.token_hex(16)
    first = chapters(my_work)
    path = f"lab/tree/{first[0]}/{first[0]}.ipynb" if first else "lab"
    url = f"http://{ip}:{port}/{path}?token={token}"
    cmd = lab_command(my_work, port=port, token=token, ip=ip, open_browser=open_browser, extra=jupyter_args)
    print(textwrap.dedent(f"""
        JupyterLab with the course: {url}
        (open it in your browser; stop the server with Ctrl-C)
    """).rstrip() + "\n", flush=True)
    if dry_run:
        print("would run:", " ".join(cmd))
        return 0
    # run from the checkout so the nbgrader extension (Validate button) reads the course's config; Ctrl-C or
    # SIGTERM to `course lab` shuts the server down (and waits for it) rather than leaving it running
    return run_until_stopped(cmd, cwd=root, env=os.environ.copy())
