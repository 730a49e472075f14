"""The cohort summary (`cohort summary`): a static site from the store, with no server and no script.

`site/index.html` (heatmap of best scores, progress over time, the stuck list), a page per pair,
a review pack per pair and day, `summary.md` and `scores.csv`.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

from cohort import store
from cohort.report import board as board_mod
from cohort.report import html, tables
from cohort.report import stuck as stuck_mod
from cohort.roster import Roster

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
) -> dict[tuple[str, str], str]:
    """A page per pair and a review pack per pair and day (its latest push's results.json).

    Returns the pair-days whose latest grade ran without the sandbox, with the reason."""
    unsandboxed = {}
    members = {p.name: p.members for p in roster.pairs}
    for pair in board.pairs:
        page = html.pair_page(pair, members.get(pair, ()), board, series[pair], stuck)
        (out / html.pair_href(pair)).write_text(page)
        (out / "pairs" / board_mod.slug(pair)).mkdir()
        docs: dict[
            str, tuple[dict | None, str | None]
        ] = {}  # a push grades many days: read it once
        for day in board.days:
            if cell := board.cell(pair, day):
                path = cell.latest.path
                doc, problem = docs[path] = docs.get(path) or _load(roster.dir / path)
                pack = html.review_pack(pair, day, cell, doc, problem)
                (out / html.pair_day_href(pair, day)).write_text(pack)
                if why := html.unsandboxed(doc):
                    unsandboxed[pair, day] = why
    return unsandboxed


def write_site(roster: Roster, out: Path | None = None) -> Site:
    """Write the site for the cohort of `roster` into `out` (default: the cohort's site/).

    The site is built next to `out` and renamed into place, so a reader never sees half of it.
    """
    out = out or roster.dir / SITE_DIR
    db = store.connect(roster.dir)
    try:
        rows = store.day_scores(db)
        board = board_mod.build(rows, [p.name for p in roster.pairs], [d.name for d in roster.days])
        g = roster.grading
        stuck = stuck_mod.find(db, board, g.stuck_pushes, g.stuck_hours)
    finally:
        db.close()
    rules = (
        f"Pairs whose latest push fails a test (other than with NotImplementedError) that each of "
        f"their last {g.stuck_pushes} pushes failed, or that they have failed for "
        f"{g.stuck_hours:g} hours."
    )
    generated_at = store.now_iso()
    schedule = {d.name: d for d in roster.days}
    series = {pair: board.progress(pair) for pair in board.pairs}
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "pairs").mkdir(parents=True)
    unsandboxed = _write_pages(roster, board, series, stuck, partial)
    index = html.index(
        roster.name, board, series, schedule, stuck, generated_at, rules, unsandboxed
    )
    (partial / "index.html").write_text(index)
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
