"""What the multi-process graders (w2d5, w3d1, w3d2) share: the fork server that starts the
ranks, and how a rank's failure is read back and told (its exit, its last words on stderr, the
`mlab` line it was at). Each day's helpers keep their own `run` and worker, which differ in what
a job reports (sections, stubs met) and in the hints they give."""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import time
import traceback
from pathlib import Path

ERROR_GRACE_S = 1.0  # once a rank failed, how long its peers get to report before being killed


def mp_context(start: str, preload: list[str]):
    """A fork server that imported `preload` once, where there is one (not on Windows)."""
    if start == "forkserver" and "forkserver" in multiprocessing.get_all_start_methods():
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(preload)
        return ctx
    return multiprocessing.get_context("spawn")


def prestart(preload: list[str]) -> None:
    """Start the fork server now: it imports `preload` while the test process goes on collecting."""
    if mp_context("forkserver", preload).get_start_method() == "forkserver":
        from multiprocessing import forkserver

        forkserver.ensure_running()


class WorkerFailure(Exception):
    """Some rank raised, died or hung; the message says which and where."""


_SIGNALS = {int(s) for s in signal.Signals}


def tidy(message: str) -> str:
    """A gloo message without its C++ source location and sign-off, ending with a period."""
    message = re.sub(r"\[(enforce fail at )?[^\]]*\.(cc|cpp|h):\d+\] ", "", message)
    message = message.split(" Check the logs of the remote worker")[0].strip()
    return message if message.endswith((".", "?", "!")) else message + "."


PEER_GONE = ("Connection reset by peer", "Connection closed by peer")

TIMED_OUT = ("Timed out", "timed out")


def rank_of_error(outcome: dict) -> int:
    """Which error to show first: a Python exception, a crash, a timeout, then a vanished peer."""
    if outcome["error"] == "a crash":
        return 1
    if any(c in outcome["message"] for c in TIMED_OUT):
        return 2
    return 3 if any(c in outcome["message"] for c in PEER_GONE) else 0


def death(exitcode: int, stderr: Path) -> dict:
    """A rank that exited without reporting: its exit status and last words on stderr."""
    how = f"exited with code {exitcode}"
    if exitcode < 0:
        how = (
            f"was killed by {signal.Signals(-exitcode).name}"
            if -exitcode in _SIGNALS
            else f"got signal {-exitcode}"
        )
    text = stderr.read_text(errors="replace") if stderr.exists() else ""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    last = [ln.split("what():", 1)[1].strip() for ln in lines if "what():" in ln] or lines[-2:]
    last = [tidy(ln) for ln in last]
    words = f" Its last words: {' '.join(last)[-500:]}" if last else ""
    if "doesn't match expected size" in text:
        words += (
            " A send and its matching recv must have the same number of elements: do the two"
            " ranks agree on which chunk moves in this step?"
        )
    return {
        "error": "a crash",
        "message": f"the process {how} without reporting.{words}",
        "where": "",
        "time": time.time(),
    }


def mlab_line_of_stack(text: str) -> str:
    """The innermost `mlab` frames of a faulthandler dump, e.g. `mlab/day.py:87 in f <- :104 in g`."""
    marker, frames = f"{os.sep}mlab{os.sep}", []
    for line in text.splitlines():
        found = re.match(r'\s*File "(.*)", line (\d+) in (\w+)', line)
        if found and marker in found[1]:
            frames.append((found[1].split(marker, 1)[1], found[2], found[3]))
        elif frames and not found:
            break  # the end of the first thread with mlab frames
    if not frames:
        return ""
    (path, line, name), callers = frames[0], frames[1:3]
    return f"mlab/{path}:{line} in {name}" + "".join(f" <- :{ln} in {fn}" for _, ln, fn in callers)


def where(exc: BaseException) -> str:
    """The innermost frame of mlab code in the traceback, as `mlab/file.py:line in function`."""
    marker = f"{os.sep}mlab{os.sep}"
    for frame in reversed(traceback.extract_tb(exc.__traceback__)):
        if marker in frame.filename:
            return f"mlab/{frame.filename.split(marker, 1)[1]}:{frame.lineno} in {frame.name}"
    return ""
