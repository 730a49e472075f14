"""One timestamp format everywhere: UTC, ISO 8601, microseconds, `Z`; sorts as text."""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime, timedelta, timezone

import pytest

from cohort import clock

STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")


def test_now_is_utc_iso_8601_with_microseconds():
    stamp = clock.now_iso()
    assert STAMP.match(stamp), stamp
    parsed = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    assert abs(parsed - datetime.now(UTC)) < timedelta(minutes=1)


def test_other_iso_forms_are_brought_to_the_stored_one():
    assert clock.iso("2026-01-05T10:00:00Z") == "2026-01-05T10:00:00.000000Z"  # GitHub
    assert clock.iso("2026-01-05T12:00:00+02:00") == "2026-01-05T10:00:00.000000Z"  # git %cI
    east = datetime(2026, 1, 5, 11, 30, 0, 5, tzinfo=timezone(timedelta(hours=1)))
    assert clock.iso(east) == "2026-01-05T10:30:00.000005Z"
    with pytest.raises(ValueError, match="needs its UTC offset"):
        clock.iso("2026-01-05T10:00:00")


def test_text_order_is_time_order():
    moments = [
        datetime(2026, 1, 5, tzinfo=UTC) + timedelta(seconds=s) for s in (0, 0.5, 9, 10, 3600)
    ]
    stamps = [clock.iso(m) for m in moments]
    assert sorted(stamps) == stamps and len(set(map(len, stamps))) == 1


def test_every_repeats_while_the_body_runs_and_never_after():
    calls, twice = [], threading.Event()

    def action() -> None:
        calls.append(1)
        if len(calls) >= 2:
            twice.set()

    with clock.every(0.01, action):
        assert twice.wait(30), "the action should repeat while the body runs"
    stopped = len(calls)
    time.sleep(0.05)
    assert len(calls) == stopped, "the action ran after the body ended"
