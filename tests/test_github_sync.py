"""`cohort sync`: a template update reaches every pair as a branch (local forge) or a branch and a
pull request (GitHub, git through file:// URLs, pull requests through the fake API); main is never
rewritten, deletions follow, conflicts are reported per pair."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cohort import roster, snapshot, sync
from cohort.cli import main
from cohort.github.client import Client
from tests.fake_github import TOKEN, cohort_copy, generated, organizer
from tests.test_forge_local import (
    SOLUTION,
    git,
    new_cohort,
    push,
    pushes,
    record_manifest,
    tiny_organizer,
)

FIX = 'assert m.add(1, 2) == 3, "add(1, 2) should be 3 (fixed message)"'


def change(org: Path, files: dict[str, str | None]) -> str:
    """Commit `files` (None deletes) under the organizer's template/; returns the commit."""
    for rel, text in files.items():
        path = org / "template" / rel
        if text is None:
            path.unlink()
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    if any(rel.startswith("tests/") for rel in files):
        record_manifest(org)  # as the organizers do when they change the tests
    git("add", "-A", cwd=org)
    git("commit", "-qm", "update", cwd=org)
    return git("rev-parse", "HEAD", cwd=org).strip()


def update(org: Path) -> str:
    """Fix a test's message, add a day's tests, delete a file."""
    tests = (org / "template" / "tests" / "test_w0_prep.py").read_text()
    old = 'assert m.add(1, 2) == 3, "add(1, 2) should be 3"'
    return change(
        org,
        {
            "tests/test_w0_prep.py": tests.replace(old, FIX),
            "tests/test_w0_new.py": "def test_new():\n    pass\n",
            "old.txt": None,
        },
    )


def show(repo: Path, ref: str, path: str) -> str | None:
    try:
        return git("--git-dir", str(repo), "show", f"{ref}:{path}", cwd=repo)
    except AssertionError:
        return None


def local(tmp_path: Path, pairs: list[str]) -> tuple[Path, roster.Roster]:
    """An organizer (with a file the update deletes) and a local cohort of `pairs`."""
    org = tiny_organizer(tmp_path / "organizer")
    change(org, {"old.txt": "to be deleted\n"})
    return org, new_cohort(tmp_path, org, pairs)


def test_local_sync_pushes_branches_and_reports_conflicts(tmp_path, capsys):
    org, cohort = local(tmp_path, ["alpha", "beta"])
    forge_dir = cohort.dir / "forge"
    alpha_main = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, tmp_path / "alpha")
    beta_tests = (org / "template" / "tests" / "test_w0_prep.py").read_text()
    beta_tests = beta_tests.replace("should be 3", "should be three")
    push(cohort, "beta", {"tests/test_w0_prep.py": beta_tests}, tmp_path / "beta")
    commit = update(org)
    assert main(["sync", "--dir", str(cohort.dir)]) == 0
    out = capsys.readouterr().out
    branch = f"template-update-{commit[:12]}"
    assert "alpha: proposed" in out and "beta: conflicts tests/test_w0_prep.py" in out
    # 4 files: the two test files, old.txt and the manifest re-recorded with the tests
    assert f"template update {commit[:12]} (4 files): 1 proposed, 1 conflicts" in out
    alpha = forge_dir / "alpha.git"
    assert show(alpha, "main", "tests/test_w0_new.py") is None  # main untouched
    assert git("--git-dir", str(alpha), "rev-parse", "main", cwd=alpha).strip() == alpha_main
    assert show(alpha, branch, "mlab/w0_prep.py") == SOLUTION  # the pair's work kept
    assert FIX in show(alpha, branch, "tests/test_w0_prep.py")
    assert show(alpha, branch, "tests/test_w0_new.py") and show(alpha, branch, "old.txt") is None
    assert show(alpha, "main", "old.txt")
    parents = git("--git-dir", str(alpha), "log", "--format=%P", "-1", branch, cwd=alpha)
    assert parents.strip() == alpha_main  # one commit on top of their main
    conflicted = show(forge_dir / "beta.git", branch, "tests/test_w0_prep.py")
    assert "<<<<<<<" in conflicted and "three" in conflicted and FIX in conflicted
    assert ("alpha", f"refs/heads/{branch}") in {p[:2] for p in pushes(cohort)}  # queued
    assert snapshot.load(cohort.dir).commit == commit  # graded with the new tests from now on
    assert (cohort.dir / "template" / "tests" / "test_w0_new.py").exists()
    assert not (cohort.dir / sync.UPDATE_DIR).exists()
    assert main(["sync", "--dir", str(cohort.dir)]) == 0
    assert "the template did not change" in capsys.readouterr().out


def test_a_pair_that_fails_does_not_stop_the_others_and_a_rerun_finishes(tmp_path, capsys):
    org, cohort = local(tmp_path, ["alpha", "gamma"])
    gamma = cohort.dir / "forge" / "gamma.git"
    gamma.rename(gamma.with_name("away"))
    update(org)
    assert main(["sync", "--dir", str(cohort.dir)]) == 1
    out = capsys.readouterr().out
    assert "gamma: failed git" in out and "1 proposed, 1 failed" in out
    assert (cohort.dir / sync.UPDATE_DIR).exists()  # not promoted
    gamma.with_name("away").rename(gamma)
    change(org, {"later.txt": "a later change waits for the next sync\n"})
    assert main(["sync", "--dir", str(cohort.dir)]) == 0
    out = capsys.readouterr().out
    assert "alpha: exists" in out and "gamma: proposed" in out
    assert not (cohort.dir / "template" / "later.txt").exists()  # the staged update was finished


@pytest.fixture(scope="module")
def org_repo(tmp_path_factory) -> Path:
    return organizer(tmp_path_factory.mktemp("organizer"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, org_repo):
    return generated(tmp_path_factory.mktemp("generated"), org_repo, ["alpha", "beta"])


@pytest.fixture
def github(tmp_path, monkeypatch, saved, org_repo):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr(Client, "sleep", staticmethod(lambda s: None))
    org = Path(shutil.copytree(org_repo, tmp_path / "organizer"))
    with cohort_copy(saved, tmp_path, org) as (fake, cohort):
        yield org, fake, cohort


def test_github_sync_opens_pull_requests_once(github, capsys):
    org, fake, cohort = github
    caller = (org / "template" / ".github" / "workflows" / "grade.yml").read_text()
    commit = change(org, {".github/workflows/grade.yml": "# graded by the organizers\n" + caller})
    branch = f"template-update-{commit[:12]}"
    fake.fail("POST", r"/repos/cohort-org/beta/pulls", 403, message="Resource not accessible")
    assert main(["sync", "--dir", str(cohort.dir)]) == 1
    assert "beta: failed GitHub POST /repos/cohort-org/beta/pulls: 403" in capsys.readouterr().out
    assert main(["sync", "--dir", str(cohort.dir)]) == 0
    assert "alpha: exists" in capsys.readouterr().out
    for pair in ("alpha", "beta"):
        pulls = fake.repos[f"cohort-org/{pair}"]["pulls"]
        assert [(p["head"]["ref"], p["base"]["ref"]) for p in pulls] == [(branch, "main")]
        assert "modified `.github/workflows/grade.yml`" in pulls[0]["body"]
        text = show(fake.git_root / f"cohort-org/{pair}.git", branch, ".github/workflows/grade.yml")
        assert text.startswith("# graded by the organizers\n")
        assert "uses: mlab-org/mlab/.github/workflows/grade.yml@spring-2026" in text
    template = fake.git_root / "cohort-org/pair-template.git"
    assert show(template, "main", ".github/workflows/grade.yml") == text  # later pairs get it
    assert main(["sync", "--dir", str(cohort.dir)]) == 0
    assert "nothing to sync" in capsys.readouterr().out


def test_github_sync_needs_the_workflow_scope_up_front(github, capsys):
    org, fake, cohort = github
    fake.scopes = "repo"
    caller = (org / "template" / ".github" / "workflows" / "grade.yml").read_text()
    change(org, {".github/workflows/grade.yml": caller + "# more\n"})
    before = json.dumps(fake.state()["repos"], sort_keys=True, default=str)
    assert main(["sync", "--dir", str(cohort.dir)]) == 2
    err = capsys.readouterr().err
    assert "needs a GitHub token with the workflow scope(s) to push changes under .github" in err
    assert json.dumps(fake.state()["repos"], sort_keys=True, default=str) == before
    assert fake.writes() == []
    change(org, {".github/workflows/grade.yml": caller})  # back as it was: only tests change
    change(org, {"tests/test_w0_new.py": "def test_new():\n    pass\n"})
    assert main(["sync", "--dir", str(roster.load(cohort.dir).dir)]) == 2  # staged update stays
    assert "workflow scope" in capsys.readouterr().err
