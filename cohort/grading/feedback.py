"""How a results document is shown: a terminal table per day, a Markdown job summary, and the
GitHub Actions workflow commands (error annotations at failing tests, the `Points X/Y` notice)."""

from __future__ import annotations

import os
from pathlib import Path


def day_rows(results: dict) -> list[tuple[str, int, int, float, float]]:
    """(day, passed, total, score, max_score) per day, in the order the days appear."""
    days = results.get("extra_data", {}).get("days", {})
    return [(d, v["passed"], v["total"], v["score"], v["max_score"]) for d, v in days.items()]


MAX_MESSAGE = (
    2000  # characters of one failure shown; messages are short by design, this caps floods
)
TODO = "NotImplementedError"


def first_line(text: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip()), "")


def whole(text: str, limit: int = MAX_MESSAGE) -> str:
    """A failure message as it is, cut only when it is pathologically long."""
    text = text.strip()
    return (
        text if len(text) <= limit else f"{text[:limit]} ... [{len(text) - limit} characters cut]"
    )


def split_failed(results: dict) -> tuple[list[dict], dict[str, int]]:
    """The real failures, and the exercises not started (a stub's NotImplementedError message)
    with how many tests each fails."""
    real, todo = [], {}
    for t in results["tests"]:
        if t["status"] != "failed":
            continue
        if TODO in t.get("output", ""):
            message = first_line(t["output"]).removeprefix(f"{TODO}: ").strip() or t["name"]
            todo[message] = todo.get(message, 0) + 1
        else:
            real.append(t)
    return real, todo


def not_started_lines(todo: dict[str, int]) -> list[str]:
    if not todo:
        return []
    tests = sum(todo.values())
    lines = [f"not started ({len(todo)} exercise(s), {tests} test(s); NotImplementedError):"]
    lines += [f"  {m}" + (f" ({n} tests)" if n > 1 else "") for m, n in todo.items()]
    return lines


def terminal_table(results: dict) -> str:
    """Not-started exercises one line each, real failures whole, the points table last."""
    real, todo = split_failed(results)
    lines = not_started_lines(todo)
    if real:
        lines += ["", f"failed ({len(real)}):"] if lines else [f"failed ({len(real)}):"]
        for t in real:
            text = whole(t["output"]).replace("\n", "\n      ")
            lines.append(f"  {t['name']}: {text}")
    bench = results.get("extra_data", {}).get("benchmarks", [])
    if bench:
        lines += ["", "benchmarks (speedup = reference time / your time):"]
        lines += [
            f"  {b['name']} [{b['shape']}]: {b['speedup']:.2f}x {b.get('note', '')}".rstrip()
            for b in bench
        ]
    rows = day_rows(results)
    width = max([len("day"), *(len(r[0]) for r in rows)])
    if lines:
        lines.append("")
    lines.append(f"{'day':<{width}}  {'tests':>9}  {'points':>13}")
    for day, passed, total, score, max_score in rows:
        lines.append(f"{day:<{width}}  {passed:>4}/{total:<4}  {score:>6g}/{max_score:<6g}")
    lines.append(f"{'total':<{width}}  {'':>9}  {results['score']:>6g}/{results['max_score']:<6g}")
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
    failed, todo = split_failed(results)
    if todo:
        lines += [
            "",
            f"Not started: {len(todo)} exercise(s), {sum(todo.values())} test(s) (NotImplementedError).",
        ]
    if failed:
        lines += ["", "### Failing tests", "", "| test | why |", "| --- | --- |"]
        for t in failed:
            why = whole(t["output"], 1000).replace("|", "\\|").replace("\n", "<br>")
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
