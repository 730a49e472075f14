"""Fixtures for the tooling's own tests."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch  # noqa: F401  loaded once: in-process pytester runs would re-import it and crash

from cohort import manifest
from cohort.curriculum import day_of_test_file

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def root() -> Path:
    """The organizer repository."""
    return ROOT


@pytest.fixture
def pair_repo(tmp_path: Path):
    """Write a tiny pair checkout: `pair_repo(code, tests)` -> its path (day `toy`)."""

    def make(code: str, tests: str, name: str = "pair") -> Path:
        repo = tmp_path / name
        (repo / "mlab").mkdir(parents=True)
        (repo / "tests").mkdir()
        (repo / "mlab" / "__init__.py").write_text("")
        (repo / "mlab" / "toy.py").write_text(code)
        (repo / "tests" / "test_toy.py").write_text(tests)
        return repo

    return make


def write_manifest(repo: Path, points: dict[str, float]) -> None:
    """`repo/tests/manifest.json` listing these tests (nodeid -> points), as `cohort check
    manifest` records it for the template: what grading counts when a test file does not import."""
    tests = {
        nodeid: manifest.Entry(
            nodeid,
            day_of_test_file(nodeid.split("::")[0]) or "",
            p,
            [],
            ["points"],
            nodeid.split("::")[0],
        )
        for nodeid, p in points.items()
    }
    found = manifest.Manifest(manifest.tests_digest(repo / "tests"), tests, {})
    (repo / "tests" / manifest.FILENAME).write_text(manifest.dump(found))
