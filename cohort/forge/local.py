"""The local forge: one bare git repository per pair under `<cohort>/forge/`, no account anywhere.

Pairs clone and push with plain git, by file path or through `cohort serve` (git daemon). Each
repository's post-receive hook runs `cohort.runner.hook`, which queues the push for grading.
Creating a repository happens in a hidden `.partial` directory renamed into place at the end, so
an interrupted `cohort generate` leaves nothing half-made behind the real name.
"""

from __future__ import annotations

import io
import os
import shlex
import shutil
import sys
import tarfile
from pathlib import Path

import cohort
from cohort import git
from cohort.errors import CommitNotFound, GitError, RepoNotFound
from cohort.forge.base import Exported, Forge
from cohort.roster import Pair, Roster
from cohort.snapshot import Template

FORGE_DIR = "forge"
SEED = ".template.git"  # holds the template commit every pair repository starts from
BRANCH = "main"
HOOK = """\
#!/bin/sh
# Written by `cohort generate`: queue every push to this repository for grading.
PYTHONPATH={src}${{PYTHONPATH:+:$PYTHONPATH}} exec {python} -m cohort.runner.hook {cohort_dir} {pair}
"""


class LocalForge(Forge):
    def __init__(self, cohort_dir: Path):
        self.cohort_dir = cohort_dir.resolve()
        self.root = self.cohort_dir / FORGE_DIR
        self._seeded = False

    def path(self, pair: str) -> Path:
        return self.root / f"{pair}.git"

    def _existing(self, pair: str) -> Path:
        path = self.path(pair)
        if not (path / "HEAD").exists():
            raise RepoNotFound(f"{path}: no repository for pair {pair!r} (run `cohort generate`)")
        return path

    def _seed(self, template: Template) -> Path:
        """The repository holding the template commit, remade when the snapshot changes
        (after `cohort sync`), so pairs added later start from the current template."""
        seed = self.root / SEED
        stamp = f"{template.commit or 'worktree'} {template.taken_at}\n"
        made_from = seed / "cohort-template"
        if self._seeded or (made_from.exists() and made_from.read_text() == stamp):
            self._seeded = True
            return seed
        partial = self.root / f"{SEED}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        git.run("init", "--bare", "--quiet", f"--initial-branch={BRANCH}", str(partial))
        tree = git.write_tree(partial, template.path)
        at = f" at {template.ref} ({template.commit[:12]})" if template.commit else " (work tree)"
        message = f"Start from the cohort template{at}"
        commit = git.commit_tree(partial, tree, message, date=template.taken_at)
        git.run("update-ref", f"refs/heads/{BRANCH}", commit, git_dir=partial)
        (partial / "cohort-template").write_text(stamp)
        shutil.rmtree(seed, ignore_errors=True)
        partial.rename(seed)
        self._seeded = True
        return seed

    def install_hook(self, repo: Path, pair: str) -> bool:
        """Write the post-receive hook (again, if the cohort moved or Python changed); True if new."""
        hook = repo / "hooks" / "post-receive"
        text = HOOK.format(
            src=shlex.quote(str(Path(cohort.__file__).resolve().parents[1])),
            python=shlex.quote(sys.executable),
            cohort_dir=shlex.quote(str(self.cohort_dir)),
            pair=shlex.quote(pair),
        )
        if hook.exists() and hook.read_text() == text:
            return False
        hook.parent.mkdir(exist_ok=True)
        hook.write_text(text)
        hook.chmod(0o755)
        return True

    def create_repo(self, pair: Pair, template: Template) -> bool:
        final = self.path(pair.name)
        if (final / "HEAD").exists():
            self.install_hook(final, pair.name)
            return False
        self.root.mkdir(parents=True, exist_ok=True)
        for stale in self.root.glob(f".{pair.name}.git.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)
        partial = self.root / f".{pair.name}.git.partial-{os.getpid()}"
        shutil.copytree(
            self._seed(template), partial
        )  # a bare repository is files: main at the template
        (partial / "description").write_text(f"{pair.name}: {', '.join(pair.members)}\n")
        with (partial / "config").open("a") as config:
            config.write("[receive]\n\tdenyDeleteCurrent = true\n")
        (partial / "git-daemon-export-ok").touch()  # `cohort serve` exports pair repositories only
        self.install_hook(partial, pair.name)
        partial.rename(final)
        return True

    def repos(self) -> list[str]:
        if not self.root.is_dir():
            return []
        return sorted(
            p.name.removesuffix(".git")
            for p in self.root.glob("*.git")
            if not p.name.startswith(".") and (p / "HEAD").exists()
        )

    def repo_url(self, pair: str) -> str:
        return str(self.path(pair))

    def initial_commit(self, pair: str) -> str | None:
        """The template commit the pair's repository was created with: the root of its main
        (None when it has no repository)."""
        try:
            roots = git.out(
                "rev-list", "--max-parents=0", f"refs/heads/{BRANCH}", git_dir=self._existing(pair)
            ).split()
        except GitError:
            return None
        return roots[-1] if roots else None

    def branch_tips(self, pair: str) -> dict[str, str]:
        out = git.out(
            "for-each-ref",
            "--format=%(refname) %(objectname)",
            "refs/heads",
            git_dir=self._existing(pair),
        )
        return dict(line.split() for line in out.splitlines() if line.strip())

    def export(self, pair: str, commit: str, dest: Path) -> Exported:
        repo = self._existing(pair)
        try:
            committed_at = git.out(
                "log", "-1", "--format=%cI", f"{commit}^{{commit}}", "--", git_dir=repo
            )
        except GitError:
            raise CommitNotFound(f"{repo}: no commit {commit[:12]}") from None
        data = git.run("archive", "--format=tar", commit, git_dir=repo, text=False).stdout
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            tar.extractall(dest, filter="data")
        return Exported(commit, committed_at)

    def serve_command(self, host: str, port: int) -> list[str]:
        """git daemon serving every pair repository for clone and push (no authentication)."""
        return [
            "git",
            "daemon",
            "--reuseaddr",
            "--enable=receive-pack",
            "--informative-errors",
            f"--base-path={self.root}",
            f"--listen={host}",
            f"--port={port}",
            str(self.root),
        ]


def connect(roster: Roster) -> LocalForge:
    return LocalForge(roster.dir)
