"""`results.json`: Gradescope's results format plus `extra_data` (docs/cli.md, "`cohort grade`";
docs/architecture.md, "Grading").

The score is computed here, from the collected items and their outcomes, never taken from the
process that ran pair code.
"""

from __future__ import annotations

import json
import math
import statistics
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from cohort.errors import ResultsError
from cohort.grading.outcomes import Benchmark, Item, Outcome

SCHEMA_VERSION = 1
NO_TESTS = {"score": 0.0, "max_score": 0.0, "passed": 0, "total": 0}


def day_totals(tests: list[dict]) -> dict[str, dict]:
    """Per-day score, max_score, passed and total from `tests[]` (a test's day is its first tag;
    skipped tests count nothing). `cohort collect` re-checks uploaded results with it."""
    days: dict[str, dict] = defaultdict(
        lambda: {"score": 0.0, "max_score": 0.0, "passed": 0, "total": 0}
    )
    for t in tests:
        day = days[(t.get("tags") or [""])[0]]  # listed even when all its tests are skipped
        if t["status"] == "skipped":
            continue
        day["score"] += t["score"]
        day["max_score"] += t["max_score"]
        day["total"] += 1
        day["passed"] += t["status"] == "passed"
    return dict(days)


def leaderboard(benchmarks: list[dict]) -> list[dict]:
    """Gradescope leaderboard entries: one speedup per benchmarked shape, higher is better."""
    return [
        {
            "name": f"{b['name']} {b['shape']} speedup",
            "value": round(b["speedup"], 3),
            "order": "desc",
        }
        for b in benchmarks
    ]


def geomean(values: Iterable[float]) -> float | None:
    """Geometric mean of the positive values (the mean of speedups that does not favour big
    ones); None when there are none."""
    positive = [v for v in values if v > 0]
    return math.exp(statistics.fmean(map(math.log, positive))) if positive else None


def geomean_speedup(benchmarks: list[dict]) -> float | None:
    return geomean(b.get("speedup", 0) for b in benchmarks)


def build(
    items: list[Item],
    outcomes: dict[str, Outcome],
    benchmarks: list[Benchmark] = (),
    extra: dict | None = None,
    execution_time: float = 0.0,
    missing_reason: str = "not run",
) -> dict:
    """The results document. Items without an outcome count as failed with `missing_reason`."""
    tests = []
    for item in items:
        outcome = outcomes.get(item.nodeid) or Outcome(item.nodeid, "failed", missing_reason)
        max_score = 0.0 if outcome.status == "skipped" else item.points
        tests.append(
            {
                "name": item.nodeid,
                "score": item.points if outcome.status == "passed" else 0.0,
                "max_score": max_score,
                "status": outcome.status,
                "output": outcome.output,
                "visibility": "visible",
                "tags": [item.day, *item.markers],
                "execution_time": round(outcome.duration, 3),
                "extra_data": {
                    "file": item.file,
                    "line": item.line,
                    "points": item.points,
                    "marks": item.marks,
                },
            }
        )
    bench = [
        {
            "test": b.nodeid,
            "name": b.name,
            "shape": b.shape,
            "time_s": b.time_s,
            "ref_time_s": b.ref_time_s,
            "speedup": round(b.speedup, 4),
            "note": b.note,
        }
        for b in benchmarks
    ]
    score = sum(t["score"] for t in tests)
    max_score = sum(t["max_score"] for t in tests)
    return {
        "score": score,
        "max_score": max_score,
        "execution_time": round(execution_time, 3),
        "output": f"Points {score:g}/{max_score:g}",
        "visibility": "visible",
        "tests": tests,
        "leaderboard": leaderboard(bench),
        "extra_data": {
            "schema": SCHEMA_VERSION,
            **(extra or {}),
            "days": day_totals(tests),
            "benchmarks": bench,
            "benchmark_geomean_speedup": geomean_speedup(bench),
        },
    }


def day_of(test: dict) -> str:
    """The day of a `tests[]` entry: its first tag."""
    return (test.get("tags") or [""])[0]


def day_part(doc: dict, day: str) -> dict:
    """The document cut down to `day`: its tests, benchmarks and totals (with their facts)."""
    tests = [t for t in doc["tests"] if day_of(t) == day]
    names = {t["name"] for t in tests}
    bench = [b for b in doc["extra_data"].get("benchmarks", []) if b.get("test") in names]
    days = {k: v for k, v in doc["extra_data"].get("days", {}).items() if k == day}
    extra = {**doc["extra_data"], "benchmarks": bench, "days": days}
    return merge([{**doc, "tests": tests, "extra_data": extra}])


def merge(docs: list[dict], facts: dict | None = None) -> dict:
    """One results document from per-day documents of one commit: the first one's facts (pair,
    commit, flags of the static scan) updated with `facts`; each day keeps the facts its own
    document records for it (the commit it was measured on, whether it was carried over)."""
    tests = [t for d in docs for t in d["tests"]]
    bench = [b for d in docs for b in d["extra_data"].get("benchmarks", [])]
    days = day_totals(tests)
    for d in docs:  # a day without tests is still a graded day
        for day, known in d["extra_data"].get("days", {}).items():
            days[day] = {**known, **days.get(day, NO_TESTS)}
    score, max_score = sum(t["score"] for t in tests), sum(t["max_score"] for t in tests)
    return {
        **docs[0],
        "score": score,
        "max_score": max_score,
        "execution_time": round(sum(d.get("execution_time", 0) for d in docs), 3),
        "output": f"Points {score:g}/{max_score:g}",
        "tests": tests,
        "leaderboard": leaderboard(bench),
        "extra_data": {
            **docs[0]["extra_data"],
            **(facts or {}),
            "days": days,
            "benchmarks": bench,
            "benchmark_geomean_speedup": geomean_speedup(bench),
        },
    }


def write(results: dict, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n")


def load(path: Path) -> dict:
    """Read a results file, with a one-line error when it is not one."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ResultsError(f"{path}: not a readable results.json ({e})") from e
    if not isinstance(data, dict) or not {"score", "max_score", "tests"} <= data.keys():
        raise ResultsError(f"{path}: results.json lacks score, max_score or tests")
    return data
