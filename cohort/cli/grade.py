"""`cohort grade`: grade a pair checkout in a sandboxed pytest run."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from cohort.curriculum import available_days
from cohort.errors import GradeError
from cohort.grading import feedback, fingerprint, isolation, results, sandbox


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("grade", help="grade a pair checkout (laid out like template/)")
    p.add_argument("repo", type=Path, help="the checkout to grade: its mlab/ is the code graded")
    p.add_argument(
        "--day",
        action="append",
        default=[],
        metavar="DAY",
        help="grade only this day, e.g. w0_prep (repeatable; a value may list several days "
        "separated by spaces or commas; empty: every day)",
    )
    p.add_argument("--tests", type=Path, help="trusted tests to use (default: REPO/tests)")
    p.add_argument(
        "--out",
        type=Path,
        default=Path("results.json"),
        help="results file (default: results.json)",
    )
    p.add_argument("--pair", help="pair name recorded in the results (default: REPO's folder name)")
    limits = sandbox.Limits()
    p.add_argument(
        "--test-timeout", type=float, default=limits.test_timeout, help="seconds per test"
    )
    p.add_argument(
        "--run-timeout", type=float, default=limits.run_timeout, help="seconds for the whole run"
    )
    p.add_argument(
        "--memory-mb",
        type=int,
        default=limits.memory_mb,
        help="address-space limit of the test process",
    )
    p.add_argument(
        "--isolation",
        choices=isolation.MODES,
        default="auto",
        help="sandbox for pair code: bwrap (required), auto (bwrap where it runs; the results "
        'say "isolation: none" otherwise) or none',
    )
    p.add_argument("-m", "--markers", help='select tests by marker expression, e.g. "gpu or bench"')
    p.add_argument(
        "--meta",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="record KEY=VALUE in extra_data (repeatable), e.g. repo=org/pair-a",
    )
    p.add_argument("--summary", type=Path, help="also write the Markdown score table to this file")
    p.add_argument(
        "--annotate-prefix",
        default="",
        help="path of the checkout in the CI workspace, for annotation file paths",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="print only the total")
    p.set_defaults(run=run)


def meta(pairs: list[str]) -> dict[str, str]:
    extra = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GradeError(f"--meta {pair!r}: expected KEY=VALUE")
        extra[key] = value
    return extra


def selected_days(values: list[str]) -> list[str]:
    """The days named by the `--day` values, in order, once each (empty: every day)."""
    days = [d for v in values for d in v.replace(",", " ").split()]
    return list(dict.fromkeys(days))


def run(args: argparse.Namespace) -> int:
    limits = sandbox.Limits(args.test_timeout, args.run_timeout, args.memory_mb)
    extra = meta(args.meta) | ({"pair": args.pair} if args.pair else {})
    days = selected_days(args.day) or [None]
    res = results.merge(
        [
            sandbox.grade(args.repo, args.tests, d, limits, extra, args.markers, args.isolation)
            for d in days
        ]
    )
    tests = args.tests or args.repo / "tests"
    days_of = fingerprint.day_fingerprints(args.repo, tests, available_days(tests))
    for day, totals in res["extra_data"]["days"].items():
        if day in days_of:
            totals.update(files=days_of[day][0], fingerprint=days_of[day][1])
    res["extra_data"]["fingerprints"] = {d: fp for d, (_, fp) in days_of.items()}
    results.write(res, args.out)
    if args.summary:
        args.summary.write_text(feedback.markdown_summary(res))
    print(feedback.terminal_table(res) if not args.quiet else res["output"])
    print(f"results: {args.out}")
    feedback.publish_to_github(res, prefix=args.annotate_prefix)
    sys.stdout.flush()
    return 0
