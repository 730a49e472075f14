"""`cohort collect --from github` against the fake API: trusted results are stored and summarised
like local mode's; forged ones (wrong repository, wrong workflow, edited score or workflow) are
rejected with the reason."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from cohort import collect, manifest, roster, store
from cohort.cli import main
from cohort.forge.github import GitHubForge
from cohort.github.client import Client
from cohort.grading import results
from cohort.grading.outcomes import Benchmark, Item, Outcome
from tests.fake_github import (
    GRADER,
    GRADER_REF,
    TOKEN,
    TRUSTED,
    FakeGitHub,
    cohort_copy,
    generated,
    organizer,
)
from tests.test_forge_local import git

ADD, MUL, GPU = (f"tests/test_w0_prep.py::test_{n}" for n in ("add", "mul", "gpu"))
ITEMS = [
    Item(ADD, "w0_prep", 1),
    Item(MUL, "w0_prep", 2),
    Item(GPU, "w0_prep", 4, ["gpu", "bench"]),
]


@pytest.fixture(scope="module")
def org_repo(tmp_path_factory) -> Path:
    return organizer(tmp_path_factory.mktemp("organizer"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, org_repo):
    return generated(tmp_path_factory.mktemp("generated"), org_repo, ["alpha", "beta"])


@pytest.fixture
def both(tmp_path, monkeypatch, saved, org_repo):
    monkeypatch.setenv("GITHUB_TOKEN", TOKEN)
    monkeypatch.setattr(Client, "sleep", staticmethod(lambda s: None))
    with cohort_copy(saved, tmp_path, org_repo) as made:
        yield made


@pytest.fixture
def fake(both) -> FakeGitHub:
    return both[0]


@pytest.fixture
def cohort(both) -> roster.Roster:
    return both[1]


def tip(fake: FakeGitHub, pair: str) -> str:
    return fake.head(f"cohort-org/{pair}", "main")


def graded(
    pair: str, commit: str, run_id: int, job: str = "cpu", passed=(ADD,), **meta: str
) -> dict:
    """results.json as the reusable workflow's job writes it."""
    if job == "cpu":
        items = ITEMS
        outcomes = {
            i.nodeid: Outcome(i.nodeid, "passed" if i.nodeid in passed else "failed", "boom")
            for i in ITEMS[:2]
        } | {GPU: Outcome(GPU, "skipped", "needs CUDA")}
        bench = []
    else:
        items = ITEMS[2:]
        outcomes = {GPU: Outcome(GPU, "passed" if GPU in passed else "failed")}
        bench = [Benchmark(GPU, "matmul", "64x64", 0.5, 1.0)]
    extra = {
        "pair": f"cohort-org/{pair}",
        "repo": f"cohort-org/{pair}",
        "commit": commit,
        "ref": "refs/heads/main",
        "run_id": str(run_id),
        "grader_repository": GRADER,
        "grader_ref": GRADER_REF,
        "job": job,
        **meta,
    }
    return results.build(items, outcomes, bench, extra)


def run_with(fake, pair, docs=None, uses=TRUSTED, commit=None, **doc_args) -> dict:
    """A push run of `pair` at `commit` (default: main) whose artifacts are `docs(run_id)`."""
    commit = commit or tip(fake, pair)
    run_id = fake.new_id()
    made = docs(run_id) if docs else {"results-cpu": graded(pair, commit, run_id, **doc_args)}
    return fake.add_run(f"cohort-org/{pair}", commit, made, uses, run_id=run_id)


def collected(cohort) -> collect.Collected:
    return collect.collect(cohort, GitHubForge(cohort), progress=lambda _: None)


def test_trusted_results_are_stored_and_summarised(cohort, fake, capsys):
    run_with(fake, "alpha", passed=(ADD, MUL))
    run_with(fake, "beta")
    assert main(["collect", "--from", "github", "--dir", str(cohort.dir)]) == 0
    assert "2 results stored, 0 already stored, 0 rejected" in capsys.readouterr().out
    doc = results.load(cohort.dir / store.results_path("alpha", tip(fake, "alpha")))
    assert doc["score"] == 3 and doc["extra_data"]["pair"] == "alpha"
    assert doc["extra_data"]["pushed_at"].endswith("Z")
    assert doc["extra_data"]["jobs"] == {"cpu": "graded", "gpu": "not run"}
    assert doc["max_score"] == 3  # the gpu test is skipped, not counted as a zero
    assert main(["collect", "--dir", str(cohort.dir)]) == 0
    assert "0 results stored, 2 already stored" in capsys.readouterr().out
    assert main(["summary", "--dir", str(cohort.dir)]) == 0
    assert "2 pairs x 1 days, 2 graded pair-days" in capsys.readouterr().out
    csv = (cohort.dir / "site" / "scores.csv").read_text()
    assert "alpha,w0_prep,3" in csv and "beta,w0_prep,1" in csv
    assert fake.blob_auth == [None, None]  # the token never went to the storage host


def test_cpu_and_gpu_artifacts_merge_into_one_result(cohort, fake):
    commit = tip(fake, "alpha")
    run_with(
        fake,
        "alpha",
        lambda rid: {
            "results-cpu": graded("alpha", commit, rid, passed=(ADD, MUL)),
            "results-gpu": graded("alpha", commit, rid, job="gpu", passed=(GPU,)),
        },
    )
    assert collected(cohort).stored == [f"alpha {commit}"]
    doc = results.load(cohort.dir / store.results_path("alpha", commit))
    assert (doc["score"], doc["max_score"]) == (7, 7)
    assert doc["extra_data"]["jobs"] == {"cpu": "graded", "gpu": "graded"}
    assert doc["extra_data"]["days"]["w0_prep"] == {
        "score": 7.0,
        "max_score": 7.0,
        "passed": 3,
        "total": 3,
        "commit": commit,  # measured on this commit, not carried over
        "carried_over": False,
    }
    assert doc["extra_data"]["benchmarks"][0]["speedup"] == 2.0
    assert doc["leaderboard"] == [{"name": "matmul 64x64 speedup", "value": 2.0, "order": "desc"}]


def edited_score(doc: dict) -> dict:
    doc["score"] = doc["max_score"]
    return doc


def passed_everything(doc: dict) -> dict:
    for t in doc["tests"]:
        if t["status"] == "failed":
            t["status"], t["score"] = "passed", t["max_score"]
    doc["score"] = sum(t["score"] for t in doc["tests"])
    return doc


@pytest.mark.parametrize(
    ("forgery", "reason"),
    [
        ("other_repo", "extra_data.repo is 'cohort-org/beta', expected 'cohort-org/alpha'"),
        ("other_commit", "extra_data.commit is"),
        ("other_run", "extra_data.run_id is"),
        ("other_grader_ref", "extra_data.grader_ref is 'main', expected 'spring-2026'"),
        ("own_workflow", "called 'alpha-a/grader/.github/workflows/grade.yml@main', not"),
        ("edited_score", "score 3/3 does not add up from its tests (1/3)"),
        ("edited_status", "extra_data.days.w0_prep does not add up"),
        ("edited_caller", "is not one the cohort gave out"),
    ],
)
def test_forged_results_are_rejected(cohort, fake, forgery, reason, capsys):
    alpha = tip(fake, "alpha")
    uses, commit = TRUSTED, alpha
    if forgery == "own_workflow":
        uses = "alpha-a/grader/.github/workflows/grade.yml@main"
    if forgery == "edited_caller":
        work = cohort.dir.parent / "work"
        git(
            "clone", "-q", f"file://{fake.git_root}/cohort-org/alpha.git", str(work), cwd=cohort.dir
        )
        caller = work / ".github" / "workflows" / "grade.yml"
        caller.write_text(caller.read_text() + "  extra:\n    runs-on: ubuntu-latest\n")
        git("commit", "-qam", "my own job", cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        commit = tip(fake, "alpha")

    def docs(run_id: int) -> dict:
        doc = graded("alpha", commit, run_id)
        if forgery == "other_repo":
            doc = graded("beta", commit, run_id)
        if forgery == "other_commit":
            doc = graded("alpha", "b" * 40, run_id)
        if forgery == "other_run":
            doc = graded("alpha", commit, run_id + 1)
        if forgery == "other_grader_ref":
            doc = graded("alpha", commit, run_id, grader_ref="main")
        if forgery == "edited_score":
            doc = edited_score(doc)
        if forgery == "edited_status":
            doc = passed_everything(doc)
        return {"results-cpu": doc}

    run_with(fake, "alpha", docs, uses=uses, commit=commit)
    assert main(["collect", "--dir", str(cohort.dir)]) == 1
    out = capsys.readouterr().out
    assert "rejected: alpha run" in out and reason in out, out
    assert "0 results stored" in out
    assert not (cohort.dir / store.results_path("alpha", commit)).exists()


def test_only_push_runs_count_and_a_pinned_commit_must_match(cohort, fake, tmp_path):
    alpha = tip(fake, "alpha")
    run = run_with(fake, "alpha")
    run["event"] = "pull_request"  # graded a merge commit: not listed
    assert collected(cohort).stored == []
    run["event"] = "push"
    pinned = "a" * 40
    text = (cohort.dir / "cohort.toml").read_text().replace(GRADER_REF, pinned)
    (cohort.dir / "cohort.toml").write_text(text)
    run["referenced_workflows"][0]["path"] = TRUSTED.replace(GRADER_REF, pinned)
    got = collect.collect(
        roster.load(cohort.dir), GitHubForge(roster.load(cohort.dir)), progress=print
    )
    assert "not the pinned commit" in got.rejected[0] and not got.stored
    assert alpha


def test_an_older_caller_from_the_template_is_still_accepted(cohort, fake, tmp_path):
    work = tmp_path / "template-work"
    template = f"file://{fake.git_root}/cohort-org/pair-template.git"
    git("clone", "-q", template, str(work), cwd=tmp_path)
    caller = work / ".github" / "workflows" / "grade.yml"
    caller.write_text("# a later version\n" + caller.read_text())
    git("commit", "-qam", "template update", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    run_with(fake, "alpha")  # alpha has not merged the update: its caller is the first version
    assert collected(cohort).stored == [f"alpha {tip(fake, 'alpha')}"]


def test_runs_without_results_are_listed_not_rejected(cohort, fake, capsys):
    commit = tip(fake, "alpha")
    run_with(fake, "alpha", lambda rid: {"results-gpu": graded("alpha", commit, rid, job="gpu")})
    run_with(fake, "beta")["_artifacts"][0]["expired"] = True
    assert main(["collect", "--dir", str(cohort.dir)]) == 0
    out = capsys.readouterr().out
    assert "no results: alpha run" in out and "no results-cpu artifact (success)" in out
    assert "no results: beta run" in out and "results-cpu has expired" in out
    assert "0 rejected, 2 runs without results" in out


def test_a_stored_file_missing_from_the_database_is_added_back(cohort, fake):
    run_with(fake, "alpha")
    assert len(collected(cohort).stored) == 1
    (cohort.dir / store.DB_NAME).unlink()
    done = collected(cohort)
    assert done.stored == [f"alpha {tip(fake, 'alpha')}"] and done.known == 0


def test_totals_rejects_inconsistent_tests():
    doc = graded("alpha", "a" * 40, 1)
    assert collect.totals(doc["tests"])[:2] == (1.0, 3.0)
    bad = copy.deepcopy(doc)
    bad["tests"][1]["score"] = 2  # failed yet scored
    with pytest.raises(collect.Rejected, match="has score 2 of 2 but status 'failed'"):
        collect.totals(bad["tests"])
    bad = copy.deepcopy(doc)
    bad["tests"][2]["max_score"] = 4  # skipped yet counted
    with pytest.raises(collect.Rejected, match="skipped test"):
        collect.totals(bad["tests"])
    assert json.dumps(doc)


RAY = "tests/test_w1d1_raytracing.py::test_ray"


def test_days_a_run_did_not_grade_are_carried_over_from_the_push_before(cohort, fake):
    text = (cohort.dir / "cohort.toml").read_text()
    day = "w1d1_raytracing = { release = 2026-01-05, deadline = 2026-01-06T18:00:00 }\n"
    (cohort.dir / "cohort.toml").write_text(text + day)
    first = tip(fake, "alpha")
    items = [*ITEMS[:2], Item(RAY, "w1d1_raytracing", 5)]
    with_manifest(cohort, items)  # a template of these two days' tests

    def docs(commit: str, graded_items: list[Item], ray: str | None = None, ok=True, **meta):
        def make(rid: int) -> dict:
            extra = {**graded("alpha", commit, rid)["extra_data"], **meta}
            for key in ("days", "benchmarks", "benchmark_geomean_speedup"):
                extra.pop(key)
            status = "passed" if ok else "failed"
            outcomes = {i.nodeid: Outcome(i.nodeid, status) for i in graded_items}
            doc = results.build(graded_items, outcomes, [], extra)
            if ray:  # the fingerprint `cohort grade` computed for the day
                doc["extra_data"]["days"]["w1d1_raytracing"]["fingerprint"] = ray
            return {"results-cpu": doc}

        return make

    run_with(fake, "alpha", docs(first, items, ray="ray-A"))
    work = cohort.dir.parent / "work"
    git("clone", "-q", f"file://{fake.git_root}/cohort-org/alpha.git", str(work), cwd=cohort.dir)
    (work / "mlab" / "w0_prep.py").write_text("# changed\n")
    git("commit", "-qam", "w0_prep only", cwd=work)
    git("push", "-q", "origin", "HEAD:main", cwd=work)
    second = tip(fake, "alpha")
    run_with(fake, "alpha", docs(second, ITEMS[:2], before=first), commit=second)

    def pushed(message: str) -> str:
        (work / "mlab" / "w0_prep.py").write_text(f"# {message}\n")
        git("commit", "-qam", message, cwd=work)
        git("push", "-q", "origin", "HEAD:main", cwd=work)
        return tip(fake, "alpha")

    assert collected(roster.load(cohort.dir)).stored == [f"alpha {first}", f"alpha {second}"]
    doc = results.load(cohort.dir / store.results_path("alpha", second))
    assert doc["score"] == 8 and RAY in {t["name"] for t in doc["tests"]}
    ray = doc["extra_data"]["days"]["w1d1_raytracing"]
    assert (ray["score"], ray["commit"], ray["carried_over"]) == (5, first, True)
    assert doc["extra_data"]["days"]["w0_prep"]["carried_over"] is False
    rows = {
        (r.commit, r.day): (r.measured_commit, r.carried_over)
        for r in store.day_scores(store.connect(cohort.dir))
    }
    assert rows == {
        (first, "w0_prep"): (first, False),
        (first, "w1d1_raytracing"): (first, False),
        (second, "w0_prep"): (second, False),
        (second, "w1d1_raytracing"): (first, True),
    }

    # the pair breaks w1d1 (a new fingerprint), then restores it: carried from where it was the same
    third = pushed("break w1d1")
    ray_only = [Item(RAY, "w1d1_raytracing", 5)]
    run_with(
        fake, "alpha", docs(third, ray_only, ray="ray-B", ok=False, before=second), commit=third
    )
    fourth = pushed("restore w1d1")
    restored = docs(fourth, ITEMS[:2], before=third, fingerprints={"w1d1_raytracing": "ray-A"})
    run_with(fake, "alpha", restored, commit=fourth)
    assert collected(roster.load(cohort.dir)).stored == [f"alpha {third}", f"alpha {fourth}"]
    days = results.load(cohort.dir / store.results_path("alpha", fourth))["extra_data"]["days"]
    assert (days["w1d1_raytracing"]["score"], days["w1d1_raytracing"]["commit"]) == (5, first)


def with_manifest(cohort, entries: list[Item] = ITEMS) -> None:
    """Give the cohort's template snapshot a manifest holding `entries`."""
    tests = cohort.dir / "template" / "tests"
    held = {
        i.nodeid: manifest.Entry(i.nodeid, i.day, i.points, markers=list(i.markers))
        for i in entries
    }
    known = manifest.Manifest(manifest.tests_digest(tests), held, {})
    (tests / manifest.FILENAME).write_text(manifest.dump(known))


def built(items: list[Item], passed=(ADD,)):
    """Artifacts of a cpu job that graded `items` (its totals add up)."""

    def make(run_id: int, pair: str = "alpha", commit: str = "") -> dict:
        extra = graded(pair, commit, run_id)["extra_data"]
        for key in ("days", "benchmarks", "benchmark_geomean_speedup"):
            extra.pop(key)
        outcomes = {
            i.nodeid: Outcome(i.nodeid, "skipped" if "gpu" in i.markers else "passed")
            if i.nodeid in passed or "gpu" in i.markers
            else Outcome(i.nodeid, "failed", "boom")
            for i in items
        }
        return {"results-cpu": results.build(items, outcomes, [], extra)}

    return make


OTHER = "tests/test_w0_prep.py::test_div"


@pytest.mark.parametrize(
    ("items", "reason"),
    [
        (
            [ITEMS[0], Item(MUL, "w0_prep", 5), ITEMS[2]],  # a forged max_score
            f"test {MUL} has max_score 5, the manifest's points are 2",
        ),
        ([ITEMS[0], ITEMS[2]], f"1 test(s) of the graded days missing, e.g. {MUL}"),
        (
            [*ITEMS, Item(OTHER, "w0_prep", 1)],
            f"test {OTHER} of day 'w0_prep' is not one the manifest holds",
        ),
        (
            [ITEMS[0], Item(MUL, "w1d1_raytracing", 2), ITEMS[2]],  # counted on another day
            f"test {MUL} of day 'w1d1_raytracing' is not one the manifest holds",
        ),
        ([*ITEMS, ITEMS[0]], f"test {ADD} is listed twice"),
    ],
)
def test_results_must_match_the_trusted_manifest(cohort, fake, items, reason):
    with_manifest(cohort)
    commit = tip(fake, "alpha")
    run_with(fake, "alpha", lambda rid: built(items)(rid, commit=commit))
    done = collected(cohort)
    assert not done.stored and len(done.rejected) == 1 and reason in done.rejected[0], done
    assert not (cohort.dir / store.results_path("alpha", commit)).exists()


def test_results_the_manifest_agrees_with_are_stored(cohort, fake):
    with_manifest(cohort)
    run_with(fake, "alpha", passed=(ADD, MUL))
    commit = tip(fake, "alpha")
    beta = tip(fake, "beta")

    def both_jobs(rid: int) -> dict:
        return {
            "results-cpu": graded("beta", beta, rid),
            "results-gpu": graded("beta", beta, rid, job="gpu", passed=(GPU,)),
        }

    run_with(fake, "beta", both_jobs)
    done = collected(cohort)
    assert done.stored == [f"alpha {commit}", f"beta {beta}"] and not done.rejected


def test_a_stale_manifest_rejects_runs_saying_why(cohort, fake):
    with_manifest(cohort)
    tests = cohort.dir / "template" / "tests"
    (tests / "test_w0_prep.py").write_text((tests / "test_w0_prep.py").read_text() + "\n# edited\n")
    run_with(fake, "alpha")
    done = collected(cohort)
    assert not done.stored and "its tests cannot be checked: " in done.rejected[0]
    assert "stale (test_w0_prep.py changed since it was recorded)" in done.rejected[0]


def test_a_snapshot_without_a_manifest_rejects_runs_saying_why(cohort, fake):
    """No manifest is no check: such a run is rejected, never stored unchecked."""
    (cohort.dir / "template" / "tests" / manifest.FILENAME).unlink()
    run_with(fake, "alpha")
    done = collected(cohort)
    assert not done.stored and "its tests cannot be checked: " in done.rejected[0]
    assert "manifest.json: missing; organizers run `cohort check manifest`" in done.rejected[0]


def test_a_cohort_folder_without_a_snapshot_takes_one_to_check_against(cohort, fake):
    """The dashboard workflow collects in a fresh checkout: cohort.toml and no snapshot."""
    shutil.rmtree(cohort.dir / "template")
    (cohort.dir / "template.json").unlink()
    run_with(fake, "alpha")
    done = collected(roster.load(cohort.dir))
    assert done.stored == [f"alpha {tip(fake, 'alpha')}"] and not done.rejected
    assert (cohort.dir / "template" / "tests" / manifest.FILENAME).is_file()
