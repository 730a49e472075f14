"""`cohort changed-days`: the days a push changed, for the grading workflow's `--day`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cohort.curriculum import available_days
from cohort.errors import GradeError
from cohort.grading import fingerprint


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "changed-days",
        help="print the days a push changed (for `cohort grade --day`)",
        description="Print, separated by spaces, the days whose files (mlab/<day>.py, "
        "mlab/<day>/, mlab/<day>_assets/) changed between BEFORE and AFTER in the clone REPO; a "
        "change to another file under mlab/ counts for every day. Every day is printed when "
        "BEFORE is empty, all zeros (a new branch) or not in the clone, when tests/ or "
        ".github/workflows/ changed (a template update), or when no day's file changed.",
    )
    p.add_argument("repo", type=Path, help="the pair's clone (with the history of both commits)")
    p.add_argument("--before", default="", help="the commit before the push (github.event.before)")
    p.add_argument("--after", default="HEAD", help="the pushed commit (default: HEAD)")
    p.add_argument("--tests", type=Path, required=True, help="the trusted tests: their days count")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    days = available_days(args.tests)
    if not days:
        raise GradeError(f"{args.tests}: no graders (test_<day>.py) to take the days from")
    print(" ".join(fingerprint.changed_between(args.repo, args.before, args.after, days)))
    return 0
