"""The local forge's post-receive hook: queue each push for grading.

git runs `python -m cohort.runner.hook COHORT_DIR PAIR` after a push, with one `old new ref` line
per updated ref on stdin. Branch updates are recorded (pair, ref, old and new commit, time) and
their commits queued; deleted branches and tags are not. What it prints, the pusher sees.
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

from cohort import store
from cohort.errors import StoreError

ZERO = "0" * 40


def record(cohort_dir: Path, pair: str, lines: list[str]) -> list[str]:
    """Record the pushed branches in `lines`; returns what to tell the pusher."""
    updates = [line.split() for line in lines if line.strip()]
    branches = [
        (old, new, ref)
        for old, new, ref in updates
        if ref.startswith("refs/heads/") and new != ZERO
    ]
    if not branches:
        return []
    db = store.connect(cohort_dir)
    try:
        told = []
        for old, new, ref in branches:
            job = store.record_push(db, pair, ref, None if old == ZERO else old, new)
            told.append(
                f"cohort: {ref.removeprefix('refs/heads/')} at {new[:10]} queued for grading (job {job})"
            )
        page = Path(cohort_dir).resolve() / "site" / "pairs" / f"{pair}.html"
        told.append(f"cohort: results, once graded: {page}")
        told.append(
            f"cohort: or in a terminal: cohort status --dir {Path(cohort_dir).resolve()} --pair {pair}"
        )
        return told
    finally:
        db.close()


def main(argv: list[str] | None = None) -> int:
    cohort_dir, pair = argv or sys.argv[1:]
    try:
        told = record(Path(cohort_dir), pair, sys.stdin.read().splitlines())
    except (StoreError, sqlite3.Error, ValueError) as e:
        print(
            f"cohort: this push is saved but could not be queued ({e}); the next `cohort runner` "
            "finds it",
            file=sys.stderr,
        )
        return 0
    print("\n".join(told))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
