"""Local-mode feedback: what `git push` tells a pair, the pages the runner refreshes after each
job, and `cohort status` in the terminal."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohort import store
from cohort.cli import main
from cohort.runner import hook
from tests.test_forge_local import SOLUTION, git, new_cohort, push, tiny_organizer
from tests.test_summary import LONG, marked  # noqa: F401 - a fixture


@pytest.fixture(scope="module")
def organizer(tmp_path_factory) -> Path:
    return tiny_organizer(tmp_path_factory.mktemp("organizer"))


def test_a_push_says_where_results_appear_and_the_runner_writes_the_pages(
    tmp_path, organizer, capfd
):
    cohort = new_cohort(tmp_path, organizer, ["alpha", "beta"])
    work = tmp_path / "alpha"
    push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, work)
    (work / "notes.txt").write_text("x")
    git("add", "notes.txt", cwd=work)
    git("commit", "-qm", "notes", cwd=work)
    told = git("push", "origin", "main", cwd=work)
    assert "queued for grading" in told
    assert f"{cohort.dir / 'site' / 'pairs' / 'alpha.html'}" in told
    assert f"cohort status --dir {cohort.dir} --pair alpha" in told
    assert main(["runner", "--dir", str(cohort.dir), "--once"]) == 0
    page = cohort.dir / "site" / "pairs" / "alpha.html"
    assert page.is_file() and "3/3" in page.read_text()  # no `cohort summary` needed
    capfd.readouterr()
    assert main(["status", "--dir", str(cohort.dir)]) == 0
    out = capfd.readouterr().out
    assert "alpha" in out and "1 of 1" in out and "no push" in out.split("beta")[1]


def test_status_of_a_pair_shows_latest_scores_and_whole_failures(marked, capsys):  # noqa: F811
    assert main(["status", "--dir", str(marked.dir), "--pair", "alpha"]) == 0
    out = capsys.readouterr().out
    assert "w0_prep" in out and "1/5" in out and "1 not started" in out
    assert LONG.strip() in out and "test_hang" in out and "test_todo" not in out
    assert f"pages: {marked.dir / 'site' / 'pairs' / 'alpha.html'}" in out
    assert main(["status", "--dir", str(marked.dir), "--pair", "nobody"]) == 2
    assert "no pair 'nobody'" in capsys.readouterr().err


def test_status_of_a_cohort_never_graded_creates_no_store(tmp_path, organizer, capsys):
    cohort = new_cohort(tmp_path, organizer, ["alpha"])
    (cohort.dir / store.DB_NAME).unlink(missing_ok=True)
    assert main(["status", "--dir", str(cohort.dir)]) == 0
    assert "no push" in capsys.readouterr().out
    assert not (cohort.dir / store.DB_NAME).exists()


def test_the_hook_message_names_the_pages_and_the_status_command(tmp_path):
    told = hook.record(tmp_path, "alpha", [f"{'0' * 40} {'a' * 40} refs/heads/main"])
    assert told[0].startswith("cohort: main at aaaaaaaaaa queued for grading")
    assert told[1] == f"cohort: results, once graded: {tmp_path.resolve()}/site/pairs/alpha.html"
