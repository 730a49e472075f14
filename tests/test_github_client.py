"""The GitHub REST client and token checks against the fake API: pagination, primary and
secondary rate limits, retries, paced writes, token lookup and scope checks."""

from __future__ import annotations

import socket

import pytest

from cohort.errors import AuthError, GitHubError
from cohort.github import auth
from cohort.github.client import Client
from tests.fake_github import TOKEN, FakeGitHub


@pytest.fixture
def fake(tmp_path):
    with FakeGitHub(tmp_path / "github") as server:
        yield server


@pytest.fixture
def client(fake, monkeypatch) -> Client:
    """A client whose waits are recorded in `client.waits` instead of slept."""
    waits: list[float] = []
    monkeypatch.setattr(Client, "sleep", staticmethod(waits.append))
    made = Client(TOKEN, fake.url, write_interval=0, retries=3, backoff_s=60, progress=waits.append)
    made.waits = waits
    return made


def slept(client: Client) -> list[float]:
    return [w for w in client.waits if isinstance(w, float | int)]


def test_pagination_follows_link_headers(fake, client):
    for i in range(250):  # listed only: no git repository behind them
        name = f"repo-{i:03d}"
        fake.repos[f"cohort-org/{name}"] = {
            "name": name,
            "full_name": f"cohort-org/{name}",
            "owner": {"login": "cohort-org"},
            "private": True,
            "is_template": False,
        }
    names = [r["name"] for r in client.paginate("/orgs/cohort-org/repos")]
    assert len(names) == 250 and names[0] == "repo-000" and names[-1] == "repo-249"
    assert [p for m, p in fake.log if p == "/orgs/cohort-org/repos"] == [
        "/orgs/cohort-org/repos"
    ] * 3


@pytest.mark.parametrize("status", [403, 429])
def test_secondary_rate_limit_with_retry_after_is_honoured(fake, client, status):
    fake.fail("GET", "/user", status, {"Retry-After": "17"}, "secondary rate limit")
    assert client.get("/user") == {"login": "organizer"}
    assert slept(client) == [17.0]
    assert "github: secondary rate limit (Retry-After); waiting 17 s" in client.waits


def test_secondary_rate_limit_without_retry_after_backs_off_exponentially(fake, client):
    fake.fail("GET", "/user", 403, message="You have exceeded a secondary rate limit", times=2)
    fake.fail("GET", "/user", 429)
    assert client.get("/user")["login"] == "organizer"
    assert slept(client) == [60.0, 120.0, 240.0]


def test_primary_rate_limit_waits_until_reset(fake, client, monkeypatch):
    monkeypatch.setattr(Client, "clock", staticmethod(lambda: 1000.0))
    fake.fail("GET", "/user", 403, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1030"})
    assert client.get("/user")["login"] == "organizer"
    assert slept(client) == [31.0]
    # an exhausted limit seen on a success makes the next request wait first
    fake.fail("GET", "/user", 200, {"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1100"})
    client.request("GET", "/user")
    client.get("/user")
    assert slept(client)[1:] == [100.0]


def test_server_errors_are_retried_then_reported(fake, client):
    fake.fail("GET", "/user", 502, times=2)
    assert client.get("/user")["login"] == "organizer"
    assert slept(client) == [1.0, 2.0]
    fake.fail("GET", "/user", 500, message="oops", times=4)
    with pytest.raises(GitHubError, match=r"GET /user: 500 oops \(gave up after 3 retries\)"):
        client.get("/user")


def test_other_errors_are_one_line_and_not_retried(fake, client):
    fake.fail("PUT", "/repos/o/r/collaborators/x", 403, message="Must have admin rights")
    with pytest.raises(GitHubError) as e:
        client.request("PUT", "/repos/o/r/collaborators/x", {"permission": "push"})
    assert str(e.value) == "GitHub PUT /repos/o/r/collaborators/x: 403 Must have admin rights"
    assert e.value.status == 403 and slept(client) == []


def test_writes_are_paced_reads_are_not(fake, client):
    client.write_interval = 30
    fake.add_repo("cohort-org/r")
    for _ in range(3):
        client.get("/user")
    assert slept(client) == []
    for _ in range(3):
        client.request("PATCH", "/repos/cohort-org/r", {"is_template": True})
    assert len(slept(client)) == 2 and all(20 < w <= 30 for w in slept(client))


def test_an_unreachable_api_is_retried_then_one_line(client):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    client.api_url = f"http://127.0.0.1:{port}"
    with pytest.raises(GitHubError, match=f"cannot reach http://127.0.0.1:{port}"):
        client.get("/user")
    assert slept(client) == [1.0, 2.0, 4.0]


def test_token_from_env_then_gh(monkeypatch, tmp_path):
    monkeypatch.setenv("GITHUB_TOKEN", "from-env")
    assert auth.find_token() == "from-env"
    monkeypatch.delenv("GITHUB_TOKEN")
    gh = tmp_path / "gh"
    gh.write_text("#!/bin/sh\necho from-gh\n")
    gh.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert auth.find_token() == "from-gh"
    gh.write_text("#!/bin/sh\nexit 1\n")
    with pytest.raises(AuthError, match="set GITHUB_TOKEN or log in with `gh auth login`"):
        auth.find_token()


def test_scope_and_org_checks(fake, client):
    fake.scopes = "repo, admin:org"
    auth.check(client, ("repo", "read:org"), "cohort-org", "cmd")  # admin:org implies read:org
    with pytest.raises(AuthError, match="needs a GitHub token with the workflow scope"):
        auth.check(client, ("repo", "workflow"), "cohort-org", "cmd")
    fake.scopes = None  # a fine-grained token lists no scopes: GitHub decides per request
    auth.check(client, ("repo", "workflow"), "cohort-org", "cmd")
    with pytest.raises(AuthError, match="cannot see organization 'elsewhere' \\(404\\)"):
        auth.check(client, ("repo",), "elsewhere", "cmd")
    client.token = "revoked"
    with pytest.raises(AuthError, match="GitHub rejected the token \\(401 on GET /user\\)"):
        auth.check(client, ("repo",), "cohort-org", "cmd")
