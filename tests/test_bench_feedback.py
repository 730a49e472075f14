"""Benchmarks of feedback time (run with `nox -s bench`; they print ratios measured side by side
and never fail on timing).

- Push-to-stored latency of a push changing only w0_prep, with the runner already running,
  against `cohort grade --day w0_prep` of the same checkout. Target: at most 1.15x + 5 s.
- 20 queued pushes graded by 2 workers against 1 worker. Target: at least 1.8x.
"""

from __future__ import annotations

import os
import sqlite3
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cohort import forge, runner, store
from cohort.curriculum import available_days
from cohort.demo import fast_days
from tests.conftest import ROOT
from tests.test_forge_local import SOLUTION, git, new_cohort, push, tiny_organizer, write_roster


def _stored(db_path: Path, commit: str, day: str, timeout: float = 600) -> float:
    """Wait until the day's own grade of `commit` is in the store; returns when (perf_counter)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with sqlite3.connect(db_path) as db:
            row = db.execute(
                "SELECT 1 FROM day_scores d JOIN results r ON r.id = d.result_id"
                " WHERE r.commit_sha = ? AND d.day = ? AND d.carried_over = 0",
                (commit, day),
            ).fetchone()
        if row:
            return time.perf_counter()
        time.sleep(0.05)
    raise AssertionError(f"{day} of {commit[:10]} never stored")


@pytest.mark.bench
@pytest.mark.slow
def test_bench_push_to_stored_latency_vs_cohort_grade_day(tmp_path):
    days = fast_days(available_days(ROOT / "template" / "tests"))
    cohort = write_roster(tmp_path / "cohort", ROOT, ["pair"], tuple(days))
    forge.generate(cohort, progress=lambda _: None)
    work = tmp_path / "work"
    git("clone", "-q", str(cohort.dir / "forge" / "pair.git"), str(work), cwd=tmp_path)
    subprocess.run(["cp", "-r", f"{ROOT}/solutions/mlab/.", str(work / "mlab")], check=True)
    git("add", "-A", cwd=work)
    git("commit", "-qm", "solutions", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work).strip()
    cmd = [sys.executable, "-m", "cohort", "runner", "--dir", str(cohort.dir)]
    worker = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rows = []
    try:
        for day in days:
            _stored(cohort.dir / store.DB_NAME, first, day)  # the runner is warm: all graded
        for i in range(3):
            w0 = work / "mlab" / "w0_prep.py"
            w0.write_text(w0.read_text() + f"\n# edit {i}\n")
            git("commit", "-qam", f"w0_prep edit {i}", cwd=work)
            started = time.perf_counter()
            git("push", "-q", "origin", "HEAD:main", cwd=work)
            commit = git("rev-parse", "HEAD", cwd=work).strip()
            latency = _stored(cohort.dir / store.DB_NAME, commit, "w0_prep") - started
            grade = [sys.executable, "-m", "cohort", "grade", str(work), "--day", "w0_prep"]
            grade += ["--tests", str(cohort.dir / "template" / "tests"), "-q"]
            grade += ["--out", str(tmp_path / "results.json")]
            started = time.perf_counter()
            subprocess.run(grade, check=True, capture_output=True)
            rows.append((latency, time.perf_counter() - started))
    finally:
        worker.terminate()
        worker.wait()
    latency, graded = (statistics.median(r[i] for r in rows) for i in (0, 1))
    target = 1.15 * graded + 5
    print(
        f"\nbench feedback: push changing w0_prep -> stored in {latency:.2f} s; cohort grade "
        f"--day w0_prep {graded:.2f} s: ratio {latency / graded:.2f}x, target {target:.2f} s "
        f"(1.15x + 5 s): {'met' if latency <= target else 'missed'} (days: {', '.join(days)})"
    )


@pytest.mark.bench
@pytest.mark.slow
def test_bench_20_pushes_2_workers_vs_1(tmp_path):
    """20 queued pushes on a tiny template, graded with 1 and with 2 workers, twice each in
    turn (the figures are the runner's own costs: process start, checkout, pytest, store)."""
    organizer = tiny_organizer(tmp_path / "organizer")
    pairs = [f"p{i:02d}" for i in range(20)]
    seconds: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(2):
        for workers in (1, 2):
            where = tmp_path / f"r{round_}w{workers}"
            cohort = new_cohort(where, organizer, pairs)
            for pair in pairs:
                push(cohort, pair, {"mlab/w0_prep.py": SOLUTION}, where / pair)
            started = time.perf_counter()
            assert runner.run(cohort, workers=workers, once=True, progress=lambda _: None) == 0
            seconds[workers].append(time.perf_counter() - started)
            with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
                assert db.execute("SELECT COUNT(*), MIN(score) FROM results").fetchone() == (20, 3)
    one, two = (statistics.median(seconds[w]) for w in (1, 2))
    print(
        f"\nbench throughput: 20 pushes, 1 worker {one:.1f} s, 2 workers {two:.1f} s: "
        f"{one / two:.2f}x (target 1.8x) on {os.cpu_count()} cores"
    )
