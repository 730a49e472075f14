"""`cohort status`: the cohort, or one pair, in the terminal, from the store and the latest results.

For every pair a line (points, days done, last push, jobs waiting); for one pair, per day the latest
and best score, the tests it fails for real, in full, and how many exercises are not started.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from cohort import store
from cohort.errors import RosterError
from cohort.report import board as board_mod
from cohort.report.facts import day_facts
from cohort.report.html import done, pair_href
from cohort.roster import Roster
from cohort.snapshot import SNAPSHOT_DIR

INDENT = "      "


def waiting(db: sqlite3.Connection) -> dict[str, int]:
    """Pair -> grading jobs queued or running (read-only)."""
    rows = db.execute(
        "SELECT pair, COUNT(*) FROM jobs WHERE state IN ('queued', 'running') GROUP BY pair"
    )
    return dict(rows.fetchall())


def _stamp(stamp: str | None) -> str:
    return stamp[:16].replace("T", " ") if stamp else "never"


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def _jobs(n: int) -> str:
    return f", {n} job(s) waiting to be graded" if n else ""


def cohort_lines(roster: Roster, board: board_mod.Board, jobs: dict[str, int]) -> list[str]:
    width = max([4, *(len(p) for p in board.pairs)])
    lines = [f"{'pair':<{width}}  {'points':>13}  {'days done':>9}  last push"]
    for pair in board.pairs:
        cells = [c for d in board.days if (c := board.cell(pair, d))]
        got, total = board.total(pair)
        last = max((c.latest.pushed_at for c in cells), default=None)
        points = f"{got:g}/{total:g}" if cells else "no push"
        n_done = sum(done(c) for c in cells)
        lines.append(
            f"{pair:<{width}}  {points:>13}  {n_done:>4} of {len(board.days):<2}  {_stamp(last)}"
            f"{_jobs(jobs.get(pair, 0))}"
        )
    return lines


def pair_lines(
    roster: Roster, board: board_mod.Board, pair: str, jobs: dict[str, int]
) -> list[str]:
    cells = {d: c for d in board.days if (c := board.cell(pair, d))}
    last = max((c.latest.pushed_at for c in cells.values()), default=None)
    lines = [f"{pair}: last push {_stamp(last)}{_jobs(jobs.get(pair, 0))}"]
    width = max(len(d) for d in board.days) if board.days else 3
    lines.append(f"  {'day':<{width}}  {'latest':>11}  {'best':>11}  tests passed")
    docs: dict[str, dict | None] = {}
    template, cache = roster.dir / SNAPSHOT_DIR, {}
    details = []
    for day in board.days:
        cell = cells.get(day)
        if cell is None:
            lines.append(f"  {day:<{width}}  {'no graded push':>11}")
            continue
        latest, best = cell.latest, cell.best
        if latest.path not in docs:
            docs[latest.path] = _load(roster.dir / latest.path)
        f = day_facts(docs[latest.path], day, template, cache)
        counts = f"{len(f.passed)}/{f.graded}" if docs[latest.path] else "?"
        todo = f", {len(f.todo)} not started" if f.todo else ""
        lines.append(
            f"  {day:<{width}}  {latest.score:>5g}/{latest.max_score:<5g}  "
            f"{best.score:>5g}/{best.max_score:<5g}  {counts}{todo}"
        )
        for t in f.real:
            text = t.get("output", "").strip().replace("\n", "\n" + INDENT)
            details.append(f"  {t['name']}:\n{INDENT}{text}")
    if details:
        lines += ["", f"failing ({len(details)}, latest push of each day):", *details]
    lines += ["", f"pages: {roster.dir / 'site' / pair_href(pair)}"]
    return lines


def status(roster: Roster, pair: str | None = None) -> list[str]:
    """The lines `cohort status` prints (one pair's with `pair`)."""
    if not (roster.dir / store.DB_NAME).exists():
        rows, jobs = [], {}
    else:
        db = store.connect(roster.dir)
        try:
            rows, jobs = store.day_scores(db), waiting(db)
        finally:
            db.close()
    board = board_mod.build(rows, [p.name for p in roster.pairs], [d.name for d in roster.days])
    if pair is None:
        return cohort_lines(roster, board, jobs)
    if pair not in board.pairs:
        raise RosterError(f"no pair {pair!r} in {roster.path.name} or the store")
    return pair_lines(roster, board, pair, jobs)
