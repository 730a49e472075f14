"""Fixtures for the graders: seeded randomness and reference snapshots."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from checks import assert_close

SNAPSHOTS = Path(__file__).parent / "snapshots"
UPDATE = os.environ.get("MLAB_UPDATE_SNAPSHOTS") == "1"  # set by the organizers' `nox -s snapshots`


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so failures reproduce."""
    torch.manual_seed(0)
    np.random.seed(0)


class Snapshot:
    """Reference outputs recorded from the solutions: `snapshot.check(name, tensor, atol=...)`."""

    def __init__(self, day: str, test_name: str):
        self.day, self.test_name = day, test_name

    def path(self, name: str) -> Path:
        return SNAPSHOTS / self.day / f"{self.test_name}__{name}.npz"

    def check(
        self, name: str, actual: torch.Tensor, *, atol: float = 1e-5, rtol: float = 1e-4
    ) -> None:
        path = self.path(name)
        if UPDATE:
            path.parent.mkdir(parents=True, exist_ok=True)
            np.savez_compressed(path, value=actual.detach().cpu().numpy())
            return
        if not path.exists():
            pytest.fail(
                f"snapshot {path.name} is missing: organizers run `nox -s snapshots`", pytrace=False
            )
        expected = torch.from_numpy(np.load(path)["value"])
        assert_close(
            actual,
            expected,
            what=f"{self.test_name} ({name}) against its snapshot",
            atol=atol,
            rtol=rtol,
        )


@pytest.fixture
def snapshot(request: pytest.FixtureRequest) -> Snapshot:
    day = request.node.path.stem.removeprefix("test_")
    return Snapshot(day, request.node.originalname)
