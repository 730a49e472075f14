"""`cohort sync`: bring a template update (fixed tests, a new day) to every pair as a branch
`template-update-<version>` based on the pair's main and, on GitHub, a pull request. The pairs'
main is never rewritten: they merge the update when they are ready.

The update is the difference between the cohort's template snapshot and the template at the
roster's ref now (taken into `.template-update/`), applied to each pair's main as a three-way
merge with the old snapshot as the base: files changed upstream take the change, files deleted
upstream are deleted, and a file the pair changed too gets the change merged or, where both
changed the same lines, conflict markers (listed in the pull request and in the report; the pair
resolves them on the branch). One pair's conflict or failure does not stop the others.

Re-runs are idempotent: a pair whose branch exists is left alone (its pull request is opened if
missing). When every pair has its branch, the new snapshot becomes the cohort's (the local
runner grades with its tests from then on) and, on GitHub, the template repository is updated.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cohort import git, snapshot
from cohort.errors import CohortError, ForgeError, TemplateError
from cohort.forge.base import Forge
from cohort.forge.github import BRANCH, GitHubForge
from cohort.roster import Roster

UPDATE_DIR = ".template-update"  # the update being synced: template/ and template.json
BRANCH_PREFIX = "template-update-"
WORKFLOWS = ".github/workflows/"
FIXED_DATE = "2000-01-01T00:00:00+00:00"  # the snapshot commits are scaffolding, never pushed
OK = ("proposed", "conflicts", "exists", "current")


@dataclass(frozen=True)
class PairSync:
    pair: str
    outcome: str  # proposed | conflicts | exists | current | failed
    detail: str = ""  # pull request or branch, conflicting files, or the failure


@dataclass
class Synced:
    version: str | None  # None: the template did not change
    changes: list[str] = field(default_factory=list)  # "M\ttests/test_w0_prep.py", ...
    pairs: list[PairSync] = field(default_factory=list)
    promoted: bool = False


@dataclass(frozen=True)
class Update:
    """One template update, as every pair receives it."""

    version: str
    source: str  # "<ref> at <commit>"
    changes: list[str]  # git's name-status lines, old snapshot -> new
    old: Path  # the old and new template, rendered for this forge
    new: Path

    @property
    def branch(self) -> str:
        return f"{BRANCH_PREFIX}{self.version}"

    @property
    def title(self) -> str:
        return f"Template update {self.version}"

    def body(self, conflicts: Sequence[str] = ()) -> str:
        return describe(self.version, self.source, self.changes, conflicts)


@dataclass(frozen=True)
class Remote:
    """How sync reaches one forge's repositories."""

    url: Callable[[str], str]  # pair -> git URL
    env: dict[str, str]  # for git (credentials)
    render: Callable[[Path, Path], Path]  # template snapshot -> files as a pair receives them
    propose: Callable[[str, str, str, str], str]  # pair, branch, title, body -> where to look
    check: Callable[[bool], None]  # before any push; argument: the update touches workflows
    publish: Callable[[Path, str], object]  # the new template, for repositories made later


def _copy(src: Path, dest: Path) -> Path:
    shutil.copytree(src, dest)
    return dest


def local_remote(forge: Forge) -> Remote:
    return Remote(
        url=lambda pair: Path(forge.repo_url(pair)).resolve().as_uri(),
        env={},
        render=_copy,
        propose=lambda pair, branch, title, body: f"branch {branch}",
        check=lambda workflows: None,
        publish=lambda files, message: None,
    )


def github_remote(forge: GitHubForge) -> Remote:
    def check(workflows: bool) -> None:
        scopes = ("repo", "workflow") if workflows else ("repo",)
        forge.preflight(scopes, "cohort sync", "to push changes under .github/workflows")

    return Remote(
        url=lambda pair: forge.clone_url(forge.full_name(pair)),
        env=forge.git_env,
        render=forge.render,
        propose=forge.propose,
        check=check,
        publish=forge.publish_template,
    )


def stage(roster: Roster) -> snapshot.Template:
    """The template at the roster's ref, taken into `.template-update/` (kept until promoted)."""
    staging = roster.dir / UPDATE_DIR
    if (staging / snapshot.META_FILE).exists():
        staged = snapshot.load(staging)
        if staged.ref != roster.template.ref:
            raise TemplateError(
                f"{staging}: an update to template ref {staged.ref!r} is half synced; set "
                f"template.ref back to {staged.ref!r} and re-run, or delete {staging}"
            )
        return staged
    return snapshot.take(roster.template, staging)


def promote(roster: Roster) -> None:
    """Make the staged update the cohort's template snapshot."""
    staging, current = roster.dir / UPDATE_DIR, roster.dir / snapshot.SNAPSHOT_DIR
    old = roster.dir / f".{snapshot.SNAPSHOT_DIR}.old-{os.getpid()}"
    current.rename(old)
    (staging / snapshot.SNAPSHOT_DIR).rename(current)
    os.replace(staging / snapshot.META_FILE, roster.dir / snapshot.META_FILE)
    shutil.rmtree(old)
    shutil.rmtree(staging)


def describe(version: str, source: str, changes: list[str], conflicts: Sequence[str]) -> str:
    """The pull request's body (and the commit message's)."""
    kinds = {"A": "added", "M": "modified", "D": "deleted"}
    lines = [
        f"Template update `{version}` from the organizers ({source}).",
        "",
        "Changed files:",
        *(f"- {kinds.get(c[0], c[0])} `{c.split(chr(9))[-1]}`" for c in changes),
        "",
        "Your main is unchanged: merge this pull request to take the update.",
    ]
    if conflicts:
        lines += [
            "",
            "**Conflicts.** You changed these files too, in the same places; they contain "
            "conflict markers (`<<<<<<<`). Resolve them on this branch, then merge:",
            *(f"- `{path}`" for path in conflicts),
        ]
    return "\n".join(lines) + "\n"


def sync_pair(remote: Remote, pair: str, update: Update, work: Path) -> PairSync:
    """Push the update to one pair as a branch based on its main (and propose it)."""
    url, env, branch = remote.url(pair), remote.env, update.branch
    if git.out("ls-remote", url, f"refs/heads/{branch}", env=env):
        return PairSync(pair, "exists", remote.propose(pair, branch, update.title, update.body()))
    git.run(
        "clone",
        "--quiet",
        "--depth",
        "1",
        "--branch",
        BRANCH,
        "--single-branch",
        url,
        str(work),
        env=env,
    )
    base = git.commit_tree(work, git.write_tree(work, update.old), "old", date=FIXED_DATE)
    new_tree = git.write_tree(work, update.new)
    theirs = git.commit_tree(work, new_tree, "new", base, date=FIXED_DATE)
    merged = git.run("merge-recursive", base, "--", "HEAD", theirs, cwd=work, check=False)
    if merged.returncode > 1:
        why = (merged.stderr.strip().splitlines() or [f"exit {merged.returncode}"])[-1]
        raise ForgeError(f"merging the update failed: {why}")
    conflicts = git.out("diff", "--name-only", "--diff-filter=U", cwd=work).split("\n")
    conflicts = [c for c in conflicts if c]
    git.run("add", "--all", ".", cwd=work)
    tree, head = git.out("write-tree", cwd=work), git.out("rev-parse", "HEAD", cwd=work)
    if tree == git.out("rev-parse", "HEAD^{tree}", cwd=work):
        return PairSync(pair, "current", "already has the update")
    body = update.body(conflicts)
    commit = git.commit_tree(work, tree, f"{update.title}\n\n{body}", head)
    git.run("push", "--quiet", url, f"{commit}:refs/heads/{branch}", cwd=work, env=env)
    where = remote.propose(pair, branch, update.title, body)
    if conflicts:
        return PairSync(pair, "conflicts", f"{', '.join(conflicts)}: {where}")
    return PairSync(pair, "proposed", where)


def sync(roster: Roster, forge: Forge, progress: Callable[[str], None] = print) -> Synced:
    """Offer the template at the roster's ref to every pair; see the module docstring."""
    remote = github_remote(forge) if isinstance(forge, GitHubForge) else local_remote(forge)
    old, new = snapshot.load(roster.dir), stage(roster)
    with tempfile.TemporaryDirectory(prefix="cohort-sync-") as tmp:
        scratch = Path(tmp) / "scratch.git"
        git.run("init", "--bare", "--quiet", str(scratch))
        old_files = remote.render(old.path, Path(tmp) / "old")
        new_files = remote.render(new.path, Path(tmp) / "new")
        trees = [git.write_tree(scratch, files) for files in (old_files, new_files)]
        if trees[0] == trees[1]:
            promote(roster)
            return Synced(None, promoted=True)
        changes = git.out("diff-tree", "-r", "--name-status", *trees, cwd=scratch).split("\n")
        version = (new.commit or trees[1])[:12]
        remote.check(any(c.split("\t")[-1].startswith(WORKFLOWS) for c in changes))
        source = f"{new.ref} at {new.commit[:12]}" if new.commit else "the organizers' work tree"
        update = Update(version, source, changes, old_files, new_files)
        done = Synced(version, changes)
        for i, pair in enumerate(roster.pairs, 1):
            try:
                result = sync_pair(remote, pair.name, update, Path(tmp) / pair.name)
            except CohortError as e:  # git, GitHub or the forge: this pair fails, the others go on
                result = PairSync(pair.name, "failed", str(e).splitlines()[0])
            done.pairs.append(result)
            progress(f"[{i}/{len(roster.pairs)}] {pair.name}: {result.outcome} {result.detail}")
        if all(p.outcome in OK for p in done.pairs):
            remote.publish(new.path, f"{update.title} ({source})")
            promote(roster)
            done.promoted = True
    return done
