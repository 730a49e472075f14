"""`cohort check`: the organizer's checks on the curriculum (solutions, template, snapshots)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cohort import selfcheck
from cohort.errors import CheckFailed


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "check", help="check the curriculum: solutions 100%%, template 0, snapshots, manifest"
    )
    p.add_argument(
        "what",
        choices=("solutions", "template", "snapshots", "manifest"),
        help="solutions: must score 100%%; template: must score 0 with NotImplementedError; "
        "snapshots: re-record template/tests/snapshots from the solutions; "
        "manifest: re-record template/tests/manifest.json (points, exercises) from the stubs",
    )
    p.add_argument("--day", help="one day only, e.g. w0_prep")
    p.add_argument("--root", type=Path, default=Path("."), help="organizer repository (default: .)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.what == "snapshots":
        written = selfcheck.update_snapshots(args.root, args.day)
        print(f"{len(written)} snapshots recorded under template/tests/snapshots")
        return 0
    if args.what == "manifest":
        if args.day:
            raise CheckFailed("--day: the manifest is recorded for every day at once")
        path = selfcheck.write_manifest(args.root)
        print(f"{path}: recorded")
        return 0
    check = selfcheck.check_solutions if args.what == "solutions" else selfcheck.check_template
    res = check(args.root, args.day)
    print(f"{args.what}: {res['score']:g}/{res['max_score']:g} points, as required")
    return 0
