"""Points come from the trusted manifest: a pair whose module does not import is graded out of the
same max_score as the solutions, per day and in total."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import defaultdict

import pytest

from cohort import manifest
from cohort.cli import main
from cohort.grading import sandbox
from tests.conftest import ROOT

TESTS = ROOT / "template" / "tests"
BROKEN = {  # day -> a last line that breaks its module, and the error that says so
    "w1d5_autograd": ("def backward(:\n", "SyntaxError"),
    "w0_prep": ("import a_module_nobody_installed\n", "a_module_nobody_installed"),
}


def grade_cli(repo, day: str | None, out) -> dict:
    args = ["grade", str(repo), "--tests", str(TESTS), "--out", str(out), "-q"]
    assert main([*args, *(["--day", day] if day else [])]) == 0
    return json.loads(out.read_text())


def manifest_points() -> dict[str, float]:
    found = manifest.load(TESTS)
    assert found is not None, "template/tests/manifest.json is missing: run `cohort check manifest`"
    points: dict[str, float] = defaultdict(float)
    for entry in found.tests.values():
        points[entry.day] += entry.points
    return points


@pytest.mark.slow
@pytest.mark.parametrize("day", BROKEN)
def test_a_day_whose_module_does_not_import_is_graded_out_of_the_solutions_max_score(day, tmp_path):
    pair = tmp_path / "pair"
    shutil.copytree(ROOT / "solutions" / "mlab", pair / "mlab")
    module, error = pair / "mlab" / f"{day}.py", BROKEN[day]
    module.write_text(module.read_text() + error[0])
    solutions = sandbox.grade(ROOT / "solutions", TESTS, day)
    res = grade_cli(pair, day, tmp_path / "results.json")
    assert res["max_score"] == solutions["max_score"] == manifest_points()[day] > 0
    ours, theirs = res["extra_data"]["days"][day], solutions["extra_data"]["days"][day]
    assert ours["max_score"] == theirs["max_score"] and ours["score"] == 0
    assert len(res["tests"]) == len(solutions["tests"])
    assert all(error[1] in t["output"] for t in res["tests"] if t["status"] == "failed")


@pytest.mark.slow
def test_a_pair_with_no_module_that_imports_is_graded_out_of_every_days_points(tmp_path):
    pair = tmp_path / "pair"
    (pair / "mlab").mkdir(parents=True)
    (pair / "mlab" / "__init__.py").write_text("")
    (pair / "mlab" / "w1d5_autograd.py").write_text(BROKEN["w1d5_autograd"][0])
    res = grade_cli(pair, None, tmp_path / "results.json")
    points = manifest_points()
    assert res["score"] == 0 and res["max_score"] == sum(points.values())
    assert {d: v["max_score"] for d, v in res["extra_data"]["days"].items()} == points


@pytest.mark.slow
def test_a_pairs_own_run_counts_a_day_that_does_not_import_from_the_manifest(tmp_path):
    """`pytest` in the pair's checkout (no `cohort grade`): the same points as the grade."""
    pair = tmp_path / "pair"
    shutil.copytree(ROOT / "template", pair, ignore=shutil.ignore_patterns("__pycache__"))
    module = pair / "mlab" / "w1d5_autograd.py"
    module.write_text(module.read_text() + BROKEN["w1d5_autograd"][0])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(pair), str(ROOT)])}
    env = {k: v for k, v in env.items() if not k.startswith(("COHORT_", "GITHUB_"))}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "tests/test_w1d5_autograd.py",
            "--results",
            "r.json",
        ],
        cwd=pair,
        env=env,
        capture_output=True,
        timeout=600,
    )
    res = json.loads((pair / "r.json").read_text())
    assert res["max_score"] == manifest_points()["w1d5_autograd"] > 0 and res["score"] == 0
    assert all("SyntaxError" in t["output"] for t in res["tests"])
