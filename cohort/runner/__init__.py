"""The local runner: worker processes that grade queued pushes (`cohort runner`).

`run` first sweeps the forge for branch tips no push recorded (a hook that failed), then keeps
`workers` worker processes going, starting a new one when one dies, until stopped or, with
`once`, until the queue is empty.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

from cohort import snapshot, store
from cohort.forge import connect as connect_forge
from cohort.roster import Roster

MAX_RESTARTS_PER_WORKER = 3


def sweep(roster: Roster) -> int:
    """Queue branch tips of the pairs' repositories that no push recorded; returns how many."""
    forge, db, found = connect_forge(roster), store.connect(roster.dir), 0
    try:
        for pair in forge.repos():
            known, initial = store.pushed_commits(db, pair), forge.initial_commit(pair)
            for ref, commit in forge.branch_tips(pair).items():
                if commit != initial and commit not in known:
                    store.record_push(db, pair, ref, None, commit, source="sweep")
                    known.add(commit)
                    found += 1
    finally:
        db.close()
    return found


def _start(roster: Roster, index: int, once: bool, lease_s: float | None) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "cohort.runner.worker",
        str(roster.dir),
        "--name",
        f"worker {index}",
    ]
    cmd += ["--once"] * once + (["--lease", str(lease_s)] if lease_s else [])
    return subprocess.Popen(cmd)


def run(
    roster: Roster,
    workers: int = 1,
    once: bool = False,
    lease_s: float | None = None,
    progress: Callable[[str], None] = print,
) -> int:
    """Grade queued pushes with `workers` processes; returns the exit status."""
    snapshot.load(roster.dir)  # the trusted tests must be there before any worker starts
    swept = sweep(roster)
    if swept:
        progress(f"queued {swept} branch tip(s) that no hook recorded")

    def stop(*_: object) -> None:
        raise KeyboardInterrupt

    in_main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, stop) if in_main else None
    procs = {i: _start(roster, i, once, lease_s) for i in range(1, workers + 1)}
    restarts = dict.fromkeys(procs, 0)
    status = 0
    try:
        while procs:
            time.sleep(0.2)
            for i, proc in list(procs.items()):
                rc = proc.poll()
                if rc is None:
                    continue
                del procs[i]
                if rc == 0:
                    continue
                if restarts[i] >= MAX_RESTARTS_PER_WORKER:
                    progress(
                        f"worker {i} exited with {rc} {restarts[i] + 1} times; not starting it again"
                    )
                    status = 1
                    continue
                restarts[i] += 1
                progress(f"worker {i} exited with {rc}; starting another (its job is taken again)")
                procs[i] = _start(roster, i, once, lease_s)
    except KeyboardInterrupt:
        for proc in procs.values():
            proc.terminate()
        for proc in procs.values():
            proc.wait()
        return 130
    finally:
        if in_main:
            signal.signal(signal.SIGTERM, previous)
    return status
