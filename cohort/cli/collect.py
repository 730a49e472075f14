"""`cohort collect`: fetch the pairs' grading results from GitHub Actions into the store."""

from __future__ import annotations

import argparse

from cohort import collect, roster
from cohort.cli.roster import cohort_dir_option, positive_int
from cohort.forge import github


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "collect",
        help="fetch the pairs' grading results from GitHub Actions into the store",
        description="For each pair, look at the newest completed push runs of its grade "
        "workflow, download the results-cpu/results-gpu artifacts of the commits not stored "
        "yet, and store those that provably come from the organizers' grading workflow at the "
        "pinned ref and name the repository and commit they were fetched for. Anything else is "
        "listed as rejected, with the reason. Exit status 1 when something was rejected.",
    )
    cohort_dir_option(p)
    p.add_argument(
        "--from",
        dest="source",
        choices=("github",),
        default="github",
        help="where the results are (default: github)",
    )
    p.add_argument(
        "--runs",
        type=positive_int,
        default=20,
        help="newest completed push runs to look at per pair (default: 20)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cohort = roster.load(args.dir)
    done = collect.collect(cohort, github.require(cohort, "cohort collect"), args.runs)
    for line in done.problems:
        print(f"problem: {line}")
    for line in done.incomplete:
        print(f"no results: {line}")
    for line in done.rejected:
        print(f"rejected: {line}")
    print(
        f"{len(done.stored)} results stored, {done.known} already stored, "
        f"{len(done.rejected)} rejected, {len(done.incomplete)} runs without results, "
        f"{len(done.problems)} pairs with problems"
    )
    return 1 if done.rejected else 0
