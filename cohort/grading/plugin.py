"""The grading pytest plugin (registered as a `pytest11` entry point).

Markers: `points(n)`, `gpu`, `bench`, `slow`. In a plain `pytest` run, tests that fail with a
stub's NotImplementedError count as "not started" (a line per exercise, no traceback), real
failures show in full and the points table per day comes last; with `--results PATH` it writes
`results.json`; under GitHub Actions it also writes the job summary, error annotations and the
`Points X/Y` notice. Run by `cohort grade` (COHORT_EVENTS_FD set), it only streams events into
the parent's pipe; the parent keeps the score.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from cohort import manifest
from cohort.curriculum import day_of_test_file
from cohort.grading import feedback, results, verdict
from cohort.grading.outcomes import Benchmark, EventWriter, Item, Outcome, as_dict, clip

MARKERS = (
    "points(n): what the test is worth in the grade",
    "gpu: needs a CUDA GPU (skipped elsewhere, with the reason)",
    "bench: produces benchmark figures (speedup against the reference)",
    "slow: takes over ~10 s; gets a longer per-test timeout",
)
RESULTS_HELP = "write Gradescope-format results.json to this path"
TIMEOUT_HELP = "per-test timeout in seconds (slow tests get 4x); 0 disables"
DEFAULT_TIMEOUT = 30.0
EVENTS_ENV, DESELECT_ENV = "COHORT_EVENTS_FD", "COHORT_DESELECT"


class TestTimeout(BaseException):
    """Raised in a test that overran its timeout (a BaseException, so `except Exception` in
    pair code cannot swallow it)."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cohort", "cohort grading")
    group.addoption("--results", dest="cohort_results", help=RESULTS_HELP)
    group.addoption("--test-timeout", dest="cohort_test_timeout", type=float, help=TIMEOUT_HELP)
    parser.addini("cohort_results", RESULTS_HELP)
    parser.addini("cohort_test_timeout", TIMEOUT_HELP)


def _setting(config: pytest.Config, name: str, env: str):
    """Command line, then environment, then ini; None when none is set."""
    value = config.getoption(name)
    if value is None:
        value = os.environ.get(env) or config.getini(name) or None
    return value


def pytest_configure(config: pytest.Config) -> None:
    for marker in MARKERS:
        config.addinivalue_line("markers", marker)
    raw = _setting(config, "cohort_test_timeout", "COHORT_TEST_TIMEOUT")
    try:
        timeout = DEFAULT_TIMEOUT if raw is None else float(raw)
    except ValueError:
        raise pytest.UsageError(
            f"cohort_test_timeout: {raw!r} is not a number of seconds"
        ) from None
    config.pluginmanager.register(Grading(config, timeout), "cohort-grading")


class Grading:
    def __init__(self, config: pytest.Config, timeout: float):
        self.config, self.timeout = config, timeout
        fd = os.environ.get(EVENTS_ENV)
        self.events = EventWriter(int(fd)) if fd and fd.isdigit() else None
        self.items: list[Item] = []
        self.outcomes: dict[str, Outcome] = {}
        self.benchmarks: list[Benchmark] = []
        self.collect_errors: dict[str, str] = {}
        self._phases: dict[str, list[pytest.TestReport]] = {}
        self._started = time.monotonic()

    def pytest_report_header(self) -> str:
        mode = "streaming to cohort grade" if self.events else "local run"
        return f"cohort grading: {mode}, per-test timeout {self.timeout:g} s"

    # -- collection ---------------------------------------------------------------------------

    def debugging(self) -> bool:
        """A pair's own run under `--pdb` / `--trace`: the timeout steps aside (never when
        graded, where the parent's watch has the last word anyway)."""
        options = ("usepdb", "trace")
        return self.events is None and any(self.config.getoption(o, False) for o in options)

    def item_timeout(self, item: pytest.Item) -> float:
        return self.timeout * (4 if item.get_closest_marker("slow") else 1)

    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        done = set()
        if path := os.environ.get(DESELECT_ENV):
            done = set(Path(path).read_text().splitlines()) if Path(path).exists() else set()
        for item in items:
            marker = item.get_closest_marker("points")
            points = float(marker.args[0]) if marker and marker.args else 0.0
            rel = item.location[0]
            names = [m for m in ("gpu", "bench", "slow") if item.get_closest_marker(m)]
            self.items.append(
                Item(
                    item.nodeid,
                    day_of_test_file(rel) or Path(rel).stem,
                    points,
                    names,
                    rel,
                    (item.location[1] or 0) + 1,
                    self.item_timeout(item),
                    sorted({m.name for m in item.iter_markers()}),
                )
            )
            if item.get_closest_marker("gpu") and not _cuda_available():
                item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU: runs on the GPU runner"))
        if done:
            keep = [i for i in items if i.nodeid not in done]
            config.hook.pytest_deselected(items=[i for i in items if i.nodeid in done])
            items[:] = keep

    def pytest_collection_finish(self, session: pytest.Session) -> None:
        """Keep what survived every deselection (-k, -m, resumed runs): that is what runs."""
        selected = {item.nodeid for item in session.items}
        self.items = [item for item in self.items if item.nodeid in selected]
        if self.events:
            self.events.emit("collected", items=[as_dict(i) for i in self.items])

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            message = _collect_error_text(str(report.longrepr))
            self.collect_errors[report.nodeid] = message
            if self.events:
                self.events.emit("collect_error", file=report.nodeid, message=message)

    # -- running ------------------------------------------------------------------------------

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_protocol(self, item: pytest.Item, nextitem):
        if self.events:
            self.events.emit("start", nodeid=item.nodeid)
        timeout = self.item_timeout(item)
        armed = timeout > 0 and hasattr(signal, "setitimer") and not self.debugging()
        if armed:

            def expire(signum, frame):
                if self.events is None and sys.gettrace() is not None:
                    return  # a `breakpoint()` session in a pair's own run: not a hang
                where = Path(frame.f_code.co_filename)
                where = where.relative_to(Path.cwd()) if where.is_relative_to(Path.cwd()) else where
                raise TestTimeout(
                    f"timed out after {timeout:g} s, interrupted at {where.as_posix()}:{frame.f_lineno}"
                    " (an infinite loop, or far too slow?)"
                )

            previous = signal.signal(signal.SIGALRM, expire)
            signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return (yield)
        finally:
            if armed:
                signal.setitimer(signal.ITIMER_REAL, 0)
                signal.signal(signal.SIGALRM, previous)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self._phases.setdefault(report.nodeid, []).append(report)
        if report.when == "teardown":
            outcome = _outcome(report.nodeid, self._phases.pop(report.nodeid))
            self.outcomes[report.nodeid] = outcome
            if self.events:
                self.events.emit("outcome", **as_dict(outcome))

    def record_benchmark(self, benchmark: Benchmark) -> None:
        self.benchmarks.append(benchmark)
        if self.events:
            self.events.emit("benchmark", **as_dict(benchmark))

    # -- reporting ----------------------------------------------------------------------------

    def results(self) -> dict:
        items = list(self.items)
        for nodeid, message in self.collect_errors.items():
            for item in self.never_collected(Path(self.config.rootpath, nodeid)):
                items.append(item)
                self.outcomes[item.nodeid] = Outcome(item.nodeid, "failed", message)
        ran = [i for i in items if i.nodeid in self.outcomes]
        return results.build(
            ran, self.outcomes, self.benchmarks, execution_time=time.monotonic() - self._started
        )

    def never_collected(self, path: Path) -> list[Item]:
        """The tests of a test file that failed collection, as the manifest beside it lists them
        (none without a readable manifest: pytest's own collection error still says why)."""
        if path.suffix != ".py":
            return []
        try:
            found = manifest.load(path.parent)
        except manifest.ManifestError:
            return []
        entries = found.of_file(path.name) if found else []
        return [verdict.item_of(e, self.timeout) for e in entries]

    def pytest_report_teststatus(self, report: pytest.TestReport, config: pytest.Config):
        """In a local run, a test failing with the stub's NotImplementedError is "not started":
        no traceback, no line in the short summary, counted apart in the last line (the outcome
        recorded for the score is unchanged, and `cohort grade` runs are left as they are)."""
        if self.events is None and report.failed and _not_started(report):
            return "not started", "n", "NOT STARTED"
        return None

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_terminal_summary(self, terminalreporter):
        """Around pytest's own summary, so the points table comes after the failures and the short
        summary: the last thing a pair reads before the counts."""
        result = yield
        if self.events:
            return result
        res = self.results()
        if not any(item.points for item in self.items) and not self.collect_errors:
            return result  # not a graded run (no test carries points)
        terminalreporter.section("cohort grading")
        terminalreporter.write_line(feedback.terminal_table(res))
        path = _setting(self.config, "cohort_results", "COHORT_RESULTS")
        if path:
            results.write(res, Path(path))
            terminalreporter.write_line(f"results written to {path}")
        feedback.publish_to_github(res, terminalreporter.write_line)
        return result

    def pytest_unconfigure(self) -> None:
        if self.events:
            self.events.close()


def _outcome(nodeid: str, phases: list[pytest.TestReport]) -> Outcome:
    duration = sum(r.duration for r in phases)
    for r in phases:
        if r.failed:
            return Outcome(nodeid, "failed", _failure_text(r), duration)
    for r in phases:
        if r.skipped:
            reason = r.longrepr[2] if isinstance(r.longrepr, tuple) else str(r.longrepr)
            return Outcome(nodeid, "skipped", reason.removeprefix("Skipped: "), duration)
    return Outcome(nodeid, "passed", "", duration)


def _not_started(rep: pytest.TestReport) -> bool:
    """Did the test fail with a stub's NotImplementedError (the exercise is not started)?"""
    crash = getattr(rep.longrepr, "reprcrash", None)
    return rep.when == "call" and crash is not None and crash.message.startswith(feedback.TODO)


def _failure_text(report: pytest.TestReport) -> str:
    """The exception message and where it was raised; not the whole traceback."""
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return clip(str(report.longrepr))
    path = Path(crash.path)
    if path.is_absolute() and path.is_relative_to(Path.cwd()):
        path = path.relative_to(Path.cwd())
    if Path(__file__).samefile(crash.path) if Path(crash.path).exists() else False:
        return clip(crash.message)  # raised by the plugin itself (a timeout): no location to add
    where = f"{path.as_posix()}:{crash.lineno}"
    if report.when != "call":
        where += f" (during {report.when})"
    return clip(f"{crash.message}\n  at {where}")


def _collect_error_text(longrepr: str) -> str:
    """The error lines (`E ...`) and the last code locations of a collection failure."""
    lines = longrepr.replace(str(Path.cwd()) + os.sep, "").splitlines()
    errors = [ln[1:].strip() for ln in lines if ln.startswith("E ")]
    places = [ln.strip() for ln in lines if ln.strip().startswith("mlab" + os.sep)]
    return clip("\n".join([*errors, *(f"at {p}" for p in places[-3:])]) or longrepr)


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


@pytest.fixture
def record_benchmark(request: pytest.FixtureRequest):
    """Record a benchmark figure: `record_benchmark(name, shape, time_s, ref_time_s, note="")`."""
    grading: Grading = request.config.pluginmanager.get_plugin("cohort-grading")

    def record(name: str, shape: str, time_s: float, ref_time_s: float, note: str = "") -> None:
        grading.record_benchmark(
            Benchmark(request.node.nodeid, name, shape, time_s, ref_time_s, note)
        )

    return record
