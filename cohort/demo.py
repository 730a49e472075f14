"""`cohort demo`: a whole simulated cohort on one machine, from roster to dashboard.

It writes a roster, generates the pair repositories on the local forge, has each pair clone its
repository and push with git (the reference solutions, the untouched stubs, partial work, code
that hangs, edited tests), grades every push with the runner and writes the summary. By default
only a few fast days are graded, so it finishes in a few minutes on 2 cores (about 5 when they
are busy), with a progress line every few seconds.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import datetime, timedelta
from pathlib import Path

from cohort import build, clock, forge, git, manifest, report, roster, runner, snapshot, store
from cohort.curriculum import BY_NAME, available_days
from cohort.errors import DemoError
from cohort.roster import WORKTREE

BEHAVIOURS = ("solutions", "stubs", "partial", "hangs", "edited-tests")
FAST_DAYS = 3  # days graded by default: w0_prep and the next fast ones
FAST_BUDGET_S = 60
TICK_S = 10.0  # seconds between progress lines while grading
TEST_TIMEOUT_S = 30  # the grader's default; the pair whose code hangs spends it once
PASSING_TESTS = '''"""Edited by the pair: every test passes (the grader uses the trusted copy instead)."""


def test_everything_is_fine():
    assert True
'''


def fast_days(days: list[str]) -> list[str]:
    """The first few days with graders that are quick on a CPU (not optional, small budget)."""
    quick = [d for d in days if BY_NAME[d].budget_s <= FAST_BUDGET_S and not BY_NAME[d].optional]
    return quick[:FAST_DAYS]


def pair_names(n: int) -> list[tuple[str, str]]:
    """(pair name, behaviour) for `n` pairs, cycling through the behaviours."""
    return [
        (f"pair-{i + 1:02d}-{BEHAVIOURS[i % len(BEHAVIOURS)]}", BEHAVIOURS[i % len(BEHAVIOURS)])
        for i in range(n)
    ]


def roster_text(name: str, repo: Path, ref: str, pairs: list[str], days: list[str]) -> str:
    """A roster with every day released yesterday and due in a week."""
    release = (datetime.now().astimezone() - timedelta(days=1)).replace(microsecond=0)
    deadline = release + timedelta(days=8)
    sections = [
        "# Written by `cohort demo`: a simulated cohort.",
        f'[cohort]\nname = "{name}"\ntas = ["Demo TA"]',
        f'[template]\nrepo = "{repo.as_posix()}"\nref = "{ref}"',
        '[forge]\nbackend = "local"',
        f"[grading]\ntest_timeout = {TEST_TIMEOUT_S}\nlease_s = 30",
        *(f'[[pairs]]\nname = "{p}"\nmembers = ["{p} member A", "{p} member B"]' for p in pairs),
        "[days]\n"
        + "\n".join(
            f"{d} = {{ release = {release.isoformat()}, deadline = {deadline.isoformat()} }}"
            for d in days
        ),
    ]
    return "\n\n".join(sections) + "\n"


def rework(
    solution: str, path: Path, day: str, keep: Callable[[int], bool], hang: int | None = None
) -> str:
    """The stub of a solution file, keeping the solution in the regions `keep(i)` picks; region
    `hang` becomes an infinite loop."""
    out, region, keeping = [], -1, False
    for line in solution.splitlines(keepends=True):
        begin = build.BEGIN.match(line)
        if begin:
            region += 1
            keeping = keep(region) and region != hang
            if region == hang:
                line = f"{begin['indent']}# BEGIN SOLUTION: while True: pass  # demo: this code hangs\n"
            if keeping:
                continue
        elif build.END.match(line) and keeping:
            keeping = False
            continue
        out.append(line)
    return build.stub_source("".join(out), path, day)


def reached_first(tests: Path) -> Counter[str]:
    """How many tests reach each exercise first (`mlab/<file>.py:<Qualified.name>`), as the
    snapshot's points manifest records it."""
    try:
        found = manifest.check_current(tests, tests.parent)
    except manifest.ManifestError as e:
        raise DemoError(str(e)) from None
    return Counter(e.exercise for e in found.tests.values() if e.exercise)


def least_tested(solution: str, rel: str, reached: Counter[str]) -> int:
    """The region of the solution file `rel` (`mlab/<file>.py`) whose exercise the fewest tests
    reach first (but some): the cheapest to hang, since each of those tests runs until its
    timeout."""
    lines = solution.splitlines()
    names = [
        f"{rel}:{build.exercise_name(lines, i, m['indent'])}"
        for i, line in enumerate(lines)
        if (m := build.BEGIN.match(line))
    ]
    tested = [i for i, name in enumerate(names) if reached[name]] or [0]
    return min(tested, key=lambda i: reached[names[i]])


def day_files(mlab: Path, day: str) -> list[Path]:
    return [p for p in [mlab / f"{day}.py", *sorted((mlab / day).rglob("*.py"))] if p.is_file()]


def write_pair_code(
    behaviour: str, work: Path, solutions: Path, tests: Path, days: list[str]
) -> str:
    """Change the pair's clone `work` as `behaviour` says; returns the commit message."""
    if behaviour == "solutions":
        shutil.copytree(solutions, work / "mlab", dirs_exist_ok=True)
        return "All exercises, from the reference solutions"
    if behaviour == "stubs":
        (work / "NOTES.md").write_text("We have read the exercises and start tomorrow.\n")
        return "Notes; no code yet"
    if behaviour == "edited-tests":
        for day in days:
            (work / "tests" / f"test_{day}.py").write_text(PASSING_TESTS)
        return "Make the tests pass"
    reached = reached_first(tests) if behaviour == "hangs" else Counter()
    for n, day in enumerate(days):
        for src in day_files(solutions, day):
            text, rel = src.read_text(), src.relative_to(solutions)
            if behaviour == "partial":
                new = rework(text, src, day, keep=lambda i: i % 2 == 0)
            elif n == 0:  # hangs: the first day is solved but for one function that loops forever
                hang = least_tested(text, f"mlab/{rel.as_posix()}", reached)
                new = rework(text, src, day, keep=lambda i: True, hang=hang)
            else:
                continue
            (work / "mlab" / rel).write_text(new)
    return (
        "Half of the exercises"
        if behaviour == "partial"
        else "Everything, but one function loops forever"
    )


def identity(who: str) -> dict[str, str]:
    """git's environment for commits by the demo's pair `who`."""
    email = f"{who}@demo.invalid"
    return {
        "GIT_AUTHOR_NAME": who,
        "GIT_AUTHOR_EMAIL": email,
        "GIT_COMMITTER_NAME": who,
        "GIT_COMMITTER_EMAIL": email,
    }


def grading_progress(counts: dict[str, int], total: int, elapsed: float) -> str:
    """`3 of 5 pushes graded, 2 grading; 80 s so far, about 53 s left`."""
    graded = counts["jobs done"] + counts["jobs failed"]
    left = f", about {elapsed / graded * (total - graded):.0f} s left" if graded else ""
    return (
        f"      {graded} of {total} pushes graded, {counts['jobs running']} grading; "
        f"{elapsed:.0f} s so far{left}"
    )


def ticking(
    cohort_dir: Path, total: int, progress: Callable[[str], None]
) -> AbstractContextManager[None]:
    """Say how far grading is every TICK_S seconds while the body runs (a context manager)."""
    started = time.monotonic()

    def tick() -> None:
        db = store.connect(cohort_dir)
        try:
            progress(grading_progress(store.counts(db), total, time.monotonic() - started))
        finally:
            db.close()

    return clock.every(TICK_S, tick)


def demo(
    cohort_dir: Path | None = None,
    pairs: int = len(BEHAVIOURS),
    all_days: bool = False,
    workers: int = 2,
    ref: str | None = None,
    progress: Callable[[str], None] = print,
) -> Path:
    """Run the simulated cohort; returns the path of site/index.html."""
    if pairs < 1:
        raise DemoError("--pairs must be at least 1")
    if cohort_dir and cohort_dir.exists() and any(cohort_dir.iterdir()):
        raise DemoError(
            f"{cohort_dir}: not empty; the demo builds a cohort in a new or empty folder"
        )
    cohort_dir = (cohort_dir or Path(tempfile.mkdtemp(prefix="cohort-demo-"))).resolve()
    cohort_dir.mkdir(parents=True, exist_ok=True)
    repo = snapshot.find_organizer_repo()
    ref = ref or ("HEAD" if (repo / ".git").exists() else WORKTREE)
    progress(f"[1/5] cohort in {cohort_dir}: template from {repo} at {ref}")
    taken = snapshot.take(roster.TemplateSource(repo, ref), cohort_dir)
    every = available_days(taken.tests)
    days = every if all_days else fast_days(every)
    if not days:
        raise DemoError(f"{taken.tests}: no day has graders")
    names = pair_names(pairs)
    text = roster_text(cohort_dir.name, repo, ref, [n for n, _ in names], days)
    (cohort_dir / roster.FILENAME).write_text(text)
    cohort = roster.load(cohort_dir)
    progress(
        f"      grading {', '.join(days)}"
        + ("" if all_days else f" (of {len(every)}; --all-days grades every day)")
    )
    progress(f"[2/5] generating {pairs} pair repositories")
    forge.generate(cohort, progress=lambda line: progress(f"      {line}"))
    solutions = cohort_dir / "work" / "solutions"
    snapshot.export(repo, taken.commit, "solutions/mlab", solutions)
    progress("[3/5] each pair clones its repository, works and pushes")
    local = forge.connect(cohort)
    for name, behaviour in names:
        work = cohort_dir / "work" / name
        git.run("clone", "--quiet", local.repo_url(name), str(work), cwd=cohort_dir)
        message = write_pair_code(behaviour, work, solutions, taken.tests, days)
        git.run("add", "--all", cwd=work)
        git.run("commit", "--quiet", "-m", message, cwd=work, env=identity(name))
        pushed = git.run("push", "--quiet", "origin", "HEAD", cwd=work)
        told = pushed.stdout + pushed.stderr
        queued = next(
            (ln.removeprefix("remote: ").strip() for ln in told.splitlines() if "queued" in ln),
            "not queued",
        )
        progress(f"      {name} ({behaviour}): {queued}")
    progress(
        f"[4/5] grading {len(names)} pushes on {len(days)} day(s) with {workers} workers "
        f"(a pair's hanging test costs {TEST_TIMEOUT_S} s; a line every {TICK_S:g} s)"
    )
    with ticking(cohort_dir, len(names), progress):
        status = runner.run(
            cohort, workers=workers, once=True, progress=lambda line: progress(f"      {line}")
        )
    if status != 0:
        raise DemoError(f"the runner exited with {status}")
    site = report.write_site(cohort)
    progress(f"[5/5] summary: {site.pairs} pairs x {site.days} days, {site.stuck} stuck")
    return site.index
