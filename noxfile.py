"""Organizer sessions. They run in the active environment (`pip install -e '.[dev]'` first):
each would otherwise build its own multi-GB torch venv."""

from __future__ import annotations

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["lint", "tests", "docs"]


@nox.session
def tests(session: nox.Session) -> None:
    """The tooling's own tests, including solutions = 100% and template = 0."""
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff and the workflow schema checks, as the pre-commit hooks run them."""
    session.run("pre-commit", "run", "--all-files", "--show-diff-on-failure")


@nox.session
def solutions(session: nox.Session) -> None:
    """Grade the reference solutions with the template's tests: must be 100%."""
    session.run("cohort", "check", "solutions", *session.posargs)


@nox.session
def template(session: nox.Session) -> None:
    """Grade the untouched template: must be 0, each failure a clean NotImplementedError."""
    session.run("cohort", "build-template", "--check")
    session.run("cohort", "check", "template", *session.posargs)


@nox.session
def snapshots(session: nox.Session) -> None:
    """Re-record template/tests/snapshots from the solutions."""
    session.run("cohort", "check", "snapshots", *session.posargs)


@nox.session
def figures(session: nox.Session) -> None:
    """Regenerate the docs' figures (docs/img) with the scripts in docs/scripts."""
    import pathlib

    for script in sorted(pathlib.Path("docs/scripts").glob("*.py")):
        session.run("python", str(script), env={"MPLBACKEND": "Agg"})


@nox.session
def docs(session: nox.Session) -> None:
    """Build the static docs site into build/docs-site, failing on any warning (broken links and
    anchors included). Needs the `docs` extra; the site needs no network (KaTeX is vendored)."""
    session.run(
        "mkdocs",
        "build",
        "--strict",
        "--site-dir",
        "build/docs-site",
        env={"NO_MKDOCS_2_WARNING": "1"},  # Material's banner about its successor
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks: they print ratios measured side by side and never fail on timing.

    The tooling's own (grading overhead, runner throughput, summary and generate at cohort
    scale), then the curriculum's `bench` tests on the reference solutions."""
    session.run("python", "-m", "pytest", "-m", "bench", "-s", "tests", *session.posargs)
    session.run(
        "cohort",
        "grade",
        "solutions",
        "--tests",
        "template/tests",
        "--markers",
        "bench",
        "--out",
        "build/bench-results.json",
    )


@nox.session
def actions(session: nox.Session) -> None:
    """The grading workflows end to end under nektos/act (host mode, offline): the pairs'
    pushes and a pull request, then `cohort collect --from github` and the dashboard workflow.
    It grades this repository's HEAD (commit first)."""
    session.run(
        "python",
        "-m",
        "pytest",
        "-v",
        "-s",
        "--test-timeout=0",
        "tests/test_act_workflows.py",
        *session.posargs,
        env={"COHORT_ACT": "1"},
    )


@nox.session
def demo(session: nox.Session) -> None:
    """A whole simulated cohort on this machine."""
    session.run("cohort", "demo", *session.posargs)
