"""git for the cohort's repositories: commits made from plain directories, and the environment
that lets git authenticate to GitHub over HTTPS with the token (never on the command line)."""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from cohort.forge.base import ForgeError

IDENTITY = {
    "GIT_AUTHOR_NAME": "cohort",
    "GIT_AUTHOR_EMAIL": "cohort@localhost",
    "GIT_COMMITTER_NAME": "cohort",
    "GIT_COMMITTER_EMAIL": "cohort@localhost",
}


def run(
    *args: str, cwd: Path | None = None, env: dict | None = None, check: bool = True
) -> subprocess.CompletedProcess:
    """Run git without prompting; with `check`, a failure is ForgeError with git's last line."""
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **IDENTITY, **(env or {})}
    proc = subprocess.run(["git", *args], cwd=cwd, env=full_env, capture_output=True, text=True)
    if check and proc.returncode != 0:
        why = (proc.stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise ForgeError(f"git {args[0]} failed{f' in {cwd}' if cwd else ''}: {why}")
    return proc


def out(*args: str, cwd: Path | None = None, env: dict | None = None) -> str:
    return run(*args, cwd=cwd, env=env).stdout.strip()


def auth_env(token: str, git_url: str) -> dict[str, str]:
    """Environment giving git an `Authorization` header for `git_url` (as actions/checkout does)."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{git_url.rstrip('/')}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def write_tree(repo: Path, files: Path) -> str:
    """Store the files under `files` in `repo`'s object database; returns the tree's id."""
    where = git_dir(repo)
    env = {"GIT_DIR": str(where), "GIT_INDEX_FILE": str(where / "cohort-tree-index")}
    try:
        run("add", "--all", ".", cwd=files, env={**env, "GIT_WORK_TREE": str(files)})
        return out("write-tree", env=env)
    finally:
        Path(env["GIT_INDEX_FILE"]).unlink(missing_ok=True)


def commit_tree(repo: Path, tree: str, message: str, *parents: str, date: str = "") -> str:
    """A commit of `tree` in `repo` with `parents`; `date` fixes both dates (same tree, same id)."""
    env = {"GIT_DIR": str(git_dir(repo))}
    if date:
        env |= {"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date}
    args = [a for p in parents for a in ("-p", p)]
    return out("commit-tree", tree, *args, "-m", message, env=env)


def git_dir(repo: Path) -> Path:
    """The git directory of a clone or of a bare repository."""
    return repo / ".git" if (repo / ".git").is_dir() else repo
