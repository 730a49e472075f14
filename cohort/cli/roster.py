"""`cohort new`: start a cohort directory with a commented example `cohort.toml`."""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from pathlib import Path

from cohort import git, roster
from cohort.curriculum import DAYS, available_days
from cohort.errors import RosterError
from cohort.snapshot import find_organizer_repo


def cohort_dir_option(p: argparse.ArgumentParser) -> None:
    """The option every command acting on a cohort shares."""
    p.add_argument(
        "--dir",
        type=Path,
        default=Path("."),
        help="the cohort directory, which holds cohort.toml (default: .)",
    )


def positive_int(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1")
    return int(text)


def _has_commits(repo: Path) -> bool:
    """Is `repo` a git repository with a HEAD commit (else the template is taken from disk)?"""
    return (
        git.run(
            "rev-parse", "--verify", "--quiet", "HEAD^{commit}", cwd=repo, check=False
        ).returncode
        == 0
    )


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "new",
        help="start a cohort directory with an example cohort.toml",
        description="Write DIR/cohort.toml, a commented example roster to edit, then run "
        "`cohort generate --dir DIR`.",
    )
    p.add_argument("dir", type=Path, help="the cohort directory to create")
    p.add_argument("--name", help="the cohort's name (default: DIR's name)")
    p.add_argument(
        "--repo", type=Path, help="organizer repository holding template/ (default: this one)"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    path = args.dir / roster.FILENAME
    if path.exists():
        raise RosterError(f"{path}: already exists; edit it, or choose a new directory")
    repo = find_organizer_repo(args.repo)
    days = available_days(repo / "template" / "tests") or [d.name for d in DAYS]
    start = date.today() + timedelta(days=7 - date.today().weekday())  # next Monday
    ref = "HEAD" if _has_commits(repo) else roster.WORKTREE
    text = roster.example(args.name or args.dir.resolve().name, repo, days, start, ref)
    roster.parse(text, path)  # the example must be valid before it is written
    args.dir.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if ref == roster.WORKTREE:
        print(
            f"{repo} is not a git repository with commits: template.ref = {ref!r} (files on disk)"
        )
    print(
        f"wrote {path}: edit the pairs, TAs and dates, then run `cohort generate --dir {args.dir}`"
    )
    return 0
