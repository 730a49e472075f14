"""cohort.db: migrations, storing each commit once, and rebuilding from the results files."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from cohort import store
from cohort.cli import main


def doc(
    pair: str,
    commit: str,
    pushed_at: str,
    days: dict[str, tuple[float, float]],
    failing: list[tuple[str, str, str]] = (),
    **extra,
) -> dict:
    """A results document as the runner writes it: per-day scores and the failing tests
    (day, test name, output)."""
    tests = [
        {
            "name": name,
            "score": 0,
            "max_score": 1,
            "status": "failed",
            "output": output,
            "tags": [day],
        }
        for day, name, output in failing
    ]
    return {
        "score": sum(s for s, _ in days.values()),
        "max_score": sum(m for _, m in days.values()),
        "tests": tests,
        "leaderboard": [],
        "extra_data": {
            "pair": pair,
            "commit": commit,
            "pushed_at": pushed_at,
            "ref": "refs/heads/main",
            "committed_at": pushed_at,
            "graded_at": pushed_at,
            "days": {
                d: {"score": s, "max_score": m, "passed": 0, "total": 1}
                for d, (s, m) in days.items()
            },
            **extra,
        },
    }


def keep(cohort_dir: Path, document: dict) -> Path:
    """Write the document where the runner would and store it."""
    db = store.connect(cohort_dir)
    rel = store.save_result(db, cohort_dir, document)
    db.close()
    return rel


def test_migrations_are_recorded_and_applied_once(tmp_path):
    db = store.connect(tmp_path)
    names = [r[0] for r in db.execute("SELECT name FROM migrations")]
    assert names == [name for name, _ in store.MIGRATIONS]
    assert store.migrate(db) == []
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"pushes", "jobs", "results", "day_scores", "failures", "migrations"} <= tables


def test_a_commit_pushed_twice_is_queued_and_stored_once(tmp_path):
    db = store.connect(tmp_path)
    first = store.record_push(db, "alpha", "refs/heads/main", None, "c1")
    again = store.record_push(db, "alpha", "refs/heads/other", "c0", "c1")
    assert (
        first == again and store.counts(db)["pushes"] == 2 and store.counts(db)["jobs queued"] == 1
    )
    document = doc(
        "alpha",
        "c1",
        "2026-01-05T10:00:00Z",
        {"w0_prep": (2, 3)},
        [
            ("w0_prep", "t::a", "AssertionError: off by 1"),
            ("w0_prep", "t::b", "NotImplementedError: b"),
        ],
    )
    assert store.add_result(db, document, Path("results/alpha/c1.json"))
    assert not store.add_result(db, document, Path("results/alpha/c1.json"))
    assert store.counts(db)["results"] == 1
    rows = store.day_scores(db)
    assert [(r.pair, r.day, r.score, r.max_score, r.commit) for r in rows] == [
        ("alpha", "w0_prep", 2, 3, "c1")
    ]
    assert store.failures(db, [rows[0].result_id], "w0_prep") == {
        rows[0].result_id: {"t::a": "fail", "t::b": "todo"}
    }


def test_rebuild_refills_results_from_files_and_keeps_pushes(tmp_path, capsys):
    store.record_push(store.connect(tmp_path), "alpha", "refs/heads/main", None, "c1")
    keep(tmp_path, doc("alpha", "c1", "2026-01-05T10:00:00Z", {"w0_prep": (3, 3)}))
    keep(
        tmp_path,
        doc("beta", "c2", "2026-01-05T11:00:00Z", {"w0_prep": (1, 3)}, [("w0_prep", "t::a", "x")]),
    )
    (tmp_path / "results" / "beta" / "broken.json").write_text("{not json")
    before = store.day_scores(store.connect(tmp_path))
    (tmp_path / store.DB_NAME).unlink()
    for leftover in tmp_path.glob(f"{store.DB_NAME}-*"):
        leftover.unlink()
    assert main(["store", "rebuild", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "skipped: " in out and "broken.json" in out and "rebuilt: 2 results" in out
    db = store.connect(tmp_path)
    assert store.day_scores(db) == before
    assert db.execute("SELECT pair, new_commit, source FROM pushes ORDER BY pair").fetchall() == [
        ("alpha", "c1", "rebuild"),
        ("beta", "c2", "rebuild"),
    ]
    assert store.counts(db)["jobs done"] == 2
    # rebuilding a database that has its pushes keeps them as they are
    assert main(["store", "rebuild", "--dir", str(tmp_path)]) == 0
    assert store.counts(store.connect(tmp_path))["pushes"] == 2


def test_the_database_is_plain_sqlite_with_wal(tmp_path):
    store.connect(tmp_path).close()
    with sqlite3.connect(tmp_path / store.DB_NAME) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_a_store_from_before_per_day_rows_is_migrated_with_its_results(tmp_path, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(store, "MIGRATIONS", store.MIGRATIONS[:1])
        db = store.connect(tmp_path)
        db.execute(
            "INSERT INTO jobs (pair, commit_sha, ref, pushed_at) VALUES ('alpha', 'c1', 'm', 't')"
        )
        db.execute(  # rows as the code before per-day rows wrote them
            "INSERT INTO results (pair, commit_sha, pushed_at, score, max_score, path)"
            " VALUES ('alpha', 'c1', 't', 2, 3, 'results/alpha/c1.json')"
        )
        db.execute("INSERT INTO day_scores VALUES (1, 'alpha', 'w0_prep', 't', 2, 3, 0, 1)")
        db.close()
    db = store.connect(tmp_path)
    assert [r[0] for r in db.execute("SELECT name FROM migrations")][-1] == "0002_per_day_results"
    [row] = store.day_scores(db)
    assert (row.score, row.commit, row.measured_commit, row.carried_over) == (2, "c1", "c1", False)
    assert db.execute("SELECT state, priority, force_days FROM jobs").fetchall() == [
        ("queued", 1, None)
    ]


def test_storing_a_day_again_replaces_its_row_and_updates_the_total(tmp_path):
    db = store.connect(tmp_path)
    first = doc(
        "alpha",
        "c1",
        "2026-01-05T10:00:00Z",
        {"w0_prep": (1, 3), "w1d1_raytracing": (2, 2)},
        [("w0_prep", "t::a", "AssertionError")],
    )
    rid = store.store_days(db, first, Path("results/alpha/c1.json"), ["w0_prep", "w1d1_raytracing"])
    again = doc("alpha", "c1", "2026-01-05T10:00:00Z", {"w0_prep": (3, 3)})
    assert store.store_days(db, again, Path("results/alpha/c1.json"), ["w0_prep"]) == rid
    assert {(r.day, r.score) for r in store.day_scores(db)} == {
        ("w0_prep", 3),
        ("w1d1_raytracing", 2),
    }
    assert db.execute("SELECT score, max_score FROM results").fetchone() == (5, 5)
    assert store.failures(db, [rid], "w0_prep") == {rid: {}}


def test_save_result_writes_the_file_atomically_then_the_rows(tmp_path, monkeypatch):
    db = store.connect(tmp_path)
    first = doc("alpha", "c1", "2026-01-05T10:00:00.000000Z", {"w0_prep": (1, 3)})
    rel = store.save_result(db, tmp_path, first)
    assert rel == store.results_path("alpha", "c1") == Path("results/alpha/c1.json")
    assert json.loads((tmp_path / rel).read_text()) == first
    assert [p.name for p in (tmp_path / rel).parent.iterdir()] == ["c1.json"]  # no temp file left
    [row] = store.day_scores(db)
    assert (row.pair, row.commit, row.day, row.score, row.path) == (
        "alpha",
        "c1",
        "w0_prep",
        1,
        rel.as_posix(),
    )

    # saved again whole: the file is the new one, the stored commit keeps its rows
    second = doc("alpha", "c1", "2026-01-05T10:00:00.000000Z", {"w0_prep": (2, 3)})
    assert store.save_result(db, tmp_path, second) == rel
    assert json.loads((tmp_path / rel).read_text()) == second
    assert [(r.score, r.result_id) for r in store.day_scores(db)] == [(1, row.result_id)]
    # saved again for a day (a re-grade): that day's row is replaced
    store.save_result(db, tmp_path, second, ["w0_prep"])
    assert [(r.score, r.result_id) for r in store.day_scores(db)] == [(2, row.result_id)]

    # a write that fails leaves the file as it was, no temp file and no new row
    def refuse(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store.os, "replace", refuse)
    third = doc("alpha", "c1", "2026-01-05T10:00:00.000000Z", {"w0_prep": (3, 3)})
    with pytest.raises(store.StoreError, match="c1.json: cannot write the results"):
        store.save_result(db, tmp_path, third, ["w0_prep"])
    assert json.loads((tmp_path / rel).read_text()) == second
    assert [p.name for p in (tmp_path / rel).parent.iterdir()] == ["c1.json"]
    assert [r.score for r in store.day_scores(db)] == [2]
    with pytest.raises(store.StoreError, match="lacks extra_data.pair"):
        store.save_result(db, tmp_path, {**first, "extra_data": {}})
