"""How results are shown: tables, Markdown, GitHub workflow commands."""

from __future__ import annotations

from cohort.grading import feedback, results
from cohort.grading.outcomes import Benchmark, Item, Outcome


def sample() -> dict:
    items = [
        Item("tests/test_d.py::test_a", "d", 2, [], "tests/test_d.py", 10),
        Item("tests/test_d.py::test_b[x,y]", "d", 3, ["slow"], "tests/test_d.py", 20),
        Item("tests/test_e.py::test_c", "e", 1, ["gpu"], "tests/test_e.py", 5),
    ]
    outcomes = {
        "tests/test_d.py::test_a": Outcome("tests/test_d.py::test_a", "passed"),
        "tests/test_d.py::test_b[x,y]": Outcome(
            "tests/test_d.py::test_b[x,y]", "failed", "50% off: a|b\nline 2"
        ),
        "tests/test_e.py::test_c": Outcome(
            "tests/test_e.py::test_c", "skipped", "needs a CUDA GPU"
        ),
    }
    bench = [
        Benchmark("tests/test_e.py::test_c", "add", "1024", 1.0, 2.0),
        Benchmark("x", "add", "4096", 2.0, 2.0),
    ]
    return results.build(items, outcomes, bench, {"pair": "p"})


def test_scores_skips_and_benchmarks():
    res = sample()
    assert (res["score"], res["max_score"]) == (2, 5)
    assert res["extra_data"]["days"]["d"] == {"score": 2, "max_score": 5, "passed": 1, "total": 2}
    assert res["extra_data"]["days"]["e"]["total"] == 0
    assert abs(res["extra_data"]["benchmark_geomean_speedup"] - 2**0.5) < 1e-9
    assert res["leaderboard"][0] == {"name": "add 1024 speedup", "value": 2.0, "order": "desc"}


def test_missing_outcome_counts_as_failed():
    item = Item("t::x", "d", 4)
    res = results.build([item], {}, missing_reason="the run was killed")
    assert (
        res["tests"][0]["status"] == "failed" and res["tests"][0]["output"] == "the run was killed"
    )
    assert (res["score"], res["max_score"]) == (0, 4)


def test_workflow_commands_escape_data_and_properties():
    lines = feedback.workflow_commands(sample())
    assert lines[0] == (
        "::error file=tests/test_d.py,line=20,title=tests/test_d.py%3A%3Atest_b[x%2Cy]::50%25 off: a|b%0Aline 2"
    )
    assert lines[-1] == "::notice title=Points::Points 2/5"


def test_markdown_and_terminal_tables():
    md = feedback.markdown_summary(sample())
    assert "| d | 1/2 | 2/5 |" in md and "a\\|b" in md and "| add | 1024 | 2.00x |" in md
    table = feedback.terminal_table(sample())
    assert "failed (1):" in table and "test_b[x,y]: 50% off" in table


def test_not_started_exercises_take_a_line_each_and_the_points_table_comes_last():
    items = [Item(f"tests/test_d.py::test_{i}", "d", 1) for i in range(4)]
    stub = "NotImplementedError: add: see docs/d.md#add\n  at mlab/d.py:3"
    long = "AssertionError: " + "max abs error 0.5 at [1, 2]; " * 20
    outcomes = {
        "tests/test_d.py::test_0": Outcome("tests/test_d.py::test_0", "failed", stub),
        "tests/test_d.py::test_1": Outcome("tests/test_d.py::test_1", "failed", stub),
        "tests/test_d.py::test_2": Outcome("tests/test_d.py::test_2", "failed", long),
        "tests/test_d.py::test_3": Outcome("tests/test_d.py::test_3", "passed"),
    }
    res = results.build(items, outcomes)
    table = feedback.terminal_table(res)
    assert table.count("add: see docs/d.md#add") == 1 and "(2 tests)" in table
    assert long.strip() in table and "failed (1):" in table  # whole, not 160 characters
    assert table.splitlines()[-1].startswith("total") and "d       1/4" in table
    md = feedback.markdown_summary(res)
    assert (
        "Not started: 1 exercise(s), 2 test(s)" in md and long.strip() in md and "test_0" not in md
    )
