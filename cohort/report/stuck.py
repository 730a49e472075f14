"""The "stuck" list: pairs failing the same test push after push.

A test counts against a pair when its latest push for that day fails it with a real failure (not
the stub's NotImplementedError). Its streak is the run of most recent pushes that all failed it;
a streak of `min_pushes` pushes, or one spanning `min_hours` hours, puts the pair on the list.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime

from cohort import store
from cohort.report.board import Board, Cell

WALK_LIMIT = 50  # pushes looked back at most; longer streaks show as "50+"
BATCH = 25


@dataclass(frozen=True)
class Stuck:
    pair: str
    day: str
    test: str
    pushes: int
    since: str  # push time of the first push of the streak
    last: str  # push time of the latest push

    @property
    def hours(self) -> float:
        return (_when(self.last) - _when(self.since)).total_seconds() / 3600


def _when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def _streaks(db: sqlite3.Connection, cell: Cell, day: str) -> dict[str, tuple[int, str]]:
    """Test -> (pushes in its streak, time of the streak's first push) for the latest push's failures."""
    history = cell.history[::-1][:WALK_LIMIT]
    alive: set[str] | None = None
    streak: dict[str, tuple[int, str]] = {}
    for start in range(0, len(history), BATCH):
        batch = history[start : start + BATCH]
        failing = store.failures(db, [r.result_id for r in batch], day)
        for row in batch:
            real = {t for t, kind in failing[row.result_id].items() if kind == "fail"}
            alive = real if alive is None else alive & real
            if not alive:
                return streak
            for test in alive:
                streak[test] = (streak.get(test, (0, ""))[0] + 1, row.pushed_at)
    return streak


def find(db: sqlite3.Connection, board: Board, min_pushes: int, min_hours: float) -> list[Stuck]:
    """Every (pair, day, test) stuck by the rule above, longest streaks first."""
    found = []
    for (pair, day), cell in board.cells.items():
        latest = cell.latest
        if latest.score >= latest.max_score:
            continue
        for test, (pushes, since) in _streaks(db, cell, day).items():
            item = Stuck(pair, day, test, pushes, since, latest.pushed_at)
            if pushes >= min_pushes or item.hours >= min_hours:
                found.append(item)
    return sorted(found, key=lambda s: (-s.pushes, -s.hours, s.pair, s.day, s.test))
