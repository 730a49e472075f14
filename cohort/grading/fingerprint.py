"""Which pair files belong to which day, and per-day fingerprints that decide what to grade.

A day's files are `mlab/<day>.py`, `mlab/<day>/` and `mlab/<day>_assets/`; every other file under
`mlab/` (e.g. `mlab/__init__.py`) is shared and belongs to every day. A day's fingerprint hashes
its files, the shared files and the identity of the trusted tests (every file of tests/ and the
grader's version): two checkouts with the same fingerprint for a day get the same grade for it, so
a push grades only the days whose fingerprint has no stored result.
"""

from __future__ import annotations

import hashlib
import stat
from collections.abc import Iterable
from pathlib import Path

import cohort
from cohort import git
from cohort.curriculum import DAYS, available_days

SHARED = "*"  # what `day_of` says of a file that belongs to every day
# a change here is a template update (new tests, another grader ref in the caller): every day
EVERY_DAY_PREFIXES = ("tests/", ".github/workflows/")
SKIPPED = {"__pycache__", ".pytest_cache"}


def known_days(tests: Path | None = None) -> set[str]:
    """The curriculum's days, and any other day `tests` has graders for."""
    return {d.name for d in DAYS} | set(available_days(tests) if tests else [])


def day_of(rel: str, days: set[str]) -> str | None:
    """The day a repository path belongs to, SHARED for other files under mlab/, None outside it."""
    parts = rel.split("/")
    if parts[0] != "mlab" or len(parts) < 2 or SKIPPED.intersection(parts) or rel.endswith(".pyc"):
        return None
    top = parts[1]
    if len(parts) == 2:  # a file directly under mlab/
        return top.removesuffix(".py") if top.endswith(".py") and top[:-3] in days else SHARED
    owner = top.removesuffix("_assets")
    return owner if top in days or (top.endswith("_assets") and owner in days) else SHARED


def changed_days(paths: Iterable[str], days: list[str]) -> list[str]:
    """The days of `days` that changed files at `paths` touch (a shared file touches all)."""
    touched = {day_of(p, set(days)) for p in paths}
    return list(days) if SHARED in touched else [d for d in days if d in touched]


def changed_between(repo: Path, before: str | None, after: str, days: list[str]) -> list[str]:
    """The days to grade for a push from `before` to `after` in the clone `repo`: the days its
    changed files touch; every day when `before` is unknown (a new branch, a manual run, a
    shallow clone without it), when the push changes tests/ or the workflows (a template
    update), or when it touches no day's file."""
    if (
        not before
        or set(before) == {"0"}
        or git.run("cat-file", "-e", f"{before}^{{commit}}", cwd=repo, check=False).returncode
    ):
        return list(days)
    diff = git.run(
        "diff", "--name-only", "--no-renames", "-z", before, after, cwd=repo, check=False
    )
    if diff.returncode:
        return list(days)
    paths = [p for p in diff.stdout.split("\0") if p]
    if any(p.startswith(EVERY_DAY_PREFIXES) for p in paths):
        return list(days)
    return changed_days(paths, days) or list(days)


def _entry(path: Path) -> bytes:
    mode = path.lstat().st_mode
    if stat.S_ISLNK(mode):
        return b"link:" + str(path.readlink()).encode()
    if not stat.S_ISREG(mode):
        return b"special"
    with path.open("rb") as f:  # streamed: a pair's huge file is never held in memory
        return hashlib.file_digest(f, "sha256").digest()


def _files(root: Path) -> dict[str, bytes]:
    """Every file under `root/mlab` (links and special files by what they are, not followed)."""
    mlab = root / "mlab"
    if mlab.is_symlink() or not mlab.is_dir():
        return {}
    return {
        p.relative_to(root).as_posix(): _entry(p)
        for p in sorted(mlab.rglob("*"))
        if not p.is_dir() or p.is_symlink()
    }


def _digest(items: Iterable[tuple[str, bytes]]) -> str:
    h = hashlib.sha256()
    for rel, entry in items:
        h.update(rel.encode() + b"\0" + entry + b"\0")
    return h.hexdigest()


def file_digests(checkout: Path, days: list[str], known: set[str]) -> dict[str, str]:
    """Per day of `days`, the digest of its files and the shared files in `checkout`."""
    files = {rel: (day_of(rel, known), entry) for rel, entry in _files(checkout).items()}
    return {
        day: _digest(
            (rel, entry) for rel, (owner, entry) in sorted(files.items()) if owner in (day, SHARED)
        )
        for day in days
    }


def tests_digest(tests: Path) -> str:
    """The identity of the trusted tests: every file of `tests`, and the grader's version."""
    items = [
        (p.relative_to(tests).as_posix(), _entry(p))
        for p in sorted(tests.rglob("*"))
        if p.is_file() and not SKIPPED.intersection(p.relative_to(tests).parts)
        if p.suffix != ".pyc"
    ]
    return _digest([("cohort", cohort.__version__.encode()), *items])


def fingerprint(files: str, tests: str) -> str:
    """A day's fingerprint from its file digest and the tests' digest."""
    return hashlib.sha256(f"{files}\n{tests}".encode()).hexdigest()


def day_fingerprints(
    checkout: Path, tests: Path, days: list[str], tests_id: str | None = None
) -> dict[str, tuple[str, str]]:
    """Per day of `days`: (digest of its files and the shared ones, fingerprint)."""
    files = file_digests(checkout, days, known_days(tests))
    tests_id = tests_id or tests_digest(tests)
    return {day: (files[day], fingerprint(files[day], tests_id)) for day in days}
