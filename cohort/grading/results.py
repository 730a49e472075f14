"""`results.json`: Gradescope's results format plus `extra_data` (DESIGN.md, "Grading contract").

The score is computed here, from the collected items and their outcomes, never taken from the
process that ran pair code.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from cohort.grading.outcomes import Benchmark, Item, Outcome

SCHEMA_VERSION = 1


def _score(item: Item, outcome: Outcome) -> float:
    return item.points if outcome.status == "passed" else 0.0


def build(
    items: list[Item],
    outcomes: dict[str, Outcome],
    benchmarks: list[Benchmark] = (),
    extra: dict | None = None,
    execution_time: float = 0.0,
    missing_reason: str = "not run",
) -> dict:
    """The results document. Items without an outcome count as failed with `missing_reason`."""
    tests, per_day = (
        [],
        defaultdict(lambda: {"score": 0.0, "max_score": 0.0, "passed": 0, "total": 0}),
    )
    for item in items:
        outcome = outcomes.get(item.nodeid) or Outcome(item.nodeid, "failed", missing_reason)
        skipped = outcome.status == "skipped"
        max_score = 0.0 if skipped else item.points
        score = _score(item, outcome)
        tests.append(
            {
                "name": item.nodeid,
                "score": score,
                "max_score": max_score,
                "status": outcome.status,
                "output": outcome.output,
                "visibility": "visible",
                "tags": [item.day, *item.markers],
                "execution_time": round(outcome.duration, 3),
                "extra_data": {"file": item.file, "line": item.line},
            }
        )
        day = per_day[item.day]
        if not skipped:
            day["score"] += score
            day["max_score"] += max_score
            day["total"] += 1
            day["passed"] += outcome.status == "passed"
    speedups = [b.speedup for b in benchmarks if b.speedup > 0]
    geomean = math.exp(sum(map(math.log, speedups)) / len(speedups)) if speedups else None
    score = sum(t["score"] for t in tests)
    max_score = sum(t["max_score"] for t in tests)
    return {
        "score": score,
        "max_score": max_score,
        "execution_time": round(execution_time, 3),
        "output": f"Points {score:g}/{max_score:g}",
        "visibility": "visible",
        "tests": tests,
        "leaderboard": [
            {"name": f"{b.name} {b.shape} speedup", "value": round(b.speedup, 3), "order": "desc"}
            for b in benchmarks
        ],
        "extra_data": {
            "schema": SCHEMA_VERSION,
            **(extra or {}),
            "days": dict(per_day),
            "benchmarks": [
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
            ],
            "benchmark_geomean_speedup": geomean,
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
        raise ValueError(f"{path}: not a readable results.json ({e})") from e
    if not isinstance(data, dict) or not {"score", "max_score", "tests"} <= data.keys():
        raise ValueError(f"{path}: results.json lacks score, max_score or tests")
    return data
