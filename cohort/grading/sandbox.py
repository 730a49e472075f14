"""Grade a pair checkout: pytest in a sandboxed child process with time, memory and output limits.

The child imports untrusted code. It runs under bubblewrap where that works (see `isolation`) and
reports each test as it goes through a pipe the parent owns (see `outcomes`); when it hangs past a
test's timeout or dies (segfault, `os._exit`, out of memory), the parent records that test as
failed with the reason and starts a new child for the tests not yet graded. What counts is decided
here, from the trusted manifest (see `manifest`, `verdict`), never by the child.
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

import cohort
from cohort import clock, git, manifest
from cohort.errors import GitError, GradeError
from cohort.grading import isolation, results, verdict, workspace
from cohort.grading.flags import scan_pair_code
from cohort.grading.outcomes import (
    Benchmark,
    ChannelFlooded,
    EventReader,
    Item,
    Outcome,
    clip,
    record_from,
)
from cohort.grading.plugin import DESELECT_ENV, EVENTS_ENV

GRACE_S = 10.0  # beyond a test's own timeout before the parent kills the child
# Collection imports every day's code (torch, transformers): on a loaded machine that takes
# minutes, so a loop at import is called one only after this many test timeouts.
IMPORT_TIMEOUTS = 6
EOF_GRACE_S = 1.0  # for the child to exit once it has closed the events channel
# A test file that fails to import fails only its own tests; the other days run as usual.
CHILD_ARGS = ("--continue-on-collection-errors",)
SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "KEY", "CREDENTIAL")
__all__ = ["GradeError", "Limits", "grade"]


@dataclass
class Limits:
    test_timeout: float = 30.0  # seconds per test (slow tests get 4x)
    run_timeout: float = 900.0  # seconds for the whole grading run
    memory_mb: int = 8192  # address space of the child
    file_mb: int = 256  # largest file the child may write
    output_kb: int = 256  # child stdout/stderr kept for diagnosis


@dataclass
class Run:
    """What the children claimed, across restarts. `expected` is what must be reported: the
    manifest's selection, or (with no manifest) what the child collected."""

    expected: dict[str, Item] = field(default_factory=dict)
    trusted: bool = False  # expected came from a manifest
    collected: bool = False
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    duplicated: set[str] = field(default_factory=set)
    benchmarks: list[Benchmark] = field(default_factory=list)
    collect_errors: dict[str, str] = field(default_factory=dict)

    def take(self, event: dict) -> str | None:
        """Apply one event; returns the nodeid of a test that just started."""
        kind = event.get("event")
        try:
            if kind == "collected":
                self.collected = True
                if not self.trusted:
                    for data in event.get("items", [])[:100_000]:
                        item = record_from(Item, data)
                        self.expected.setdefault(str(item.nodeid), item)
            elif kind == "start":
                nodeid = event.get("nodeid")
                return nodeid if nodeid in self.expected else None
            elif kind == "outcome":
                outcome = verdict.clean(record_from(Outcome, event))
                if outcome.nodeid not in self.expected:
                    return None
                if outcome.nodeid in self.outcomes:
                    self.duplicated.add(outcome.nodeid)
                else:
                    self.outcomes[outcome.nodeid] = outcome
            elif kind == "benchmark" and len(self.benchmarks) < 10_000:
                self.benchmarks.append(record_from(Benchmark, event))
            elif kind == "collect_error":
                self.collect_errors[str(event.get("file", "?"))] = clip(str(event.get("message")))
        except (TypeError, AttributeError):
            pass  # a malformed event: ignored, like any other forged line
        return None


def _child_env(deselect: str, limits: Limits, mode: str, grader: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not any(w in k.upper() for w in SECRET_WORDS)}
    env = {k: v for k, v in env.items() if not k.startswith(("GITHUB_", "COHORT_", "PYTEST_"))}
    if mode == "bwrap":
        env.update(PYTHONPATH=f"{isolation.WORKSPACE}:{isolation.GRADER}", HOME=isolation.HOME)
        env.update(TMPDIR="/tmp", GLOO_SOCKET_IFNAME="lo")
    else:
        env.update(PYTHONPATH=os.pathsep.join(["", str(grader)]))
    env.update(
        PYTHONDONTWRITEBYTECODE="1",
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        MPLBACKEND="Agg",
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        COHORT_TEST_TIMEOUT=str(limits.test_timeout),
        **{DESELECT_ENV: deselect},
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
        try:
            events = reader.poll(timeout=0.05)
        except ChannelFlooded as e:
            return current, f"the test process flooded the grading channel ({e}) and was killed"
        for event in events:
            if (nodeid := run.take(event)) is not None:
                current, started = nodeid, time.monotonic()
        if current in run.outcomes:
            current = None
        if reader.eof:  # the child closed the channel (its session ended): nothing more comes
            try:
                proc.wait(timeout=EOF_GRACE_S)  # its exit status, when it ends by itself
            except subprocess.TimeoutExpired:
                pass  # interpreter teardown (torch): not waited for, the group is killed
            return current, None
        if proc.poll() is not None:
            return current, None
        now = time.monotonic()
        item = run.expected.get(current) if current else None
        if item and now - started > (item.timeout or limits.test_timeout) + GRACE_S:
            return (
                current,
                f"timed out after {now - started:.0f} s and was killed (an infinite loop?)",
            )
        if not run.collected and now - start > limits.test_timeout * IMPORT_TIMEOUTS + GRACE_S:
            return (
                current,
                f"importing the exercises took over {now - start:.0f} s (a loop at import?)",
            )
        if now > deadline:
            return current, f"the whole grading run hit its {limits.run_timeout:g} s limit"


def _spawn(
    argv: list[str], ws: Path, control: Path, deselect: Path, limits: Limits, mode: str, fd: int
) -> subprocess.Popen:
    grader = control / "grader"
    if mode == "bwrap":
        argv = isolation.command(argv, ws, control)
        deselect_path = f"{isolation.CONTROL}/{deselect.name}"
    else:
        if not grader.exists():  # the grader package alone on the path, not its checkout
            grader.mkdir()
            (grader / "cohort").symlink_to(Path(cohort.__file__).resolve().parent)
        deselect_path = str(deselect)
    env = _child_env(deselect_path, limits, mode, grader)
    env[EVENTS_ENV] = str(fd)
    return subprocess.Popen(
        argv,
        cwd=ws,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_limit(limits),
        pass_fds=(fd,),
    )


def run_pytest(
    ws: Path, control: Path, targets: list[str], limits: Limits, mode: str, run: Run
) -> Run:
    """Run the tests to the end, restarting the child after each hang or crash."""
    deadline = time.monotonic() + limits.run_timeout
    argv = [sys.executable, "-m", "pytest", "-p", "cohort.grading.plugin", *CHILD_ARGS, *targets]
    for attempt in range(1, 10_000):
        deselect = control / f"deselect-{attempt}.txt"
        deselect.write_text("\n".join(run.outcomes))
        graded_before = len(run.outcomes)
        output: deque = deque(maxlen=max(1, limits.output_kb // 4))
        read_fd, write_fd = os.pipe()
        try:
            proc = _spawn(argv, ws, control, deselect, limits, mode, write_fd)
        finally:
            os.close(write_fd)
        drainer = threading.Thread(target=_drain, args=(proc.stdout, output), daemon=True)
        drainer.start()
        reader = EventReader(read_fd)
        try:
            current, reason = _watch(proc, run, reader, limits, deadline)
        finally:
            _kill_group(proc)  # also on Ctrl-C: nothing the child started outlives the run
        drainer.join(timeout=5)
        try:
            for event in reader.poll():  # what the child wrote just before it ended
                current = run.take(event) or current
        except ChannelFlooded:
            pass
        reader.close()
        tail = b"".join(output).decode(errors="replace")
        if current and current not in run.outcomes:
            why = reason or f"the test process {_death(proc.returncode)} while running this test"
            run.outcomes[current] = Outcome(current, "failed", clip(f"{why}\n{_last_lines(tail)}"))
        remaining = [
            n
            for n, item in run.expected.items()
            if n not in run.outcomes and item.file not in run.collect_errors
        ]  # the tests of a file that did not import fail with its import error
        if not remaining and (run.expected or run.trusted):
            break
        if time.monotonic() > deadline or len(run.outcomes) == graded_before:
            why = reason or f"the test process {_death(proc.returncode)} before running it"
            for nodeid in remaining:
                run.outcomes[nodeid] = Outcome(
                    nodeid, "failed", clip(f"{why}\n{_last_lines(tail)}")
                )
            if not run.expected:
                run.collect_errors.setdefault("*", clip(f"{why}\n{_last_lines(tail)}"))
            break
    return run


def _last_lines(text: str, n: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-n:])


def _uncounted(ws: Path, targets: list[str], run: Run) -> None:
    """With no manifest, a grade counts what the child collected; a test file it never collected
    (import error, hang) has tests no one can count, so there is no grade."""
    collected_files = {item.file for item in run.expected.values()}
    files = [
        p
        for t in targets
        for p in ([ws / t] if t.endswith(".py") else sorted((ws / t).glob("test_*.py")))
    ]
    for path in files:
        rel = path.relative_to(ws).as_posix()
        why = run.collect_errors.get(rel) or run.collect_errors.get("*")
        if why is not None and rel not in collected_files:
            raise GradeError(
                f"{rel}: not collected ({(why.splitlines() or ['?'])[0]}) and there is no "
                f"{manifest.FILENAME} to count its tests; {manifest.RERECORD}"
            )


def git_facts(repo: Path) -> dict:
    """Commit and commit date of a git checkout (empty when it is not one)."""
    try:
        out = git.out("log", "-1", "--format=%H%n%cI", cwd=repo, timeout=30).split()
    except GitError:
        return {}
    return {"commit": out[0], "committed_at": out[1]} if len(out) == 2 else {}


def _selection(
    tests: Path, ws: Path, day: str | None, markers: str | None
) -> tuple[list[manifest.Entry] | None, set[str]]:
    """The manifest's tests for this run and the exercises still stubbed in the pair's copy."""
    found = manifest.load(tests)  # ManifestError is a GradeError
    if found is None:
        return None, set()
    return found.select(ws / "tests", day, markers), manifest.still_stubs(found, ws)


def grade(
    repo: Path,
    tests: Path | None = None,
    day: str | None = None,
    limits: Limits | None = None,
    extra: dict | None = None,
    markers: str | None = None,
    isolate: str = "auto",
) -> dict:
    """Grade `repo` (laid out like `template/`) with `tests` (default: its own) -> results.

    `markers` selects tests as pytest's `-m` does (e.g. "gpu or bench" on a GPU runner);
    `isolate` is "auto" (bubblewrap where it runs), "bwrap" (required) or "none".
    """
    repo, limits = Path(repo), limits or Limits()
    if not repo.is_dir():
        raise GradeError(f"{repo}: no such directory to grade")
    mode, why = isolation.resolve(isolate)  # IsolationError is a GradeError
    tests = Path(tests) if tests else repo / "tests"
    started, gpu = time.monotonic(), _gpu_name()
    with tempfile.TemporaryDirectory(prefix="cohort-grade-") as tmp:
        ws, control = Path(tmp, "ws"), Path(tmp, "control")
        ws.mkdir()
        control.mkdir()
        targets, refused = workspace.prepare(repo, tests, ws, day)
        entries, stubs = _selection(tests, ws, day, markers)
        flags = scan_pair_code(ws / "mlab")  # before the child can rewrite its copy
        run = Run(trusted=entries is not None)
        run.expected = {e.nodeid: verdict.item_of(e, limits.test_timeout) for e in entries or []}
        if refused and entries is None:
            raise GradeError(f"{repo}: {refused}")
        if refused:
            run.collect_errors["*"] = f"grading refused: {refused}"
        else:
            sel = ["-m", markers] if markers else []
            run_pytest(ws, control, [*targets, *sel], limits, mode, run)
        if entries is None and not markers:  # a marker selection cannot apply to unimported files
            _uncounted(ws, targets, run)
    if entries is not None:
        missing = "the test process never reported this test"
        outcomes = verdict.judge(
            entries, run.outcomes, run.duplicated, run.collect_errors, stubs, bool(gpu), missing
        )
        benchmarks, dropped = verdict.benchmarks(run.benchmarks, entries, outcomes)
    else:
        outcomes, benchmarks, dropped = run.outcomes, run.benchmarks, 0
    facts = {
        "pair": repo.resolve().name,
        "repo": str(repo),
        **git_facts(repo),
        "graded_at": clock.now_iso(),
        "runner": {"kind": "gpu" if gpu else "cpu", "gpu": gpu},
        "markers": markers,
        "limits": limits.__dict__,
        "isolation": {"mode": mode, **({"reason": why} if why else {})},
        "manifest": entries is not None,
        "benchmarks_dropped": dropped,
        "flags": flags,
        **(extra or {}),
    }
    return results.build(
        list(run.expected.values()), outcomes, benchmarks, facts, time.monotonic() - started
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
