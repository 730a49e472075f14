"""`cohort collect --from github`: fetch the pairs' grading results from their workflow runs and
store them as local mode does (`results/<pair>/<commit>.json`, then cohort.db).

Nothing a pair's run produces is trusted by itself: a pair can edit its workflow and its
artifacts. A result is stored only when
1. the run is a push run of the pair repository's grade workflow that called the reusable
   workflow `<grader_repository>/.github/workflows/grade.yml@<grader_ref>` and nothing else
   (when the pinned ref is a commit, the resolved sha must be that commit);
2. the workflow file at the run's commit is one the cohort's template repository has held (so no
   other job of the run can have uploaded the artifact);
3. results.json names the repository it was fetched from, the run's commit and run id, the job
   its artifact belongs to and the pinned grader;
4. every test's score agrees with its status and the totals add up from the tests, and each
   test is one the manifest of the cohort's template snapshot (`tests/manifest.json`) holds for
   its day, once, with the manifest's points as its max_score (0 when skipped), and every test
   the manifest holds for a day the run graded is there (a snapshot whose manifest is missing,
   unreadable or stale rejects every run, saying so).
Anything else is reported as rejected, with the reason, and not stored. Runs that left no
results (cancelled, failed before grading, artifacts expired) are listed apart.

A run's `results-cpu` and (when the gpu job ran) `results-gpu` are merged into one document per
commit: a test graded on the GPU replaces the CPU job's skip. A run grades the days its push
changed (`cohort changed-days`); the other days of the roster are carried over from the pair's
stored result of the push's `before` commit (else its latest earlier one), marked as such, so
runs are stored oldest first.
"""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from cohort import clock, manifest, snapshot, store
from cohort.errors import ForgeError, GitHubError, ManifestError, TemplateError
from cohort.forge.github import CALLER, SHA, GitHubForge
from cohort.grading import results
from cohort.manifest import Manifest
from cohort.roster import Roster

ARTIFACTS = {"cpu": "results-cpu", "gpu": "results-gpu"}
MAX_RESULTS_BYTES = 64 * 2**20
MAX_CALLERS = 50  # versions of the template's caller accepted, newest first
EPS = 1e-6


class Rejected(Exception):
    """A run or its results cannot be trusted; the message says why."""


class NoResults(Exception):
    """The run left no results to look at (cancelled, failed before grading, expired)."""


@dataclass
class Collected:
    stored: list[str] = field(default_factory=list)  # "<pair> <commit>"
    known: int = 0  # results already in the store
    rejected: list[str] = field(default_factory=list)  # one line each: pair, run, reason
    incomplete: list[str] = field(default_factory=list)  # runs without results, and why
    problems: list[str] = field(default_factory=list)  # pairs that could not be looked at


def check_run(run: dict, full_name: str, trusted: str, pinned_sha: str | None) -> None:
    """Rules 1 (and the repository) for one workflow run."""
    if run.get("event") != "push":
        raise Rejected(f"a {run.get('event')!r} run, not a push run")
    if (run.get("repository") or {}).get("full_name", "").lower() != full_name.lower():
        raise Rejected(f"the run belongs to {run.get('repository', {}).get('full_name')!r}")
    if run.get("path", "").split("@")[0] != CALLER:
        raise Rejected(f"the run is of {run.get('path')!r}, not {CALLER}")
    called = run.get("referenced_workflows") or []
    if not called:
        raise Rejected(f"the run did not call {trusted}")
    for ref in called:
        if ref.get("path") != trusted:
            raise Rejected(f"the run called {ref.get('path')!r}, not {trusted}")
        if pinned_sha and ref.get("sha") != pinned_sha:
            raise Rejected(f"the run used {trusted} at {ref.get('sha')}, not the pinned commit")


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Rejected(f"malformed results.json: {what} is {value!r}")
    return float(value)


def totals(tests: list[dict]) -> tuple[float, float, dict[str, dict]]:
    """Score, max score and per-day totals recomputed from `tests`, after checking that each
    test's score agrees with its status (skipped tests count nothing)."""
    for t in tests:
        if not isinstance(t, dict) or not isinstance(t.get("name"), str):
            raise Rejected(f"malformed results.json: test entry {t!r}")
        score = _number(t.get("score"), f"the score of {t['name']}")
        max_score = _number(t.get("max_score"), f"the max_score of {t['name']}")
        status = t.get("status")
        expected = max_score if status == "passed" else 0.0
        if status not in ("passed", "failed", "skipped") or abs(score - expected) > EPS:
            raise Rejected(
                f"test {t['name']} has score {score:g} of {max_score:g} but status {status!r}"
            )
        if status == "skipped" and max_score:
            raise Rejected(f"skipped test {t['name']} has max_score {max_score:g}")
    days = results.day_totals(tests)
    return (
        sum(d["score"] for d in days.values()),
        sum(d["max_score"] for d in days.values()),
        days,
    )


def check_results(doc: object, job: str, full_name: str, run: dict, forge: GitHubForge) -> dict:
    """Rules 3 and 4 for one artifact's results.json; returns it."""
    if not isinstance(doc, dict) or not isinstance(doc.get("tests"), list):
        raise Rejected("malformed results.json: no tests[]")
    extra = doc.get("extra_data")
    if not isinstance(extra, dict):
        raise Rejected("malformed results.json: no extra_data")
    grader_repository, grader_ref = forge.grader
    expected = {
        "repo": full_name,
        "commit": run["head_sha"],
        "run_id": str(run["id"]),
        "job": job,
        "grader_repository": grader_repository,
        "grader_ref": grader_ref,
    }
    for key, want in expected.items():
        got = extra.get(key)
        same = str(got).lower() == want.lower() if key == "repo" else str(got) == want
        if not same:
            raise Rejected(f"{ARTIFACTS[job]}: extra_data.{key} is {got!r}, expected {want!r}")
    score, max_score, days = totals(doc["tests"])
    claimed = (_number(doc.get("score"), "score"), _number(doc.get("max_score"), "max_score"))
    if abs(claimed[0] - score) > EPS or abs(claimed[1] - max_score) > EPS:
        raise Rejected(
            f"{ARTIFACTS[job]}: score {claimed[0]:g}/{claimed[1]:g} does not add up from its "
            f"tests ({score:g}/{max_score:g})"
        )
    for day, want in days.items():
        got = (extra.get("days") or {}).get(day) or {}
        if any(abs(_number(got.get(k, -1), f"days.{day}.{k}") - want[k]) > EPS for k in want):
            raise Rejected(f"{ARTIFACTS[job]}: extra_data.days.{day} does not add up")
    return doc


def check_manifest(doc: dict, trusted: Manifest) -> None:
    """Rule 4's manifest half for a run's merged document (see the module docstring)."""
    seen, days = set(), set()
    for t in doc["tests"]:
        name, tags = t["name"], t.get("tags")
        day = tags[0] if isinstance(tags, list) and tags else None
        entry = trusted.tests.get(name)
        if entry is None or entry.day != day:
            raise Rejected(f"test {name} of day {day!r} is not one the manifest holds")
        if name in seen:
            raise Rejected(f"test {name} is listed twice")
        want = 0.0 if t["status"] == "skipped" else entry.points
        if abs(t["max_score"] - want) > EPS:
            raise Rejected(
                f"test {name} has max_score {t['max_score']:g}, the manifest's points are "
                f"{entry.points:g}"
            )
        seen.add(name)
        days.add(day)
    missing = sorted(
        e.nodeid for e in trusted.tests.values() if e.day in days and e.nodeid not in seen
    )
    if missing:
        raise Rejected(f"{len(missing)} test(s) of the graded days missing, e.g. {missing[0]}")


def trusted_manifest(roster: Roster) -> Manifest:
    """The manifest of the cohort's template snapshot (taken now from cohort.toml's template when
    this cohort folder has none yet, as in the dashboard workflow's checkout), checked against its
    tests; ManifestError when it is missing (a snapshot taken before manifests), unreadable or
    stale, TemplateError when the template cannot be taken."""
    taken = snapshot.take(roster.template, roster.dir)
    return manifest.check_current(taken.tests, taken.path)


def merge(cpu: dict, gpu: dict | None) -> dict:
    """One document for a commit: the GPU job's graded tests replace the CPU job's entries."""
    if gpu is None:
        return cpu
    on_gpu = {t["name"]: t for t in gpu["tests"] if t["status"] != "skipped"}
    tests = [on_gpu.get(t["name"], t) for t in cpu["tests"]]
    tests += [t for name, t in on_gpu.items() if name not in {t["name"] for t in cpu["tests"]}]
    bench = [b for b in cpu["extra_data"].get("benchmarks", []) if b.get("test") not in on_gpu]
    bench += [b for b in gpu["extra_data"].get("benchmarks", []) if b.get("test") in on_gpu]
    score, max_score, days = totals(tests)
    return {
        **cpu,
        "score": score,
        "max_score": max_score,
        "output": f"Points {score:g}/{max_score:g}",
        "execution_time": cpu.get("execution_time", 0) + gpu.get("execution_time", 0),
        "tests": tests,
        "leaderboard": results.leaderboard(bench),
        "extra_data": {
            **cpu["extra_data"],
            "job": "cpu+gpu",
            "runner": gpu["extra_data"].get("runner"),
            "days": days,
            "benchmarks": bench,
            "benchmark_geomean_speedup": results.geomean_speedup(bench),
        },
    }


def carry_over(db, cohort_dir: Path, doc: dict, days: list[str]) -> dict:
    """The document with the `days` its run did not grade carried over from the pair's latest
    stored result with the day's fingerprint (as the run computed it), else from the stored
    result of the push's `before` commit, else from the latest one before it."""
    extra = doc["extra_data"]
    pair, commit = extra["pair"], extra["commit"]
    for totals in extra["days"].values():
        totals.update(commit=commit, carried_over=False)
    missing = [d for d in days if d not in extra["days"]]
    source = missing and (
        store.commit_days(db, pair, extra.get("before") or "")
        or store.latest_days(db, pair, commit, before=extra["pushed_at"])
    )
    parts = []
    prints = extra.get("fingerprints") or {}
    for day in missing:
        same = isinstance(prints.get(day), str) and store.measured(db, pair, day, prints[day])
        if (found := same or source.get(day)) is None:
            continue  # never graded: the dashboard keeps the day's earlier pushes
        try:
            part = results.day_part(results.load(cohort_dir / found.path), day)
        except ValueError:
            continue
        part["extra_data"]["days"][day].update(commit=found.commit, carried_over=True)
        parts.append(part)
    return results.merge([doc, *parts]) if parts else doc


class Collector:
    def __init__(self, roster: Roster, forge: GitHubForge, progress: Callable[[str], None]):
        self.roster, self.forge, self.progress = roster, forge, progress
        # every version of the caller the template repository has held (pairs keep an older
        # one until they merge a template update)
        self.callers = forge.caller_versions(MAX_CALLERS)
        self.manifest, self.unreadable = None, None
        try:
            self.manifest = trusted_manifest(roster)
        except (ManifestError, TemplateError) as e:
            self.unreadable = str(e)  # no run can be checked: each is rejected saying so

    def artifact(self, full_name: str, run: dict, job: str) -> dict | None:
        """The results.json of the run's artifact for `job` (None when the job made none)."""
        artifacts = self.forge.run_artifacts(full_name, run["id"])
        found = [a for a in artifacts if a.get("name") == ARTIFACTS[job]]
        if not found:
            return None
        if found[0].get("expired"):
            raise NoResults(f"{ARTIFACTS[job]} has expired")
        data = self.forge.artifact_zip(full_name, found[0]["id"])
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as z:
                info = z.getinfo("results.json")
                if info.file_size > MAX_RESULTS_BYTES:
                    raise Rejected(f"{ARTIFACTS[job]}: results.json is {info.file_size} bytes")
                return json.loads(z.read(info))
        except (zipfile.BadZipFile, KeyError, ValueError) as e:
            raise Rejected(f"{ARTIFACTS[job]}: no readable results.json ({e})") from None

    def verified(self, pair: str, full_name: str, run: dict) -> dict:
        """The run's merged, checked results document, or Rejected."""
        check_run(run, full_name, self.forge.trusted_caller, self.forge.pinned_sha)
        if self.unreadable:
            raise Rejected(f"its tests cannot be checked: {self.unreadable}")
        if self.forge.file_blob(full_name, CALLER, run["head_sha"]) not in self.callers:
            raise Rejected(f"{CALLER} at {run['head_sha'][:10]} is not one the cohort gave out")
        docs = {}
        for job in ARTIFACTS:
            doc = self.artifact(full_name, run, job)
            docs[job] = doc and check_results(doc, job, full_name, run, self.forge)
        if docs["cpu"] is None:
            raise NoResults(f"no {ARTIFACTS['cpu']} artifact ({run.get('conclusion')})")
        doc = merge(docs["cpu"], docs["gpu"])
        check_manifest(doc, self.manifest)
        doc["extra_data"].update(
            # a job no runner took (e.g. no GPU runner matches its labels) left no artifact: its
            # tests stay skipped (counting nothing), and the job is "not run", never a zero
            jobs={job: "graded" if docs[job] else "not run" for job in ARTIFACTS},
            pair=pair,
            ref=f"refs/heads/{run.get('head_branch')}",
            pushed_at=clock.iso(run["created_at"]),
            run_url=run.get("html_url"),
            collected_at=clock.now_iso(),
        )
        return doc

    def pair(self, pair: str, runs: int, db, done: Collected) -> None:
        full_name = self.forge.full_name(pair)
        newest = {}  # commit -> its newest run
        for run in self.forge.push_runs(pair, runs):
            commit = run.get("head_sha", "")
            if SHA.match(commit):
                newest.setdefault(commit, run)
        for commit, run in reversed(newest.items()):  # oldest first: carry-overs find their source
            rel = store.results_path(pair, commit)
            path = self.roster.dir / rel
            if path.exists():  # stored before; make sure the database has it too
                try:
                    new = store.add_result(db, results.load(path), rel)
                except ValueError as e:
                    done.problems.append(f"{pair}: {e}")
                    continue
                done.known += not new
                done.stored += [f"{pair} {commit}"] * new
                continue
            try:
                doc = self.verified(pair, full_name, run)
            except Rejected as e:
                done.rejected.append(f"{pair} run {run.get('id')} ({commit[:10]}): {e}")
                continue
            except NoResults as e:
                done.incomplete.append(f"{pair} run {run.get('id')} ({commit[:10]}): {e}")
                continue
            doc = carry_over(db, self.roster.dir, doc, [d.name for d in self.roster.days])
            store.save_result(db, self.roster.dir, doc)
            done.stored.append(f"{pair} {commit}")
            self.progress(f"{pair}: stored {commit[:10]} {doc['score']:g}/{doc['max_score']:g}")


def collect(
    roster: Roster, forge: GitHubForge, runs: int = 20, progress: Callable[[str], None] = print
) -> Collected:
    """Look at the newest `runs` completed push runs of each pair; store what passes the checks."""
    forge.preflight(("repo",), "cohort collect")
    collector, done = Collector(roster, forge, progress), Collected()
    db = store.connect(roster.dir)
    try:
        for pair in roster.pairs:
            try:
                collector.pair(pair.name, runs, db, done)
            except (GitHubError, ForgeError) as e:  # this pair cannot be looked at; the rest can
                done.problems.append(f"{pair.name}: {e}")
    finally:
        db.close()
    return done
