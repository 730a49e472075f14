"""`cohort status`: the latest scores in the terminal, for the cohort or one pair."""

from __future__ import annotations

import argparse

from cohort import roster
from cohort.cli.roster import cohort_dir_option
from cohort.report.status import status


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "status",
        help="the latest scores in the terminal (the cohort, or one pair's failing tests)",
        description="Without --pair: a line per pair (points, days done, last push, jobs waiting). "
        "With --pair: per day the latest and best score, the tests it fails (in full) and how "
        "many exercises are not started, and where its pages are.",
    )
    cohort_dir_option(p)
    p.add_argument("--pair", help="one pair's days and failing tests")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    print("\n".join(status(roster.load(args.dir), args.pair)))
    return 0
