"""`cohort runner`: grade the queued pushes with local worker processes."""

from __future__ import annotations

import argparse

from cohort import roster, runner
from cohort.cli.roster import cohort_dir_option, positive_int
from cohort.forge.base import ForgeError
from cohort.forge.template import TemplateError
from cohort.store import StoreError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "runner",
        help="grade queued pushes (worker processes)",
        description="Take queued pushes, check each commit out into a scratch directory and "
        "grade it with the cohort's trusted tests; results go to results/ and "
        "cohort.db. A job whose worker dies is graded again.",
    )
    cohort_dir_option(p)
    p.add_argument("--workers", type=positive_int, default=1, help="worker processes (default: 1)")
    p.add_argument("--once", action="store_true", help="exit when the queue is empty")
    p.add_argument(
        "--lease",
        type=float,
        help="seconds a silent worker keeps its job (default: grading.lease_s)",
    )
    p.set_defaults(run=run, errors=(roster.RosterError, ForgeError, TemplateError, StoreError))


def run(args: argparse.Namespace) -> int:
    return runner.run(roster.load(args.dir), args.workers, args.once, args.lease)
