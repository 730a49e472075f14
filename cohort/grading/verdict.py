"""From what the child reported to what counts: the parent's rules, applied test by test.

The child's events are claims. The tests that count, their days and points come from the
manifest; an outcome counts only for a test the manifest selected, once; a skip only where the
test may skip here; a pass only where the exercise is no longer the generated stub; a benchmark
only for a passed `bench` test, within physical bounds.
"""

from __future__ import annotations

import math
from dataclasses import replace

from cohort.grading.outcomes import Benchmark, Item, Outcome, clip
from cohort.manifest import Entry

STATUSES = ("passed", "failed", "skipped")
MAX_BENCHMARKS_PER_TEST = 64
TIME_BOUNDS_S = (1e-9, 1e4)
MAX_SPEEDUP = 1000.0


def item_of(entry: Entry, test_timeout: float) -> Item:
    timeout = test_timeout * (4 if "slow" in entry.markers else 1)
    return Item(
        entry.nodeid,
        entry.day,
        entry.points,
        list(entry.markers),
        entry.file,
        entry.line,
        timeout,
        list(entry.marks),
    )


def clean(outcome: Outcome) -> Outcome:
    """An outcome with a known status, bounded output and a finite duration."""
    status = outcome.status if outcome.status in STATUSES else "failed"
    output = outcome.output if isinstance(outcome.output, str) else ""
    try:
        duration = float(outcome.duration)
    except (TypeError, ValueError):
        duration = 0.0
    duration = duration if math.isfinite(duration) and duration >= 0 else 0.0
    return Outcome(str(outcome.nodeid), status, clip(output), duration)


def judge(
    entries: list[Entry],
    outcomes: dict[str, Outcome],
    duplicated: set[str],
    collect_errors: dict[str, str],
    stubs: set[str],
    gpu: bool,
    missing: str,
) -> dict[str, Outcome]:
    """The outcome that counts for every selected test."""
    judged = {}
    for e in entries:
        got = outcomes.get(e.nodeid)
        if e.nodeid in duplicated:
            got = Outcome(e.nodeid, "failed", "the test process reported this test twice")
        elif got is None:
            error = collect_errors.get(e.file) or collect_errors.get("*")
            why = f"could not import this day's code:\n{error}" if error else missing
            got = Outcome(e.nodeid, "failed", why)
        elif got.status == "skipped" and not (e.may_skip or ("gpu" in e.markers and not gpu)):
            got = replace(
                got, status="failed", output="reported as skipped, but this test never skips"
            )
        elif got.status == "passed" and e.exercise in stubs:
            name = e.exercise.partition(":")[2]
            got = replace(
                got,
                status="failed",
                output=f"{name}: this exercise is still the stub, yet the test reported a pass",
            )
        judged[e.nodeid] = got
    return judged


def plausible(b: Benchmark) -> bool:
    lo, hi = TIME_BOUNDS_S
    try:
        t, ref = float(b.time_s), float(b.ref_time_s)
    except (TypeError, ValueError):
        return False
    return lo <= t <= hi and lo <= ref <= hi and ref / t <= MAX_SPEEDUP


def benchmarks(
    found: list[Benchmark], entries: list[Entry], judged: dict[str, Outcome]
) -> tuple[list[Benchmark], int]:
    """The benchmarks that count, and how many were dropped."""
    benched = {e.nodeid for e in entries if "bench" in e.markers}
    kept, per_test = [], dict.fromkeys(benched, 0)
    for b in found:
        ok = (
            b.nodeid in benched
            and judged[b.nodeid].status == "passed"
            and per_test[b.nodeid] < MAX_BENCHMARKS_PER_TEST
            and plausible(b)
        )
        if ok:
            per_test[b.nodeid] += 1
            kept.append(
                Benchmark(
                    b.nodeid,
                    str(b.name)[:80],
                    str(b.shape)[:80],
                    float(b.time_s),
                    float(b.ref_time_s),
                    str(b.note)[:200],
                )
            )
    return kept, len(found) - len(kept)
