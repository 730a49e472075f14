"""`cohort summary`: write the cohort's dashboard as a static site."""

from __future__ import annotations

import argparse
from pathlib import Path

from cohort import report, roster
from cohort.cli.roster import cohort_dir_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "summary",
        help="write the dashboard: site/index.html, summary.md, scores.csv",
        description="Heatmap of best scores, progress over time, the stuck list, a page per "
        "pair and a review pack per pair and day; summary.md and scores.csv.",
    )
    cohort_dir_option(p)
    p.add_argument("--out", type=Path, help="where to write the site (default: DIR/site)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    site = report.write_site(roster.load(args.dir), args.out)
    print(
        f"{site.index}: {site.pairs} pairs x {site.days} days, {site.rows} graded pair-days, "
        f"{site.stuck} stuck"
    )
    return 0
