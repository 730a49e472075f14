"""`cohort runner`: grade the queued pushes with local worker processes."""

from __future__ import annotations

import argparse

from cohort import roster, runner
from cohort.cli.roster import cohort_dir_option, positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runner",
        help="grade queued pushes (worker processes)",
        description="Take queued pushes (fresh pushes before re-grades), check each commit out "
        "into a scratch directory and grade it with the cohort's trusted tests, day by day: the "
        "days whose fingerprint (their files, the shared files, the trusted tests) has no stored "
        "result, those the push changed first; the other days are carried over. Each day goes "
        "to results/ and cohort.db as it finishes. A job whose worker dies is taken again.",
    )
    cohort_dir_option(p)
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default: 1)")
    p.add_argument("--once", action="store_true", help="exit when the queue is empty")
    p.add_argument(
        "--lease",
        type=float,
        help="seconds a silent worker keeps its job (default: grading.lease_s)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    return runner.run(roster.load(args.dir), args.workers, args.once, args.lease)
