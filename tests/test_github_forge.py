"""The GitHub forge against the fake API: `cohort generate` creates, fills in and protects the
pairs' repositories; it is idempotent, resumable, paced and stops on a bad token first."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from cohort import forge, roster
from cohort.cli import main
from cohort.errors import CommitNotFound, ForgeError, GitHubError
from cohort.forge.github import GitHubForge, caller_workflow
from cohort.github.client import Client
from tests.fake_github import GRADER, GRADER_REF, TOKEN, TRUSTED, FakeGitHub, organizer, roster_text

PAIRS = ["alpha", "beta", "gamma"]


@pytest.fixture(scope="module")
def org_repo(tmp_path_factory) -> Path:
    return organizer(tmp_path_factory.mktemp("organizer"))


@pytest.fixture
def waits(monkeypatch) -> list[float]:
    """Every wait the client would sleep (it does not)."""
    slept: list[float] = []
    monkeypatch.setattr(Client, "sleep", staticmethod(slept.append))
    return slept


@pytest.fixture
def fake(tmp_path, monkeypatch, waits):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    with FakeGitHub(tmp_path / "github") as server:
        yield server


def cohort_dir(tmp_path: Path, org_repo: Path, fake: FakeGitHub, pairs=PAIRS, **github) -> Path:
    path = tmp_path / "cohort"
    path.mkdir(exist_ok=True)
    (path / roster.FILENAME).write_text(roster_text(org_repo, fake, pairs, **github))
    return path


def show(fake: FakeGitHub, full: str, path: str, ref: str = "main") -> str:
    return subprocess.run(
        ["git", "--git-dir", str(fake.git_root / f"{full}.git"), "show", f"{ref}:{path}"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def test_generate_creates_private_repos_with_members_team_and_protection(
    tmp_path, org_repo, fake, capsys
):
    path = cohort_dir(tmp_path, org_repo, fake)
    assert main(["generate", "--dir", str(path)]) == 0
    assert "3 created, 0 already there" in capsys.readouterr().out
    template = fake.repos["cohort-org/pair-template"]
    assert template["private"] and template["is_template"]
    caller = show(fake, "cohort-org/pair-template", ".github/workflows/grade.yml")
    assert f"uses: {TRUSTED}" in caller
    assert f"grader-repository: {GRADER}" in caller and f"grader-ref: {GRADER_REF}" in caller
    assert fake.teams["tas"]["members"] == {"ta-one", "ta-two"}
    for pair in PAIRS:
        repo = fake.repos[f"cohort-org/{pair}"]
        assert repo["private"]
        assert repo["collaborators"] == {f"{pair}-a": "push", f"{pair}-b": "push"}
        assert repo["teams"] == {"tas": "push"}
        reviews = repo["protection"]["main"]["required_pull_request_reviews"]
        assert reviews["required_approving_review_count"] == 1
        assert show(fake, f"cohort-org/{pair}", ".github/workflows/grade.yml") == caller
        assert show(fake, f"cohort-org/{pair}", "tests/test_w0_prep.py").startswith("import pytest")


def test_rerun_changes_nothing_and_reads_only(tmp_path, org_repo, fake, capsys):
    path = cohort_dir(tmp_path, org_repo, fake)
    assert main(["generate", "--dir", str(path)]) == 0
    before = len(fake.writes())
    assert main(["generate", "--dir", str(path)]) == 0
    assert "0 created, 3 already there" in capsys.readouterr().out
    assert len(fake.writes()) == before


def test_a_failure_halfway_is_finished_by_a_rerun_without_duplicates(
    tmp_path, org_repo, fake, capsys
):
    path = cohort_dir(tmp_path, org_repo, fake)
    fake.fail("PUT", r"/orgs/cohort-org/teams/tas/repos/cohort-org/beta", 403, message="boom")
    assert main(["generate", "--dir", str(path)]) == 2
    assert "403 boom" in capsys.readouterr().err
    assert "gamma" not in {r["name"] for r in fake.repos.values()}
    assert main(["generate", "--dir", str(path)]) == 0
    assert "1 created, 2 already there" in capsys.readouterr().out
    generated = [p for m, p in fake.log if m == "POST" and p.endswith("/generate")]
    assert len(generated) == 3
    assert fake.repos["cohort-org/beta"]["teams"] == {"tas": "push"}
    assert fake.repos["cohort-org/beta"]["protection"]["main"]


def test_already_exists_from_generate_counts_as_existing(tmp_path, org_repo, fake, capsys):
    path = cohort_dir(tmp_path, org_repo, fake, pairs=["alpha"])
    assert main(["generate", "--dir", str(path)]) == 0
    (path / "forge-github.json").unlink()  # a lost state file: every step is applied again
    fake.fail("GET", r"/repos/cohort-org/alpha", 404)  # as if GitHub had not shown it yet
    assert main(["generate", "--dir", str(path)]) == 0
    assert "0 created, 1 already there" in capsys.readouterr().out
    assert [p for m, p in fake.log if m == "POST" and p.endswith("/generate")] == [
        "/repos/cohort-org/pair-template/generate"
    ] * 2  # the second answered 422 "already exists"
    assert len(fake.repos) == 2


def test_rate_limits_are_honoured_and_writes_paced(tmp_path, org_repo, fake, waits):
    path = cohort_dir(tmp_path, org_repo, fake, pairs=["alpha"], write_interval=30)
    fake.fail(
        "POST",
        r"/repos/cohort-org/pair-template/generate",
        403,
        {"Retry-After": "7"},
        "You have exceeded a secondary rate limit",
    )
    fake.fail("PUT", r"/repos/cohort-org/alpha/collaborators/.*", 429, {"Retry-After": "3"})
    assert main(["generate", "--dir", str(path)]) == 0
    assert 7.0 in waits and 3.0 in waits
    writes = len(fake.writes())
    assert writes >= 8
    paced = [w for w in waits if 20 < w <= 30]  # the waits are recorded, not slept
    assert len(paced) == writes - 1  # every write but the first waited for its turn
    assert 1 in waits  # the generated repository's main appeared a moment later


@pytest.mark.parametrize(
    ("scopes", "message"),
    [
        ("repo", "needs a GitHub token with the workflow, admin:org scope(s); this one has repo"),
        ("repo, workflow, read:org", "admin:org scope(s)"),
    ],
)
def test_an_under_scoped_token_stops_before_anything_is_created(
    tmp_path, org_repo, fake, capsys, scopes, message
):
    fake.scopes = scopes
    assert main(["generate", "--dir", str(cohort_dir(tmp_path, org_repo, fake))]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert fake.writes() == []


def test_a_rejected_or_missing_token_is_one_line(tmp_path, org_repo, fake, capsys, monkeypatch):
    path = cohort_dir(tmp_path, org_repo, fake)
    monkeypatch.setenv("GITHUB_TOKEN", "wrong")
    assert main(["generate", "--dir", str(path)]) == 2
    assert "GitHub rejected the token (401 on GET /user)" in capsys.readouterr().err
    monkeypatch.delenv("GITHUB_TOKEN")
    monkeypatch.setenv("PATH", str(tmp_path))  # no `gh` either
    assert main(["generate", "--dir", str(path)]) == 2
    assert "no GitHub token: set GITHUB_TOKEN" in capsys.readouterr().err
    assert fake.writes() == []


def test_usernames_and_settings_are_checked(tmp_path, org_repo, fake, capsys):
    path = cohort_dir(tmp_path, org_repo, fake)
    text = (path / "cohort.toml").read_text()
    (path / "cohort.toml").write_text(text.replace('"alpha-a"', '"Ada Lovelace"'))
    assert main(["generate", "--dir", str(path)]) == 2
    assert "pairs[0].members: 'Ada Lovelace' is not a GitHub username" in capsys.readouterr().err
    (path / "cohort.toml").write_text(text.replace("grader_ref", "grader_reff"))
    with pytest.raises(roster.RosterError) as e:  # checked with the rest of cohort.toml
        roster.load(path)
    assert "forge.github.grader_reff: unknown setting (did you mean 'grader_ref'?)" in str(e.value)
    assert "forge.github.grader_ref: missing" in str(e.value)
    assert fake.writes() == []


def test_caller_workflow_fills_in_the_grader_and_gpu_settings(tmp_path, org_repo, fake):
    cohort = roster.load(cohort_dir(tmp_path, org_repo, fake, gpu=False, gpu_runs_on='["arc-gpu"]'))
    text = (org_repo / "template" / ".github" / "workflows" / "grade.yml").read_text()
    filled = caller_workflow(text, cohort.forge.github)
    assert f"uses: {TRUSTED}" in filled and "mlab-organizers" not in filled
    assert "      gpu: false\n      gpu-runs-on: '[\"arc-gpu\"]'\n" in filled
    with pytest.raises(ForgeError, match="expected one `grader-ref:` line"):
        caller_workflow(text.replace("grader-ref", "ref"), cohort.forge.github)


def test_tips_initial_commit_and_export(tmp_path, org_repo, fake):
    cohort = roster.load(cohort_dir(tmp_path, org_repo, fake, pairs=["alpha", "beta"]))
    forge.generate(cohort, progress=lambda _: None)
    gh = GitHubForge(cohort)
    assert gh.repos() == ["alpha", "beta"]
    tips = gh.branch_tips("alpha")
    assert list(tips) == ["refs/heads/main"]
    assert gh.initial_commit("alpha") == tips["refs/heads/main"]
    got = gh.export("alpha", tips["refs/heads/main"], tmp_path / "out")
    assert got.commit == tips["refs/heads/main"] and got.committed_at[:2] == "20"
    assert (tmp_path / "out" / "mlab" / "w0_prep.py").exists()
    with pytest.raises(CommitNotFound):
        gh.export("alpha", "0123456789ab" * 3 + "0123", tmp_path / "none")
    assert gh.repo_url("alpha").endswith("/cohort-org/alpha")
    fake.fail("GET", r"/repos/cohort-org/alpha/branches", 403, message="no way")
    with pytest.raises(ForgeError, match="403 no way") as e:  # the forge interface's own error
        gh.branch_tips("alpha")
    assert isinstance(e.value.__cause__, GitHubError)


def test_only_the_github_forge_touches_its_settings_and_client():
    """Callers (collect, review, sync) go through the forge's methods, never `forge.s` or
    `forge.client`."""
    import ast

    package = Path(__file__).resolve().parents[1] / "cohort"
    reached = [
        f"{path.relative_to(package)}:{node.lineno}"
        for path in sorted(package.rglob("*.py"))
        if path != package / "forge" / "github.py"
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Attribute)
        and node.attr in ("s", "client")
        and ast.unparse(node.value).split(".")[-1] == "forge"
    ]
    assert reached == []
