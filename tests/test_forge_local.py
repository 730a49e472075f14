"""The local forge: `cohort generate` (idempotent, resumable), the push hook, `cohort serve`.

The helpers at the top build a tiny organizer repository (one day, two cheap tests, no torch) and
cohorts from it; the runner, store and summary tests import them.
"""

from __future__ import annotations

import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cohort import forge, manifest, roster, snapshot, store
from cohort.cli import main
from cohort.errors import CommitNotFound
from cohort.forge.local import LocalForge
from cohort.grading import sandbox
from cohort.snapshot import Template, TemplateError

STUB = '''"""Day w0_prep (tiny test copy)."""


def add(a, b):
    """a + b"""
    raise NotImplementedError("add: see docs/w0_prep.md#add")


def mul(a, b):
    """a * b"""
    raise NotImplementedError("mul: see docs/w0_prep.md#mul")
'''
SOLUTION = STUB.replace(
    'raise NotImplementedError("add: see docs/w0_prep.md#add")', "return a + b"
).replace('raise NotImplementedError("mul: see docs/w0_prep.md#mul")', "return a * b")
TESTS = """import pytest
from mlab import w0_prep as m


@pytest.mark.points(1)
def test_add():
    assert m.add(1, 2) == 3, "add(1, 2) should be 3"


@pytest.mark.points(2)
def test_mul():
    assert m.mul(2, 3) == 6, "mul(2, 3) should be 6"
"""
GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
}


def git(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        ["git", "-c", "commit.gpgsign=false", "-c", "init.defaultBranch=main", *args],
        cwd=cwd,
        env={**os.environ, **GIT_ENV},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, f"git {args}: {proc.stderr}"
    return proc.stdout + proc.stderr


def tiny_organizer(root: Path, tests: str = TESTS) -> Path:
    """An organizer repository (committed) with template/ and solutions/ for one cheap day."""
    files = {
        "template/mlab/__init__.py": "",
        "template/mlab/w0_prep.py": STUB,
        "template/tests/test_w0_prep.py": tests,
        "solutions/mlab/__init__.py": "",
        "solutions/mlab/w0_prep.py": SOLUTION,
    }
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    record_manifest(root)
    git("init", "-q", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-qm", "organizer", cwd=root)
    return root


def record_manifest(root: Path) -> None:
    """Record `template/tests/manifest.json` from a grade of the stubs, as `cohort check
    manifest` does (less its check that every test fails cleanly)."""
    tests = root / "template" / "tests"
    (tests / manifest.FILENAME).unlink(missing_ok=True)
    found = manifest.record(sandbox.grade(root / "template", tests), tests, root / "template")
    (tests / manifest.FILENAME).write_text(manifest.dump(found))


def write_roster(
    cohort_dir: Path, organizer: Path, pairs: list[str], days=("w0_prep",), **grading
) -> roster.Roster:
    """A roster for `pairs` on `days`, with `grading` settings (e.g. test_timeout=5)."""
    cohort_dir.mkdir(parents=True, exist_ok=True)
    text = "\n".join(
        [
            '[cohort]\nname = "test"',
            f'[template]\nrepo = "{organizer}"\nref = "HEAD"',
            "[grading]",
            *(f"{key} = {value}" for key, value in grading.items()),
            *(f'[[pairs]]\nname = "{p}"\nmembers = ["{p}-a", "{p}-b"]' for p in pairs),
            "[days]",
            *(f"{d} = {{ release = 2026-01-05, deadline = 2026-01-06T18:00:00 }}" for d in days),
        ]
    )
    (cohort_dir / roster.FILENAME).write_text(text + "\n")
    return roster.load(cohort_dir)


def new_cohort(
    tmp: Path, organizer: Path, pairs: list[str], days=("w0_prep",), **grading
) -> roster.Roster:
    """A generated cohort in `tmp/cohort`."""
    cohort = write_roster(tmp / "cohort", organizer, pairs, days, **grading)
    forge.generate(cohort, progress=lambda _: None)
    return cohort


def push(
    cohort: roster.Roster, pair: str, files: dict[str, str], work: Path, branch: str = "main"
) -> str:
    """Clone the pair's repository (once), write `files`, commit and push; returns the commit."""
    if not (work / ".git").exists():
        git("clone", "-q", str(cohort.dir / "forge" / f"{pair}.git"), str(work), cwd=work.parent)
    for rel, text in files.items():
        (work / rel).parent.mkdir(parents=True, exist_ok=True)
        (work / rel).write_text(text)
    git("add", "-A", cwd=work)
    git("commit", "-qm", f"work {time.time()}", "--allow-empty", cwd=work)
    git("push", "-q", "origin", f"HEAD:{branch}", cwd=work)
    return git("rev-parse", "HEAD", cwd=work).strip()


@pytest.fixture(scope="session")
def organizer(tmp_path_factory) -> Path:
    return tiny_organizer(tmp_path_factory.mktemp("organizer"))


def pushes(cohort: roster.Roster) -> list[tuple]:
    with sqlite3.connect(cohort.dir / store.DB_NAME) as db:
        return db.execute(
            "SELECT pair, ref, old_commit, new_commit, source FROM pushes ORDER BY id"
        ).fetchall()


def test_generate_creates_bare_repos_starting_from_the_template(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["alpha", "beta"])
    local = forge.connect(cohort)
    assert local.repos() == ["alpha", "beta"]
    clone = tmp_path / "clone"
    git("clone", "-q", local.repo_url("alpha"), str(clone), cwd=tmp_path)
    assert (clone / "mlab" / "w0_prep.py").read_text() == STUB
    assert (clone / "tests" / "test_w0_prep.py").read_text() == TESTS
    assert not (clone / "solutions").exists()
    assert (
        git("log", "--format=%s", cwd=clone)
        .strip()
        .startswith("Start from the cohort template at HEAD")
    )
    assert (cohort.dir / "template" / "tests" / "test_w0_prep.py").exists()  # the trusted snapshot
    assert os.access(cohort.dir / "forge" / "alpha.git" / "hooks" / "post-receive", os.X_OK)


def test_generate_is_idempotent_and_resumes(tmp_path, organizer, capsys):
    cohort = new_cohort(tmp_path, organizer, ["alpha", "beta"])
    local = forge.connect(cohort)
    tips = {p: local.branch_tips(p) for p in local.repos()}
    work = tmp_path / "work"
    work.mkdir()
    pushed = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, work / "alpha")
    # an interrupted run: beta half-made, its final name never reached
    (cohort.dir / "forge" / "beta.git").rename(cohort.dir / "forge" / ".beta.git.partial-99999")
    assert main(["generate", "--dir", str(cohort.dir)]) == 0
    out = capsys.readouterr().out
    assert "alpha: exists" in out and "beta: created" in out and "1 created, 1 already there" in out
    assert local.branch_tips("alpha") == {"refs/heads/main": pushed}  # the pair's work is untouched
    assert local.branch_tips("beta") == tips["beta"]
    assert not list((cohort.dir / "forge").glob(".beta*"))


def test_generate_with_a_relative_cohort_dir(tmp_path, organizer, monkeypatch):
    write_roster(tmp_path / "rel", organizer, ["p1"])
    monkeypatch.chdir(tmp_path)
    assert main(["generate", "--dir", "rel"]) == 0
    assert (tmp_path / "rel" / "forge" / "p1.git").is_dir()


def test_pairs_added_after_a_template_update_start_from_it(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["alpha"])
    local = forge.connect(cohort)
    updated = tmp_path / "updated"
    shutil.copytree(cohort.dir / "template", updated)
    (updated / "mlab" / "w0_prep.py").write_text(STUB + "\n# fixed in the update\n")
    newer = Template(updated, "HEAD", "f" * 40, "2026-01-07T09:00:00+00:00")
    assert local.create_repo(roster.Pair("beta", ("b1", "b2")), newer)
    clone = tmp_path / "beta"
    git("clone", "-q", local.repo_url("beta"), str(clone), cwd=tmp_path)
    assert (clone / "mlab" / "w0_prep.py").read_text().endswith("# fixed in the update\n")
    assert local.initial_commit("alpha") != local.initial_commit("beta")
    assert local.initial_commit("beta") == git("rev-parse", "HEAD", cwd=clone).strip()


def test_hook_records_branch_pushes_not_tags_or_deletions(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["alpha"])
    work = tmp_path / "alpha"
    first = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, work)
    second = push(cohort, "alpha", {"notes.txt": "x"}, work, branch="feature")
    git("tag", "v1", cwd=work)
    git("push", "-q", "origin", "v1", cwd=work)
    git("push", "-q", "origin", "--delete", "feature", cwd=work)
    initial = forge.connect(cohort).initial_commit("alpha")
    assert pushes(cohort) == [
        ("alpha", "refs/heads/main", initial, first, "hook"),
        ("alpha", "refs/heads/feature", None, second, "hook"),
    ]


def test_export_writes_a_commit_and_rejects_unknown_ones(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["alpha"])
    commit = push(cohort, "alpha", {"mlab/w0_prep.py": SOLUTION}, tmp_path / "alpha")
    local = LocalForge(cohort.dir)
    got = local.export("alpha", commit, tmp_path / "out")
    assert got.commit == commit and got.committed_at[:4].isdigit()
    assert (tmp_path / "out" / "mlab" / "w0_prep.py").read_text() == SOLUTION
    assert not (tmp_path / "out" / ".git").exists()
    with pytest.raises(CommitNotFound, match="no commit 0123456789ab"):
        local.export("alpha", "0123456789ab" * 3 + "0123", tmp_path / "out2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_lets_pairs_clone_and_push_over_git_protocol(tmp_path, organizer):
    cohort = new_cohort(tmp_path, organizer, ["alpha"])
    port = _free_port()
    server = subprocess.Popen(
        LocalForge(cohort.dir).serve_command("127.0.0.1", port),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        url = f"git://127.0.0.1:{port}/alpha.git"
        for _ in range(100):
            if subprocess.run(["git", "ls-remote", url], capture_output=True).returncode == 0:
                break
            time.sleep(0.1)
        work = tmp_path / "work"
        git("clone", "-q", url, str(work), cwd=tmp_path)
        (work / "mlab" / "w0_prep.py").write_text(SOLUTION)
        git("commit", "-qam", "solve", cwd=work)
        told = git("push", "origin", "main", cwd=work)
        commit = git("rev-parse", "HEAD", cwd=work).strip()
        with pytest.raises(AssertionError):  # the template seed is not served
            git("ls-remote", f"git://127.0.0.1:{port}/.template.git", cwd=tmp_path)
    finally:
        server.terminate()
        server.wait()
    assert "queued for grading" in told
    assert pushes(cohort)[-1][3] == commit


@pytest.mark.bench
@pytest.mark.slow
def test_bench_generate_40_pairs(tmp_path):
    """`cohort generate` for 40 pairs from this repository's template: target under 20 s."""
    root = Path(__file__).resolve().parents[1]
    cohort = write_roster(tmp_path / "c", root, [f"pair-{i:02d}" for i in range(1, 41)])
    cmd = [sys.executable, "-m", "cohort", "generate", "--dir", str(cohort.dir)]
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    first = time.perf_counter() - started
    started = time.perf_counter()
    subprocess.run(cmd, check=True, capture_output=True)
    again = time.perf_counter() - started
    assert len(forge.connect(cohort).repos()) == 40
    print(
        f"\nbench generate: 40 pairs in {first:.2f} s (target 20 s: ratio {first / 20:.2f}); "
        f"re-run (all exist) {again:.2f} s"
    )


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        ({"template/tests/manifest.json": None}, "missing"),
        (
            {"template/tests/test_w0_prep.py": TESTS + "\n# a comment\n"},
            "stale (test_w0_prep.py changed since it was recorded)",
        ),
        (
            {"template/tests/test_w0_new.py": "def test_new():\n    pass\n"},
            "stale (test_w0_new.py is new since it was recorded)",
        ),
        (
            {"template/mlab/w0_prep.py": STUB.replace('"""a + b"""', '"""a + b"""\n    a = +a')},
            "stale (the stub of mlab/w0_prep.py:add changed since it was recorded)",
        ),
    ],
)
def test_the_snapshot_refuses_a_template_whose_manifest_is_missing_or_stale(
    tmp_path, organizer, edit, why
):
    org = Path(shutil.copytree(organizer, tmp_path / "organizer"))
    for rel, text in edit.items():
        (org / rel).unlink() if text is None else (org / rel).write_text(text)
    git("add", "-A", cwd=org)
    git("commit", "-qm", "edit", cwd=org)
    cohort_dir = tmp_path / "cohort"
    cohort_dir.mkdir()
    with pytest.raises(TemplateError) as e:
        snapshot.take(roster.TemplateSource(org, "HEAD"), cohort_dir)
    assert str(e.value) == (
        f"{org}: template/tests/manifest.json at ref 'HEAD': {why}; "
        "organizers run `cohort check manifest`"
    )
    assert list(cohort_dir.iterdir()) == []  # nothing taken, nothing left half-written
    record_manifest(org)
    git("add", "-A", cwd=org)
    git("commit", "-qm", "re-record the manifest", cwd=org)
    assert snapshot.take(roster.TemplateSource(org, "HEAD"), cohort_dir).tests.is_dir()
