"""The bubblewrap sandbox that every grading kernel runs in.

A submission is untrusted code, and its kernel would otherwise run as the grader's user with the whole
machine in reach: the gradebook, the nbgrader configs, ``solutions/`` (hidden tests and reference
answers), the class folder and every other learner's files. Isolation comes from bubblewrap (``bwrap``,
Debian package ``bubblewrap``), the tool Flatpak uses, not from checks of our own. Inside the sandbox the
kernel sees:

* read-only: the system (``/usr``, ``/etc``, ...), the Python environment, and a snapshot of
  ``course_lib`` copied when grading starts (``site``), never the checkout's source;
* writable: its own working folder (``/home/learner``, also ``HOME`` and the current directory, holding
  read-only copies of the files submitted with the notebook) and a private ``/tmp``, both in memory and
  of bounded size, so a submission cannot fill the grader's disk; and, until the kernel is up, the folder
  holding its connection file and ZeroMQ sockets (``ipc``, made read-only then by the grader);
* nothing else: no network (``--unshare-net``; the kernel talks to nbgrader over Unix sockets), its own
  PID namespace (everything it starts dies with it: ``--unshare-pid --die-with-parent``), an
  unprivileged user where user namespaces allow it, and the environment variables listed below.

``prlimit`` puts the memory (address space), CPU-time and file-size limits on the sandbox before it
starts, so every process inside inherits them. The output limit is enforced on the grader's side
(``preprocessors.GuardedExecute``), since the kernel can write anything to its sockets.
"""
from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client.manager import AsyncKernelManager
from traitlets import List

#: where the kernel's own folder appears inside the sandbox (HOME and the working directory)
LEARNER_HOME = "/home/learner"
#: where the snapshot of course_lib appears inside the sandbox (on PYTHONPATH)
SITE = "/opt/course-site"
#: variables the kernel gets (everything else of the grader's environment stays outside)
PASSED_ENV = ("NBGRADER_EXECUTION", "NBGRADER_VALIDATING", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "LANG",
              "LC_ALL", "TZ")
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/opt/conda")
#: configuration that must not be visible even read-only (nbgrader and Jupyter configs, which name the
#: exchange and the course)
_HIDDEN_SYSTEM_DIRS = ("/etc/jupyter", "/etc/ipython", "/usr/local/etc/jupyter", "/usr/etc/jupyter")


class SandboxUnavailable(RuntimeError):
    """bubblewrap is missing or cannot create namespaces here."""


@functools.cache
def unavailable_reason() -> str | None:
    """None if bubblewrap works on this machine, else a sentence saying why not and what to do."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return ("bubblewrap is not installed: install it (Debian/Ubuntu: `apt-get install bubblewrap`) "
                "or pass --no-sandbox to grade without isolation")
    try:
        probe = subprocess.run([bwrap, *_namespace_args(), "--ro-bind", "/", "/", "--proc", "/proc", "--dev",
                                "/dev", "true"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return f"bubblewrap could not start ({e}); pass --no-sandbox to grade without isolation"
    if probe.returncode != 0:
        return (f"bubblewrap cannot create a sandbox here ({probe.stderr.strip()[:200]}); on a JupyterHub host "
                "enable unprivileged user namespaces (sysctl kernel.unprivileged_userns_clone=1) or install "
                "bwrap setuid, or pass --no-sandbox to grade without isolation")
    return None


@functools.cache
def _user_namespaces() -> bool:
    """Whether bwrap can map the kernel to an unprivileged uid (always wanted; not every host allows it)."""
    bwrap = shutil.which("bwrap")
    try:
        return subprocess.run([bwrap, "--unshare-user", "--uid", "1000", "--gid", "1000", "--ro-bind", "/", "/",
                               "true"], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def _namespace_args() -> list[str]:
    args = ["--unshare-pid", "--unshare-net", "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try",
            "--die-with-parent"]
    if _user_namespaces():
        args += ["--unshare-user", "--uid", "1000", "--gid", "1000"]
    return args


def python_roots() -> list[Path]:
    """The folders the Python environment lives in: the venv and the interpreter it was made from."""
    roots = {Path(sys.prefix), Path(sys.base_prefix), Path(sys.executable).resolve().parent.parent}
    # site-packages folders that a .pth file or --system-site-packages adds from elsewhere (only those: a
    # checkout on sys.path must stay out of the sandbox)
    roots |= {Path(p) for p in sys.path if Path(p).name in ("site-packages", "dist-packages")
              and not any(Path(p).is_relative_to(r) for r in roots)}
    return sorted(p for p in roots if p.is_dir())


def snapshot_course_lib(dest: Path) -> Path:
    """Copy the installed course_lib (package code and assets, no byte-code caches) to ``dest/course_lib``:
    what the kernels import, frozen for the whole grading run and out of reach of the checkout."""
    import course_lib

    src = Path(course_lib.__file__).resolve().parent
    target = Path(dest) / "course_lib"
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(src, target, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    return Path(dest)


def bwrap_args(*, files: Path, site: Path, ipc: Path, env: dict[str, str], disk_bytes: int = 2**30) -> list[str]:
    """The bwrap command line (up to and including ``--``) for a kernel whose home holds the files of
    the folder ``files`` (read-only), importing course_lib from ``site``, talking through ``ipc``;
    ``disk_bytes``: the size of its home and of its /tmp."""
    # /tmp first: the Python environment (a checkout's .venv) or the course_lib snapshot may live under it,
    # and a mount made later on top of it would hide them
    args = [shutil.which("bwrap") or "bwrap", *_namespace_args(), "--clearenv",
            "--proc", "/proc", "--dev", "/dev", "--size", str(disk_bytes), "--tmpfs", "/tmp"]
    for d in _SYSTEM_DIRS:
        p = Path(d)
        if p.is_symlink():
            args += ["--symlink", os.readlink(p), d]
        elif p.is_dir():
            args += ["--ro-bind", d, d]
    for d in _HIDDEN_SYSTEM_DIRS:
        if Path(d).is_dir():
            args += ["--tmpfs", d]
    for root in python_roots():
        args += ["--ro-bind", str(root), str(root)]
    args += ["--ro-bind", str(Path(site).resolve()), SITE,
             "--size", str(disk_bytes), "--perms", "0700", "--tmpfs", LEARNER_HOME]
    for f in sorted(Path(files).iterdir()) if Path(files).is_dir() else []:
        if f.is_file():
            args += ["--ro-bind", str(f.resolve()), f"{LEARNER_HOME}/{f.name}"]
    args += ["--bind", str(Path(ipc).resolve()), str(Path(ipc).resolve()), "--chdir", LEARNER_HOME]
    variables = {
        "HOME": LEARNER_HOME, "TMPDIR": "/tmp", "PYTHONPATH": SITE, "PYTHONDONTWRITEBYTECODE": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), "/usr/local/bin", "/usr/bin", "/bin"]),
        "MPLBACKEND": "agg", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
        # each thread's malloc arena reserves 64 MB of address space, which the memory limit counts
        "MALLOC_ARENA_MAX": "2",
        **{k: env[k] for k in PASSED_ENV if k in env},
    }
    for key, value in variables.items():
        args += ["--setenv", key, str(value)]
    return args + ["--"]


def limits_args(*, memory_bytes: int, cpu_seconds: int, file_bytes: int = 0) -> list[str]:
    """``prlimit`` in front of the kernel command: address space, CPU time (SIGXCPU at the soft limit,
    SIGKILL 5 s of CPU later) and the size of any one file written; 0 means no limit."""
    args = [shutil.which("prlimit") or "prlimit"]
    if memory_bytes:
        args.append(f"--as={memory_bytes}")
    if cpu_seconds:
        args.append(f"--cpu={cpu_seconds}:{cpu_seconds + 5}")
    if file_bytes:
        args.append(f"--fsize={file_bytes}")
    return args + ["--"] if len(args) > 1 else []


class PrefixedKernelManager(AsyncKernelManager):
    """A kernel manager that starts the kernel behind a command prefix (``prlimit ... -- bwrap ... --``)."""

    command_prefix = List([], help="Words put in front of the kernel's command line.")

    def format_kernel_cmd(self, extra_arguments=None):
        return list(self.command_prefix) + super().format_kernel_cmd(extra_arguments)
