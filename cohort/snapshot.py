"""The template every pair starts from, taken once from the organizer repository at the cohort's
ref and kept in the cohort directory (`template/`). It is the first commit of every pair
repository and holds the trusted tests the runner grades with.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path

from cohort import clock, docs_links, git, manifest
from cohort.errors import GitError, TemplateError
from cohort.roster import WORKTREE, TemplateSource

SNAPSHOT_DIR = "template"
META_FILE = "template.json"
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache", ".git")


@dataclass(frozen=True)
class Template:
    path: Path  # the snapshot: cohort_dir/template
    ref: str  # as written in cohort.toml
    commit: str | None  # what the ref resolved to; None for "worktree"
    taken_at: str

    @property
    def tests(self) -> Path:
        return self.path / "tests"


def resolve(repo: Path, ref: str) -> str | None:
    """The commit `ref` names in `repo` (None for "worktree")."""
    if ref == WORKTREE:
        return None
    proc = git.run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", cwd=repo, check=False)
    if proc.returncode != 0:
        raise TemplateError(f"{repo}: git ref {ref!r} not found (template.ref in cohort.toml)")
    return proc.stdout.strip()


def export(repo: Path, commit: str | None, subdir: str, dest: Path) -> None:
    """Write `repo/subdir` at `commit` (None: as on disk) into `dest`, which must not exist."""
    if commit is None:
        if not (repo / subdir).is_dir():
            raise TemplateError(f"{repo / subdir}: not found (template.repo in cohort.toml)")
        shutil.copytree(repo / subdir, dest, ignore=IGNORED)
        return
    try:
        data = git.run("archive", "--format=tar", commit, "--", subdir, cwd=repo, text=False).stdout
    except GitError as e:
        raise TemplateError(f"{repo}: cannot export {subdir} at {commit[:12]}: {e}") from None
    prefix = subdir.rstrip("/") + "/"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = [m for m in tar.getmembers() if m.name.startswith(prefix)]
        for m in members:
            m.name = m.name[len(prefix) :]
        dest.mkdir(parents=True)
        tar.extractall(dest, members=[m for m in members if m.name], filter="data")


def take(source: TemplateSource, cohort_dir: Path) -> Template:
    """The cohort's template snapshot, taken now unless an earlier run took it (idempotent);
    refused when its points manifest is missing or stale for the tests it holds."""
    meta_path = cohort_dir / META_FILE
    if meta_path.exists():
        template = load(cohort_dir)
        if template.ref != source.ref:
            raise TemplateError(
                f"{cohort_dir / SNAPSHOT_DIR}: taken at ref {template.ref!r}, but cohort.toml now says "
                f"{source.ref!r}; the pairs' repositories start from the snapshot, so it stays"
            )
        return template
    if not source.repo.is_dir():
        raise TemplateError(f"{source.repo}: not a directory (template.repo in cohort.toml)")
    commit = resolve(source.repo, source.ref)
    partial = cohort_dir / f".{SNAPSHOT_DIR}.partial"
    shutil.rmtree(partial, ignore_errors=True)
    export(source.repo, commit, SNAPSHOT_DIR, partial)
    if not (partial / "tests").is_dir():
        shutil.rmtree(partial)
        raise TemplateError(f"{source.repo}: template/tests missing at ref {source.ref!r}")
    docs_links.apply(partial, source.docs_url)  # stub messages and README name the docs site
    try:
        manifest.check_current(partial / "tests", partial)
    except manifest.ManifestError as e:
        shutil.rmtree(partial)
        why = str(e).removeprefix(f"{partial / 'tests' / manifest.FILENAME}: ")
        raise TemplateError(
            f"{source.repo}: template/tests/{manifest.FILENAME} at ref {source.ref!r}: {why}"
        ) from None
    shutil.rmtree(cohort_dir / SNAPSHOT_DIR, ignore_errors=True)  # left by an interrupted run
    partial.rename(cohort_dir / SNAPSHOT_DIR)
    template = Template(
        cohort_dir / SNAPSHOT_DIR,
        source.ref,
        commit,
        clock.now_iso(),
    )
    meta = {k: v for k, v in asdict(template).items() if k != "path"}
    meta_path.write_text(json.dumps(meta, indent=2) + "\n")
    return template


def load(cohort_dir: Path) -> Template:
    """The snapshot `cohort generate` took, or TemplateError saying to run it."""
    meta_path = cohort_dir / META_FILE
    try:
        meta = json.loads(meta_path.read_text())
    except FileNotFoundError:
        raise TemplateError(
            f"{cohort_dir}: no template snapshot yet (run `cohort generate`)"
        ) from None
    except ValueError as e:
        raise TemplateError(f"{meta_path}: unreadable ({e})") from None
    return Template(cohort_dir / SNAPSHOT_DIR, meta["ref"], meta.get("commit"), meta["taken_at"])


def find_organizer_repo(start: Path | None = None) -> Path:
    """The organizer repository: `start` if given, else the current directory when it holds
    template/tests, else the source tree this cohort package was installed from."""
    candidates = [Path(start)] if start else [Path.cwd(), Path(__file__).resolve().parents[2]]
    for candidate in candidates:
        if (candidate / SNAPSHOT_DIR / "tests").is_dir():
            return candidate.resolve()
    raise TemplateError(f"{candidates[0]}: not an organizer repository (no template/tests)")
