"""`cohort review assign` against the fake API: balanced round-robin, stable on re-runs, existing
assignments kept, drafts and template updates skipped."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohort import review
from cohort.cli import main
from cohort.github.client import Client
from tests.fake_github import TOKEN, cohort_copy, generated, organizer

PAIRS = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def org_repo(tmp_path_factory) -> Path:
    return organizer(tmp_path_factory.mktemp("organizer"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, org_repo):
    return generated(tmp_path_factory.mktemp("generated"), org_repo, PAIRS)


@pytest.fixture
def both(tmp_path, monkeypatch, saved, org_repo):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr(Client, "sleep", staticmethod(lambda s: None))
    with cohort_copy(saved, tmp_path, org_repo) as made:
        yield made


def reviewers(fake) -> dict[str, list[str]]:
    return {
        f"{r['name']}#{p['number']}": [u["login"] for u in p["requested_reviewers"]]
        for r in fake.repos.values()
        for p in r["pulls"]
    }


def test_plan_is_round_robin_and_balances_existing_load():
    pulls = [review.PullRequest("p", n, f"u{n}", None) for n in range(1, 6)]
    assert [ta for _, ta in review.plan(pulls, ("a", "b"))] == ["a", "b", "a", "b", "a"]
    kept = [review.PullRequest("q", n, f"k{n}", "a") for n in range(1, 3)]
    assert [ta for _, ta in review.plan(kept + pulls[:3], ("a", "b", "c"))] == ["b", "c", "b"]


def test_assign_requests_reviews_once_and_keeps_existing(both, capsys):
    fake, cohort = both
    for pair, branches in {"alpha": ["d1", "d2"], "beta": ["d1"], "gamma": ["d1", "d2"]}.items():
        for branch in branches:
            fake.add_pull(f"cohort-org/{pair}", branch)
    fake.add_pull("cohort-org/beta", "wip", draft=True)
    fake.add_pull("cohort-org/beta", "template-update-0123456789ab", author="organizer")
    done = fake.add_pull("cohort-org/gamma", "d0")
    done["_reviews"].append({"user": {"login": "ta-two"}, "state": "APPROVED"})
    assert main(["review", "assign", "--dir", str(cohort.dir), "--dry-run"]) == 0
    assert "5 assigned (dry run), 1 kept their TA" in capsys.readouterr().out
    assert all(not r for r in reviewers(fake).values())
    assert main(["review", "assign", "--dir", str(cohort.dir)]) == 0
    out = capsys.readouterr().out
    assert (
        "5 assigned, 1 kept their TA, 0 failed; open pull requests per TA: ta-one 3, ta-two 3"
        in out
    )
    first = reviewers(fake)
    assert first == {
        "alpha#1": ["ta-one"],
        "alpha#2": ["ta-one"],
        "beta#1": ["ta-two"],
        "beta#2": [],
        "beta#3": [],
        "gamma#1": ["ta-one"],
        "gamma#2": ["ta-two"],
        "gamma#3": [],
    }
    fake.add_pull("cohort-org/alpha", "d3")
    assert main(["review", "assign", "--dir", str(cohort.dir)]) == 0
    assert "1 assigned, 6 kept their TA" in capsys.readouterr().out
    assert reviewers(fake) == {**first, "alpha#3": ["ta-one"]}  # a tie goes to the first TA


def test_a_failed_request_is_reported_and_the_rest_goes_on(both, capsys):
    fake, cohort = both
    fake.add_pull("cohort-org/alpha", "d1", author="ta-one")  # a TA cannot review their own
    fake.add_pull("cohort-org/beta", "d1")
    assert main(["review", "assign", "--dir", str(cohort.dir)]) == 1
    out = capsys.readouterr().out
    assert "Review cannot be requested from pull request author" in out
    assert reviewers(fake)["beta#1"] == ["ta-two"]


def test_review_needs_the_github_forge(tmp_path, capsys):
    from tests.test_forge_local import tiny_organizer, write_roster

    cohort = write_roster(tmp_path / "c", tiny_organizer(tmp_path / "o"), ["alpha"])
    assert main(["review", "assign", "--dir", str(cohort.dir)]) == 2
    assert "`cohort review` needs the github backend" in capsys.readouterr().err
