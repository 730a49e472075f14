"""git, run one way for every caller: never prompting, output captured, and a failure raised as one
line naming the command, where it ran and git's last word on it.

Commits are made by the cohort's identity unless the caller's `env` names another (the demo's
pairs), never signed, so they work on a machine with no git configuration. Trees can be written
from a plain directory (`write_tree`) and committed with fixed dates (`commit_tree`), which makes
the same files the same commit id.
"""

from __future__ import annotations

import base64
import os
import subprocess
from pathlib import Path

from cohort.errors import GitError

IDENTITY = {
    "GIT_AUTHOR_NAME": "cohort",
    "GIT_AUTHOR_EMAIL": "cohort@localhost",
    "GIT_COMMITTER_NAME": "cohort",
    "GIT_COMMITTER_EMAIL": "cohort@localhost",
}


def run(
    *args: str,
    cwd: Path | None = None,
    git_dir: Path | None = None,
    env: dict | None = None,
    check: bool = True,
    text: bool = True,
    timeout: float | None = None,
) -> subprocess.CompletedProcess:
    """Run `git <args>`; with `check`, a non-zero exit raises GitError. A git that cannot be
    started or runs past `timeout` raises GitError either way."""
    cmd = ["git", "-c", "commit.gpgsign=false"]
    cmd += [*(["--git-dir", str(git_dir)] if git_dir else []), *args]
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **IDENTITY, **(env or {})}
    where = f" in {git_dir or cwd}" if git_dir or cwd else ""
    try:
        proc = subprocess.run(
            cmd, cwd=cwd, env=full_env, capture_output=True, text=text, timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise GitError(f"git {args[0]}{where}: {e}") from None
    if check and proc.returncode != 0:
        stderr = proc.stderr if text else proc.stderr.decode(errors="replace")
        why = (stderr.strip().splitlines() or [f"exit {proc.returncode}"])[-1]
        raise GitError(f"git {args[0]} failed{where}: {why}")
    return proc


def out(*args: str, **kwargs) -> str:
    """The stripped standard output of `git <args>` (as `run`)."""
    return run(*args, **kwargs).stdout.strip()


def auth_env(token: str, git_url: str) -> dict[str, str]:
    """Environment giving git an `Authorization` header for `git_url` (as actions/checkout does),
    so the token is never on a command line."""
    basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{git_url.rstrip('/')}/.extraheader",
        "GIT_CONFIG_VALUE_0": f"AUTHORIZATION: basic {basic}",
    }


def git_dir(repo: Path) -> Path:
    """The git directory of a clone or of a bare repository."""
    return repo / ".git" if (repo / ".git").is_dir() else repo


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
