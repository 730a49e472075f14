"""`cohort`: the command line, a thin layer over the library. One module per command group."""

from __future__ import annotations

import argparse
import sys

from cohort import __version__
from cohort.cli import (
    changed_days,
    check,
    collect,
    comment,
    demo,
    forge,
    grade,
    regrade,
    review,
    roster,
    runner,
    status,
    store,
    summary,
    sync,
    template,
)
from cohort.errors import CohortError

COMMANDS = (
    template,
    grade,
    check,
    roster,
    forge,
    runner,
    regrade,
    store,
    summary,
    status,
    demo,
    collect,
    comment,
    sync,
    review,
    changed_days,
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="cohort",
        description="Run an MLAB-style bootcamp: build the pair template, grade, run the cohort.",
    )
    p.add_argument("--version", action="version", version=f"cohort {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args) or 0
    except CohortError as e:  # bad input or a failed operation: one line, no traceback
        print(f"cohort {args.command}: error: {e}", file=sys.stderr)
        return 2
