"""One grading worker: take a job, check its commit out into a scratch directory, grade it with
the cohort's trusted tests, keep results.json on disk, then in the store.

Run by `cohort runner` as `python -m cohort.runner.worker COHORT_DIR [--once]`. A background
thread renews the job's lease while the grader runs; a worker that stops (SIGTERM, Ctrl-C) gives
its job back, and one that is killed leaves it to be taken again when the lease lapses.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cohort import report, store
from cohort import roster as roster_file
from cohort.curriculum import available_days
from cohort.forge import connect as connect_forge
from cohort.forge import template as template_snapshot
from cohort.forge.base import ForgeError
from cohort.grading import results, sandbox
from cohort.runner import queue, review

SCRATCH_DIR = "scratch"
POLL_S = 0.5
EXPECTED = (sandbox.GradeError, store.StoreError, ForgeError)  # reported in one line, no traceback


@contextmanager
def heartbeat(cohort_dir: Path, job: queue.Job, worker: str, lease_s: float) -> Iterator[None]:
    """Renew the job's lease every quarter lease while the body runs."""
    stop = threading.Event()

    def beat() -> None:
        db = store.connect(cohort_dir)
        while not stop.wait(lease_s / 4):
            queue.renew(db, job, worker, lease_s)
        db.close()

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def trusted_tests(template: Path, days: list[str], dest: Path) -> None:
    """The template's tests with only the graders of `days` (helpers and data stay)."""
    other = {f"test_{d}.py" for d in available_days(template)} - {f"test_{d}.py" for d in days}
    shutil.copytree(
        template,
        dest,
        ignore=lambda _dir, names: [n for n in names if n in other or n == "__pycache__"],
    )


class Worker:
    def __init__(self, cohort_dir: Path, name: str, lease_s: float | None = None):
        self.dir, self.name = Path(cohort_dir).resolve(), name
        self.roster = roster_file.load(self.dir)
        self.forge = connect_forge(self.roster)
        self.template = template_snapshot.load(self.dir)
        self.db = store.connect(self.dir)
        self.me = queue.worker_id()
        self.lease_s = lease_s or self.roster.grading.lease_s
        g = self.roster.grading
        self.limits = sandbox.Limits(
            test_timeout=g.test_timeout, run_timeout=g.run_timeout, memory_mb=g.memory_mb
        )

    def say(self, text: str) -> None:
        print(f"[{self.name}] {text}", flush=True)

    def run(self, once: bool) -> int:
        """Grade jobs until stopped (or, with `once`, until none is left); returns how many."""
        graded = 0
        while True:
            job = queue.claim(self.db, self.me, self.lease_s)
            if job is None:
                if once and queue.pending(self.db) == 0:
                    return graded
                time.sleep(POLL_S)
                continue
            try:
                self.process(job)
            except BaseException:
                queue.release(self.db, job, self.me)
                raise
            graded += 1

    def process(self, job: queue.Job) -> None:
        started = time.monotonic()
        self.say(
            f"grading {job.pair} {job.commit[:10]} ({job.ref.removeprefix('refs/heads/')}, job {job.id}, "
            f"attempt {job.attempts})"
        )
        try:
            with heartbeat(self.dir, job, self.me, self.lease_s):
                res = self.grade(job)
            rel = store.results_path(job.pair, job.commit)
            tmp = (self.dir / rel).with_suffix(f".{os.getpid()}.tmp")
            results.write(res, tmp)
            os.replace(tmp, self.dir / rel)
            new = store.add_result(self.db, res, rel)
        except Exception as e:  # a job that cannot be graded is marked failed, the runner goes on
            if not isinstance(e, EXPECTED):
                traceback.print_exc()
            queue.finish(
                self.db, job, self.me, error=str(e).splitlines()[0] if str(e) else type(e).__name__
            )
            self.say(f"failed {job.pair} {job.commit[:10]}: {e}")
            return
        queue.finish(self.db, job, self.me)
        self.say(
            f"graded {job.pair} {job.commit[:10]}: {res['score']:g}/{res['max_score']:g} in "
            f"{time.monotonic() - started:.1f} s" + ("" if new else " (already stored)")
        )
        report.refresh(self.roster, self.say)  # the pair's pages show this job at once

    def grade(self, job: queue.Job) -> dict:
        scratch = self.dir / SCRATCH_DIR / f"job-{job.id}-{os.getpid()}"
        for stale in (self.dir / SCRATCH_DIR).glob(f"job-{job.id}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a worker that was killed
        try:
            exported = self.forge.export(job.pair, job.commit, scratch / "repo")
            graded = set(available_days(self.template.tests))
            days = [d.name for d in self.roster.days if d.name in graded]
            if not days:
                raise sandbox.GradeError("no day of cohort.toml has graders in the template")
            trusted_tests(self.template.tests, days, scratch / "tests")
            extra = {
                "pair": job.pair,
                "repo": self.forge.repo_url(job.pair),
                "commit": job.commit,
                "committed_at": exported.committed_at,
                "ref": job.ref,
                "pushed_at": job.pushed_at,
                "graded_days": days,
                "template": {"ref": self.template.ref, "commit": self.template.commit},
                "diffs": review.exercise_diffs(scratch / "repo", self.template.path, days),
                "edited_tests": review.edited_tests(scratch / "repo", self.template.tests),
                "job": {"id": job.id, "attempt": job.attempts, "worker": self.me},
            }
            return sandbox.grade(scratch / "repo", scratch / "tests", None, self.limits, extra)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m cohort.runner.worker", description=__doc__)
    p.add_argument("cohort_dir", type=Path)
    p.add_argument("--name", default=f"worker {os.getpid()}")
    p.add_argument("--once", action="store_true", help="exit when no job is left")
    p.add_argument(
        "--lease", type=float, help="lease seconds (default: grading.lease_s of cohort.toml)"
    )
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        Worker(args.cohort_dir, args.name, args.lease).run(args.once)
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
