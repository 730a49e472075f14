"""The GitHub forge: one private repository per pair in an organization, generated from the
cohort's template repository, with the pair as collaborators, the TAs as a team and main
protected (changes arrive through reviewed pull requests).

`cohort generate` first checks the token, makes the TA team and publishes the template snapshot
to the template repository (its grading workflow filled in with the organizers' repository and
pinned ref), then for each pair: generates the repository, invites the members with push access,
gives the TA team push access and protects main. Every step is idempotent; what was applied to
each repository is remembered in `forge-github.json`, so a re-run skips finished repositories and
finishes the others. Settings come from `[forge.github]` in cohort.toml, checked with the rest
of the roster (`roster.GitHubSettings`).
"""

from __future__ import annotations

import functools
import io
import itertools
import json
import os
import re
import shutil
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

from cohort import git
from cohort.errors import CommitNotFound, ForgeError, GitError, GitHubError, RepoNotFound
from cohort.forge.base import Exported, Forge
from cohort.github import auth
from cohort.github.client import Client, last_page
from cohort.roster import GitHubSettings, Pair, Roster
from cohort.snapshot import Template

P = ParamSpec("P")
R = TypeVar("R")
BRANCH = "main"
CALLER = ".github/workflows/grade.yml"  # the pair's workflow; the organizers' has the same path
STATE_FILE = "forge-github.json"
SCOPES = ("repo", "workflow", "admin:org")  # create repos, push workflows, manage the TA team
SHA = re.compile(r"^[0-9a-f]{40}$")
MAIN_WAIT_S = (1, 2, 4, 8, 16, 30)  # a generated repository's content appears after a moment


def caller_workflow(text: str, s: GitHubSettings) -> str:
    """The template's grading workflow with the organizers' repository and pinned ref filled in."""
    lines = {
        "uses": (
            r"^([ \t]*uses:[ \t]*)\S+/\.github/workflows/grade\.yml@\S+[ \t]*$",
            f"{s.grader_repository}/{CALLER}@{s.grader_ref}",
        ),
        "grader-repository": (r"^([ \t]*grader-repository:[ \t]*)\S+[ \t]*$", s.grader_repository),
        "grader-ref": (r"^([ \t]*grader-ref:[ \t]*)\S+[ \t]*$", s.grader_ref),
    }
    for what, (pattern, value) in lines.items():
        text, n = re.subn(pattern, lambda m, v=value: m.group(1) + v, text, flags=re.M)
        if n != 1:
            raise ForgeError(
                f"template/{CALLER}: expected one `{what}:` line to fill in, found {n}"
            )
    indent = re.search(r"^([ \t]*)grader-ref:", text, flags=re.M).group(1)
    extra = ([f"{indent}gpu: false"] if not s.gpu else []) + (
        [f"{indent}gpu-runs-on: '{s.gpu_runs_on}'"] if s.gpu_runs_on else []
    )
    if extra:
        text = re.sub(
            r"^([ \t]*grader-ref:.*)$",
            lambda m: "\n".join([m.group(1), *extra]),
            text,
            count=1,
            flags=re.M,
        )
    return text


def render(template: Path, dest: Path, s: GitHubSettings) -> Path:
    """Copy the template snapshot to `dest` as a pair receives it (the caller filled in)."""
    shutil.copytree(template, dest)
    caller = dest / CALLER
    if not caller.is_file():
        raise ForgeError(f"{template}: no {CALLER}, so pushes would not be graded")
    caller.write_text(caller_workflow(caller.read_text(), s))
    return dest


def forge_errors(method: Callable[P, R]) -> Callable[P, R]:
    """A method of the forge interface: GitHub's errors and git's leave it as ForgeError, the
    error every backend raises (the message, with its HTTP status, is kept)."""

    @functools.wraps(method)
    def mapped(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except (GitHubError, GitError) as e:
            raise ForgeError(str(e)) from e

    return mapped


class GitHubForge(Forge):
    def __init__(self, roster: Roster, client: Client | None = None):
        if roster.forge.github is None:
            raise ForgeError(
                f"{roster.path}: forge.backend is {roster.forge.backend!r}, not github"
            )
        self.roster, self.s = roster, roster.forge.github
        self.token = auth.find_token() if client is None else client.token
        self.client = client or Client(self.token, self.s.api_url, self.s.write_interval)
        self.state_path = roster.dir / STATE_FILE
        self._prepared = False
        self._initial: dict[str, str | None] = {}

    # names and addresses
    def repo_name(self, pair: str) -> str:
        return f"{self.s.repo_prefix}{pair}"

    def full_name(self, pair: str) -> str:
        return f"{self.s.org}/{self.repo_name(pair)}"

    def repo_url(self, pair: str) -> str:
        return f"{self.s.git_url.rstrip('/')}/{self.full_name(pair)}"

    def clone_url(self, full_name: str) -> str:
        return f"{self.s.git_url.rstrip('/')}/{full_name}.git"

    @property
    def git_env(self) -> dict[str, str]:
        return git.auth_env(self.token, self.s.git_url)

    def render(self, template: Path, dest: Path) -> Path:
        return render(template, dest, self.s)

    # state of finished repositories
    def _load_state(self) -> dict:
        try:
            return json.loads(self.state_path.read_text())
        except FileNotFoundError:
            return {"repos": {}}
        except ValueError as e:
            raise ForgeError(
                f"{self.state_path}: unreadable ({e}); delete it to re-apply"
            ) from None

    def _save_state(self, state: dict) -> None:
        tmp = self.state_path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(state, indent=2, sort_keys=True) + "\n")
        os.replace(tmp, self.state_path)

    # checks and one-time setup
    def preflight(self, scopes: tuple[str, ...], command: str, why: str = "") -> None:
        """Check the roster's usernames and the token before anything is changed."""
        bad = [
            f"{self.roster.path}: pairs[{i}].members: {name!r} is not a GitHub username"
            for i, pair in enumerate(self.roster.pairs)
            for name in auth.bad_logins(pair.members)
        ] + [
            f"{self.roster.path}: cohort.tas: {name!r} is not a GitHub username"
            for name in auth.bad_logins(self.roster.tas)
        ]
        if bad:
            raise ForgeError("\n".join(bad))
        auth.check(self.client, scopes, self.s.org, command, why)

    def _prepare(self, template: Template) -> None:
        if self._prepared:
            return
        self.preflight(SCOPES, "cohort generate")
        self._ensure_team()
        self.publish_template(template.path, f"Cohort template at {template.ref}")
        self._prepared = True

    def _ensure_team(self) -> None:
        org, team = self.s.org, self.s.team
        state = self._load_state()
        if state.get("team") == {"slug": team, "members": sorted(self.roster.tas)}:
            return
        if self.client.request("GET", f"/orgs/{org}/teams/{team}", ok=(404,)).status == 404:
            self.client.request(
                "POST",
                f"/orgs/{org}/teams",
                {"name": team, "privacy": "closed", "description": "TAs of the cohort"},
                ok=(422,),  # made meanwhile
            )
        for ta in self.roster.tas:
            self.client.request(
                "PUT", f"/orgs/{org}/teams/{team}/memberships/{ta}", {"role": "member"}
            )
        state["team"] = {"slug": team, "members": sorted(self.roster.tas)}
        self._save_state(state)

    def _existing(self, name: str) -> dict | None:
        """The repository `org/name` (None if absent); a public one is refused."""
        resp = self.client.request("GET", f"/repos/{self.s.org}/{name}", ok=(404,))
        if resp.status == 404:
            return None
        repo = resp.json()
        if not repo.get("private"):
            raise ForgeError(
                f"{self.s.org}/{name} exists and is public: make it private (self-hosted GPU "
                "runners must serve private repositories only)"
            )
        return repo

    def publish_template(self, files: Path, message: str) -> bool:
        """Make the template repository hold `files` as rendered for pairs; True if it changed.

        A new commit goes on top of its main (never a force push), only when the tree differs.
        """
        org, name = self.s.org, self.s.template_repo
        repo = self._existing(name)
        if repo is None:
            self.client.request(
                "POST",
                f"/orgs/{org}/repos",
                {"name": name, "private": True, "is_template": True, "auto_init": False},
                ok=(422,),
            )
        elif not repo.get("is_template"):
            self.client.request("PATCH", f"/repos/{org}/{name}", {"is_template": True})
        url, env = self.clone_url(f"{org}/{name}"), self.git_env
        with tempfile.TemporaryDirectory(prefix="cohort-template-") as tmp:
            work = Path(tmp) / "repo.git"
            git.run("init", "--bare", "--quiet", str(work))
            head = git.out("ls-remote", url, f"refs/heads/{BRANCH}", env=env).split()
            tree = git.write_tree(work, self.render(files, Path(tmp) / "files"))
            parents = []
            if head:
                git.run("fetch", "--quiet", "--depth", "1", url, head[0], cwd=work, env=env)
                if git.out("rev-parse", f"{head[0]}^{{tree}}", cwd=work) == tree:
                    return False
                parents = [head[0]]
            commit = git.commit_tree(work, tree, message, *parents)
            git.run("push", "--quiet", url, f"{commit}:refs/heads/{BRANCH}", cwd=work, env=env)
        return True

    # the Forge interface
    @forge_errors
    def create_repo(self, pair: Pair, template: Template) -> bool:
        self._prepare(template)
        org, name = self.s.org, self.repo_name(pair.name)
        created = self._existing(name) is None
        if created:
            resp = self.client.request(
                "POST",
                f"/repos/{org}/{self.s.template_repo}/generate",
                {
                    "owner": org,
                    "name": name,
                    "private": True,
                    "include_all_branches": False,
                    "description": f"{pair.name}: {', '.join(pair.members)}",
                },
                ok=(422,),
            )
            if resp.status == 422:
                if "already exists" not in resp.message():
                    raise GitHubError(f"cannot create {org}/{name}: {resp.message()}", 422)
                created = False  # made by an earlier run GitHub had not shown yet
        state = self._load_state()
        want = {"members": sorted(pair.members), "team": self.s.team, "reviews": self.s.reviews}
        if state["repos"].get(name) == want:
            return created
        for member in pair.members:
            self.client.request(
                "PUT", f"/repos/{org}/{name}/collaborators/{member}", {"permission": "push"}
            )
        self.client.request(
            "PUT", f"/orgs/{org}/teams/{self.s.team}/repos/{org}/{name}", {"permission": "push"}
        )
        self._wait_for_main(name)
        self.client.request(
            "PUT",
            f"/repos/{org}/{name}/branches/{BRANCH}/protection",
            {
                "required_status_checks": None,
                "enforce_admins": False,
                "required_pull_request_reviews": {
                    "required_approving_review_count": self.s.reviews,
                    "dismiss_stale_reviews": False,
                },
                "restrictions": None,
                "allow_force_pushes": False,
                "allow_deletions": False,
            },
        )
        state["repos"][name] = want
        self._save_state(state)
        return created

    def _wait_for_main(self, name: str) -> None:
        path = f"/repos/{self.s.org}/{name}/branches/{BRANCH}"
        for wait in (*MAIN_WAIT_S, None):
            if self.client.request("GET", path, ok=(404,)).status != 404:
                return
            if wait is None:
                break
            self.client.sleep(wait)
        raise ForgeError(
            f"{self.s.org}/{name}: still no {BRANCH} branch after {sum(MAIN_WAIT_S)} s; "
            "re-run `cohort generate`"
        )

    @forge_errors
    def repos(self) -> list[str]:
        names = {r["name"] for r in self.client.paginate(f"/orgs/{self.s.org}/repos", type="all")}
        return sorted(p.name for p in self.roster.pairs if self.repo_name(p.name) in names)

    def _get(self, pair: str, path: str, **params: Any) -> Any:
        try:
            return self.client.request("GET", f"/repos/{self.full_name(pair)}{path}", params=params)
        except GitHubError as e:
            if e.status == 404:
                raise RepoNotFound(
                    f"{self.full_name(pair)}: not found (run `cohort generate`)"
                ) from None
            raise

    @forge_errors
    def initial_commit(self, pair: str) -> str | None:
        """The root commit of main (GitHub gives each generated repository its own)."""
        if pair not in self._initial:
            try:
                first = self._get(pair, "/commits", sha=BRANCH, per_page=1)
            except GitHubError as e:
                if e.status != 409:  # 409: the repository is empty
                    raise
                return None
            pages = last_page(first)
            oldest = (
                self._get(pair, "/commits", sha=BRANCH, per_page=1, page=pages)
                if pages > 1
                else first
            )
            self._initial[pair] = oldest.json()[0]["sha"]
        return self._initial[pair]

    @forge_errors
    def branch_tips(self, pair: str) -> dict[str, str]:
        self._get(pair, "")
        return {
            f"refs/heads/{b['name']}": b["commit"]["sha"]
            for b in self.client.paginate(f"/repos/{self.full_name(pair)}/branches")
        }

    @forge_errors
    def export(self, pair: str, commit: str, dest: Path) -> Exported:
        repo = f"/repos/{self.full_name(pair)}"
        resp = self.client.request("GET", f"{repo}/commits/{commit}", ok=(404, 422))
        if resp.status != 200:
            raise CommitNotFound(
                f"{self.full_name(pair)}: no commit {commit[:12]} ({resp.message()})"
            )
        info = resp.json()
        data = self.client.request("GET", f"{repo}/tarball/{info['sha']}").body
        dest.mkdir(parents=True, exist_ok=True)
        with tarfile.open(fileobj=io.BytesIO(data)) as tar:
            members = [m for m in tar.getmembers() if "/" in m.name]
            for m in members:
                m.name = m.name.split("/", 1)[1]  # drop GitHub's `<owner>-<repo>-<sha>/`
            tar.extractall(dest, members=[m for m in members if m.name], filter="data")
        return Exported(info["sha"], info["commit"]["committer"]["date"])

    # what `cohort collect` reads: the trusted grader, the pairs' runs and what they left
    @property
    def grader(self) -> tuple[str, str]:
        """The organizers' repository and the cohort's pinned ref of it."""
        return self.s.grader_repository, self.s.grader_ref

    @property
    def trusted_caller(self) -> str:
        """The reusable workflow a pair's grading run must call: `<repository>/<path>@<ref>`."""
        return f"{self.s.grader_repository}/{CALLER}@{self.s.grader_ref}"

    @property
    def pinned_sha(self) -> str | None:
        """The pinned ref when it is a commit (a run must then have used exactly that one)."""
        return self.s.grader_ref if SHA.match(self.s.grader_ref) else None

    def caller_versions(self, limit: int) -> set[str]:
        """Blob ids of the newest `limit` versions of the caller the template repository held."""
        template = f"/repos/{self.s.org}/{self.s.template_repo}"
        commits = self.client.paginate(f"{template}/commits", sha=BRANCH, path=CALLER)
        return {
            self.client.get(f"{template}/contents/{CALLER}", ref=c["sha"])["sha"]
            for c in itertools.islice(commits, limit)
        }

    def file_blob(self, full_name: str, path: str, ref: str) -> str | None:
        """The blob id of `path` at commit `ref` of the repository (None when it has none)."""
        resp = self.client.request(
            "GET", f"/repos/{full_name}/contents/{path}", params={"ref": ref}, ok=(404,)
        )
        return None if resp.status == 404 else resp.json().get("sha")

    def push_runs(self, pair: str, runs: int) -> list[dict]:
        """The newest `runs` completed push runs of the pair's grading workflow, newest first."""
        listing = self.client.get(
            f"/repos/{self.full_name(pair)}/actions/workflows/{Path(CALLER).name}/runs",
            event="push",
            status="completed",
            per_page=runs,
        )
        return listing.get("workflow_runs", [])

    def run_artifacts(self, full_name: str, run_id: int) -> list[dict]:
        """The artifacts a workflow run uploaded (name, id, expired, ...)."""
        listing = self.client.get(f"/repos/{full_name}/actions/runs/{run_id}/artifacts")
        return listing.get("artifacts", [])

    def artifact_zip(self, full_name: str, artifact_id: int) -> bytes:
        """The bytes of an artifact's zip archive."""
        return self.client.request(
            "GET", f"/repos/{full_name}/actions/artifacts/{artifact_id}/zip"
        ).body

    # pull requests (`cohort review assign`, `cohort sync`)
    def open_pulls(self, pair: str) -> list[dict]:
        """The pair's open pull requests, by number."""
        pulls = self.client.paginate(
            f"/repos/{self.full_name(pair)}/pulls", state="open", sort="created"
        )
        return sorted(pulls, key=lambda p: p["number"])

    def reviewers(self, pair: str, number: int) -> list[str]:
        """Logins of everyone who has reviewed the pull request."""
        reviews = self.client.paginate(f"/repos/{self.full_name(pair)}/pulls/{number}/reviews")
        return [(r.get("user") or {}).get("login", "") for r in reviews]

    def request_review(self, pair: str, number: int, login: str) -> None:
        self.client.request(
            "POST",
            f"/repos/{self.full_name(pair)}/pulls/{number}/requested_reviewers",
            {"reviewers": [login]},
        )

    def propose(self, pair: str, branch: str, title: str, body: str) -> str:
        """The URL of the pull request of `branch` into main, opened now if there is none."""
        full = self.full_name(pair)

        def existing() -> str | None:
            head = f"{self.s.org}:{branch}"
            for pull in self.client.paginate(f"/repos/{full}/pulls", state="all", head=head):
                return pull["html_url"]
            return None

        if found := existing():
            return found
        resp = self.client.request(
            "POST",
            f"/repos/{full}/pulls",
            {"title": title, "head": branch, "base": BRANCH, "body": body},
            ok=(422,),
        )
        if resp.status == 422:  # opened meanwhile ("A pull request already exists")
            if found := existing():
                return found
            raise ForgeError(f"{full}: cannot open a pull request for {branch}: {resp.message()}")
        return resp.json()["html_url"]


def connect(roster: Roster) -> GitHubForge:
    return GitHubForge(roster)


def require(roster: Roster, command: str) -> GitHubForge:
    """The roster's GitHub forge, or ForgeError when the cohort uses another backend."""
    if roster.forge.backend != "github":
        raise ForgeError(
            f"{roster.path}: forge.backend is {roster.forge.backend!r}; `{command}` needs "
            'the github backend ([forge] backend = "github")'
        )
    return GitHubForge(roster)
