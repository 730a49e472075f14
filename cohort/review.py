"""`cohort review assign`: request a TA's review on every open pull request of the pairs.

Pull requests that already have a TA (requested, or one who has reviewed) keep that TA. The others
are handed out in a fixed order (roster order of pairs, then pull request number) to the TA with
the fewest open pull requests, ties going to the first in `cohort.tas`: round-robin when loads
are equal, balanced when they are not, and the same answer on every re-run. Drafts and the
organizers' template updates are not assigned.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from cohort.errors import ForgeError, GitHubError
from cohort.forge.github import GitHubForge
from cohort.roster import Roster
from cohort.sync import BRANCH_PREFIX


@dataclass(frozen=True)
class PullRequest:
    pair: str
    number: int
    url: str
    reviewer: str | None  # the TA it has, if any


@dataclass
class Assigned:
    kept: list[PullRequest] = field(default_factory=list)
    new: list[tuple[PullRequest, str]] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    load: dict[str, int] = field(default_factory=dict)  # TA -> open pull requests


def plan(pulls: list[PullRequest], tas: tuple[str, ...]) -> list[tuple[PullRequest, str]]:
    """The TA for each pull request without one (see the module docstring)."""
    load = {ta: 0 for ta in tas}
    for pull in pulls:
        if pull.reviewer:
            load[pull.reviewer] += 1
    chosen = []
    for pull in pulls:
        if not pull.reviewer:
            ta = min(tas, key=lambda t: (load[t], tas.index(t)))
            load[ta] += 1
            chosen.append((pull, ta))
    return chosen


def open_pulls(forge: GitHubForge, roster: Roster) -> list[PullRequest]:
    """Every open, non-draft pull request of the pairs, with the TA it has, in a fixed order."""
    by_login = {ta.lower(): ta for ta in roster.tas}
    found = []
    for pair in roster.pairs:
        for pull in forge.open_pulls(pair.name):
            if pull.get("draft") or pull["head"]["ref"].startswith(BRANCH_PREFIX):
                continue
            logins = [u["login"] for u in pull.get("requested_reviewers", [])]
            if not any(login.lower() in by_login for login in logins):
                logins = forge.reviewers(pair.name, pull["number"])
            tas = sorted(
                {by_login[login.lower()] for login in logins if login.lower() in by_login},
                key=roster.tas.index,
            )
            found.append(
                PullRequest(pair.name, pull["number"], pull["html_url"], next(iter(tas), None))
            )
    return found


def assign(
    roster: Roster,
    forge: GitHubForge,
    dry_run: bool = False,
    progress: Callable[[str], None] = print,
) -> Assigned:
    """Request reviews as `plan` says (only print them with `dry_run`)."""
    if not roster.tas:
        raise ForgeError(f"{roster.path}: cohort.tas is empty: no one to assign")
    forge.preflight(("repo",), "cohort review assign")
    pulls = open_pulls(forge, roster)
    done = Assigned(kept=[p for p in pulls if p.reviewer])
    for pull, ta in plan(pulls, roster.tas):
        if not dry_run:
            try:
                forge.request_review(pull.pair, pull.number, ta)
            except GitHubError as e:
                done.failed.append(f"{pull.url}: {e}")
                continue
        done.new.append((pull, ta))
        progress(f"{pull.url}: {ta}{' (dry run)' if dry_run else ''}")
    done.load = {ta: 0 for ta in roster.tas}
    for ta in [p.reviewer for p in done.kept] + [ta for _, ta in done.new]:
        done.load[ta] += 1
    return done
