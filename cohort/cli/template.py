"""`cohort build-template`: regenerate `template/mlab` from `solutions/mlab`, and keep the points
manifest honest (MANIFEST says how)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cohort import build, manifest, selfcheck
from cohort.errors import BuildError

MANIFEST = """\
The points manifest (`template/tests/manifest.json`) is recorded from the stubs and the tests.
With `--check` a stale one fails like stale stubs do. Without it, build-template re-records a
stale manifest itself (it grades the stubs: a few minutes for the whole curriculum): whoever
changed the solutions or the tests would have to run `cohort check manifest` next anyway, and a
template whose manifest is stale cannot be snapshotted.
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "build-template",
        help="generate template/mlab stubs from solutions/mlab",
        description=f"{build.__doc__}\n{MANIFEST}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 if template/mlab or its manifest is stale",
    )
    p.add_argument("--root", type=Path, default=Path("."), help="organizer repository (default: .)")
    p.set_defaults(run=run)


def stale_manifest(root: Path) -> str | None:
    """Why the template's manifest no longer describes its tests and stubs; None when it does
    (or when the template has no tests to describe)."""
    tests = root / "template" / "tests"
    if not any(tests.glob("test_*.py")):
        return None
    try:
        manifest.check_current(tests, root / "template")
    except manifest.ManifestError as e:
        return str(e)
    return None


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
        if why := stale_manifest(args.root):
            print(why)
            return 1
        print("template/mlab is up to date")
        return 0
    build.apply(todo, dst)
    print(f"template/mlab: {len(todo.write)} written, {len(todo.remove)} removed")
    if why := stale_manifest(args.root):
        why = why.removesuffix(f"; {manifest.RERECORD}")
        print(f"{why}: re-recording it from the stubs (a few minutes)", flush=True)
        print(f"{selfcheck.write_manifest(args.root)}: re-recorded")
    return 0
