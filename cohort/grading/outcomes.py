"""The records that flow from a grading run to `results.json`, and their JSON-lines event stream.

The process that imports pair code writes one event per line, as things happen (collected, start,
outcome, benchmark, collect_error), into a pipe its parent owns; the parent reads them with bounds,
so nothing graded before a crash is lost and nothing the child writes is trusted for the score
(ids, days and points come from the manifest).
"""

from __future__ import annotations

import json
import os
import select
from dataclasses import asdict, dataclass, field
from typing import IO, Any, TypeVar

MAX_OUTPUT = 4000  # characters of failure output kept per test


@dataclass
class Item:
    """A collected test: what it is worth and where it lives."""

    nodeid: str
    day: str
    points: float
    markers: list[str] = field(default_factory=list)  # gpu, bench, slow
    file: str = ""
    line: int = 0
    timeout: float = 0.0
    marks: list[str] = field(default_factory=list)  # every marker name (for -m)


@dataclass
class Outcome:
    """What happened to one test. status: passed, failed or skipped."""

    nodeid: str
    status: str
    output: str = ""
    duration: float = 0.0


@dataclass
class Benchmark:
    """One benchmark figure: student time against the reference time for one shape."""

    nodeid: str
    name: str
    shape: str
    time_s: float
    ref_time_s: float
    note: str = ""

    @property
    def speedup(self) -> float:
        return self.ref_time_s / self.time_s if self.time_s > 0 else 0.0


def clip(text: str, limit: int = MAX_OUTPUT) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n... [{len(text) - limit} characters cut] ...\n{text[-half:]}"


class EventWriter:
    """Writes events, one JSON line each, to the pipe the grading parent reads (file descriptor
    `fd`); line-buffered so a crash loses nothing already written."""

    def __init__(self, fd: int):
        self._file: IO[str] = os.fdopen(fd, "w", encoding="utf-8", buffering=1)

    def emit(self, event: str, **data: Any) -> None:
        self._file.write(json.dumps({"event": event, **data}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class ChannelFlooded(Exception):
    """The child wrote more to the events pipe than any honest run does."""


class EventReader:
    """Reads the events pipe without blocking and within bounds: a line longer than `max_line`
    is dropped, more than `max_total` bytes in all raises ChannelFlooded. Lines that are not JSON
    objects are ignored: nothing read here is trusted for a score."""

    def __init__(self, fd: int, max_line: int = 4 << 20, max_total: int = 64 << 20):
        self.fd, self.max_line, self.max_total = fd, max_line, max_total
        self.total, self.eof, self._partial, self._dropping = 0, False, b"", False
        os.set_blocking(fd, False)

    def poll(self, timeout: float = 0.0) -> list[dict]:
        events: list[dict] = []
        while not self.eof and select.select([self.fd], [], [], timeout)[0]:
            timeout = 0.0
            try:
                chunk = os.read(self.fd, 1 << 16)
            except BlockingIOError:
                break
            if not chunk:
                self.eof = True
                break
            self.total += len(chunk)
            if self.total > self.max_total:
                raise ChannelFlooded(f"over {self.max_total >> 20} MiB of events")
            events += self._lines(chunk)
        return events

    def _lines(self, chunk: bytes) -> list[dict]:
        *lines, rest = (self._partial + chunk).split(b"\n")
        if self._dropping and lines:  # the end of an over-long line: skip up to its newline
            lines, self._dropping = lines[1:], False
        self._partial = rest
        if len(self._partial) > self.max_line:
            self._partial, self._dropping = b"", True
        events = []
        for line in lines:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
        return events

    def close(self) -> None:
        os.close(self.fd)


R = TypeVar("R", "Item", "Outcome", "Benchmark")


def record_from(cls: type[R], data: dict) -> R:
    """An Item, Outcome or Benchmark from an event, ignoring keys it does not have."""
    return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def as_dict(record: Item | Outcome | Benchmark) -> dict:
    return asdict(record)
