"""Per-day grading: fingerprints decide what a push grades, the rest is carried over; each day is
stored as it finishes; re-grades after a template update or on demand; `cohort changed-days`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from cohort import manifest, roster, runner, store
from cohort.cli import main
from cohort.grading import fingerprint
from cohort.runner import queue
from tests.test_forge_local import (
    SOLUTION,
    STUB,
    TESTS,
    git,
    new_cohort,
    push,
    record_manifest,
)

DAYS = ("w0_prep", "w1d1_raytracing")
RAY_STUB = 'def ray():\n    raise NotImplementedError("ray: see docs/w1d1_raytracing.md#ray")\n'
RAY_SOLUTION = "def ray():\n    return 1\n"
RAY_TESTS = """import pytest
from mlab import w1d1_raytracing as r


@pytest.mark.points(1)
def test_ray():
    assert r.ray() == 1, "ray() should be 1"
"""


def two_day_organizer(root: Path) -> Path:
    files = {
        "template/mlab/__init__.py": "",
        "template/mlab/w0_prep.py": STUB,
        "template/mlab/w1d1_raytracing.py": RAY_STUB,
        "template/tests/test_w0_prep.py": TESTS,
        "template/tests/test_w1d1_raytracing.py": RAY_TESTS,
        "solutions/mlab/__init__.py": "",
        "solutions/mlab/w0_prep.py": SOLUTION,
        "solutions/mlab/w1d1_raytracing.py": RAY_SOLUTION,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    record_manifest(root)
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "organizer", cwd=root)
    return root


@pytest.fixture(scope="module")
def organizer(tmp_path_factory) -> Path:
    return two_day_organizer(tmp_path_factory.mktemp("organizer"))


@pytest.fixture
def cohort(tmp_path, organizer) -> roster.Roster:
    return new_cohort(tmp_path, organizer, ["alpha"], DAYS)


def grade(cohort: roster.Roster) -> None:
    assert runner.run(cohort, workers=1, once=True, progress=lambda _: None) == 0


def days_of(cohort: roster.Roster, commit: str) -> dict:
    """extra_data.days of the commit's results.json."""
    return json.loads((cohort.dir / "results" / "alpha" / f"{commit}.json").read_text())[
        "extra_data"
    ]


def rows(cohort: roster.Roster, commit: str) -> dict[str, tuple]:
    """The store's rows of a commit: day -> (score, measured on, carried over)."""
    db = store.connect(cohort.dir)
    try:
        return {
            r.day: (r.score, r.measured_commit, r.carried_over)
            for r in store.day_scores(db)
            if r.commit == commit
        }
    finally:
        db.close()


def test_day_of_a_path():
    days = set(DAYS)
    assert fingerprint.day_of("mlab/w0_prep.py", days) == "w0_prep"
    assert fingerprint.day_of("mlab/w1d1_raytracing/render.py", days) == "w1d1_raytracing"
    assert fingerprint.day_of("mlab/w1d1_raytracing_assets/scene.stl", days) == "w1d1_raytracing"
    assert fingerprint.day_of("mlab/__init__.py", days) == fingerprint.SHARED
    assert fingerprint.day_of("mlab/w0_prep_helpers.py", days) == fingerprint.SHARED
    assert fingerprint.day_of("README.md", days) is None
    assert fingerprint.day_of("mlab/__pycache__/w0_prep.cpython-311.pyc", days) is None
    assert fingerprint.changed_days(["mlab/w0_prep.py", "NOTES.md"], list(DAYS)) == ["w0_prep"]
    assert fingerprint.changed_days(["mlab/__init__.py"], list(DAYS)) == list(DAYS)


def test_a_push_grades_the_days_it_changed_and_carries_the_others_over(tmp_path, cohort):
    work = tmp_path / "work"
    first = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, work)
    grade(cohort)
    extra = days_of(cohort, first)
    assert extra["graded_days"] == list(DAYS) and extra["carried_days"] == []
    assert rows(cohort, first) == {
        "w0_prep": (3, first, False),
        "w1d1_raytracing": (0, first, False),
    }

    second = push(cohort, "alpha", {"mlab/w1d1_raytracing.py": RAY_SOLUTION}, work)
    grade(cohort)
    extra = days_of(cohort, second)
    assert extra["graded_days"] == ["w1d1_raytracing"] and extra["carried_days"] == ["w0_prep"]
    assert extra["days"]["w0_prep"]["commit"] == first and extra["days"]["w0_prep"]["carried_over"]
    assert extra["days"]["w1d1_raytracing"] | {"fingerprint": "", "files": ""} == {
        "score": 1,
        "max_score": 1,
        "passed": 1,
        "total": 1,
        "commit": second,
        "carried_over": False,
        "fingerprint": "",
        "files": "",
    }
    assert rows(cohort, second) == {
        "w0_prep": (3, first, True),
        "w1d1_raytracing": (1, second, False),
    }
    doc = json.loads((cohort.dir / "results" / "alpha" / f"{second}.json").read_text())
    assert doc["score"] == 4 and {t["tags"][0] for t in doc["tests"]} == set(DAYS)

    third = push(cohort, "alpha", {"mlab/__init__.py": "# shared\n"}, work)  # counts for every day
    fourth = push(cohort, "alpha", {"NOTES.md": "no code\n"}, work)  # counts for none
    grade(cohort)
    assert days_of(cohort, third)["graded_days"] == list(DAYS)
    assert days_of(cohort, fourth)["carried_days"] == list(DAYS)
    assert rows(cohort, fourth) == {
        "w0_prep": (3, third, True),
        "w1d1_raytracing": (1, third, True),
    }
    db = store.connect(cohort.dir)
    assert db.execute(
        "SELECT score, max_score FROM results WHERE commit_sha = ?", (fourth,)
    ).fetchone() == (4, 4)
    assert db.execute("SELECT COUNT(*) FROM day_scores").fetchone()[0] == 8  # 4 commits x 2 days


def _update_tests(cohort: roster.Roster) -> None:
    """A template update as `cohort sync` promotes it: new trusted tests, new template.json."""
    tests = cohort.dir / "template" / "tests"
    for name in ("test_w0_prep.py", "test_w1d1_raytracing.py"):
        (tests / name).write_text((tests / name).read_text() + "\n# updated\n")
    found = manifest.load(tests)
    found.files = manifest.tests_digest(tests)  # re-recorded with them: same tests, new hashes
    (tests / manifest.FILENAME).write_text(manifest.dump(found))
    meta = cohort.dir / "template.json"
    meta.write_text(json.dumps({**json.loads(meta.read_text()), "taken_at": "later"}))


def test_a_template_update_regrades_latest_commits_and_changed_days_go_first(tmp_path, cohort):
    work = tmp_path / "work"
    first = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, work)
    grade(cohort)
    _update_tests(cohort)
    grade(cohort)  # the runner sees the new tests: alpha's latest commit is graded again
    assert days_of(cohort, first)["graded_days"] == list(DAYS)
    db = store.connect(cohort.dir)
    assert db.execute("SELECT COUNT(*) FROM day_scores").fetchone()[0] == 2  # replaced, not added
    assert db.execute("SELECT state, priority FROM jobs").fetchall() == [("done", queue.REGRADE)]

    _update_tests(cohort)
    second = push(cohort, "alpha", {"mlab/w1d1_raytracing.py": RAY_SOLUTION}, work)
    grade(cohort)  # new tests for both days; the day the pair changed is graded first
    assert days_of(cohort, second)["graded_days"] == ["w1d1_raytracing", "w0_prep"]


def test_fresh_pushes_go_before_regrades(tmp_path, cohort):
    db = store.connect(cohort.dir)
    store.record_push(db, "alpha", "refs/heads/main", None, "c1")
    store.record_push(db, "beta", "refs/heads/main", None, "c2")
    for _ in range(2):
        queue.finish(db, queue.claim(db, "me:1", 60), "me:1")
    assert queue.regrade(db, days=["w0_prep"]) == [("alpha", "c1"), ("beta", "c2")]
    store.record_push(db, "gamma", "refs/heads/main", None, "c3")
    order = [queue.claim(db, f"me:{i}", 60) for i in range(3)]
    assert [(j.pair, j.force_days) for j in order] == [
        ("gamma", None),
        ("alpha", "w0_prep"),
        ("beta", "w0_prep"),
    ]
    assert order[1].forced("w0_prep") and not order[1].forced("w1d1_raytracing")
    queue.regrade(db, "beta")  # asked while beta's job runs: queued again when it finishes
    queue.finish(db, order[2], "me:2")
    again = queue.claim(db, "me:3", 60)
    assert (again.pair, again.force_days) == ("beta", queue.ALL_DAYS)


def test_cohort_regrade_replaces_that_commits_rows_and_keeps_history(tmp_path, cohort, capsys):
    work = tmp_path / "work"
    first = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, work)
    second = push(cohort, "alpha", {"mlab/w1d1_raytracing.py": RAY_SOLUTION}, work)
    grade(cohort)
    before = rows(cohort, first)
    assert main(["regrade", "--dir", str(cohort.dir), "--day", "w0_prep"]) == 0
    assert f"alpha: {second[:10]} queued for a re-grade of w0_prep" in capsys.readouterr().out
    grade(cohort)
    extra = days_of(cohort, second)
    assert extra["graded_days"] == ["w0_prep"] and extra["carried_days"] == ["w1d1_raytracing"]
    assert rows(cohort, second) == {
        "w0_prep": (3, second, False),
        "w1d1_raytracing": (1, second, False),
    }
    assert rows(cohort, first) == before
    db = store.connect(cohort.dir)
    assert db.execute("SELECT COUNT(*) FROM day_scores").fetchone()[0] == 4
    assert main(["regrade", "--dir", str(cohort.dir), "--day", "w9"]) == 2
    assert "not a day of" in capsys.readouterr().err


def test_each_day_is_stored_as_it_finishes(tmp_path, cohort):
    slow = "import time\ntime.sleep(4)\n" + RAY_SOLUTION
    commit = push(
        cohort,
        "alpha",
        {"mlab/w0_prep.py": SOLUTION, "mlab/w1d1_raytracing.py": slow},
        tmp_path / "w",
    )
    thread = threading.Thread(target=grade, args=(cohort,))
    thread.start()
    seen, deadline = {}, time.monotonic() + 60
    while not seen and time.monotonic() < deadline:
        time.sleep(0.1)
        seen = rows(cohort, commit)
        with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
            state = db.execute("SELECT state FROM jobs").fetchone()[0]
    thread.join()
    assert seen == {"w0_prep": (3, commit, False)} and state == "running"
    assert rows(cohort, commit) == {
        "w0_prep": (3, commit, False),
        "w1d1_raytracing": (1, commit, False),
    }


def test_changed_days_between_two_commits(tmp_path, organizer, capsys):
    clone = tmp_path / "pair"  # a pair's clone: the template at its root
    shutil.copytree(organizer / "template", clone)
    git("init", "-q", cwd=clone)
    git("add", "-A", cwd=clone)
    git("commit", "-qm", "template", cwd=clone)
    repo, tests = clone, str(organizer / "template" / "tests")
    base = git("rev-parse", "HEAD", cwd=clone).strip()

    def commit(rel: str) -> str:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text(f"# {time.time()}\n")
        git("add", "-A", cwd=clone)
        git("commit", "-qm", rel, cwd=clone)
        return git("rev-parse", "HEAD", cwd=clone).strip()

    def changed(before: str, after: str = "HEAD") -> str:
        assert (
            main(
                ["changed-days", str(clone), "--tests", tests, "--before", before, "--after", after]
            )
            == 0
        )
        return capsys.readouterr().out.strip()

    one = commit("mlab/w1d1_raytracing_assets/scene.txt")
    assert changed(base) == "w1d1_raytracing"
    two = commit("mlab/w0_prep.py")
    assert changed(one) == "w0_prep" and changed(base) == "w0_prep w1d1_raytracing"
    commit("mlab/__init__.py")
    assert changed(two) == "w0_prep w1d1_raytracing"
    every = "w0_prep w1d1_raytracing"
    assert changed("0" * 40) == every and changed("") == every and changed("f" * 40) == every
    three = commit("NOTES.md")
    commit("tests/test_w0_prep.py")  # a template update
    assert changed(three) == every


@pytest.mark.slow
def test_a_runner_killed_between_days_resumes_without_regrading_or_duplicating(tmp_path, cohort):
    slow = "import time\ntime.sleep(6)\n" + RAY_SOLUTION
    commit = push(
        cohort,
        "alpha",
        {"mlab/w0_prep.py": SOLUTION, "mlab/w1d1_raytracing.py": slow},
        tmp_path / "w",
    )
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    cmd = [sys.executable, "-m", "cohort", "runner", "--dir", str(cohort.dir), "--once"]
    first = subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not rows(cohort, commit) and time.monotonic() < deadline:
        time.sleep(0.05)
    os.killpg(first.pid, signal.SIGKILL)  # mid-job: w0_prep stored, w1d1_raytracing running
    first.wait()
    assert rows(cohort, commit) == {"w0_prep": (3, commit, False)}
    again = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0, again.stderr
    with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
        assert db.execute("SELECT state, attempts FROM jobs").fetchall() == [("done", 2)]
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 1
    assert rows(cohort, commit) == {
        "w0_prep": (3, commit, False),
        "w1d1_raytracing": (1, commit, False),
    }
    assert days_of(cohort, commit)["graded_days"] == ["w1d1_raytracing"]  # w0_prep was kept


def test_the_dashboard_once_written_is_refreshed_as_days_are_stored(tmp_path, cohort):
    grade(cohort)
    assert main(["summary", "--dir", str(cohort.dir)]) == 0
    commit = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, tmp_path / "w")
    grade(cohort)
    csv = (cohort.dir / "site" / "scores.csv").read_text()
    assert f"alpha,w0_prep,3.0,3.0,2,2,{commit}" in csv, csv


def test_fingerprints_follow_a_days_files_the_shared_files_and_the_tests(tmp_path, organizer):
    repo, tests = tmp_path / "pair", tmp_path / "tests"
    shutil.copytree(organizer / "template", repo)
    shutil.copytree(organizer / "template" / "tests", tests)
    known = fingerprint.known_days(tests)

    def prints() -> dict[str, str]:
        files = fingerprint.file_digests(repo, list(DAYS), known)
        return {d: fingerprint.fingerprint(files[d], fingerprint.tests_digest(tests)) for d in DAYS}

    start = prints()
    (repo / "tests" / "test_w0_prep.py").write_text("# the pair's copy counts for nothing\n")
    (repo / "NOTES.md").write_text("notes\n")
    assert prints() == start
    (repo / "mlab" / "w0_prep.py").write_text(SOLUTION)
    w0 = prints()
    assert w0["w0_prep"] != start["w0_prep"] and w0["w1d1_raytracing"] == start["w1d1_raytracing"]
    (repo / "mlab" / "w1d1_raytracing_assets").mkdir()
    (repo / "mlab" / "w1d1_raytracing_assets" / "x.txt").symlink_to("/etc/passwd")  # not followed
    ray = prints()
    assert ray["w0_prep"] == w0["w0_prep"] and ray["w1d1_raytracing"] != w0["w1d1_raytracing"]
    (repo / "mlab" / "__init__.py").write_text("# shared\n")
    shared = prints()
    assert all(shared[d] != ray[d] for d in DAYS)
    (tests / "conftest.py").write_text("# a helper of the trusted tests\n")
    assert all(prints()[d] != shared[d] for d in DAYS)


def test_cohort_grade_records_every_days_fingerprint(tmp_path, organizer, capsys):
    repo, tests = tmp_path / "pair", organizer / "template" / "tests"
    shutil.copytree(organizer / "template", repo)
    out = tmp_path / "results.json"
    argv = ["grade", str(repo), "--tests", str(tests), "--day", "w0_prep", "--out", str(out), "-q"]
    assert main(argv) == 0
    extra = json.loads(out.read_text())["extra_data"]
    both = fingerprint.day_fingerprints(repo, tests, list(DAYS))
    assert extra["fingerprints"] == {d: fp for d, (_, fp) in both.items()}
    assert extra["days"]["w0_prep"]["fingerprint"] == both["w0_prep"][1]
    assert list(extra["days"]) == ["w0_prep"]  # the other day's fingerprint is for carrying over
