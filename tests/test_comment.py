"""`cohort comment` against the fake API: the sticky score comment is created once, then updated
in place; a pair member's comment that starts with the marker is left alone."""

from __future__ import annotations

import json

import pytest

from cohort.cli import main
from cohort.grading import results
from cohort.grading.outcomes import Item, Outcome
from cohort.report.comment import MARKER
from tests.fake_github import TOKEN, FakeGitHub

REPO = "cohort-org/alpha"
ADD, MUL = "tests/test_w0_prep.py::test_add", "tests/test_w0_prep.py::test_mul"


def results_file(tmp_path, passed: tuple[str, ...], commit: str) -> str:
    items = [Item(ADD, "w0_prep", 1), Item(MUL, "w0_prep", 2)]
    outcomes = {
        i.nodeid: Outcome(i.nodeid, "passed" if i.nodeid in passed else "failed", "wrong shape")
        for i in items
    }
    path = tmp_path / f"results-{commit}.json"
    path.write_text(json.dumps(results.build(items, outcomes, extra={"commit": commit})))
    return str(path)


@pytest.fixture
def fake(tmp_path, monkeypatch):
    with FakeGitHub(tmp_path / "github") as fake:
        fake.add_repo(REPO)
        monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
        monkeypatch.setenv("GITHUB_API_URL", fake.url)
        yield fake


def test_the_comment_is_created_then_updated_in_place(fake, tmp_path, capsys):
    member = {"login": "alpha-a", "type": "User"}
    fake.add_comment(REPO, 3, f"{MARKER} my own notes", member)
    first = results_file(tmp_path, (ADD,), "a" * 40)
    assert main(["comment", first, "--repo", REPO, "--pr", "3"]) == 0
    assert "comment created on cohort-org/alpha#3" in capsys.readouterr().out
    second = results_file(tmp_path, (ADD, MUL), "b" * 40)
    assert main(["comment", second, "--repo", REPO, "--pr", "3"]) == 0
    assert "comment updated on cohort-org/alpha#3" in capsys.readouterr().out
    comments = fake.comments(REPO, 3)
    assert [c["user"]["login"] for c in comments] == ["alpha-a", "github-actions[bot]"]
    assert comments[0]["body"] == f"{MARKER} my own notes"
    mine = comments[1]["body"]
    assert mine.startswith(MARKER) and "## Grading: 3 / 3 points" in mine
    assert "_commit bbbbbbb_" in mine and "wrong shape" not in mine
    assert [m for m, _ in fake.writes()] == ["POST", "PATCH"]


def test_failing_tests_are_listed_and_bad_input_is_one_line(fake, tmp_path, capsys):
    path = results_file(tmp_path, (), "c" * 40)
    assert main(["comment", path, "--repo", REPO, "--pr", "1"]) == 0
    assert (
        "| `tests/test_w0_prep.py::test_mul` | wrong shape |" in fake.comments(REPO, 1)[0]["body"]
    )
    capsys.readouterr()
    assert main(["comment", str(tmp_path / "none.json"), "--repo", REPO, "--pr", "1"]) == 2
    assert main(["comment", path, "--repo", "not a repo", "--pr", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("cohort comment: error:") for line in err)
