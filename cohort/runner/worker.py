"""One grading worker: take a job, check its commit out into a scratch directory, grade the days
it needs with the cohort's trusted tests and keep each day, as it finishes, in results.json on
disk, then in the store.

A day whose fingerprint (its files, the shared files, the trusted tests: see `fingerprint`) has a
stored result is carried over from it; the others are graded, the days whose files changed since
the pair's previous graded push first, then the days never graded, then the rest.

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
import time
import traceback
from contextlib import AbstractContextManager
from pathlib import Path

from cohort import clock, report, snapshot, store
from cohort import roster as roster_file
from cohort.curriculum import available_days
from cohort.errors import CohortError, GradeError
from cohort.forge import connect as connect_forge
from cohort.grading import fingerprint, results, sandbox
from cohort.grading.flags import scan_pair_code
from cohort.runner import diffs, queue

SCRATCH_DIR = "scratch"
POLL_S = 0.5


def heartbeat(
    cohort_dir: Path, job: queue.Job, worker: str, lease_s: float
) -> AbstractContextManager[None]:
    """Renew the job's lease every quarter lease while the body runs (a context manager)."""

    def beat() -> None:
        db = store.connect(cohort_dir)
        try:
            queue.renew(db, job, worker, lease_s)
        finally:
            db.close()

    return clock.every(lease_s / 4, beat)


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
        self.db = store.connect(self.dir)
        self.me = queue.worker_id()
        self.lease_s = lease_s or self.roster.grading.lease_s
        g = self.roster.grading
        self.limits = sandbox.Limits(
            test_timeout=g.test_timeout, run_timeout=g.run_timeout, memory_mb=g.memory_mb
        )
        self._tests: tuple[str, str] | None = None  # (template.json, digest of its tests)

    def say(self, text: str) -> None:
        print(f"[{self.name}] {text}", flush=True)

    def tests_digest(self) -> tuple[snapshot.Template, str]:
        """The current template snapshot and its tests' digest (recomputed when it changed; the
        first sight of a new one queues the re-grades of every pair's latest commit)."""
        meta = (self.dir / snapshot.META_FILE).read_text()
        template = snapshot.load(self.dir)
        if self._tests is None or self._tests[0] != meta:
            self._tests = (meta, fingerprint.tests_digest(template.tests))
            if queued := queue.tests_changed(self.db, self._tests[1]):
                self.say(f"the trusted tests changed: {len(queued)} latest commit(s) queued again")
        return template, self._tests[1]

    def run(self, once: bool) -> int:
        """Grade jobs until stopped (or, with `once`, until none is left); returns how many."""
        graded = 0
        while True:
            self.tests_digest()
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
        except Exception as e:  # a job that cannot be graded is marked failed, the runner goes on
            if not isinstance(e, CohortError):  # a cohort error is one line; anything else a bug
                traceback.print_exc()
            queue.finish(
                self.db, job, self.me, error=str(e).splitlines()[0] if str(e) else type(e).__name__
            )
            self.say(f"failed {job.pair} {job.commit[:10]}: {e}")
            return
        queue.finish(self.db, job, self.me)
        extra = res["extra_data"]
        self.say(
            f"graded {job.pair} {job.commit[:10]}: {res['score']:g}/{res['max_score']:g} in "
            f"{time.monotonic() - started:.1f} s ({len(extra['graded_days'])} days graded, "
            f"{len(extra['carried_days'])} carried over)"
        )
        if not self.site_exists():  # the first job writes the site; later days refresh it
            report.refresh(self.roster, self.say)

    def keep(self, doc: dict, days: list[str]) -> None:
        """Write the commit's results.json as it stands, then store `days` of it."""
        store.save_result(self.db, self.dir, doc, days)
        self.refresh_site()

    def refresh_site(self) -> None:
        """Rewrite the dashboard, once there is one, so the pair's pages show the day before the
        job ends (`write_site` takes turns with other writers on a lock; a failure costs the job
        nothing)."""
        if self.site_exists():
            report.refresh(self.roster, self.say)

    def site_exists(self) -> bool:
        return (self.dir / report.SITE_DIR / "index.html").exists()

    def plan(
        self, job: queue.Job, days: list[str], files: dict[str, str], prints: dict[str, str]
    ) -> tuple[list[str], dict[str, dict]]:
        """The days to grade, in order, and the carried-over days' parts (by day)."""
        carried, todo = {}, []
        for day in days:
            found = None if job.forced(day) else store.measured(self.db, job.pair, day, prints[day])
            try:
                source = found and results.load(self.dir / found.path)
            except ValueError:
                source = None  # its results.json is gone: grade the day again
            if not source or day not in source["extra_data"].get("days", {}):
                todo.append(day)
                continue
            part = results.day_part(source, day)
            part["extra_data"]["days"][day].update(
                commit=found.commit, carried_over=found.commit != job.commit
            )
            carried[day] = part
        before, ever = (
            store.latest_days(self.db, job.pair, job.commit),
            store.graded_days(self.db, job.pair),
        )
        changed = [d for d in todo if d in before and before[d].files != files[d]]
        never = [d for d in todo if d not in ever]
        return list(dict.fromkeys([*changed, *never, *todo])), carried

    def grade(self, job: queue.Job) -> dict:
        template, tests_id = self.tests_digest()
        scratch = self.dir / SCRATCH_DIR / f"job-{job.id}-{os.getpid()}"
        for stale in (self.dir / SCRATCH_DIR).glob(f"job-{job.id}-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a worker that was killed
        try:
            repo = scratch / "repo"
            exported = self.forge.export(job.pair, job.commit, repo)
            graded = set(available_days(template.tests))
            days = [d.name for d in self.roster.days if d.name in graded]
            if not days:
                raise GradeError("no day of cohort.toml has graders in the template")
            both = fingerprint.day_fingerprints(repo, template.tests, days, tests_id)
            files, prints = ({d: v[i] for d, v in both.items()} for i in (0, 1))
            todo, carried = self.plan(job, days, files, prints)
            facts = {
                "pair": job.pair,
                "repo": self.forge.repo_url(job.pair),
                "commit": job.commit,
                "committed_at": exported.committed_at,
                "ref": job.ref,
                "pushed_at": job.pushed_at,
                "graded_at": clock.now_iso(),
                "graded_days": todo,
                "carried_days": list(carried),
                "template": {"ref": template.ref, "commit": template.commit, "tests": tests_id},
                "diffs": diffs.exercise_diffs(repo, template.path, days),
                "edited_tests": diffs.edited_tests(repo, template.tests),
                "flags": scan_pair_code(repo / "mlab"),
                "job": {"id": job.id, "attempt": job.attempts, "worker": self.me},
            }
            parts = dict(carried)

            def document() -> dict:
                done = [d for d in todo if d in parts]  # graded first: their facts (isolation) lead
                doc = results.merge([parts[d] for d in [*done, *carried]], facts)
                doc["execution_time"] = round(sum(parts[d]["execution_time"] for d in done), 3)
                return doc

            if carried:
                self.keep(document(), list(carried))
            if not todo:
                return document()
            trusted_tests(template.tests, todo, scratch / "tests")
            for day in todo:
                part = sandbox.grade(repo, scratch / "tests", day, self.limits, facts)
                part["extra_data"]["days"].setdefault(day, dict(results.NO_TESTS))
                part["extra_data"]["days"][day].update(
                    commit=job.commit, carried_over=False, fingerprint=prints[day], files=files[day]
                )
                parts[day] = part
                self.keep(document(), [day])
            return document()
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
