"""`cohort store`: look at and repair the cohort's SQLite store."""

from __future__ import annotations

import argparse

from cohort import store
from cohort.cli.roster import cohort_dir_option
from cohort.errors import StoreError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "store",
        help="the cohort's store: status, rebuild from results files",
        description="status: pushes, jobs by state and results. rebuild: refill the results "
        "tables from results/*/*.json (pushes and jobs are kept).",
    )
    p.add_argument("action", choices=("status", "rebuild"))
    cohort_dir_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not args.dir.is_dir():
        raise StoreError(f"{args.dir}: no such cohort directory")
    if args.action == "status" and not (args.dir / store.DB_NAME).exists():
        raise StoreError(
            f"{args.dir}: no {store.DB_NAME} here (not a cohort directory, or nothing pushed yet)"
        )
    db = store.connect(args.dir)
    try:
        if args.action == "rebuild":
            done = store.rebuild(db, args.dir)
            for problem in done.problems:
                print(f"skipped: {problem}")
            print(f"rebuilt: {done.stored} results from {args.dir / store.RESULTS_DIR}")
        for what, n in store.counts(db).items():
            print(f"{what:>13}: {n}")
    finally:
        db.close()
    return 0
