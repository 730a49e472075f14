"""Benchmark: the overhead of `cohort grade` over plain pytest on the same tests (run with
`nox -s bench`; it prints the ratio and never fails on timing). Target: at most 1.15x + 2 s.

Two days stand for the rest: w0_prep (many tiny tests: per-test overhead shows) and
w1d5_autograd (122 tests, ~10 s of work)."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

import pytest

from cohort.grading import sandbox, workspace
from tests.conftest import ROOT


@pytest.mark.bench
@pytest.mark.slow  # three plain runs and three graded runs of a day
@pytest.mark.parametrize("day", ["w0_prep", "w1d5_autograd"])
def test_grade_overhead_vs_plain_pytest(tmp_path, day):
    ws = tmp_path / "plain"
    ws.mkdir()
    shutil.copytree(ROOT / "solutions" / "mlab", ws / "mlab")
    shutil.copytree(ROOT / "template" / "tests", ws / "tests")
    (ws / "pytest.ini").write_text(workspace.PYTEST_INI)
    env = {**os.environ, "PYTHONPATH": str(ws)}
    plain_cmd = [sys.executable, "-m", "pytest", "-q", f"tests/test_{day}.py"]
    rows = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(plain_cmd, cwd=ws, env=env, capture_output=True, check=True)
        plain = time.perf_counter() - start
        start = time.perf_counter()
        res = sandbox.grade(ROOT / "solutions", ROOT / "template" / "tests", day)
        graded = time.perf_counter() - start
        assert res["score"] == res["max_score"] > 0
        rows.append((plain, graded))
    plain, graded = (statistics.median(r[i] for r in rows) for i in (0, 1))
    target = 1.15 * plain + 2
    print(
        f"\n{day}: plain pytest {plain:.2f} s, cohort grade {graded:.2f} s: "
        f"ratio {graded / plain:.2f}x, target {target:.2f} s (1.15x + 2 s): "
        f"{'met' if graded <= target else 'missed'}"
    )
