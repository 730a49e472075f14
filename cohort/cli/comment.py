"""`cohort comment`: post a results.json as the sticky score comment on a pull request."""

from __future__ import annotations

import argparse
import os
import re
from pathlib import Path

from cohort.errors import UsageError
from cohort.github import auth
from cohort.github.client import API_URL, Client
from cohort.grading import results
from cohort.report.comment import BOT, body, post

REPO = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "comment",
        help="post a results.json as the sticky score comment on a pull request",
        description="Create the pull request's score comment, or update it in place when it "
        "exists (found by its marker and author). The token is GITHUB_TOKEN; the API is "
        "GITHUB_API_URL (default https://api.github.com), as GitHub Actions sets them.",
    )
    p.add_argument("results", type=Path, help="the results.json to show")
    p.add_argument("--repo", required=True, help="owner/name of the pull request's repository")
    p.add_argument("--pr", required=True, type=int, help="the pull request's number")
    p.add_argument(
        "--author", default=BOT, help=f"login whose comment is updated in place (default: {BOT})"
    )
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if not REPO.match(args.repo):
        raise UsageError(f"--repo {args.repo!r}: expected owner/name")
    doc = results.load(args.results)
    api = os.environ.get("GITHUB_API_URL") or API_URL
    client = Client(auth.find_token(), api_url=api, write_interval=0)
    done = post(client, args.repo, args.pr, body(doc), args.author)
    print(f"comment {done.action} on {args.repo}#{args.pr}: {done.url}")
    return 0
