"""Objectives for the w1d4_optim graders. They live in a module of their own (not in the test
file) so that worker processes can unpickle them: the workers import this module by name."""

from __future__ import annotations

import math
import os
import sys
import threading
import time


def init_worker() -> None:
    """One thread per worker process: two workers share two cores."""
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def bowl(config: dict, budget: int) -> float:
    """(x - 1/budget)^2 + y^2: which x is best moves with the budget. x < 0 raises (a failed
    trial), x > 10 gives NaN (a diverged trial)."""
    x, y = config["x"], config.get("y", 0.0)
    if x < 0:
        raise ValueError(f"x must be >= 0, got {x}")
    if x > 10:
        return math.nan
    return (x - 1 / budget) ** 2 + y**2


def sleepy(config: dict, budget: int) -> float:
    """Sleeps config['delay'] seconds, then behaves like `bowl`: completion order != submit order."""
    time.sleep(config.get("delay", 0.0))
    return bowl(config, budget)


def process_id(config: dict, budget: int) -> float:
    """The id of the process that ran the trial."""
    return float(os.getpid())


BARRIER: threading.Barrier | None = None  # set by a test, with a timeout; threads only


def together(config: dict, budget: int) -> float:
    """At budget 1, waits until BARRIER.parties trials are running at once (threads only)."""
    if budget == 1 and BARRIER is not None:
        BARRIER.wait()
    return bowl(config, budget)
