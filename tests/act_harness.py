"""Run the grading workflows with nektos/act on this machine, offline (`nox -s actions`).

A `World` in a temp dir holds:
- `github/`: bare repositories standing in for https://github.com (a `url.insteadOf` rewrite in
  the `GIT_CONFIG_GLOBAL` file sends every clone and fetch there);
- the organizers' repository, cloned from this repository's HEAD and pinned as `GRADER_REF`;
- pair repositories made from `template/`, their caller workflow filled in as `cohort generate`
  fills it (plus the harness's inputs: the days to grade, no torch index, the isolation mode);
- a prepared interpreter (a venv over this machine's Python, pip offline) that the setup-python
  stand-in puts on PATH; `tests/actions/*` stand in for every `actions/*` the workflows use.

act runs jobs on the host (`-P ubuntu-latest=-self-hosted`) with its cache server off and no
artifact server (the artifact stand-ins copy files), so it listens on no port.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from cohort.forge.github import CALLER, caller_workflow
from cohort.roster import GitHubSettings
from tests.fake_github import GRADER, GRADER_REF

ROOT = Path(__file__).resolve().parents[1]
STANDINS = ROOT / "tests" / "actions"
ORG = "cohort-org"
WORKFLOWS = [ROOT / ".github/workflows/grade.yml", ROOT / ".github/workflows/cohort-summary.yml"]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "harness",
    "GIT_AUTHOR_EMAIL": "harness@example.invalid",
    "GIT_COMMITTER_NAME": "harness",
    "GIT_COMMITTER_EMAIL": "harness@example.invalid",
}
EDITED_TEST = '''"""Edited by the pair: passes anything."""


def test_{n}():
    assert True
'''
EDITED_CONFTEST = """import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    outcome.get_result().outcome = "passed"
"""


def git(*args: str, cwd: Path, env: dict | None = None) -> str:
    proc = subprocess.run(
        ["git", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV, **(env or {})},
    )
    if proc.returncode:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def used_actions(paths: list[Path] = WORKFLOWS) -> set[str]:
    """Every `actions/<name>@<ref>` a step of `paths` uses (`actions/cache/restore@v4` counts as
    `actions/cache@v4`, the repository act maps)."""
    found = set()
    for path in paths:
        for job in yaml.safe_load(path.read_text())["jobs"].values():
            for step in job.get("steps", []):
                uses = step.get("uses", "")
                if uses.startswith("actions/"):
                    name, ref = uses.split("@")
                    found.add("/".join(name.split("/")[:2]) + "@" + ref)
    return found


def standin(action: str) -> Path:
    """The stand-in folder for `actions/<name>@<ref>`."""
    return STANDINS / action.split("@")[0].split("/")[1]


@dataclass
class Act:
    """One act run: its exit status, its log and the stand-ins' folder (artifacts, pages)."""

    rc: int
    log: str
    out: Path
    seconds: float

    def failures(self) -> str:
        """The log around each failed step (for assertion messages)."""
        lines = [ln for ln in self.log.splitlines() if "unable to get git ref" not in ln]
        picked = [i for i, ln in enumerate(lines) if "❌" in ln or "Failure" in ln]
        return (
            "\n".join(ln for i in picked for ln in lines[max(0, i - 25) : i + 1])
            or self.log[-4000:]
        )

    def artifact(self, name: str) -> dict:
        return json.loads((self.out / "artifacts" / name / "results.json").read_text())


class World:
    def __init__(self, root: Path, days: list[str], isolation: str = "auto"):
        self.root, self.days, self.isolation = root, days, isolation
        self.github = root / "github"
        self.github.mkdir(parents=True)
        self.gitconfig = root / "gitconfig"
        self.gitconfig.write_text(
            f'[url "file://{self.github}/"]\n\tinsteadOf = https://github.com/\n'
            '[init]\n\tdefaultBranch = main\n[protocol "file"]\n\tallow = always\n'
        )
        self.python_bin = self.prepare_python()
        self.organizers = self.organizers_repo()
        self.runs = 0

    # the machine
    def prepare_python(self) -> Path:
        """A venv over this interpreter's packages (torch, the days' dependencies), pip offline
        and without build isolation, so `pip install -e grader[days,kernels]` downloads nothing."""
        venv = self.root / "python"
        subprocess.run(
            [sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True
        )
        # the venv's own old setuptools would shadow this machine's (which builds editables)
        subprocess.run(
            [str(venv / "bin/python"), "-m", "pip", "uninstall", "-q", "-y", "setuptools"],
            check=True,
        )
        (venv / "pip.conf").write_text(
            "[global]\nno-index = true\nno-build-isolation = false\n"
            "disable-pip-version-check = true\n"
        )
        return venv / "bin"

    def bare(self, full: str) -> Path:
        path = self.github / f"{full}.git"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            git("init", "-q", "--bare", str(path), cwd=self.root)
        return path

    def organizers_repo(self) -> Path:
        """This repository's HEAD as the organizers' repository, `main` and tag `GRADER_REF`."""
        work = self.root / "organizers"
        head = git("rev-parse", "HEAD", cwd=ROOT)
        git("clone", "-q", "--no-checkout", str(ROOT), str(work), cwd=self.root)
        git("checkout", "-q", "-B", "main", head, cwd=work)
        git("remote", "set-url", "origin", f"https://github.com/{GRADER}.git", cwd=work)
        bare = self.bare(GRADER)
        git("push", "-q", str(bare), f"{head}:refs/heads/main", cwd=work)
        git("push", "-q", str(bare), f"{head}:refs/tags/{GRADER_REF}", cwd=work)
        return work

    # pairs
    def caller(self) -> str:
        """The template's caller as `cohort generate` fills it, plus the harness's inputs."""
        settings = GitHubSettings(org=ORG, grader_repository=GRADER, grader_ref=GRADER_REF)
        text = caller_workflow((ROOT / "template" / CALLER).read_text(), settings)
        inputs = [
            f"      days: {' '.join(self.days)}",
            "      torch-index-url: ''",
            f"      isolation: '{self.isolation}'",
        ]
        text, n = re.subn(
            r"^(      grader-ref: .*)$",
            lambda m: "\n".join([m.group(1), *inputs]),
            text,
            flags=re.M,
        )
        assert n == 1, "the caller has no grader-ref line"
        return text

    def pair(self, name: str, variant: str) -> tuple[Path, str]:
        """Pair repository `name` from template/: `solutions` (the reference mlab), `stubs`
        (untouched) or `edited-tests` (stubs, tests rewritten to pass anything). Pushed to
        main; returns the working copy and the commit."""
        work = self.root / "pairs" / name
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache")
        shutil.copytree(ROOT / "template", work, ignore=ignore)
        if variant == "solutions":
            shutil.rmtree(work / "mlab")
            shutil.copytree(ROOT / "solutions" / "mlab", work / "mlab", ignore=ignore)
        elif variant == "edited-tests":
            for i, test in enumerate(sorted((work / "tests").glob("test_*.py"))):
                test.write_text(EDITED_TEST.format(n=i))
            (work / "tests" / "conftest.py").write_text(EDITED_CONFTEST)
        else:
            assert variant == "stubs", variant
        (work / CALLER).write_text(self.caller())
        git("init", "-q", "-b", "main", cwd=work)
        git("add", "-A", cwd=work)
        git("commit", "-qm", f"{name}: {variant}", cwd=work)
        git("remote", "add", "origin", f"https://github.com/{ORG}/{name}.git", cwd=work)
        git("push", "-q", str(self.bare(f"{ORG}/{name}")), "HEAD:main", cwd=work)
        return work, git("rev-parse", "HEAD", cwd=work)

    def template_repo(self) -> str:
        """The cohort's template repository, holding the same caller the pairs have."""
        work = self.root / "pair-template"
        (work / ".github" / "workflows").mkdir(parents=True)
        (work / CALLER).write_text(self.caller())
        git("init", "-q", "-b", "main", cwd=work)
        git("add", "-A", cwd=work)
        git("commit", "-qm", "template", cwd=work)
        git("push", "-q", str(self.bare(f"{ORG}/pair-template")), "HEAD:main", cwd=work)
        return f"{ORG}/pair-template"

    # act
    def act(
        self,
        work: Path,
        event: str,
        workflow: Path,
        payload: dict | None = None,
        env: dict | None = None,
        secrets: dict | None = None,
        variables: dict | None = None,
        timeout: float = 600,
    ) -> Act:
        """Run `workflow` of the working copy `work` for `event` under act."""
        self.runs += 1
        out = self.root / "act" / f"run-{self.runs}"
        out.mkdir(parents=True)
        env = {
            "STANDIN_ROOT": str(out),
            "STANDIN_PYTHON_BIN": str(self.python_bin),
            "GIT_CONFIG_GLOBAL": str(self.gitconfig),
            "GITHUB_RUN_ID": str(100 + self.runs),
            **(env or {}),
        }
        args = [
            "act",
            event,
            "-W",
            str(workflow),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--no-skip-checkout",
            "--no-cache-server",
            "--action-cache-path",
            str(self.root / "act-cache"),
            "--local-repository",
            f"{GRADER}@{GRADER_REF}={self.organizers}",
        ]
        for action in sorted(used_actions()):
            args += ["--local-repository", f"{action}={standin(action)}"]
        for key, value in env.items():
            args += ["--env", f"{key}={value}"]
        for key, value in (secrets or {}).items():
            args += ["-s", f"{key}={value}"]
        for key, value in (variables or {}).items():
            args += ["--var", f"{key}={value}"]
        if payload is not None:
            (out / "event.json").write_text(json.dumps(payload))
            args += ["-e", str(out / "event.json")]
        started = time.monotonic()
        proc = subprocess.run(
            args,
            cwd=work,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "GIT_CONFIG_GLOBAL": str(self.gitconfig)},
        )
        log = proc.stdout + proc.stderr
        (out / "act.log").write_text(log)
        return Act(proc.returncode, log, out, time.monotonic() - started)
