"""`cohort build-template`: regenerate `template/mlab` from `solutions/mlab`."""

from __future__ import annotations

import argparse
from pathlib import Path

from cohort import build
from cohort.errors import BuildError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-template",
        help="generate template/mlab stubs from solutions/mlab",
        description=build.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if template/mlab is stale"
    )
    p.add_argument("--root", type=Path, default=Path("."), help="organizer repository (default: .)")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    src, dst = args.root / "solutions" / "mlab", args.root / "template" / "mlab"
    if not src.is_dir():
        raise BuildError(f"{src}: not found (run from the organizer repository or pass --root)")
    todo = build.plan(src, dst)
    if args.check:
        for rel in todo.stale:
            print(f"stale: template/mlab/{rel.as_posix()}")
        if todo.stale:
            print("template/mlab is stale: run `cohort build-template`")
            return 1
        print("template/mlab is up to date")
        return 0
    build.apply(todo, dst)
    print(f"template/mlab: {len(todo.write)} written, {len(todo.remove)} removed")
    return 0
