"""The runner: every push graded with the trusted tests and stored once, even when workers die."""

from __future__ import annotations

import csv
import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cohort import roster, runner, store
from cohort.cli import main
from cohort.runner import queue
from tests.test_forge_local import SOLUTION, STUB, git, new_cohort, push, tiny_organizer

PASSING_TESTS = "def test_fine():\n    assert True\n"


@pytest.fixture(scope="session")
def organizer(tmp_path_factory) -> Path:
    return tiny_organizer(tmp_path_factory.mktemp("organizer"))


def jobs(cohort: roster.Roster) -> list[tuple]:
    with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
        return db.execute(
            "SELECT pair, commit_sha, state, attempts FROM jobs ORDER BY id"
        ).fetchall()


def scores(cohort: roster.Roster) -> dict[str, float]:
    with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
        return dict(db.execute("SELECT commit_sha, score FROM results"))


def test_new_user_flow_from_cohort_new_to_scores_csv(tmp_path, organizer, capfd):
    d = tmp_path / "spring"
    assert main(["new", str(d), "--repo", str(organizer)]) == 0
    assert main(["generate", "--dir", str(d)]) == 0
    work = tmp_path / "pair-01"
    git("clone", "-q", str(d / "forge" / "pair-01.git"), str(work), cwd=tmp_path)
    (work / "mlab" / "w0_prep.py").write_text(SOLUTION)
    git("commit", "-qam", "Solve w0_prep", cwd=work)
    assert "queued for grading" in git("push", "origin", "main", cwd=work)
    commit = git("rev-parse", "HEAD", cwd=work).strip()
    assert main(["runner", "--dir", str(d), "--once"]) == 0
    assert main(["summary", "--dir", str(d)]) == 0
    assert f"graded pair-01 {commit[:10]}: 3/3" in capfd.readouterr().out
    with (d / "site" / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    got = [
        (r["pair"], r["day"], float(r["score"]), float(r["max_score"]), r["commit"]) for r in rows
    ]
    assert got == [("pair-01", "w0_prep", 3, 3, commit)]
    assert rows[0]["committed_at"] and rows[0]["graded_at"]
    assert (d / "results" / "pair-01" / f"{commit}.json").exists()


def test_many_pushes_at_once_are_all_graded_once_with_trusted_tests(tmp_path, organizer):
    pairs = ["a", "b", "c", "d"]
    cohort = new_cohort(tmp_path, organizer, pairs)
    work = {p: tmp_path / "work" / p for p in pairs}
    work["a"].parent.mkdir()
    code = {
        "a": {"mlab/w0_prep.py": SOLUTION},
        "b": {"mlab/w0_prep.py": STUB},
        "c": {"mlab/w0_prep.py": SOLUTION.replace("return a * b", "return a + b")},
        "d": {"tests/test_w0_prep.py": PASSING_TESTS},
    }
    commits: dict[str, list[str]] = {}

    def work_on(pair: str) -> None:
        commits[pair] = [
            push(cohort, pair, code[pair], work[pair]),
            push(cohort, pair, {"notes.md": "x"}, work[pair]),
        ]

    threads = [threading.Thread(target=work_on, args=(p,)) for p in pairs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    git(
        "push", "-q", "origin", "HEAD:other", cwd=work["a"]
    )  # the same commit again, on another branch
    assert runner.run(cohort, workers=2, once=True, progress=lambda _: None) == 0
    assert len(jobs(cohort)) == 8 and {j[2] for j in jobs(cohort)} == {"done"}
    expected = {"a": 3, "b": 0, "c": 1, "d": 0}  # d edited its tests: graded with the trusted ones
    assert scores(cohort) == {c: expected[p] for p in pairs for c in commits[p]}
    document = json.loads((cohort.dir / "results" / "d" / f"{commits['d'][0]}.json").read_text())
    assert document["extra_data"]["edited_tests"] == ["test_w0_prep.py"]
    assert (
        "+    return a + b"
        in json.loads((cohort.dir / "results" / "a" / f"{commits['a'][0]}.json").read_text())[
            "extra_data"
        ]["diffs"]["w0_prep"]
    )


def _wait_for_running_job(cohort: roster.Roster, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
            row = db.execute("SELECT worker FROM jobs WHERE state = 'running'").fetchone()
        if row and row[0]:
            return row[0]
        time.sleep(0.1)
    raise AssertionError("no job started")


@pytest.mark.slow
def test_a_runner_killed_mid_job_regrades_it_after_a_restart_and_stores_it_once(
    tmp_path, organizer
):
    cohort = new_cohort(tmp_path, organizer, ["slow"])
    slow = "import time\ntime.sleep(3)\n" + SOLUTION
    commit = push(cohort, "slow", {"mlab/w0_prep.py": slow}, tmp_path / "work")
    env = {
        **os.environ,
        "TMPDIR": str(tmp_path),
    }  # where the orphaned grader leaves its scratch files
    cmd = [sys.executable, "-m", "cohort", "runner", "--dir", str(cohort.dir), "--once"]
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    _wait_for_running_job(cohort)
    os.killpg(first.pid, signal.SIGKILL)  # the runner and its worker, mid-job
    first.wait()
    assert jobs(cohort) == [("slow", commit, "running", 1)]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    assert jobs(cohort) == [("slow", commit, "done", 2)]
    assert scores(cohort) == {commit: 3}


@pytest.mark.slow
def test_a_worker_killed_mid_job_is_replaced_and_the_job_graded(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["slow"])
    commit = push(
        cohort,
        "slow",
        {"mlab/w0_prep.py": "import time\ntime.sleep(3)\n" + SOLUTION},
        tmp_path / "work",
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    supervisor = subprocess.Popen(
        [sys.executable, "-m", "cohort", "runner", "--dir", str(cohort.dir), "--once"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    worker = _wait_for_running_job(cohort)
    os.kill(int(worker.rpartition(":")[2]), signal.SIGKILL)
    out, _ = supervisor.communicate(timeout=120)
    assert supervisor.returncode == 0 and "worker 1 exited with -9; starting another" in out
    assert jobs(cohort) == [("slow", commit, "done", 2)]
    assert scores(cohort) == {commit: 3}


def test_leases_expire_and_a_job_that_keeps_killing_workers_fails(tmp_path):
    db = store.connect(tmp_path)
    store.record_push(db, "alpha", "refs/heads/main", None, "c1")
    elsewhere = "some-other-host:1"
    job = queue.claim(db, elsewhere, lease_s=60)
    assert job.attempts == 1 and queue.claim(db, "me:2", 60) is None  # a live lease is respected
    db.execute("UPDATE jobs SET lease_until = 0")  # the other worker went silent
    again = queue.claim(db, "me:2", 60)
    assert again.id == job.id and again.attempts == 2
    assert not queue.renew(db, job, elsewhere, 60)
    queue.finish(db, job, elsewhere)  # a late finish by the old holder changes nothing
    assert db.execute("SELECT state, worker FROM jobs").fetchone() == ("running", "me:2")
    db.execute("UPDATE jobs SET lease_until = 0")
    assert queue.claim(db, "me:3", 60).attempts == 3
    db.execute("UPDATE jobs SET lease_until = 0")
    assert queue.claim(db, "me:4", 60) is None
    state, error = db.execute("SELECT state, error FROM jobs").fetchone()
    assert state == "failed" and "gave up after 3 attempts" in error


def test_sweep_queues_pushes_the_hook_missed(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["alpha"])
    (cohort.dir / "forge" / "alpha.git" / "hooks" / "post-receive").unlink()
    commit = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, tmp_path / "work")
    assert runner.sweep(cohort) == 1 and runner.sweep(cohort) == 0
    with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
        assert db.execute("SELECT new_commit, source FROM pushes").fetchall() == [(commit, "sweep")]


@pytest.mark.bench
@pytest.mark.slow
def test_bench_runner_throughput_2_workers_vs_1(tmp_path, organizer):
    """20 queued pushes graded by 1 worker, then the same 20 by 2 workers (tiny template, so the
    figures are the runner's overheads: process start, checkout, pytest start, store)."""
    pairs = [f"p{i:02d}" for i in range(20)]
    seconds = {}
    for workers in (1, 2):
        cohort = new_cohort(tmp_path / f"w{workers}", organizer, pairs)
        for pair in pairs:
            push(cohort, pair, {"mlab/w0_prep.py": SOLUTION}, tmp_path / f"w{workers}" / pair)
        started = time.perf_counter()
        assert runner.run(cohort, workers=workers, once=True, progress=lambda _: None) == 0
        seconds[workers] = time.perf_counter() - started
        assert len(scores(cohort)) == 20 and set(scores(cohort).values()) == {3}
    print(
        f"\nbench runner: 20 pushes, 1 worker {seconds[1]:.1f} s ({20 / seconds[1]:.2f}/s), "
        f"2 workers {seconds[2]:.1f} s ({20 / seconds[2]:.2f}/s): speedup {seconds[1] / seconds[2]:.2f}x "
        f"on {os.cpu_count()} cores"
    )
