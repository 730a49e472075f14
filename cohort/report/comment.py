"""The sticky score comment on a pair's pull request: created once, then updated in place.

The comment is found by `MARKER` at the start of its body and by its author (the workflow's
`github-actions[bot]` by default), so a comment a pair member starts with the marker is never
the one edited.
"""

from __future__ import annotations

from dataclasses import dataclass

from cohort.github.client import Client
from cohort.grading import feedback

MARKER = "<!-- cohort-grade -->"
BOT = "github-actions[bot]"


@dataclass(frozen=True)
class Posted:
    action: str  # "created" or "updated"
    url: str


def body(results: dict) -> str:
    """The comment's Markdown: the marker, the score table and the commit graded."""
    commit = str(results.get("extra_data", {}).get("commit") or "")
    tail = f"\n_commit {commit[:7]}_\n" if commit else ""
    return f"{MARKER}\n{feedback.markdown_summary(results)}{tail}"


def find(client: Client, repo: str, number: int, author: str) -> dict | None:
    """The pull request's earliest comment by `author` that starts with the marker."""
    for c in client.paginate(f"/repos/{repo}/issues/{number}/comments"):
        if (c.get("user") or {}).get("login") == author and (c.get("body") or "").startswith(
            MARKER
        ):
            return c
    return None


def post(client: Client, repo: str, number: int, text: str, author: str = BOT) -> Posted:
    """Update the sticky comment of pull request `number` to `text`, or create it."""
    mine = find(client, repo, number, author)
    if mine:
        got = client.request(
            "PATCH", f"/repos/{repo}/issues/comments/{mine['id']}", {"body": text}
        ).json()
        return Posted("updated", got.get("html_url", ""))
    got = client.request("POST", f"/repos/{repo}/issues/{number}/comments", {"body": text}).json()
    return Posted("created", got.get("html_url", ""))
