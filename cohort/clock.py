"""Time as the cohort keeps it. Timestamps: UTC, ISO 8601 with microseconds and a `Z`
(`2026-01-05T10:11:12.000000Z`), one fixed width, so they sort as text in SQL and in Python.
And `every`: something done at a steady pace while other work runs."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def now_iso() -> str:
    """The current time, in the stored format."""
    return datetime.now(UTC).strftime(FORMAT)


def iso(moment: datetime | str) -> str:
    """An aware datetime, or an ISO 8601 string with an offset (GitHub's `...Z`, git's `%cI`), in
    the stored format; ValueError for a string that is not one."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"{moment.isoformat()}: a timestamp needs its UTC offset")
    return moment.astimezone(UTC).strftime(FORMAT)


@contextmanager
def every(seconds: float, action: Callable[[], None]) -> Iterator[None]:
    """Call `action` every `seconds` on a background thread while the body runs: first after
    one interval, never after the body ends (the thread is joined before `every` returns)."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            action()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
