"""The forge interface: where pair repositories live (one platform spec, one module per backend).

A backend module (`local`, later `github`) defines a `Forge` subclass and `connect(roster)`.
Backends map their failures onto `ForgeError` and its subclasses, each a one-line message.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

from cohort.roster import Pair
from cohort.snapshot import Template


@dataclass(frozen=True)
class Exported:
    """A commit exported for grading: its files sit in a directory, without git metadata."""

    commit: str
    committed_at: str


class Forge(ABC):
    """One cohort's repositories on one platform."""

    @abstractmethod
    def create_repo(self, pair: Pair, template: Template) -> bool:
        """Create the pair's repository with `template` as its first commit and give the pair
        access. Idempotent: returns False, changing nothing the pair made, if it exists."""

    @abstractmethod
    def repos(self) -> list[str]:
        """Names of the pairs that have a repository, sorted."""

    @abstractmethod
    def repo_url(self, pair: str) -> str:
        """What the pair clones and pushes to."""

    @abstractmethod
    def initial_commit(self, pair: str) -> str | None:
        """The template commit the repository was created with (not a push of the pair's)."""

    @abstractmethod
    def branch_tips(self, pair: str) -> dict[str, str]:
        """Every branch of the pair's repository: full ref name -> commit."""

    @abstractmethod
    def export(self, pair: str, commit: str, dest: Path) -> Exported:
        """Write the files of `commit` into the empty directory `dest`."""
