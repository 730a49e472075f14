"""Where pair repositories live: the forge interface (`base`), its backends (`local`, ...) and
`generate`, which creates the cohort's repositories on whichever backend the roster names."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

from cohort import snapshot
from cohort.errors import ForgeError
from cohort.forge.base import Forge
from cohort.roster import Roster


def connect(roster: Roster) -> Forge:
    """The forge backend named in the roster (`[forge] backend`)."""
    try:
        module = importlib.import_module(f"cohort.forge.{roster.forge.backend}")
    except ModuleNotFoundError:
        raise ForgeError(
            f"{roster.path}: forge.backend: backend {roster.forge.backend!r} is not "
            "installed in this version of cohort"
        ) from None
    return module.connect(roster)


@dataclass(frozen=True)
class Generated:
    created: list[str]
    existing: list[str]
    template: snapshot.Template


def generate(roster: Roster, progress: Callable[[str], None] = print) -> Generated:
    """Take the template snapshot and create every pair's repository; re-runs skip what exists."""
    forge = connect(roster)  # the backend checks its settings before anything is made
    taken = snapshot.take(roster.template, roster.dir)
    created, existing = [], []
    for i, pair in enumerate(roster.pairs, 1):
        made = forge.create_repo(pair, taken)
        (created if made else existing).append(pair.name)
        progress(
            f"[{i}/{len(roster.pairs)}] {pair.name}: {'created' if made else 'exists'} "
            f"{forge.repo_url(pair.name)}"
        )
    return Generated(created, existing, taken)
