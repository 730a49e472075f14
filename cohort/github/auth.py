"""The GitHub token: where it comes from and whether it may do what a command is about to do.

`check` runs before a command changes anything: a token GitHub rejects, one that lacks a scope
the command needs (classic tokens list theirs in `X-OAuth-Scopes`) or one that cannot see the
organization is a one-line error naming the fix.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterable

from cohort.errors import AuthError, GitHubError
from cohort.github.client import Client

# scopes a classic token's scope implies (only those cohort asks for)
IMPLIES = {
    "repo": {"repo", "repo:status", "public_repo"},
    "admin:org": {"admin:org", "write:org", "read:org"},
    "write:org": {"write:org", "read:org"},
}
LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")


def find_token() -> str:
    """GITHUB_TOKEN, else what `gh auth token` prints."""
    token = os.environ.get("GITHUB_TOKEN", "").strip()
    if token:
        return token
    if shutil.which("gh"):
        proc = subprocess.run(["gh", "auth", "token"], capture_output=True, text=True)
        if proc.returncode == 0 and proc.stdout.strip():
            return proc.stdout.strip()
    raise AuthError("no GitHub token: set GITHUB_TOKEN or log in with `gh auth login`")


def granted(header: str) -> set[str]:
    """The scopes an `X-OAuth-Scopes` header grants, implied ones included."""
    named = {s.strip() for s in header.split(",") if s.strip()}
    return set().union(*(IMPLIES.get(s, {s}) for s in named))


def check(client: Client, scopes: tuple[str, ...], org: str, command: str, why: str = "") -> None:
    """Raise AuthError unless the token works, has `scopes` (when GitHub says) and sees `org`.

    `why` says what needs the scopes, e.g. "to push .github/workflows".
    """
    try:
        resp = client.request("GET", "/user")
    except GitHubError as e:
        if e.status in (401, 403):
            raise AuthError(
                f"GitHub rejected the token ({e.status} on GET /user): set GITHUB_TOKEN to a "
                "valid personal access token or run `gh auth login`"
            ) from None
        raise
    header = resp.headers.get("X-OAuth-Scopes")
    if header is not None:  # a classic token; fine-grained ones do not list scopes
        missing = [s for s in scopes if s not in granted(header)]
        if missing:
            raise AuthError(
                f"`{command}` needs a GitHub token with the {', '.join(missing)} scope(s)"
                f"{f' {why}' if why else ''}; this "
                f"one has {header.strip() or 'none'} (run `gh auth refresh -s "
                f"{','.join(missing)}` or make a token with {', '.join(scopes)})"
            )
    try:
        client.request("GET", f"/orgs/{org}")
    except GitHubError as e:
        if e.status in (401, 403, 404):
            raise AuthError(
                f"the GitHub token cannot see organization {org!r} ({e.status}): check "
                "forge.github.org in cohort.toml and that the token's owner is a member"
            ) from None
        raise


def bad_logins(names: Iterable[str]) -> list[str]:
    """The names that cannot be GitHub usernames."""
    return [n for n in names if not LOGIN.match(n)]
