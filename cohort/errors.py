"""Every error the cohort tooling reports, under one root.

A `CohortError` is bad input or a failed operation that the user can act on: its message is one
line saying what and where (a checker may join several problems, one per line). The CLI catches
the root once and prints the message without a traceback; anything else is a bug and keeps its
traceback. Each layer of the data flow (docs/architecture.md) raises its own subclass, so a caller
can catch one layer's failures and let the rest through.

Exceptions a module raises and catches itself as signals (`collect`'s `Rejected`, the workspace's
`Refused`) are not errors of the tool and stay in their modules.
"""

from __future__ import annotations


class CohortError(Exception):
    """The root: a one-line message for the user."""


class UsageError(CohortError):
    """A command-line argument the command cannot use."""


class GitError(CohortError):
    """A git command failed; the message names the command, where it ran and git's complaint."""


class RosterError(CohortError):
    """cohort.toml cannot be used; one line per problem."""


class BuildError(CohortError):
    """A marker problem in the solutions, reported as `file:line: what is wrong`."""


class TemplateError(CohortError):
    """The template snapshot cannot be taken or is missing."""


class GitHubError(CohortError):
    """A GitHub request failed; `status` is the HTTP status (None when GitHub was not reached)."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class AuthError(GitHubError):
    """No usable token for what the command is about to do."""


class ForgeError(CohortError):
    """A forge operation failed (the GitHub forge maps GitHub's errors to this)."""


class RepoNotFound(ForgeError):
    """The pair has no repository on this forge."""


class CommitNotFound(ForgeError):
    """The repository does not hold the commit asked for."""


class GradeError(CohortError):
    """The checkout or the tests cannot be graded at all."""


class ManifestError(GradeError):
    """The manifest is missing, unreadable or does not match the tests it describes."""


class ResultsError(GradeError, ValueError):
    """A results document that cannot be read (a ValueError too: it is a parse error)."""


class IsolationError(GradeError):
    """Isolation was required and cannot be had here (with the reason)."""


class StoreError(CohortError):
    """The store cannot be opened or a results file cannot be stored."""


class CheckFailed(CohortError):
    """A curriculum check failed; the message says which tests and why."""


class DemoError(CohortError):
    """The demo cannot start."""
