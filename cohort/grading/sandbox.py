"""Grade a pair checkout: pytest in a child process with time, memory and output limits.

The child imports untrusted code. It reports each test as it goes (see `outcomes`); when it hangs
past a test's timeout or dies (segfault, `os._exit`, out of memory), the parent records that test
as failed with the reason and starts a new child for the tests not yet graded. The child runs in
its own session, so killing its process group also ends anything it spawned.
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from cohort.curriculum import day_of_test_file
from cohort.grading import results
from cohort.grading.outcomes import (
    Benchmark,
    EventReader,
    Item,
    Outcome,
    clip,
    record_from,
)
from cohort.grading.plugin import DESELECT_ENV, EVENTS_ENV
from cohort.grading.static import scan_pair_code, scan_tests

GRACE_S = 10.0  # beyond a test's own timeout before the parent kills the child
PYTEST_INI = """\
[pytest]
addopts = --strict-markers -p no:cacheprovider -q -rN
testpaths = tests
"""
# A test file that fails to import fails only its own tests; the other days run as usual.
CHILD_ARGS = ("--continue-on-collection-errors",)
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL")


@dataclass
class Limits:
    test_timeout: float = 30.0  # seconds per test (slow tests get 4x)
    run_timeout: float = 900.0  # seconds for the whole grading run
    memory_mb: int = 8192  # address space of the child
    file_mb: int = 256  # largest file the child may write
    output_kb: int = 256  # child stdout/stderr kept for diagnosis


class GradeError(Exception):
    """The checkout or the tests cannot be graded at all (one-line message)."""


@dataclass
class Run:
    items: dict[str, Item] = field(default_factory=dict)
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    benchmarks: list[Benchmark] = field(default_factory=list)
    collect_errors: dict[str, str] = field(default_factory=dict)

    def take(self, event: dict) -> str | None:
        """Apply one event; returns the nodeid of a test that just started."""
        kind = event.get("event")
        if kind == "collected":
            for data in event.get("items", []):
                item = record_from(Item, data)
                self.items.setdefault(item.nodeid, item)
        elif kind == "start":
            return event.get("nodeid")
        elif kind == "outcome":
            outcome = record_from(Outcome, event)
            if outcome.nodeid in self.items:
                self.outcomes.setdefault(outcome.nodeid, outcome)
        elif kind == "benchmark":
            self.benchmarks.append(record_from(Benchmark, event))
        elif kind == "collect_error":
            self.collect_errors[event.get("file", "?")] = event.get("message", "")
        return None


def prepare_workspace(repo: Path, tests: Path, ws: Path, day: str | None) -> list[str]:
    """Copy the pair's `mlab/` and the (trusted) tests into `ws`; return pytest's targets."""
    if not tests.is_dir():
        raise GradeError(f"{tests}: no tests directory to grade with")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
    if (repo / "mlab").is_dir():
        shutil.copytree(repo / "mlab", ws / "mlab", ignore=ignore, symlinks=False)
    shutil.copytree(tests, ws / "tests", ignore=ignore, symlinks=False)
    (ws / "pytest.ini").write_text(PYTEST_INI)
    if day is None:
        return ["tests"]
    if not (ws / "tests" / f"test_{day}.py").exists():
        raise GradeError(f"{tests}: no graders for day {day!r} (expected test_{day}.py)")
    return [f"tests/test_{day}.py"]


def _child_env(ws: Path, events: Path, deselect: Path, limits: Limits) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in SECRET_WORDS)}
    env = {k: v for k, v in env.items() if not k.startswith(("GITHUB_", "COHORT_", "PYTEST_"))}
    env.update(
        PYTHONPATH=str(ws),
        PYTHONDONTWRITEBYTECODE="1",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        COHORT_TEST_TIMEOUT=str(limits.test_timeout),
        **{EVENTS_ENV: str(events), DESELECT_ENV: str(deselect)},
    )
    return env


def _limit(limits: Limits):
    def apply() -> None:
        _die_with_parent()
        mb = 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.file_mb * mb,) * 2)
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))

    return apply


def _die_with_parent() -> None:
    """Linux: SIGKILL this child when the grading parent dies, however it dies."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: the parent's finally still ends the group


def _drain(stream, keep: deque) -> None:
    """Read the child's output to the end, keeping only the last chunks (huge output is cut)."""
    for chunk in iter(lambda: stream.read(4096), b""):
        keep.append(chunk)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _death(rc: int) -> str:
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited with code {rc}"


def _watch(
    proc: subprocess.Popen, run: Run, reader: EventReader, limits: Limits, deadline: float
) -> tuple[str | None, str | None]:
    """Follow the child's events until it exits or overruns a limit.

    Returns the test running at the end (if any) and why the child was stopped (None when it
    exited by itself).
    """
    current, start = None, time.monotonic()
    started = start
    while True:
        for event in reader.poll():
            if (nodeid := run.take(event)) is not None:
                current, started = nodeid, time.monotonic()
        if current in run.outcomes:
            current = None
        if proc.poll() is not None:
            return current, None
        now = time.monotonic()
        item = run.items.get(current) if current else None
        if item and now - started > (item.timeout or limits.test_timeout) + GRACE_S:
            return (
                current,
                f"timed out after {now - started:.0f} s and was killed (an infinite loop?)",
            )
        if not run.items and now - start > limits.test_timeout * 2 + GRACE_S:
            return (
                current,
                f"importing the exercises took over {now - start:.0f} s (a loop at import?)",
            )
        if now > deadline:
            return current, f"the whole grading run hit its {limits.run_timeout:g} s limit"
        time.sleep(0.05)


def run_pytest(ws: Path, targets: list[str], limits: Limits) -> Run:
    """Run the tests to the end, restarting the child after each hang or crash."""
    run = Run()
    deadline = time.monotonic() + limits.run_timeout
    for attempt in range(1, 10_000):
        events, deselect = ws / f"events-{attempt}.jsonl", ws / f"deselect-{attempt}.txt"
        deselect.write_text("\n".join(run.outcomes))
        graded_before = len(run.outcomes)
        output: deque = deque(maxlen=max(1, limits.output_kb // 4))
        proc = subprocess.Popen(
            [sys.executable, "-m", "pytest", "-p", "cohort.grading.plugin", *CHILD_ARGS, *targets],
            cwd=ws,
            env=_child_env(ws, events, deselect, limits),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_limit(limits),
        )
        drainer = threading.Thread(target=_drain, args=(proc.stdout, output), daemon=True)
        drainer.start()
        reader = EventReader(events)
        try:
            current, reason = _watch(proc, run, reader, limits, deadline)
        finally:
            _kill_group(proc)  # also on Ctrl-C: nothing the child started outlives the run
        drainer.join(timeout=5)
        for event in reader.poll():  # what the child wrote just before it ended
            current = run.take(event) or current
        tail = b"".join(output).decode(errors="replace")
        if current and current not in run.outcomes:
            why = reason or f"the test process {_death(proc.returncode)} while running this test"
            run.outcomes[current] = Outcome(current, "failed", clip(f"{why}\n{_last_lines(tail)}"))
        remaining = [n for n in run.items if n not in run.outcomes]
        if not remaining and run.items:
            break
        if time.monotonic() > deadline or len(run.outcomes) == graded_before:
            why = reason or f"the test process {_death(proc.returncode)} before running it"
            for nodeid in remaining:
                run.outcomes[nodeid] = Outcome(
                    nodeid, "failed", clip(f"{why}\n{_last_lines(tail)}")
                )
            if not run.items:
                run.collect_errors.setdefault("*", clip(f"{why}\n{_last_lines(tail)}"))
            break
    return run


def _last_lines(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _static_items(ws: Path, targets: list[str], run: Run) -> None:
    """Give tests of files that never got collected (import error, hang) a failed outcome."""
    collected_files = {item.file for item in run.items.values()}
    files = [
        p
        for t in targets
        for p in ([ws / t] if t.endswith(".py") else sorted((ws / t).glob("test_*.py")))
    ]
    for path in files:
        rel = path.relative_to(ws).as_posix()
        if rel in collected_files or day_of_test_file(path) is None:
            continue
        message = run.collect_errors.get(rel) or run.collect_errors.get("*") or "never collected"
        for item in scan_tests(path, rel):
            run.items[item.nodeid] = item
            run.outcomes[item.nodeid] = Outcome(
                item.nodeid, "failed", f"could not import this day's code:\n{message}"
            )


def git_facts(repo: Path) -> dict:
    """Commit and commit date of a git checkout (empty when it is not one)."""
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "log", "-1", "--format=%H%n%cI"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
    except (OSError, subprocess.SubprocessError):
        return {}
    return {"commit": out[0], "committed_at": out[1]} if len(out) == 2 else {}


def grade(
    repo: Path,
    tests: Path | None = None,
    day: str | None = None,
    limits: Limits | None = None,
    extra: dict | None = None,
    markers: str | None = None,
) -> dict:
    """Grade `repo` (laid out like `template/`) with `tests` (default: its own) -> results.

    `markers` selects tests as pytest's `-m` does (e.g. "gpu or bench" on a GPU runner).
    """
    repo, limits = Path(repo), limits or Limits()
    if not repo.is_dir():
        raise GradeError(f"{repo}: no such directory to grade")
    tests = Path(tests) if tests else repo / "tests"
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="cohort-grade-") as tmp:
        ws = Path(tmp)
        targets = prepare_workspace(repo, tests, ws, day)
        run = run_pytest(ws, [*targets, *(["-m", markers] if markers else [])], limits)
        if not markers:  # a marker selection cannot be applied to files that never imported
            _static_items(ws, targets, run)
    gpu = _gpu_name()
    facts = {
        "pair": repo.resolve().name,
        "repo": str(repo),
        **git_facts(repo),
        "graded_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "runner": {"kind": "gpu" if gpu else "cpu", "gpu": gpu},
        "markers": markers,
        "limits": limits.__dict__,
        "flags": scan_pair_code(repo / "mlab"),
        **(extra or {}),
    }
    return results.build(
        list(run.items.values()), run.outcomes, run.benchmarks, facts, time.monotonic() - started
    )


def _gpu_name() -> str | None:
    """The GPU of this runner, asked of nvidia-smi (no CUDA import in the parent)."""
    if not shutil.which("nvidia-smi"):
        return None
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return out.splitlines()[0] if out else None
