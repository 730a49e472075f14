"""`cohort regrade`: queue pairs' latest commits to be graded again."""

from __future__ import annotations

import argparse

from cohort import roster, store
from cohort.cli.grade import selected_days
from cohort.cli.roster import cohort_dir_option
from cohort.errors import RosterError
from cohort.runner import queue


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "regrade",
        help="queue the pairs' latest commits to be graded again",
        description="Queue the latest pushed commit of every pair (or of --pair) behind fresh "
        "pushes, grading the --day days (default: every day) even where a result with the same "
        "fingerprint is stored. The re-grade replaces that commit's rows of those days; other "
        "commits' results stay. `cohort runner` grades them (a running one picks them up).",
    )
    cohort_dir_option(p)
    p.add_argument("--pair", help="only this pair (default: every pair)")
    p.add_argument(
        "--day",
        action="append",
        default=[],
        metavar="DAY",
        help="only these days (repeatable, or separated by spaces or commas; default: every day)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cohort = roster.load(args.dir)
    days = selected_days(args.day)
    known = {d.name for d in cohort.days}
    if unknown := [d for d in days if d not in known]:
        raise RosterError(f"--day {unknown[0]!r}: not a day of {cohort.dir / roster.FILENAME}")
    if args.pair and args.pair not in {p.name for p in cohort.pairs}:
        raise RosterError(f"--pair {args.pair!r}: not a pair of {cohort.dir / roster.FILENAME}")
    db = store.connect(cohort.dir)
    try:
        queued = queue.regrade(db, args.pair, days or None)
    finally:
        db.close()
    for pair, commit in queued:
        print(f"{pair}: {commit[:10]} queued for a re-grade of {', '.join(days) or 'every day'}")
    print(f"{len(queued)} commit(s) queued" + ("" if queued else ": no pushes recorded yet"))
    return 0
