"""`cohort review assign`: give every open pull request of the pairs a TA reviewer."""

from __future__ import annotations

import argparse

from cohort import review, roster
from cohort.cli.roster import cohort_dir_option
from cohort.forge import github


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "review",
        help="TA reviews: assign the pairs' open pull requests to TAs",
        description="assign: request a review from one TA (cohort.tas) on every open pull "
        "request of the pairs that has none, balanced across TAs in a fixed order; pull "
        "requests that have a TA keep it, so re-runs only assign what is new. Drafts and "
        "template updates are skipped. GitHub forge only.",
    )
    p.add_argument("action", choices=("assign",))
    cohort_dir_option(p)
    p.add_argument("--dry-run", action="store_true", help="print the assignments, request none")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cohort = roster.load(args.dir)
    done = review.assign(cohort, github.require(cohort, "cohort review"), args.dry_run)
    for line in done.failed:
        print(f"failed: {line}")
    load = ", ".join(f"{ta} {n}" for ta, n in done.load.items())
    print(
        f"{len(done.new)} assigned{' (dry run)' if args.dry_run else ''}, {len(done.kept)} "
        f"kept their TA, {len(done.failed)} failed; open pull requests per TA: {load}"
    )
    return 1 if done.failed else 0
