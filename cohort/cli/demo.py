"""`cohort demo`: run a simulated cohort end to end on this machine."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from cohort import demo
from cohort.cli.roster import positive_int


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="simulate a cohort: repos, git pushes, grading, dashboard",
        description=demo.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--dir",
        type=Path,
        help="a new or empty folder for the cohort (default: a new temporary one)",
    )
    p.add_argument(
        "--pairs",
        type=positive_int,
        default=len(demo.BEHAVIOURS),
        help=f"pairs to simulate, cycling through: {', '.join(demo.BEHAVIOURS)} (default: %(default)s)",
    )
    p.add_argument(
        "--all-days", action="store_true", help="grade every day that has graders (slow)"
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=2,
        help="runner worker processes (default: %(default)s)",
    )
    p.add_argument(
        "--ref",
        help="git ref of the template and solutions (default: HEAD; 'worktree': files on disk)",
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    index = demo.demo(args.dir, args.pairs, args.all_days, args.workers, args.ref)
    print(f"done in {time.monotonic() - started:.0f} s; open {index}")
    return 0
