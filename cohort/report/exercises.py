"""Every exercise across the cohort (`site/exercises.html`) and the benchmark leaderboards.

Per test of every released day: how many pairs pass it at their latest push, the median time from
a pair's first push of the day to its first pass, the most common real failure and the pairs stuck
on it, hardest first. Per benchmark: each pair's best geometric-mean speedup and its commit.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from cohort.grading.results import geomean
from cohort.report.board import Board, Cell
from cohort.report.facts import DayFacts
from cohort.report.stuck import Stuck


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _first_line(text: str) -> str:
    return next((ln.strip() for ln in text.splitlines() if ln.strip()), "")


@dataclass
class Exercise:
    day: str
    test: str
    passing: list[str] = field(default_factory=list)
    failing: list[str] = field(default_factory=list)  # real failures at the latest push
    todo: list[str] = field(default_factory=list)  # not started at the latest push
    hours_to_pass: list[float] = field(default_factory=list)
    messages: Counter = field(default_factory=Counter)
    stuck: list[str] = field(default_factory=list)

    @property
    def median_hours(self) -> float | None:
        return statistics.median(self.hours_to_pass) if self.hours_to_pass else None

    @property
    def common(self) -> tuple[str, int] | None:
        return self.messages.most_common(1)[0] if self.messages else None


def failing_tests(db: sqlite3.Connection, days: list[str]) -> dict[str, dict[int, set[str]]]:
    """Day -> result id -> the tests of that day it failed (read-only; one pass over the table,
    which is keyed by result id)."""
    found: dict[str, dict[int, set[str]]] = {day: defaultdict(set) for day in days}
    for rid, day, test in db.execute("SELECT result_id, day, test FROM failures"):
        if day in found:
            found[day][rid].add(test)
    return found


def _first_passes(cell: Cell, tests: set[str], failing: dict[int, set[str]]) -> dict[str, str]:
    """Test -> push time of the first push of `cell` that passed it."""
    remaining, first = set(tests), {}
    for row in cell.history:
        for test in remaining - failing.get(row.result_id, set()):
            first[test] = row.pushed_at
        remaining &= failing.get(row.result_id, set())
        if not remaining:
            break
    return first


def exercises(
    db: sqlite3.Connection,
    board: Board,
    facts: dict[tuple[str, str], DayFacts],
    days: list[str],
    stuck: list[Stuck],
) -> list[Exercise]:
    """The exercises (tests) of `days`, hardest first: fewest pairs passing, then most failing."""
    stuck_on = defaultdict(list)
    for s in stuck:
        stuck_on[s.day, s.test].append(s.pair)
    found: list[Exercise] = []
    failed = failing_tests(db, days)
    for day in days:
        by_test: dict[str, Exercise] = {}
        pairs = [p for p in board.pairs if (p, day) in facts]
        for pair in pairs:
            f = facts[pair, day]
            for kind, tests in (("passing", f.passed), ("failing", f.real), ("todo", f.todo)):
                for t in tests:
                    ex = by_test.setdefault(t["name"], Exercise(day, t["name"]))
                    getattr(ex, kind).append(pair)
                    if kind == "failing":
                        ex.messages[_first_line(t.get("output", ""))] += 1
        if not by_test:
            continue
        failing = failed[day]
        for pair in pairs:
            cell, f = board.cell(pair, day), facts[pair, day]
            start = _when(cell.history[0].pushed_at)
            mine = {t["name"] for t in (*f.passed, *f.real, *f.todo)}  # what its pushes run
            for test, at in _first_passes(cell, mine, failing).items():
                by_test[test].hours_to_pass.append((_when(at) - start).total_seconds() / 3600)
        for ex in by_test.values():
            ex.stuck = sorted(stuck_on.get((day, ex.test), []))
        found += by_test.values()
    return sorted(found, key=lambda e: (len(e.passing), -len(e.failing), e.day, e.test))


@dataclass(frozen=True)
class Entry:
    """One pair's best run of one benchmark."""

    pair: str
    speedup: float | None  # geometric mean over the shapes; None: CPU, correctness only
    commit: str
    gpu: str | None
    shapes: int


def leaderboards(
    cohort_dir: Path, board: Board, latest: dict[tuple[str, str], dict | None]
) -> dict[tuple[str, str], list[Entry]]:
    """(day, benchmark) -> the pairs' best runs, fastest first; GPU runs rank, CPU runs (which
    only check correctness) are listed after them. Reads the results of every push of a pair-day
    whose latest push has benchmarks."""
    best: dict[tuple[str, str], dict[str, Entry]] = defaultdict(dict)
    for (pair, day), doc in latest.items():
        marker = f"test_{day}.py"
        if not doc or not any(
            marker in b.get("test", "") for b in doc["extra_data"].get("benchmarks", [])
        ):
            continue
        for row in board.cell(pair, day).history:
            try:
                run = json.loads((cohort_dir / row.path).read_text())
            except (OSError, ValueError):
                continue
            extra = run.get("extra_data", {})
            gpu = (extra.get("runner") or {}).get("gpu")
            names = defaultdict(list)
            for b in extra.get("benchmarks", []):
                if marker in b.get("test", ""):
                    names[str(b.get("name"))].append(float(b.get("speedup") or 0))
            for name, speedups in names.items():
                entry = Entry(
                    pair, geomean(speedups) if gpu else None, row.commit, gpu, len(speedups)
                )
                old = best[day, name].get(pair)
                if old is None or (entry.speedup or 0) > (old.speedup or 0):
                    best[day, name][pair] = entry
    return {
        key: sorted(entries.values(), key=lambda e: (e.speedup is None, -(e.speedup or 0), e.pair))
        for key, entries in sorted(best.items())
    }
