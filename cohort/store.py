"""`cohort.db`: the SQLite store of pushes, grading jobs and results.

Schema changes are migrations, applied in order and recorded in the `migrations` table. Every
results document also lives on disk (`results/<pair>/<commit>.json`, written by `save_result`
before the database row), so `rebuild` can refill the result tables from those files alone.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from cohort.clock import now_iso
from cohort.errors import StoreError
from cohort.grading import results as results_format

DB_NAME = "cohort.db"
RESULTS_DIR = "results"

MIGRATIONS: tuple[tuple[str, str], ...] = (
    (
        "0001_pushes_jobs_results",
        """
        CREATE TABLE pushes (
            id INTEGER PRIMARY KEY,
            pair TEXT NOT NULL,
            ref TEXT NOT NULL,
            old_commit TEXT,                      -- NULL for a new branch
            new_commit TEXT NOT NULL,
            pushed_at TEXT NOT NULL,              -- UTC, ISO 8601
            source TEXT NOT NULL DEFAULT 'hook'   -- hook | sweep | rebuild
        );
        CREATE INDEX pushes_by_pair ON pushes (pair, new_commit);
        CREATE TABLE jobs (
            id INTEGER PRIMARY KEY,
            pair TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            ref TEXT NOT NULL,
            pushed_at TEXT NOT NULL,              -- of the first push of this commit
            state TEXT NOT NULL DEFAULT 'queued'
                CHECK (state IN ('queued', 'running', 'done', 'failed')),
            attempts INTEGER NOT NULL DEFAULT 0,
            worker TEXT,                          -- host:pid holding the lease
            lease_until REAL,                     -- unix time the lease runs out
            finished_at TEXT,
            error TEXT,
            UNIQUE (pair, commit_sha)
        );
        CREATE INDEX jobs_by_state ON jobs (state, id);
        CREATE TABLE results (
            id INTEGER PRIMARY KEY,
            pair TEXT NOT NULL,
            commit_sha TEXT NOT NULL,
            ref TEXT,
            committed_at TEXT,
            pushed_at TEXT NOT NULL,
            graded_at TEXT,
            score REAL NOT NULL,
            max_score REAL NOT NULL,
            path TEXT NOT NULL,                   -- results.json, relative to the cohort directory
            UNIQUE (pair, commit_sha)
        );
        CREATE TABLE day_scores (
            result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
            pair TEXT NOT NULL,
            day TEXT NOT NULL,
            pushed_at TEXT NOT NULL,
            score REAL NOT NULL,
            max_score REAL NOT NULL,
            passed INTEGER NOT NULL,
            total INTEGER NOT NULL,
            PRIMARY KEY (result_id, day)
        );
        CREATE INDEX day_scores_by_pair ON day_scores (pair, day, pushed_at);
        CREATE TABLE failures (
            result_id INTEGER NOT NULL REFERENCES results (id) ON DELETE CASCADE,
            day TEXT NOT NULL,
            test TEXT NOT NULL,
            kind TEXT NOT NULL CHECK (kind IN ('todo', 'fail')),  -- todo: NotImplementedError
            PRIMARY KEY (result_id, day, test)
        ) WITHOUT ROWID;
    """,
    ),
    (
        "0002_per_day_results",
        """
        -- a day's row: the commit its tests ran on (NULL: the result's own), whether it was
        -- carried over from that commit, and its fingerprint (pair files + trusted tests)
        ALTER TABLE day_scores ADD COLUMN measured_commit TEXT;
        ALTER TABLE day_scores ADD COLUMN carried_over INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE day_scores ADD COLUMN fingerprint TEXT;
        ALTER TABLE day_scores ADD COLUMN files TEXT;
        CREATE INDEX day_scores_by_fingerprint ON day_scores (pair, day, fingerprint);
        -- claimed highest priority first (pushes 1, re-grades 0), then oldest first
        ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 1;
        -- days graded even when their fingerprint is stored: NULL none, '*' all, else a list
        ALTER TABLE jobs ADD COLUMN force_days TEXT;
        -- a re-grade asked for while the job ran: it is queued again when it finishes
        ALTER TABLE jobs ADD COLUMN again INTEGER NOT NULL DEFAULT 0;
        DROP INDEX jobs_by_state;
        CREATE INDEX jobs_by_state ON jobs (state, priority, id);
        CREATE TABLE settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)
    """,
    ),
)


@contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE ... COMMIT: writers take the lock up front, so nothing interleaves."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def migrate(db: sqlite3.Connection) -> list[str]:
    """Apply the migrations this database lacks, each in its own transaction; returns their names."""
    db.execute(
        "CREATE TABLE IF NOT EXISTS migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    done, applied = {row[0] for row in db.execute("SELECT name FROM migrations")}, []
    for name, sql in MIGRATIONS:
        if name in done:
            continue  # the common case takes no write lock
        with transaction(db):
            if db.execute("SELECT 1 FROM migrations WHERE name = ?", (name,)).fetchone():
                continue
            for statement in filter(str.strip, sql.split(";")):  # no ";" inside a statement
                db.execute(statement)
            db.execute("INSERT INTO migrations VALUES (?, ?)", (name, now_iso()))
            applied.append(name)
    return applied


def connect(cohort_dir: Path) -> sqlite3.Connection:
    """Open (creating and migrating as needed) the cohort's database."""
    path = Path(cohort_dir) / DB_NAME
    try:
        db = sqlite3.connect(path, timeout=60, isolation_level=None)
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA foreign_keys = ON")
        migrate(db)
    except sqlite3.DatabaseError as e:
        raise StoreError(f"{path}: cannot open the store ({e})") from None
    return db


def record_push(
    db: sqlite3.Connection,
    pair: str,
    ref: str,
    old: str | None,
    new: str,
    pushed_at: str | None = None,
    source: str = "hook",
) -> int:
    """Record one push and queue its commit for grading (once per pair and commit); -> job id."""
    pushed_at = pushed_at or now_iso()
    with transaction(db):
        db.execute(
            "INSERT INTO pushes (pair, ref, old_commit, new_commit, pushed_at, source) VALUES (?, ?, ?, ?, ?, ?)",
            (pair, ref, old, new, pushed_at, source),
        )
        db.execute(
            "INSERT OR IGNORE INTO jobs (pair, commit_sha, ref, pushed_at) VALUES (?, ?, ?, ?)",
            (pair, new, ref, pushed_at),
        )
        db.execute(  # a queued re-grade of this commit is now a push: taken as early as one
            "UPDATE jobs SET priority = 1 WHERE pair = ? AND commit_sha = ? AND state = 'queued'",
            (pair, new),
        )
        return db.execute(
            "SELECT id FROM jobs WHERE pair = ? AND commit_sha = ?", (pair, new)
        ).fetchone()[0]


def pushed_commits(db: sqlite3.Connection, pair: str) -> set[str]:
    return {row[0] for row in db.execute("SELECT new_commit FROM pushes WHERE pair = ?", (pair,))}


def results_path(pair: str, commit: str) -> Path:
    """Where a commit's results.json lives, relative to the cohort directory."""
    return Path(RESULTS_DIR) / pair / f"{commit}.json"


def _failure_kind(output: str) -> str:
    return "todo" if "NotImplementedError" in output else "fail"


def _put_day(
    db: sqlite3.Connection,
    rid: int,
    pair: str,
    day: str,
    pushed_at: str,
    totals: dict,
    tests: list[dict],
) -> None:
    """Write (or replace) one day's row of result `rid` and its failing tests."""
    db.execute(
        "INSERT OR REPLACE INTO day_scores (result_id, pair, day, pushed_at, score, max_score,"
        " passed, total, measured_commit, carried_over, fingerprint, files)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            rid,
            pair,
            day,
            pushed_at,
            totals["score"],
            totals["max_score"],
            totals["passed"],
            totals["total"],
            totals.get("commit"),
            int(bool(totals.get("carried_over"))),
            totals.get("fingerprint"),
            totals.get("files"),
        ),
    )
    db.execute("DELETE FROM failures WHERE result_id = ? AND day = ?", (rid, day))
    db.executemany(
        "INSERT OR IGNORE INTO failures VALUES (?, ?, ?, ?)",
        [
            (rid, day, t["name"], _failure_kind(t.get("output", "")))
            for t in tests
            if t["status"] == "failed" and (t.get("tags") or [""])[0] == day
        ],
    )


def _facts(doc: dict, path: Path) -> tuple[str, str, str]:
    extra = doc.get("extra_data", {})
    pair, commit = extra.get("pair"), extra.get("commit")
    if not pair or not commit:
        raise StoreError(f"{path}: results.json lacks extra_data.pair or extra_data.commit")
    return pair, commit, extra.get("pushed_at") or extra.get("graded_at") or now_iso()


def _open_result(db: sqlite3.Connection, doc: dict, path: Path) -> tuple[int, bool]:
    """The results row of the document's commit, made now if needed -> (id, made now)."""
    pair, commit, pushed_at = _facts(doc, path)
    extra = doc["extra_data"]
    cur = db.execute(
        "INSERT OR IGNORE INTO results (pair, commit_sha, ref, committed_at, pushed_at, graded_at,"
        " score, max_score, path) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            pair,
            commit,
            extra.get("ref"),
            extra.get("committed_at"),
            pushed_at,
            extra.get("graded_at"),
            doc["score"],
            doc["max_score"],
            path.as_posix(),
        ),
    )
    if cur.rowcount:
        return cur.lastrowid, True
    row = db.execute(
        "SELECT id FROM results WHERE pair = ? AND commit_sha = ?", (pair, commit)
    ).fetchone()
    return row[0], False


def _insert_result(db: sqlite3.Connection, doc: dict, path: Path) -> bool:
    rid, new = _open_result(db, doc, path)
    if not new:
        return False
    pair, _, pushed_at = _facts(doc, path)
    for day, totals in doc["extra_data"].get("days", {}).items():
        _put_day(db, rid, pair, day, pushed_at, totals, doc["tests"])
    return True


def store_days(db: sqlite3.Connection, doc: dict, path: Path, days: list[str]) -> int:
    """Store `days` of a results document (already written to `path`), replacing the rows those
    days had for its commit (a re-grade), and update the commit's totals; -> the result id."""
    with transaction(db):
        rid, _ = _open_result(db, doc, path)
        pair, _, pushed_at = _facts(doc, path)
        for day in days:
            _put_day(db, rid, pair, day, pushed_at, doc["extra_data"]["days"][day], doc["tests"])
        db.execute(
            "UPDATE results SET score = (SELECT COALESCE(SUM(score), 0) FROM day_scores"
            " WHERE result_id = ?1), max_score = (SELECT COALESCE(SUM(max_score), 0)"
            " FROM day_scores WHERE result_id = ?1), graded_at = ?2, path = ?3 WHERE id = ?1",
            (rid, doc["extra_data"].get("graded_at"), path.as_posix()),
        )
    return rid


class Measured(NamedTuple):
    """A stored day: where its grade was measured, to carry it over to a commit with the same
    fingerprint (or the previous commit's, in GitHub mode)."""

    commit: str  # the commit its tests ran on
    path: str  # results.json of the commit holding the row
    score: float
    max_score: float
    passed: int
    total: int
    fingerprint: str | None
    files: str | None


_MEASURED = (
    "COALESCE(d.measured_commit, r.commit_sha), r.path, d.score, d.max_score, d.passed, d.total,"
    " d.fingerprint, d.files FROM day_scores d JOIN results r ON r.id = d.result_id"
)


def measured(db: sqlite3.Connection, pair: str, day: str, fingerprint: str) -> Measured | None:
    """The pair's latest stored row of `day` with this fingerprint."""
    row = db.execute(
        f"SELECT {_MEASURED} WHERE d.pair = ? AND d.day = ? AND d.fingerprint = ?"
        " ORDER BY d.pushed_at DESC, d.result_id DESC LIMIT 1",
        (pair, day, fingerprint),
    ).fetchone()
    return Measured._make(row) if row else None


def _result_days(db: sqlite3.Connection, rid: int) -> dict[str, Measured]:
    rows = db.execute(f"SELECT d.day, {_MEASURED} WHERE d.result_id = ?", (rid,))
    return {day: Measured(*rest) for day, *rest in rows}


def commit_days(db: sqlite3.Connection, pair: str, commit: str) -> dict[str, Measured]:
    """Each stored day of the pair's commit (empty when it has no result)."""
    row = db.execute(
        "SELECT id FROM results WHERE pair = ? AND commit_sha = ?", (pair, commit)
    ).fetchone()
    return _result_days(db, row[0]) if row else {}


def latest_days(
    db: sqlite3.Connection, pair: str, commit: str, before: str | None = None
) -> dict[str, Measured]:
    """Each day of the pair's latest stored result other than `commit` (pushed before `before`,
    when given): what the previous graded push measured or carried."""
    earlier = " AND pushed_at < ?" if before else ""
    row = db.execute(
        f"SELECT id FROM results WHERE pair = ? AND commit_sha != ?{earlier}"
        " ORDER BY pushed_at DESC, id DESC LIMIT 1",
        (pair, commit, *([before] if before else [])),
    ).fetchone()
    return _result_days(db, row[0]) if row else {}


def graded_days(db: sqlite3.Connection, pair: str) -> set[str]:
    """Days the pair has any stored grade for."""
    return {r[0] for r in db.execute("SELECT DISTINCT day FROM day_scores WHERE pair = ?", (pair,))}


def add_result(db: sqlite3.Connection, doc: dict, path: Path) -> bool:
    """Store one results document (already written to `path`); False when that commit is stored."""
    with transaction(db):
        return _insert_result(db, doc, path)


def save_result(
    db: sqlite3.Connection, cohort_dir: Path, doc: dict, days: list[str] | None = None
) -> Path:
    """Write the commit's `results/<pair>/<commit>.json` (a temporary file renamed over it, so a
    reader never sees half of one), then store it: `days` of it, replacing the rows those days
    had (a re-grade), or with None the whole document unless its commit is stored already.
    Returns the file's path relative to `cohort_dir`."""
    pair, commit, _ = _facts(doc, Path("results.json"))
    rel = results_path(pair, commit)
    path = Path(cohort_dir) / rel
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    try:
        results_format.write(doc, tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise StoreError(f"{path}: cannot write the results ({e.strerror or e})") from None
    if days is None:
        add_result(db, doc, rel)
    else:
        store_days(db, doc, rel, days)
    return rel


@dataclass(frozen=True)
class Rebuilt:
    stored: int
    problems: list[str]


def rebuild(db: sqlite3.Connection, cohort_dir: Path) -> Rebuilt:
    """Refill results, day scores and failures from the results.json files on disk.

    Pushes and jobs are kept; a result with no job (a lost database) gets a done job and a push
    marked `rebuild`, so the dashboard and the runner agree on what is graded.
    """
    docs, problems = [], []
    for path in sorted((Path(cohort_dir) / RESULTS_DIR).glob("*/*.json")):
        try:
            doc = results_format.load(path)
        except ValueError as e:
            problems.append(str(e))
            continue
        extra = doc.get("extra_data", {})
        if not extra.get("pair") or not extra.get("commit"):
            problems.append(f"{path}: lacks extra_data.pair or extra_data.commit; skipped")
            continue
        docs.append((path.relative_to(cohort_dir), doc))
    with transaction(db):
        for table in ("failures", "day_scores", "results"):
            db.execute(f"DELETE FROM {table}")
        stored = sum(_insert_result(db, doc, rel) for rel, doc in docs)
        for _, doc in docs:
            extra = doc["extra_data"]
            pushed_at = extra.get("pushed_at") or extra.get("graded_at") or now_iso()
            ref = extra.get("ref") or "unknown"
            if db.execute(
                "SELECT 1 FROM jobs WHERE pair = ? AND commit_sha = ?",
                (extra["pair"], extra["commit"]),
            ).fetchone():
                continue
            db.execute(
                "INSERT INTO pushes (pair, ref, old_commit, new_commit, pushed_at, source)"
                " VALUES (?, ?, NULL, ?, ?, 'rebuild')",
                (extra["pair"], ref, extra["commit"], pushed_at),
            )
            db.execute(
                "INSERT INTO jobs (pair, commit_sha, ref, pushed_at, state, finished_at)"
                " VALUES (?, ?, ?, ?, 'done', ?)",
                (extra["pair"], extra["commit"], ref, pushed_at, extra.get("graded_at")),
            )
    return Rebuilt(stored, problems)


def counts(db: sqlite3.Connection) -> dict[str, int]:
    """How many pushes and results, and jobs in each state."""
    out = {"pushes": db.execute("SELECT COUNT(*) FROM pushes").fetchone()[0]}
    for state in ("queued", "running", "done", "failed"):
        out[f"jobs {state}"] = db.execute(
            "SELECT COUNT(*) FROM jobs WHERE state = ?", (state,)
        ).fetchone()[0]
    out["results"] = db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
    return out


class DayScore(NamedTuple):
    """One graded day of one push: a row of scores.csv (fields in its column order) and a point
    of the dashboard."""

    pair: str
    day: str
    score: float
    max_score: float
    passed: int
    total: int
    commit: str
    ref: str | None
    committed_at: str | None
    pushed_at: str
    graded_at: str | None
    path: str  # the results.json, relative to the cohort directory
    result_id: int
    measured_commit: str  # the commit the day's tests ran on (another one when carried over)
    carried_over: bool


def day_scores(db: sqlite3.Connection) -> list[DayScore]:
    """Every graded day of every push, by pair, day and push time."""
    rows = db.execute(
        "SELECT d.pair, d.day, d.score, d.max_score, d.passed, d.total, r.commit_sha, r.ref,"
        " r.committed_at, d.pushed_at, r.graded_at, r.path, d.result_id,"
        " COALESCE(d.measured_commit, r.commit_sha), d.carried_over"
        " FROM day_scores d JOIN results r ON r.id = d.result_id ORDER BY d.pair, d.day, d.pushed_at"
    )
    return [DayScore(*row[:-1], carried_over=bool(row[-1])) for row in rows]


def failures(db: sqlite3.Connection, result_ids: list[int], day: str) -> dict[int, dict[str, str]]:
    """Failing tests of `day` in each of `result_ids`: result id -> {test: kind}."""
    found: dict[int, dict[str, str]] = {rid: {} for rid in result_ids}
    marks = ",".join("?" * len(result_ids))
    for rid, test, kind in db.execute(
        f"SELECT result_id, test, kind FROM failures WHERE day = ? AND result_id IN ({marks})",
        (day, *result_ids),
    ):
        found[rid][test] = kind
    return found
