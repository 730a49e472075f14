"""The grading queue: jobs in SQLite, taken under a lease that the worker keeps renewing.

A worker that dies or stalls stops renewing; once its lease runs out (or, on this host, as soon as
its process is gone) the job goes back to the queue. After `MAX_ATTEMPTS` such losses the job is
marked failed with the reason, so one poisonous commit cannot occupy the runner forever.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from dataclasses import dataclass

from cohort.store import now_iso, transaction

MAX_ATTEMPTS = 3


@dataclass(frozen=True)
class Job:
    id: int
    pair: str
    commit: str
    ref: str
    pushed_at: str
    attempts: int


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
            "SELECT id, pair, commit_sha, ref, pushed_at, attempts FROM jobs WHERE state = 'queued' ORDER BY id LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        db.execute(
            "UPDATE jobs SET state = 'running', worker = ?, lease_until = ?, attempts = attempts + 1,"
            " error = NULL WHERE id = ?",
            (worker, now + lease_s, row[0]),
        )
    return Job(*row[:5], attempts=row[5] + 1)


def renew(db: sqlite3.Connection, job: Job, worker: str, lease_s: float) -> bool:
    """Extend the lease; False when the job is no longer this worker's."""
    with transaction(db):
        cur = db.execute(
            "UPDATE jobs SET lease_until = ? WHERE id = ? AND worker = ? AND state = 'running'",
            (time.time() + lease_s, job.id, worker),
        )
    return cur.rowcount == 1


def finish(db: sqlite3.Connection, job: Job, worker: str, error: str | None = None) -> None:
    """Mark the job done (or failed with `error`), if this worker still holds it."""
    with transaction(db):
        db.execute(
            "UPDATE jobs SET state = ?, worker = NULL, lease_until = NULL, finished_at = ?, error = ?"
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
