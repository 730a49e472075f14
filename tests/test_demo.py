"""`cohort demo`: a simulated cohort end to end, graded on w0_prep only to stay fast."""

from __future__ import annotations

import csv
from collections import Counter, defaultdict

import pytest

from cohort import build, demo
from cohort.cli import main


@pytest.mark.slow
def test_demo_builds_grades_and_summarizes_a_cohort(tmp_path, monkeypatch, capfd):
    monkeypatch.setattr(demo, "FAST_DAYS", 1)  # w0_prep
    monkeypatch.setattr(demo, "TEST_TIMEOUT_S", 15)  # one hanging test case costs this
    d = tmp_path / "demo"
    assert main(["demo", "--dir", str(d)]) == 0
    out = capfd.readouterr().out
    for step in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]"):
        assert step in out
    assert "pushes graded" in out  # never silent for long while grading
    assert f"open {d / 'site' / 'index.html'}" in out
    for path in (
        "cohort.toml",
        "cohort.db",
        "site/index.html",
        "site/scores.csv",
        "site/summary.md",
    ):
        assert (d / path).is_file(), path
    assert len(list((d / "forge").glob("pair-*.git"))) == 5
    with (d / "site" / "scores.csv").open() as f:
        rows = list(csv.DictReader(f))
    by_pair = defaultdict(dict)
    for r in rows:
        by_pair[r["pair"].split("-", 2)[2]][r["day"]] = (float(r["score"]), float(r["max_score"]))
    assert set(by_pair) == set(demo.BEHAVIOURS) and all(
        list(days) == ["w0_prep"] for days in by_pair.values()
    )
    score, top = by_pair["solutions"]["w0_prep"]
    assert score == top > 0
    assert by_pair["stubs"]["w0_prep"][0] == 0
    assert by_pair["edited-tests"]["w0_prep"][0] <= by_pair["stubs"]["w0_prep"][0]
    assert 0 < by_pair["partial"]["w0_prep"][0] < top
    assert 0 < by_pair["hangs"]["w0_prep"][0] < top
    hang_pack = (d / "site" / "pairs" / "pair-04-hangs" / "w0_prep.html").read_text()
    assert "timed out after" in hang_pack
    edited_pack = (d / "site" / "pairs" / "pair-05-edited-tests" / "w0_prep.html").read_text()
    assert "differs from the trusted tests" in edited_pack
    stubs_pack = (d / "site" / "pairs" / "pair-02-stubs" / "w0_prep.html").read_text()
    assert "None in the code the pair changed." in stubs_pack  # no flag from the template's files
    assert "Failing tests (0 of" in stubs_pack and "Not started (" in stubs_pack
    assert (d / "site" / "exercises.html").is_file()


def test_demo_refuses_a_folder_in_use(tmp_path, capsys):
    (tmp_path / "mine.txt").write_text("keep me")
    assert main(["demo", "--dir", str(tmp_path)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_partial_and_hanging_code_come_from_the_solution_markers():
    solution = (
        "def f(x):\n    # BEGIN SOLUTION\n    return x\n    # END SOLUTION\n\n\n"
        "def g(x):\n    # BEGIN SOLUTION\n    return 2 * x\n    # END SOLUTION\n"
    )
    half = demo.rework(solution, "m.py", "w0_prep", keep=lambda i: i == 0)
    assert "return x" in half and 'raise NotImplementedError("g: see docs/w0_prep.md#g")' in half
    hang = demo.rework(solution, "m.py", "w0_prep", keep=lambda i: True, hang=1)
    assert "return x" in hang and "while True: pass" in hang and "2 * x" not in hang
    reached = Counter({"mlab/m.py:f": 3, "mlab/m.py:g": 2})  # tests reaching each first
    assert demo.least_tested(solution, "mlab/m.py", reached) == 1
    assert demo.least_tested(solution, "mlab/m.py", Counter({"mlab/m.py:f": 1})) == 0


def test_the_hanging_region_is_counted_from_the_snapshots_manifest(root):
    reached = demo.reached_first(root / "template" / "tests")
    solution = (root / "solutions" / "mlab" / "w0_prep.py").read_text()
    hang = demo.least_tested(solution, "mlab/w0_prep.py", reached)
    names = [
        f"mlab/w0_prep.py:{build.exercise_name(solution.splitlines(), i, m['indent'])}"
        for i, line in enumerate(solution.splitlines())
        if (m := build.BEGIN.match(line))
    ]
    assert reached[names[hang]] == min(reached[n] for n in names if reached[n]) > 0


def test_grading_progress_says_how_far_and_how_long():
    counts = {"jobs done": 2, "jobs failed": 1, "jobs running": 2, "jobs queued": 0}
    line = demo.grading_progress(counts, 5, 90.0)
    assert "3 of 5 pushes graded, 2 grading; 90 s so far, about 60 s left" in line
    assert "left" not in demo.grading_progress(
        dict(counts, **{"jobs done": 0, "jobs failed": 0}), 5, 9
    )
