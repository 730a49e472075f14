"""`cohort sync`: offer a template update to every pair as a branch (and pull request)."""

from __future__ import annotations

import argparse

from cohort import forge, roster, sync
from cohort.cli.roster import cohort_dir_option


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sync",
        help="push a template update to every pair as a branch and pull request",
        description="Take the template at the ref in cohort.toml and offer what changed since "
        "the cohort's snapshot to every pair: a branch template-update-<version> based on the "
        "pair's main (never rewritten) and, on GitHub, a pull request. Files deleted upstream "
        "are deleted; conflicts with the pair's changes are listed per pair. Re-runs finish "
        "what an interrupted run left. Exit status 1 when a pair could not be reached.",
    )
    cohort_dir_option(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    cohort = roster.load(args.dir)
    done = sync.sync(cohort, forge.connect(cohort))
    if done.version is None:
        print("the template did not change: nothing to sync")
        return 0
    counts = {o: sum(p.outcome == o for p in done.pairs) for o in (*sync.OK, "failed")}
    print(
        f"template update {done.version} ({len(done.changes)} files): "
        + ", ".join(f"{n} {o}" for o, n in counts.items() if n)
    )
    if not done.promoted:
        print("some pairs failed: fix what they say and re-run `cohort sync`")
    return 0 if done.promoted else 1
