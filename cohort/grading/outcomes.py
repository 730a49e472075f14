"""The records that flow from a grading run to `results.json`, and their JSON-lines event stream.

The process that imports pair code writes one event per line as things happen (collected, start,
outcome, benchmark, collect_error); the parent reads them back, so nothing graded before a crash
is lost.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, TypeVar

MAX_OUTPUT = 4000  # characters of failure output kept per test


@dataclass
class Item:
    """A collected test: what it is worth and where it lives."""

    nodeid: str
    day: str
    points: float
    markers: list[str] = field(default_factory=list)
    file: str = ""
    line: int = 0
    timeout: float = 0.0


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
    """Appends events to a file, flushed line by line so a crash loses nothing written."""

    def __init__(self, path: str | os.PathLike):
        self._file: IO[str] = open(path, "a", encoding="utf-8")  # noqa: SIM115

    def emit(self, event: str, **data: Any) -> None:
        self._file.write(json.dumps({"event": event, **data}) + "\n")
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class EventReader:
    """Reads complete lines appended to an events file since the last poll."""

    def __init__(self, path: Path):
        self.path, self._offset, self._partial = path, 0, b""

    def poll(self) -> list[dict]:
        if not self.path.exists():
            return []
        with open(self.path, "rb") as f:
            f.seek(self._offset)
            chunk = f.read()
        self._offset += len(chunk)
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a torn or forged line: the parent never trusts it for a score
        return events


R = TypeVar("R", "Item", "Outcome", "Benchmark")


def record_from(cls: type[R], data: dict) -> R:
    """An Item, Outcome or Benchmark from an event, ignoring keys it does not have."""
    return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def as_dict(record: Item | Outcome | Benchmark) -> dict:
    return asdict(record)
