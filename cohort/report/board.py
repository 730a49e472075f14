"""The cohort at a glance, computed from the store's day scores: per pair and day the best and the
latest graded push, and each pair's progress over time."""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import cached_property

from cohort.curriculum import BY_NAME, DAYS
from cohort.store import DayScore


@dataclass
class Cell:
    """One pair on one day: every graded push, oldest first."""

    history: list[DayScore] = field(default_factory=list)

    @property
    def latest(self) -> DayScore:
        return self.history[-1]

    @cached_property
    def best(self) -> DayScore:
        return max(self.history, key=lambda r: (r.score, r.pushed_at))


@dataclass
class Board:
    pairs: list[str]
    days: list[str]
    cells: dict[tuple[str, str], Cell]
    max_points: dict[str, float]  # each day's points, as its latest grading counts them

    def cell(self, pair: str, day: str) -> Cell | None:
        return self.cells.get((pair, day))

    def total(self, pair: str) -> tuple[float, float]:
        """Sum of the best scores over the days, and of their maxima."""
        best = [c.best for d in self.days if (c := self.cell(pair, d))]
        return sum(b.score for b in best), sum(b.max_score for b in best)

    def progress(self, pair: str) -> list[tuple[str, float]]:
        """(push time, share of the cohort's points earned so far, best per day) after each push."""
        events = sorted(
            (r.pushed_at, r.day, r.score)
            for d in self.days
            if (c := self.cell(pair, d))
            for r in c.history
        )
        best: dict[str, float] = {}
        scale = sum(self.max_points.get(d, 0.0) for d in self.days) or 1.0
        earned, points = 0.0, {}
        for pushed_at, day, score in events:
            if score > best.get(day, 0.0):
                earned += score - best.get(day, 0.0)
                best[day] = score
            points[pushed_at] = earned / scale  # one point per push, after all its days
        return list(points.items())


def _day_order(day: str) -> tuple[int, str]:
    names = [d.name for d in DAYS]
    return (names.index(day), day) if day in BY_NAME else (len(names), day)


def build(rows: list[DayScore], pairs: list[str], days: list[str]) -> Board:
    """The board of `rows`; pairs and days listed first, then any others the store holds."""
    cells: dict[tuple[str, str], Cell] = defaultdict(Cell)
    for row in rows:
        cells[row.pair, row.day].history.append(row)
    for cell in cells.values():
        cell.history.sort(key=lambda r: (r.pushed_at, r.result_id))
    seen_pairs = sorted({p for p, _ in cells} - set(pairs))
    seen_days = sorted({d for _, d in cells} - set(days), key=_day_order)
    max_points: dict[str, float] = {}
    for (_, day), cell in cells.items():
        max_points[day] = max(max_points.get(day, 0.0), cell.latest.max_score)
    return Board([*pairs, *seen_pairs], [*days, *seen_days], dict(cells), max_points)


def slug(name: str) -> str:
    """A file name for a pair or day: itself when safe (roster names are), else a cleaned copy."""
    clean = re.sub(r"[^A-Za-z0-9_.-]", "_", name).lstrip(".") or "_"
    return clean if clean == name else f"{clean}-{hashlib.sha1(name.encode()).hexdigest()[:8]}"
