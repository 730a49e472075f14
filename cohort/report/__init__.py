"""The cohort summary (`cohort summary`): a static site from the store, with no server and no script.

`site/index.html` (heatmap of best scores with marks and the schedule, days done, points per pair,
benchmark leaderboards, the stuck list), `site/exercises.html` (every exercise across the cohort),
a page per pair, a review pack per pair and day, `summary.md` and `scores.csv`.
"""

from __future__ import annotations

import fcntl
import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from cohort import clock, store
from cohort.report import board as board_mod
from cohort.report import exercises as exercises_mod
from cohort.report import html, tables
from cohort.report import stuck as stuck_mod
from cohort.report.facts import DayFacts, day_facts
from cohort.roster import Roster
from cohort.snapshot import SNAPSHOT_DIR

SITE_DIR = "site"


@dataclass(frozen=True)
class Site:
    index: Path
    pairs: int
    days: int
    rows: int
    stuck: int


def _load(path: Path) -> tuple[dict | None, str | None]:
    try:
        return json.loads(path.read_text()), None
    except (OSError, ValueError) as e:
        return None, f"cannot read {path.name}: {e}"


def _write_pages(
    roster: Roster, board: board_mod.Board, series: dict, stuck: list, out: Path
) -> tuple[dict[tuple[str, str], DayFacts], dict[tuple[str, str], dict | None], dict]:
    """A page per pair and a review pack per pair and day (its latest push's results.json).

    Returns the facts and the results document of each pair-day's latest push, and the pair-days
    whose latest grade ran without the sandbox, with the reason."""
    facts, latest, unsandboxed, cache = {}, {}, {}, {}
    template = roster.dir / SNAPSHOT_DIR
    schedule = {d.name: d for d in roster.days}
    packs = []
    for pair in board.pairs:
        (out / "pairs" / board_mod.slug(pair)).mkdir()
        docs: dict[str, tuple[dict | None, str | None]] = {}  # a push grades many days: read once
        for day in board.days:
            if cell := board.cell(pair, day):
                path = cell.latest.path
                doc, problem = docs[path] = docs.get(path) or _load(roster.dir / path)
                facts[pair, day] = day_facts(doc, day, template, cache)
                latest[pair, day] = doc
                packs.append((pair, day, cell, doc, problem))
                if why := html.unsandboxed(doc):
                    unsandboxed[pair, day] = why
    for pair, day, cell, doc, problem in packs:
        pack = html.review_pack(pair, day, cell, doc, problem, facts[pair, day], schedule)
        (out / html.pair_day_href(pair, day)).write_text(pack)
    members = {p.name: p.members for p in roster.pairs}
    for pair in board.pairs:
        page = html.pair_page(
            pair, members.get(pair, ()), board, series[pair], stuck, schedule, facts
        )
        (out / html.pair_href(pair)).write_text(page)
    return facts, latest, unsandboxed


def write_site(roster: Roster, out: Path | None = None) -> Site:
    """Write the site for the cohort of `roster` into `out` (default: the cohort's site/).

    The site is built next to `out` and renamed into place, so a reader never sees half of it;
    writers (workers refreshing after each job, `cohort summary`) take turns on a lock file.
    """
    out = out or roster.dir / SITE_DIR
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.with_name(out.name + ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _write_site(roster, out)


def refresh(roster: Roster, say: Callable[[str], None]) -> None:
    """Rewrite the site after a grading job; a failure is told, never raised (the grade is kept)."""
    try:
        write_site(roster)
    except Exception as e:  # noqa: BLE001 - the job is done whatever the pages do
        say(f"pages not refreshed: {type(e).__name__}: {e}")


def _write_site(roster: Roster, out: Path) -> Site:
    db = store.connect(roster.dir)
    try:
        rows = store.day_scores(db)
        board = board_mod.build(rows, [p.name for p in roster.pairs], [d.name for d in roster.days])
        g = roster.grading
        stuck = stuck_mod.find(db, board, g.stuck_pushes, g.stuck_hours)
        rules = (
            f"Pairs whose latest push fails a test (other than with NotImplementedError) that each "
            f"of their last {g.stuck_pushes} pushes failed, or that they have failed for "
            f"{g.stuck_hours:g} hours."
        )
        generated_at = clock.now_iso()
        now = html.when(generated_at)
        schedule = {d.name: d for d in roster.days}
        series = {pair: board.progress(pair) for pair in board.pairs}
        partial = out.with_name(out.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        (partial / "pairs").mkdir(parents=True)
        facts, latest, unsandboxed = _write_pages(roster, board, series, stuck, partial)
        live = [d for d in board.days if html.released(d, schedule, now)]
        found = exercises_mod.exercises(db, board, facts, live, stuck)
    finally:
        db.close()
    boards = exercises_mod.leaderboards(roster.dir, board, latest)
    index = html.index(
        roster.name,
        board,
        series,
        schedule,
        stuck,
        generated_at,
        rules,
        facts,
        unsandboxed,
        boards,
    )
    (partial / "index.html").write_text(index)
    page = html.exercises_page(roster.name, found, len(board.pairs), generated_at)
    (partial / "exercises.html").write_text(page)
    summary = tables.markdown(roster.name, board, stuck, generated_at, rules)
    (partial / "summary.md").write_text(summary)
    tables.write_csv(rows, partial / "scores.csv")
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return Site(out / "index.html", len(board.pairs), len(board.days), len(rows), len(stuck))
