"""How a results document is shown: a terminal table per day, a Markdown job summary, and the
GitHub Actions workflow commands (error annotations at failing tests, the `Points X/Y` notice)."""

from __future__ import annotations

import os
from pathlib import Path


def day_rows(results: dict) -> list[tuple[str, int, int, float, float]]:
    """(day, passed, total, score, max_score) per day, in the order the days appear."""
    days = results.get("extra_data", {}).get("days", {})
    return [(d, v["passed"], v["total"], v["score"], v["max_score"]) for d, v in days.items()]


def first_line(text: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip()), "")


def terminal_table(results: dict) -> str:
    rows = day_rows(results)
    width = max([len("day"), *(len(r[0]) for r in rows)])
    lines = [f"{'day':<{width}}  {'tests':>9}  {'points':>13}"]
    for day, passed, total, score, max_score in rows:
        lines.append(f"{day:<{width}}  {passed:>4}/{total:<4}  {score:>6g}/{max_score:<6g}")
    lines.append(f"{'total':<{width}}  {'':>9}  {results['score']:>6g}/{results['max_score']:<6g}")
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    if failed:
        lines.append("")
        lines.append(f"failed ({len(failed)}):")
        lines += [f"  {t['name']}: {first_line(t['output'])[:160]}" for t in failed]
    bench = results.get("extra_data", {}).get("benchmarks", [])
    if bench:
        lines += ["", "benchmarks (speedup = reference time / your time):"]
        lines += [
            f"  {b['name']} [{b['shape']}]: {b['speedup']:.2f}x {b.get('note', '')}".rstrip()
            for b in bench
        ]
    return "\n".join(lines)


def markdown_summary(results: dict) -> str:
    lines = [
        f"## Grading: {results['score']:g} / {results['max_score']:g} points",
        "",
        "| day | tests passed | points |",
        "| --- | ---: | ---: |",
    ]
    for day, passed, total, score, max_score in day_rows(results):
        lines.append(f"| {day} | {passed}/{total} | {score:g}/{max_score:g} |")
    failed = [t for t in results["tests"] if t["status"] == "failed"]
    if failed:
        lines += ["", "### Failing tests", "", "| test | why |", "| --- | --- |"]
        for t in failed:
            why = first_line(t["output"])[:200].replace("|", "\\|")
            lines.append(f"| `{t['name']}` | {why} |")
    bench = results.get("extra_data", {}).get("benchmarks", [])
    if bench:
        lines += ["", "### Benchmarks", "", "| benchmark | shape | speedup vs reference |"]
        lines.append("| --- | --- | ---: |")
        lines += [f"| {b['name']} | {b['shape']} | {b['speedup']:.2f}x |" for b in bench]
    return "\n".join(lines) + "\n"


def _escape_data(s: str) -> str:
    return s.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(s: str) -> str:
    return _escape_data(s).replace(":", "%3A").replace(",", "%2C")


def workflow_commands(results: dict, tests_prefix: str = "") -> list[str]:
    """`::error` at each failing test and the `Points X/Y` notice GitHub Classroom reads."""
    lines = []
    for t in results["tests"]:
        if t["status"] != "failed":
            continue
        where = t.get("extra_data", {})
        props = f"title={_escape_property(t['name'])}"
        if where.get("file"):
            props = f"file={_escape_property(tests_prefix + where['file'])},line={where.get('line', 1)},{props}"
        lines.append(f"::error {props}::{_escape_data(t['output'][:1000])}")
    lines.append(f"::notice title=Points::Points {results['score']:g}/{results['max_score']:g}")
    return lines


def publish_to_github(results: dict, print_fn=print, prefix: str = "") -> None:
    """When running under GitHub Actions: annotations, notice and the job summary."""
    if not os.environ.get("GITHUB_ACTIONS"):
        return
    for line in workflow_commands(results, prefix):
        print_fn(line)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as f:
            f.write(markdown_summary(results))
