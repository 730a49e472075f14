"""The OS sandbox around the process that imports pair code: bubblewrap.

The child gets its own user, PID, network, IPC, UTS and cgroup namespaces (no network but
loopback, no view of any other process), a read-only view of the system, the interpreter and the
grader package only, and one writable folder: its scratch copy of the workspace. The organizers'
checkout (`solutions/`), `$HOME`, the runner's files and the parent's environment are not there.
When the PID namespace's first process dies, every process in it dies too.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import cohort
from cohort.errors import IsolationError

MODES = ("auto", "bwrap", "none")
WORKSPACE = "/grade"  # where the child sees its workspace
CONTROL = "/run/cohort"  # read-only files the parent writes for the child (tests to skip)
GRADER = "/opt/cohort"  # the grader package, on the child's PYTHONPATH
HOME = "/tmp/home"
ETC = (
    "hosts",
    "passwd",
    "group",
    "nsswitch.conf",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "fonts",
    "mime.types",
    "os-release",
)


def _python_dirs() -> list[str]:
    """The interpreter, its standard library and site-packages: read-only in the sandbox."""
    dirs = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    dirs |= {p for p in sys.path if p and ("site-packages" in p or "dist-packages" in p)}
    real = {str(Path(d).resolve()) for d in dirs if Path(d).is_dir()}
    real |= {d for d in dirs if Path(d).is_dir()}
    keep = sorted(real)
    return [d for d in keep if not any(d != o and d.startswith(o + os.sep) for o in keep)]


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = Path("/", name)
        if path.is_symlink():
            args += ["--symlink", os.readlink(path), str(path)]
        elif path.is_dir():
            args += ["--ro-bind", str(path), str(path)]
    for name in ETC:
        args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
    return args


def _data_binds() -> list[str]:
    """Offline data and models the days read (read-only): `$MLAB_DATA_DIR`, ~/.cache/mlab, the
    Hugging Face cache."""
    args = []
    if data := os.environ.get("MLAB_DATA_DIR"):
        args += ["--ro-bind-try", data, data]
    cache = Path.home() / ".cache"
    for name in ("mlab", "huggingface"):
        args += ["--ro-bind-try", str(cache / name), f"{HOME}/.cache/{name}"]
    return args


def _gpu_binds() -> list[str]:
    devices = sorted(str(p) for p in Path("/dev").glob("nvidia*"))
    if not devices:
        return []
    return [a for d in devices for a in ("--dev-bind", d, d)] + ["--ro-bind", "/sys", "/sys"]


def command(argv: list[str], workspace: Path, control: Path) -> list[str]:
    """`argv` wrapped in bubblewrap, seeing `workspace` (writable) and `control` (read-only)."""
    grader = Path(cohort.__file__).resolve().parent
    args = [
        "bwrap",
        "--unshare-all",
        "--die-with-parent",
        "--new-session",
        "--cap-drop",
        "ALL",
        "--uid",
        "65534",
        "--gid",
        "65534",
        "--hostname",
        "localhost",
        *_system_binds(),
        "--dev",
        "/dev",
        *_gpu_binds(),
        "--proc",
        "/proc",
        "--tmpfs",
        "/tmp",
        "--dir",
        HOME,
        # after the private /tmp, so an interpreter or venv under /tmp stays visible
        *[a for d in _python_dirs() for a in ("--ro-bind", d, d)],
        "--ro-bind",
        str(grader),
        f"{GRADER}/cohort",
        *_data_binds(),
        "--bind",
        str(workspace),
        WORKSPACE,
        "--ro-bind-try",  # the trusted tests: read-only even to code they import
        str(workspace / "tests"),
        f"{WORKSPACE}/tests",
        "--ro-bind",
        str(control),
        CONTROL,
        "--chdir",
        WORKSPACE,
        "--",
        *argv,
    ]
    return args


@functools.cache
def unavailable() -> str | None:
    """Why bubblewrap cannot sandbox here, or None when it can (tried once per process)."""
    try:
        with tempfile.TemporaryDirectory(prefix="cohort-bwrap-probe-") as tmp:
            proc = subprocess.run(
                command([sys.executable, "-c", "import cohort"], Path(tmp), Path(tmp)),
                capture_output=True,
                text=True,
                timeout=60,
                env={**os.environ, "PYTHONPATH": GRADER},
            )
    except FileNotFoundError:
        return "bubblewrap (bwrap) is not installed"
    except (OSError, subprocess.SubprocessError) as e:
        return f"bubblewrap failed to start: {e}"
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
        return f"bubblewrap cannot run here: {last}"
    return None


def resolve(mode: str) -> tuple[str, str | None]:
    """The isolation a run gets for the requested `mode`: ("bwrap", None) or ("none", why)."""
    if mode not in MODES:
        raise IsolationError(f"isolation {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "none":
        return "none", "isolation turned off (--isolation none)"
    why = unavailable()
    if why is None:
        return "bwrap", None
    if mode == "bwrap":
        raise IsolationError(f"--isolation bwrap: {why}")
    return "none", why
