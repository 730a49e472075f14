"""Benchmark: the overhead of `cohort grade` over plain pytest on the same tests (run with
`nox -s bench`; it prints the ratio and never fails on timing). Target: at most 1.15x + 2 s."""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import time

import pytest

from cohort.grading import sandbox
from tests.conftest import ROOT


@pytest.mark.bench
def test_grade_overhead_vs_plain_pytest(tmp_path):
    ws = tmp_path / "plain"
    ws.mkdir()
    shutil.copytree(ROOT / "solutions" / "mlab", ws / "mlab")
    shutil.copytree(ROOT / "template" / "tests", ws / "tests")
    (ws / "pytest.ini").write_text(sandbox.PYTEST_INI)
    env = {**os.environ, "PYTHONPATH": str(ws)}
    rows = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "tests"],
            cwd=ws,
            env=env,
            capture_output=True,
            check=True,
        )
        plain = time.perf_counter() - start
        start = time.perf_counter()
        res = sandbox.grade(ROOT / "solutions", ROOT / "template" / "tests")
        graded = time.perf_counter() - start
        assert res["score"] == res["max_score"]
        rows.append((plain, graded))
    plain, graded = (statistics.median(r[i] for r in rows) for i in (0, 1))
    print(
        f"\nplain pytest {plain:.2f} s, cohort grade {graded:.2f} s: ratio {graded / plain:.2f}x, "
        f"target {1.15 * plain + 2:.2f} s (1.15x + 2 s): {'met' if graded <= 1.15 * plain + 2 else 'missed'}"
    )
