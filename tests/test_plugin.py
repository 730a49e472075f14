"""The grading pytest plugin in a plain pytest run (pytester)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import write_manifest

TESTS = """
import pytest

from tests.conftest import write_manifest

@pytest.mark.points(2)
def test_good():
    assert 1 + 1 == 2

@pytest.mark.points(3)
def test_bad():
    assert 1 + 1 == 3, "one plus one is not three"

@pytest.mark.points(1)
@pytest.mark.gpu
def test_needs_gpu():
    pass
"""


def test_table_and_results_file(pytester):
    pytester.makepyfile(test_toy=TESTS)
    result = pytester.runpytest("--results", "out/results.json")
    result.assert_outcomes(passed=1, failed=1, skipped=1)
    result.stdout.fnmatch_lines(["*cohort grading*", "toy *1/2 * 2/5*"])
    data = json.loads((pytester.path / "out" / "results.json").read_text())
    assert (data["score"], data["max_score"]) == (2, 5)
    by_name = {t["name"].split("::")[1]: t for t in data["tests"]}
    assert "one plus one is not three" in by_name["test_bad"]["output"]
    assert by_name["test_needs_gpu"]["status"] == "skipped"
    assert "CUDA GPU" in by_name["test_needs_gpu"]["output"]
    assert data["extra_data"]["days"]["toy"]["max_score"] == 5


def test_github_outputs(pytester, monkeypatch, tmp_path):
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_toy=TESTS)
    result = pytester.runpytest()
    result.stdout.fnmatch_lines(
        ["::error file=test_toy.py,line=*,title=test_toy.py%3A%3Atest_bad::*"]
    )
    result.stdout.fnmatch_lines(["::notice title=Points::Points 2/5"])
    assert "| toy | 1/2 | 2/5 |" in summary.read_text()


def test_timeout_fails_only_the_hanging_test(pytester):
    pytester.makepyfile(
        test_toy="""
        import pytest

        @pytest.mark.points(1)
        def test_loops():
            while True:
                pass

        @pytest.mark.points(1)
        def test_fine():
            pass
        """
    )
    result = pytester.runpytest("--test-timeout", "0.5")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*timed out after 0.5 s, interrupted at test_toy.py:*"])


def slower_than_the_timeout(traced: bool) -> str:
    settrace = "sys.settrace(lambda *args: None)  # what `breakpoint()` (pdb) sets\n    " * traced
    return (
        "import sys, time\nimport pytest\n\n@pytest.mark.points(1)\n"
        f"def test_stepped_through():\n    {settrace}time.sleep(1.0)\n"
    )


@pytest.mark.parametrize(("traced", "args"), [(False, ["--pdb"]), (True, [])])
def test_the_timeout_steps_aside_for_a_debugger(pytester, traced, args):
    pytester.makepyfile(test_toy=slower_than_the_timeout(traced))
    result = pytester.runpytest_subprocess("--test-timeout", "0.3", *args)
    result.assert_outcomes(passed=1)


def test_unknown_marker_is_an_error_with_strict_markers(pytester):
    pytester.makepyfile(test_toy="import pytest\n@pytest.mark.pointz(1)\ndef test_x(): pass\n")
    result = pytester.runpytest("--strict-markers")
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*'pointz' not found in `markers`*"])


def test_bad_timeout_setting_is_a_usage_error(pytester):
    pytester.makeini("[pytest]\ncohort_test_timeout = soon\n")
    pytester.makepyfile(test_toy="def test_x(): pass\n")
    result = pytester.runpytest()
    result.stderr.fnmatch_lines(["*cohort_test_timeout: 'soon' is not a number of seconds*"])


STUBBED = """
import pytest

from tests.conftest import write_manifest

def add(a, b):
    raise NotImplementedError("add: see docs/toy.md#add")

@pytest.mark.points(1)
@pytest.mark.parametrize("a", [1, 2, 3])
def test_add(a):
    assert add(a, 1) == a + 1

@pytest.mark.points(1)
def test_mul():
    assert 2 * 3 == 5, "mul(2, 3) is 6, expected 5: " + "a long explanation " * 20

@pytest.mark.points(1)
def test_ok():
    pass
"""


def test_a_local_run_prints_stubs_in_a_line_real_failures_whole_points_last(pytester):
    pytester.makepyfile(test_toy=STUBBED)
    result = pytester.runpytest("--results", "out.json")
    out = result.stdout.str()
    assert result.ret == 1
    result.stdout.fnmatch_lines(["*1 failed, 1 passed, 3 not started*"])
    assert "raise NotImplementedError" not in out  # no traceback for a stub
    assert out.count("add: see docs/toy.md#add") == 1  # one line for the exercise
    assert "add: see docs/toy.md#add (3 tests)" in out
    assert "a long explanation " * 20 in out.replace("\n      ", "")  # whole, in the table too
    table = out.index(" cohort grading =")
    assert (
        out.index("short test summary info") < table < out.index("toy ") < out.rindex("not started")
    )
    assert out.index("FAILED test_toy.py::test_mul") < table
    assert "FAILED test_toy.py::test_add" not in out
    data = json.loads((pytester.path / "out.json").read_text())  # outcomes unchanged
    assert sorted(t["status"] for t in data["tests"]) == ["failed"] * 4 + ["passed"]


def test_a_test_file_that_does_not_import_counts_the_tests_its_manifest_lists(pytester):
    pytester.makepyfile(
        **{
            "tests/test_toy": TESTS.replace("import pytest", "import pytest\nimport mlab.missing"),
            "tests/test_fine": "import pytest\n\n@pytest.mark.points(4)\ndef test_ok():\n    pass\n",
        }
    )
    points = {"tests/test_toy.py::test_good": 2, "tests/test_toy.py::test_bad": 3}
    write_manifest(pytester.path, {**points, "tests/test_fine.py::test_ok": 4})
    pytester.runpytest("--results", "out.json", "--continue-on-collection-errors")
    data = json.loads((pytester.path / "out.json").read_text())
    days = data["extra_data"]["days"]
    assert (days["toy"]["score"], days["toy"]["max_score"]) == (0, 5)
    assert (data["score"], data["max_score"]) == (4, 9)
    toy = [t for t in data["tests"] if t["name"] in points]
    assert len(toy) == 2 and all("mlab" in t["output"] for t in toy)


def test_without_a_manifest_a_file_that_does_not_import_counts_nothing(pytester):
    pytester.makepyfile(**{"tests/test_toy": "import mlab.missing\n"})
    result = pytester.runpytest("--results", "out.json")
    result.stdout.fnmatch_lines(["*ERROR collecting tests/test_toy.py*"])
    assert json.loads((pytester.path / "out.json").read_text())["max_score"] == 0
