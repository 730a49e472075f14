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
from cohort.report import html, stuck as stuck_mod, tables
from cohort.roster import Roster

SITE_DIR = "site"


@dataclass(frozen=True)
class Site:
    index: Path
    pairs: int
    days: int
    rows: int
    stuck: int


def _load(
    path: Path, cache: dict[Path, tuple[dict | None, str | None]]
) -> tuple[dict | None, str | None]:
    if path not in cache:
        try:
            cache[path] = (json.loads(path.read_text()), None)
        except (OSError, ValueError) as e:
            cache[path] = (None, f"cannot read {path.name}: {e}")
    return cache[path]


def write_site(roster: Roster, out: Path | None = None) -> Site:
    """Write the site for the cohort of `roster` into `out` (default: the cohort's site/)."""
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
        f"Pairs whose latest push fails a test (other than with NotImplementedError) that each of their "
        f"last {g.stuck_pushes} pushes failed, or that they have failed for {g.stuck_hours:g} hours."
    )
    generated_at = store.now_iso()
    partial = out.with_name(out.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    (partial / "pairs").mkdir(parents=True)
    (partial / "index.html").write_text(html.index(roster.name, board, stuck, generated_at, rules))
    (partial / "summary.md").write_text(
        tables.markdown(roster.name, board, stuck, generated_at, rules)
    )
    tables.write_csv(rows, partial / "scores.csv")
    members = {p.name: p.members for p in roster.pairs}
    docs: dict[Path, tuple[dict | None, str | None]] = {}
    for pair in board.pairs:
        (partial / html.pair_href(pair)).write_text(
            html.pair_page(pair, members.get(pair, ()), board, stuck)
        )
        (partial / "pairs" / board_mod.slug(pair)).mkdir()
        for day in board.days:
            if cell := board.cell(pair, day):
                doc, problem = _load(roster.dir / cell.latest.path, docs)
                (partial / html.pair_day_href(pair, day)).write_text(
                    html.review_pack(pair, day, cell, doc, problem)
                )
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        out.rename(old)
    partial.rename(out)
    shutil.rmtree(old, ignore_errors=True)
    return Site(out / "index.html", len(board.pairs), len(board.days), len(rows), len(stuck))
