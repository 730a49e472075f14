"""The grading queue: jobs in SQLite, taken under a lease that the worker keeps renewing.

A worker that dies or stalls stops renewing; once its lease runs out (or, on this host, as soon as
its process is gone) the job goes back to the queue. After `MAX_ATTEMPTS` such losses the job is
marked failed with the reason, so one poisonous commit cannot occupy the runner forever.

Fresh pushes are taken before re-grades (priority 1 against 0). A re-grade queues a commit again:
of every pair's latest commit when the trusted tests change (`tests_changed`), or on demand
(`regrade`), forcing some days to be graded even where a result with their fingerprint is stored.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass

from cohort.clock import now_iso
from cohort.store import transaction

MAX_ATTEMPTS = 3
PUSH, REGRADE = 1, 0  # priorities
ALL_DAYS = "*"
TESTS_SETTING = "tests_digest"


@dataclass(frozen=True)
class Job:
    id: int
    pair: str
    commit: str
    ref: str
    pushed_at: str
    attempts: int
    force_days: str | None = None  # NULL: none, ALL_DAYS, or days separated by spaces

    def forced(self, day: str) -> bool:
        """Must `day` be graded even where a result with its fingerprint is stored?"""
        return self.force_days is not None and (
            self.force_days == ALL_DAYS or day in self.force_days.split()
        )


def worker_id() -> str:
    """This process as it holds leases: host:pid."""
    return f"{socket.gethostname()}:{os.getpid()}"


def _gone(worker: str | None) -> bool:
    """Is `worker` a process of this host that no longer exists?"""
    host, _, pid = (worker or "").rpartition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _recover(db: sqlite3.Connection, now: float) -> None:
    """Put jobs whose worker died or stalled back in the queue (or fail them after too many)."""
    for jid, worker, lease_until, attempts in db.execute(
        "SELECT id, worker, lease_until, attempts FROM jobs WHERE state = 'running'"
    ).fetchall():
        if (lease_until or 0) > now and not _gone(worker):
            continue
        if attempts >= MAX_ATTEMPTS:
            db.execute(
                "UPDATE jobs SET state = 'failed', worker = NULL, finished_at = ?, error = ? WHERE id = ?",
                (
                    now_iso(),
                    f"gave up after {attempts} attempts: the worker died or stalled each time",
                    jid,
                ),
            )
        else:
            db.execute(
                "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL WHERE id = ?",
                (jid,),
            )


def claim(db: sqlite3.Connection, worker: str, lease_s: float) -> Job | None:
    """Take the oldest queued job under a lease of `lease_s` seconds; None when there is none."""
    now = time.time()
    with transaction(db):
        _recover(db, now)
        row = db.execute(
            "SELECT id, pair, commit_sha, ref, pushed_at, attempts, force_days FROM jobs"
            " WHERE state = 'queued' ORDER BY priority DESC, id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE jobs SET state = 'running', worker = ?, lease_until = ?, attempts = attempts + 1,"
            " error = NULL WHERE id = ?",
            (worker, now + lease_s, row[0]),
        )
    return Job(*row[:5], attempts=row[5] + 1, force_days=row[6])


def renew(db: sqlite3.Connection, job: Job, worker: str, lease_s: float) -> bool:
    """Extend the lease; False when the job is no longer this worker's."""
    with transaction(db):
        cur = db.execute(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running'",
            (time.time() + lease_s, job.id, worker),
        )
    return cur.rowcount == 1


def finish(db: sqlite3.Connection, job: Job, worker: str, error: str | None = None) -> None:
    """Mark the job done (or failed with `error`), if this worker still holds it; queued again
    when a re-grade was asked for while it ran."""
    with transaction(db):
        db.execute(
            "UPDATE jobs SET state = CASE WHEN again THEN 'queued' ELSE ? END, attempts = CASE"
            " WHEN again THEN 0 ELSE attempts END, force_days = CASE WHEN again THEN force_days"
            " END, again = 0, worker = NULL, lease_until = NULL, finished_at = ?, error = ?"
            " WHERE id = ? AND worker = ?",
            ("failed" if error else "done", now_iso(), error, job.id, worker),
        )


def release(db: sqlite3.Connection, job: Job, worker: str) -> None:
    """Give the job back untouched (the worker is stopping): queued again, this try not counted."""
    with transaction(db):
        db.execute(
            "UPDATE jobs SET state = 'queued', worker = NULL, lease_until = NULL,"
            " attempts = attempts - 1 WHERE id = ? AND worker = ?",
            (job.id, worker),
        )


def pending(db: sqlite3.Connection) -> int:
    """Jobs not finished: queued or running."""
    return db.execute("SELECT COUNT(*) FROM jobs WHERE state IN ('queued', 'running')").fetchone()[
        0
    ]


def _union(old: str | None, new: str | None) -> str | None:
    if old is None or new is None:
        return old or new
    if ALL_DAYS in (old, new):
        return ALL_DAYS
    return " ".join(dict.fromkeys([*old.split(), *new.split()]))


def regrade(
    db: sqlite3.Connection,
    pair: str | None = None,
    days: list[str] | None = None,
    force: bool = True,
) -> list[tuple[str, str]]:
    """Queue the latest pushed commit of `pair` (default: every pair) behind fresh pushes.

    With `force`, `days` (default: all) are graded even where their fingerprint is stored, and
    the commit's rows of those days are replaced; without, the fingerprints decide (after a
    change of the trusted tests, every day). A job that is running is queued again when it
    finishes. Returns the (pair, commit) pairs queued."""
    forced = (" ".join(days) if days else ALL_DAYS) if force else None
    with transaction(db):
        latest = db.execute(
            "SELECT pair, new_commit, ref, pushed_at FROM pushes WHERE id IN"
            " (SELECT MAX(id) FROM pushes WHERE ?1 IS NULL OR pair = ?1 GROUP BY pair) ORDER BY pair",
            (pair,),
        ).fetchall()
        for name, commit, ref, pushed_at in latest:
            db.execute(
                "INSERT OR IGNORE INTO jobs (pair, commit_sha, ref, pushed_at, priority)"
                " VALUES (?, ?, ?, ?, ?)",
                (name, commit, ref, pushed_at, REGRADE),
            )
            jid, state, old = db.execute(
                "SELECT id, state, force_days FROM jobs WHERE pair = ? AND commit_sha = ?",
                (name, commit),
            ).fetchone()
            if state in ("done", "failed"):
                db.execute(
                    "UPDATE jobs SET state = 'queued', priority = ?, attempts = 0, error = NULL,"
                    " finished_at = NULL, force_days = ? WHERE id = ?",
                    (REGRADE, forced, jid),
                )
            else:
                db.execute(
                    "UPDATE jobs SET force_days = ?, again = (state = 'running') WHERE id = ?",
                    (_union(old, forced), jid),
                )
    return [(name, commit) for name, commit, *_ in latest]


def tests_changed(db: sqlite3.Connection, digest: str) -> list[tuple[str, str]]:
    """Record the trusted tests' digest; when it differs from the one recorded before (a template
    update), queue every pair's latest commit for a re-grade. Returns what was queued."""
    with transaction(db):
        row = db.execute("SELECT value FROM settings WHERE name = ?", (TESTS_SETTING,)).fetchone()
        if row and row[0] == digest:
            return []
        db.execute("INSERT OR REPLACE INTO settings VALUES (?, ?)", (TESTS_SETTING, digest))
    return regrade(db, force=False) if row else []
