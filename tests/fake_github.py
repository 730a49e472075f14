"""An in-memory fake of the part of GitHub's REST API that cohort uses, for tests.

`FakeGitHub` serves on 127.0.0.1 (http.server in a thread). Repositories are bare git
repositories under `git_root/<owner>/<name>.git`, which stand in for https://github.com: set
`git_url = "file://<git_root>"` in the roster. `fail(...)` scripts answers (rate limits, errors)
ahead of the real ones; `log` records every request as (method, path).
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
import shutil
import subprocess
import threading
import time
import zipfile
from collections.abc import Callable
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from unittest import mock
from urllib.parse import parse_qs, urlencode, urlsplit

TOKEN = "test-token"
STATE = ("scopes", "users", "repos", "teams", "artifacts", "main_delay", "last_id")
GIT_ENV = {
    "GIT_AUTHOR_NAME": "gh",
    "GIT_AUTHOR_EMAIL": "gh@example.invalid",
    "GIT_COMMITTER_NAME": "gh",
    "GIT_COMMITTER_EMAIL": "gh@example.invalid",
}


class Answer(Exception):
    """Raised by a handler to answer with an error."""

    def __init__(self, status: int, message: str, headers: dict | None = None):
        super().__init__(message)
        self.status, self.message, self.headers = status, message, headers or {}


def git(*args: str, git_dir: Path | None = None, data: bytes | None = None) -> bytes:
    cmd = ["git", *(["--git-dir", str(git_dir)] if git_dir else []), *args]
    proc = subprocess.run(cmd, input=data, capture_output=True, env={**os.environ, **GIT_ENV})
    if proc.returncode:
        raise Answer(404, proc.stderr.decode().strip())
    return proc.stdout


class FakeGitHub:
    def __init__(self, git_root: Path, org: str = "cohort-org"):
        self.git_root, self.org = git_root, org
        self.scopes: str | None = "repo, workflow, admin:org"  # None: a fine-grained token
        self.users: set[str] | None = None  # known logins (None: everyone exists)
        self.repos: dict[str, dict] = {}
        self.teams: dict[str, dict] = {}
        self.artifacts: dict[int, bytes] = {}
        self.log: list[tuple[str, str]] = []
        self.blob_auth: list[str | None] = []  # Authorization seen by the artifact storage host
        self.scripted: list[tuple[str, re.Pattern, int, dict, str]] = []
        self.main_delay: set[str] = set()  # generated repos whose main is not visible yet
        self.last_id = 999
        self.commenter = {"login": "github-actions[bot]", "type": "Bot"}  # the token's user
        self._lock = threading.RLock()
        self.routes: list[tuple[str, re.Pattern, Callable]] = [
            (m, re.compile(f"^{p}$"), h)
            for m, p, h in [
                ("GET", r"/user", self.user),
                ("GET", r"/orgs/(?P<org>[^/]+)", self.get_org),
                ("GET", r"/orgs/(?P<org>[^/]+)/repos", self.org_repos),
                ("POST", r"/orgs/(?P<org>[^/]+)/repos", self.create_repo),
                ("GET", r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)", self.get_team),
                ("POST", r"/orgs/(?P<org>[^/]+)/teams", self.create_team),
                (
                    "PUT",
                    r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/memberships/(?P<user>[^/]+)",
                    self.team_member,
                ),
                (
                    "PUT",
                    r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/repos/(?P<repo>[^/]+/[^/]+)",
                    self.team_repo,
                ),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)", self.get_repo),
                ("PATCH", r"/repos/(?P<repo>[^/]+/[^/]+)", self.patch_repo),
                ("POST", r"/repos/(?P<repo>[^/]+/[^/]+)/generate", self.generate),
                (
                    "PUT",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/collaborators/(?P<user>[^/]+)",
                    self.collaborator,
                ),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/branches", self.branches),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/branches/(?P<branch>[^/]+)", self.branch),
                (
                    "PUT",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/branches/(?P<branch>[^/]+)/protection",
                    self.protect,
                ),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/commits", self.commits),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/commits/(?P<sha>\w+)", self.commit),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/tarball/(?P<sha>\w+)", self.tarball),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/contents/(?P<path>.+)", self.contents),
                (
                    "GET",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/actions/workflows/(?P<wf>[^/]+)/runs",
                    self.runs,
                ),
                (
                    "GET",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/actions/runs/(?P<run>\d+)/artifacts",
                    self.run_artifacts,
                ),
                (
                    "GET",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/actions/artifacts/(?P<id>\d+)/zip",
                    self.artifact_zip,
                ),
                ("GET", r"/_blob/(?P<id>\d+)", self.blob),
                (
                    "GET",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments",
                    self.list_comments,
                ),
                (
                    "POST",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/issues/(?P<n>\d+)/comments",
                    self.create_comment,
                ),
                (
                    "PATCH",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/issues/comments/(?P<id>\d+)",
                    self.update_comment,
                ),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/pulls", self.list_pulls),
                ("POST", r"/repos/(?P<repo>[^/]+/[^/]+)/pulls", self.create_pull),
                ("GET", r"/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)/reviews", self.reviews),
                (
                    "POST",
                    r"/repos/(?P<repo>[^/]+/[^/]+)/pulls/(?P<n>\d+)/requested_reviewers",
                    self.request_reviewers,
                ),
            ]
        ]

    # server plumbing
    def __enter__(self) -> FakeGitHub:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def handle_one(self) -> None:
                fake.serve(self)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = handle_one

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(
        self,
        method: str,
        path: str,
        status: int,
        headers: dict | None = None,
        message: str = "",
        times: int = 1,
    ) -> None:
        """Answer the next `times` requests matching `method` and the regex `path` with `status`."""
        for _ in range(times):
            self.scripted.append((method, re.compile(f"^{path}$"), status, headers or {}, message))

    def state(self) -> dict:
        """A copy of everything the fake holds but its git repositories."""
        return copy.deepcopy({k: getattr(self, k) for k in STATE})

    def load(self, state: dict) -> None:
        for key, value in copy.deepcopy(state).items():
            setattr(self, key, value)

    def writes(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p in self.log if m != "GET"]

    def serve(self, h: BaseHTTPRequestHandler) -> None:
        parts = urlsplit(h.path)
        method, path, query = h.command, parts.path, parse_qs(parts.query)
        length = int(h.headers.get("Content-Length") or 0)
        body = json.loads(h.rfile.read(length)) if length else None
        with self._lock:
            self.log.append((method, path))
            status, payload, headers = self.dispatch(h, method, path, query, body)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        h.send_response(status)
        headers.setdefault("x-ratelimit-remaining", "4999")
        headers.setdefault("x-ratelimit-reset", str(int(time.time()) + 3600))
        if self.scopes is not None:
            headers.setdefault("X-OAuth-Scopes", self.scopes)
        for key, value in headers.items():
            h.send_header(key, value)
        h.send_header("Content-Length", str(len(data)))
        h.end_headers()
        h.wfile.write(data)

    def dispatch(self, h, method: str, path: str, query: dict, body) -> tuple[int, object, dict]:
        if path.startswith("/_blob/"):
            self.blob_auth.append(h.headers.get("Authorization"))
        elif h.headers.get("Authorization") != f"Bearer {TOKEN}":
            return 401, {"message": "Bad credentials"}, {}
        for i, (m, pattern, status, headers, message) in enumerate(self.scripted):
            if m == method and pattern.match(path):
                del self.scripted[i]
                return status, {"message": message}, dict(headers)
        q = {k: v[-1] for k, v in query.items()}
        for m, pattern, handler in self.routes:
            found = pattern.match(path)
            if m == method and found:
                try:
                    result = handler(q, body, **found.groupdict())
                except Answer as e:
                    return e.status, {"message": e.message}, e.headers
                return result if isinstance(result, tuple) else (200, result, {})
        return 404, {"message": "Not Found"}, {}

    def page(self, path: str, items: list, q: dict) -> tuple[int, list, dict]:
        per_page, page = int(q.get("per_page", 30)), int(q.get("page", 1))
        last = max(1, -(-len(items) // per_page))
        links = []
        if page < last:
            links.append(f'<{self.url}{path}?{urlencode({**q, "page": page + 1})}>; rel="next"')
            links.append(f'<{self.url}{path}?{urlencode({**q, "page": last})}>; rel="last"')
        headers = {"Link": ", ".join(links)} if links else {}
        return 200, items[(page - 1) * per_page : page * per_page], headers

    # state helpers
    def repo(self, full: str) -> dict:
        found = self.repos.get(full.lower())
        if not found:
            raise Answer(404, "Not Found")
        return found

    def git_dir(self, full: str) -> Path:
        return self.git_root / f"{self.repo(full)['full_name']}.git"

    def add_repo(self, full: str, private: bool = True, is_template: bool = False) -> dict:
        owner, name = full.split("/")
        repo = {
            "name": name,
            "full_name": full,
            "owner": {"login": owner},
            "private": private,
            "is_template": is_template,
            "collaborators": {},
            "teams": {},
            "protection": {},
            "pulls": [],
            "runs": [],
            "comments": [],
        }
        self.repos[full.lower()] = repo
        git("init", "--bare", "--quiet", "--initial-branch=main", str(self.git_dir(full)))
        return repo

    def public(self, repo: dict) -> dict:
        return {k: repo[k] for k in ("name", "full_name", "owner", "private", "is_template")}

    def head(self, full: str, branch: str) -> str | None:
        try:
            return (
                git("rev-parse", f"refs/heads/{branch}", git_dir=self.git_dir(full))
                .decode()
                .strip()
            )
        except Answer:
            return None

    # users, orgs and teams
    def user(self, q, body):
        return {"login": "organizer"}

    def get_org(self, q, body, org):
        if org != self.org:
            raise Answer(404, "Not Found")
        return {"login": org}

    def org_repos(self, q, body, org):
        items = [self.public(r) for r in self.repos.values() if r["owner"]["login"] == org]
        return self.page(f"/orgs/{org}/repos", items, q)

    def create_repo(self, q, body, org):
        full = f"{org}/{body['name']}"
        if full.lower() in self.repos:
            raise Answer(422, "Repository creation failed.")
        repo = self.add_repo(full, body.get("private", False), body.get("is_template", False))
        return 201, self.public(repo), {}

    def get_team(self, q, body, org, team):
        if team not in self.teams:
            raise Answer(404, "Not Found")
        return {"slug": team}

    def create_team(self, q, body, org):
        slug = body["name"].lower()
        if slug in self.teams:
            raise Answer(422, "Name must be unique for this org")
        self.teams[slug] = {"members": set(), "repos": {}}
        return 201, {"slug": slug}, {}

    def team_member(self, q, body, org, team, user):
        self.teams[team]["members"].add(user)
        return {"state": "active"}

    def team_repo(self, q, body, org, team, repo):
        if team not in self.teams:
            raise Answer(404, "Not Found")
        self.repo(repo)["teams"][team] = body["permission"]
        return 204, b"", {}

    # repositories
    def get_repo(self, q, body, repo):
        return self.public(self.repo(repo))

    def patch_repo(self, q, body, repo):
        self.repo(repo).update(body)
        return self.public(self.repo(repo))

    def generate(self, q, body, repo):
        template = self.repo(repo)
        if not template["is_template"]:
            raise Answer(422, f"{repo} is not a template repository")
        full = f"{body['owner']}/{body['name']}"
        if full.lower() in self.repos:
            raise Answer(422, "Name already exists on this account")
        new = self.add_repo(full, body.get("private", False))
        src, dest = self.git_dir(repo), self.git_dir(full)
        git("fetch", "--quiet", str(src), "main:refs/template", git_dir=dest)
        tree = git("rev-parse", "refs/template^{tree}", git_dir=dest).decode().strip()
        commit = git("commit-tree", tree, "-m", "Initial commit", git_dir=dest).decode().strip()
        git("update-ref", "refs/heads/main", commit, git_dir=dest)
        git("update-ref", "-d", "refs/template", git_dir=dest)
        self.main_delay.add(full.lower())
        return 201, self.public(new), {}

    def collaborator(self, q, body, repo, user):
        if self.users is not None and user not in self.users:
            raise Answer(404, "Not Found")
        collaborators = self.repo(repo)["collaborators"]
        known = user in collaborators
        collaborators[user] = body["permission"]
        return (204, b"", {}) if known else (201, {"invitee": {"login": user}}, {})

    def branches(self, q, body, repo):
        refs = (
            git(
                "for-each-ref",
                "--format=%(refname:short) %(objectname)",
                "refs/heads",
                git_dir=self.git_dir(repo),
            )
            .decode()
            .split("\n")
        )
        items = [
            {"name": n, "commit": {"sha": s}} for n, s in (r.split() for r in refs if r.strip())
        ]
        return self.page(f"/repos/{repo}/branches", items, q)

    def branch(self, q, body, repo, branch):
        if repo.lower() in self.main_delay:  # GitHub fills a generated repository a moment later
            self.main_delay.discard(repo.lower())
            raise Answer(404, "Branch not found")
        sha = self.head(repo, branch)
        if not sha:
            raise Answer(404, "Branch not found")
        return {"name": branch, "commit": {"sha": sha}}

    def protect(self, q, body, repo, branch):
        if not self.head(repo, branch):
            raise Answer(404, "Branch not found")
        required = {
            "required_status_checks",
            "enforce_admins",
            "required_pull_request_reviews",
            "restrictions",
        }
        if not required <= set(body):
            raise Answer(422, "Invalid request.")
        self.repo(repo)["protection"][branch] = body
        return {"url": f"{self.url}/repos/{repo}/branches/{branch}/protection"}

    def commits(self, q, body, repo):
        if not self.head(repo, q.get("sha", "main")):
            raise Answer(409, "Git Repository is empty.")
        paths = ["--", q["path"]] if "path" in q else []
        shas = git("rev-list", q.get("sha", "main"), *paths, git_dir=self.git_dir(repo))
        shas = shas.decode().split()
        return self.page(f"/repos/{repo}/commits", [{"sha": s} for s in shas], q)

    def commit(self, q, body, repo, sha):
        out = git("log", "-1", "--format=%H %cI", sha, "--", git_dir=self.git_dir(repo))
        full, date = out.decode().split()
        return {"sha": full, "commit": {"committer": {"date": date}}}

    def tarball(self, q, body, repo, sha):
        prefix = f"{repo.replace('/', '-')}-{sha[:7]}/"
        return (
            200,
            git("archive", "--format=tar", f"--prefix={prefix}", sha, git_dir=self.git_dir(repo)),
            {},
        )

    def contents(self, q, body, repo, path):
        ref = q.get("ref", "main")
        sha = git("rev-parse", f"{ref}:{path}", git_dir=self.git_dir(repo)).decode().strip()
        return {"path": path, "sha": sha, "type": "file"}

    # actions
    def add_run(
        self,
        repo: str,
        head_sha: str,
        artifacts: dict[str, dict],
        uses: str,
        event: str = "push",
        branch: str = "main",
        expired: bool = False,
        run_id: int | None = None,
    ) -> dict:
        """A completed run of grade.yml whose artifacts hold `artifacts` (name -> results.json)."""
        run_id = run_id or self.new_id()
        ids = []
        for name, doc in artifacts.items():
            buf = io.BytesIO()
            with zipfile.ZipFile(buf, "w") as z:
                z.writestr("results.json", json.dumps(doc))
            art_id = self.new_id()
            self.artifacts[art_id] = buf.getvalue()
            ids.append({"id": art_id, "name": name, "expired": expired})
        run = {
            "id": run_id,
            "event": event,
            "status": "completed",
            "conclusion": "success",
            "head_sha": head_sha,
            "head_branch": branch,
            "path": ".github/workflows/grade.yml",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "html_url": f"https://github.com/{repo}/actions/runs/{run_id}",
            "repository": {"full_name": self.repo(repo)["full_name"]},
            "referenced_workflows": [{"path": uses, "sha": "f" * 40, "ref": "refs/heads/x"}],
            "_artifacts": ids,
        }
        self.repo(repo)["runs"].insert(0, run)
        return run

    def new_id(self) -> int:
        self.last_id += 1
        return self.last_id

    def runs(self, q, body, repo, wf):
        items = [
            {k: v for k, v in r.items() if not k.startswith("_")}
            for r in self.repo(repo)["runs"]
            if r["event"] == q.get("event", r["event"])
            and r["status"] == q.get("status", r["status"])
        ]
        status, page, headers = self.page(f"/repos/{repo}/actions/workflows/{wf}/runs", items, q)
        return status, {"total_count": len(items), "workflow_runs": page}, headers

    def run_artifacts(self, q, body, repo, run):
        found = next(r for r in self.repo(repo)["runs"] if r["id"] == int(run))
        return {"total_count": len(found["_artifacts"]), "artifacts": found["_artifacts"]}

    def artifact_zip(self, q, body, repo, id):
        return 302, b"", {"Location": f"{self.url}/_blob/{id}"}

    def blob(self, q, body, id):
        if self.blob_auth[-1]:
            raise Answer(400, "storage rejects an Authorization header next to a signed URL")
        return 200, self.artifacts[int(id)], {}

    # pull requests
    def add_pull(self, repo: str, branch: str, author: str = "pair-member", draft: bool = False):
        pulls = self.repo(repo)["pulls"]
        pull = {
            "number": len(pulls) + 1,
            "state": "open",
            "draft": draft,
            "title": f"work on {branch}",
            "body": "",
            "head": {"ref": branch, "label": f"{repo.split('/')[0]}:{branch}"},
            "base": {"ref": "main"},
            "user": {"login": author},
            "requested_reviewers": [],
            "html_url": f"https://github.com/{repo}/pull/{len(pulls) + 1}",
            "_reviews": [],
        }
        pulls.append(pull)
        return pull

    # issue comments (the sticky score comment)
    def add_comment(self, repo: str, number: int, text: str, user: dict) -> dict:
        comment = {
            "id": self.new_id(),
            "body": text,
            "user": dict(user),
            "html_url": f"https://github.com/{repo}/pull/{number}#issuecomment-{self.last_id}",
            "_issue": int(number),
        }
        self.repo(repo)["comments"].append(comment)
        return comment

    def comments(self, repo: str, number: int) -> list[dict]:
        return [
            {k: v for k, v in c.items() if not k.startswith("_")}
            for c in self.repo(repo)["comments"]
            if c["_issue"] == int(number)
        ]

    def list_comments(self, q, body, repo, n):
        return self.page(f"/repos/{repo}/issues/{n}/comments", self.comments(repo, n), q)

    def create_comment(self, q, body, repo, n):
        comment = self.add_comment(repo, int(n), body["body"], self.commenter)
        return 201, {k: v for k, v in comment.items() if not k.startswith("_")}, {}

    def update_comment(self, q, body, repo, id):
        found = next((c for c in self.repo(repo)["comments"] if c["id"] == int(id)), None)
        if found is None:
            raise Answer(404, "Not Found")
        if found["user"]["login"] != self.commenter["login"]:
            raise Answer(403, "Resource not accessible by integration")
        found["body"] = body["body"]
        return {k: v for k, v in found.items() if not k.startswith("_")}

    def list_pulls(self, q, body, repo):
        state = q.get("state", "open")
        items = [
            {k: v for k, v in p.items() if not k.startswith("_")}
            for p in self.repo(repo)["pulls"]
            if state in ("all", p["state"])
            and q.get("head", p["head"]["label"]) == p["head"]["label"]
        ]
        return self.page(f"/repos/{repo}/pulls", items, q)

    def create_pull(self, q, body, repo):
        owner = repo.split("/")[0]
        if any(p["head"]["ref"] == body["head"] for p in self.repo(repo)["pulls"]):
            raise Answer(422, f"A pull request already exists for {owner}:{body['head']}.")
        if not self.head(repo, body["head"]):
            raise Answer(422, "Validation Failed")
        pull = self.add_pull(repo, body["head"], author="organizer")
        pull.update(title=body["title"], body=body.get("body", ""))
        return 201, {k: v for k, v in pull.items() if not k.startswith("_")}, {}

    def reviews(self, q, body, repo, n):
        pull = self.repo(repo)["pulls"][int(n) - 1]
        return self.page(f"/repos/{repo}/pulls/{n}/reviews", pull["_reviews"], q)

    def request_reviewers(self, q, body, repo, n):
        pull = self.repo(repo)["pulls"][int(n) - 1]
        for login in body["reviewers"]:
            if login == pull["user"]["login"]:
                raise Answer(422, "Review cannot be requested from pull request author.")
            if all(r["login"] != login for r in pull["requested_reviewers"]):
                pull["requested_reviewers"].append({"login": login})
        return 201, {k: v for k, v in pull.items() if not k.startswith("_")}, {}


# a cohort on the fake: an organizer repository with the real caller workflow, and a roster

ROOT = Path(__file__).resolve().parents[1]
GRADER = "mlab-org/mlab"
GRADER_REF = "spring-2026"
TRUSTED = f"{GRADER}/.github/workflows/grade.yml@{GRADER_REF}"


GPU_TEST = """

@pytest.mark.gpu
@pytest.mark.bench
@pytest.mark.points(4)
def test_gpu():
    assert m.mul(2, 2) == 4
"""


def organizer(root: Path) -> Path:
    """The tiny organizer repository of the local forge's tests, plus the template's caller and
    a GPU test (graded by the workflow's gpu job, skipped on CPU)."""
    from tests.test_forge_local import TESTS, tiny_organizer

    caller = root / "template" / ".github" / "workflows" / "grade.yml"
    caller.parent.mkdir(parents=True)
    caller.write_text((ROOT / "template" / ".github" / "workflows" / "grade.yml").read_text())
    return tiny_organizer(root, TESTS + GPU_TEST)


def roster_text(organizer: Path, fake: FakeGitHub, pairs: list[str], **github) -> str:
    """cohort.toml for `pairs` (members `<pair>-a`, `<pair>-b`) on the fake's organization."""
    settings = {
        "org": fake.org,
        "grader_repository": GRADER,
        "grader_ref": GRADER_REF,
        "api_url": fake.url,
        "git_url": f"file://{fake.git_root}",
        "write_interval": 0,
        **github,
    }
    return (
        "\n".join(
            [
                '[cohort]\nname = "test"\ntas = ["ta-one", "ta-two"]',
                f'[template]\nrepo = "{organizer}"\nref = "HEAD"',
                '[forge]\nbackend = "github"',
                "[forge.github]",
                *(f"{k} = {json.dumps(v)}" for k, v in settings.items()),
                *(f'[[pairs]]\nname = "{p}"\nmembers = ["{p}-a", "{p}-b"]' for p in pairs),
                "[days]\nw0_prep = { release = 2026-01-05, deadline = 2026-01-06T18:00:00 }",
            ]
        )
        + "\n"
    )


def write_roster(cohort_dir: Path, organizer: Path, fake: FakeGitHub, pairs: list[str], **github):
    from cohort import roster

    cohort_dir.mkdir(parents=True, exist_ok=True)
    (cohort_dir / roster.FILENAME).write_text(roster_text(organizer, fake, pairs, **github))
    return roster.load(cohort_dir)


def generated(root: Path, organizer: Path, pairs: list[str]) -> tuple[Path, list[str], dict]:
    """Generate a cohort of `pairs` on a fake under `root` once; `cohort_copy` reuses it."""
    from cohort import forge
    from cohort.github.client import Client

    with (
        mock.patch.dict(os.environ, {"GITHUB_TOKEN": TOKEN}),
        mock.patch.object(Client, "sleep", staticmethod(lambda s: None)),
        FakeGitHub(root / "github") as fake,
    ):
        forge.generate(
            write_roster(root / "cohort", organizer, fake, pairs), progress=lambda _: None
        )
        fake.main_delay.clear()
        return root, pairs, fake.state()


@contextmanager
def cohort_copy(saved: tuple[Path, list[str], dict], tmp: Path, organizer: Path, **github):
    """A fresh copy of a generated cohort and its fake GitHub: yields (fake, roster)."""
    root, pairs, state = saved
    shutil.copytree(root / "github", tmp / "github")
    shutil.copytree(root / "cohort", tmp / "cohort")
    with FakeGitHub(tmp / "github") as fake:
        fake.load(state)
        yield fake, write_roster(tmp / "cohort", organizer, fake, pairs, **github)
