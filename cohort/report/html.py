"""The dashboard's HTML pages: the cohort index, the exercises, a page per pair and a review pack
per pair and day.

Static files with inline CSS and SVG, no script, rendered from the Jinja2 templates in
`templates/` with autoescaping: everything that comes from a pair (names, test output, code,
diffs, benchmark names) is escaped by the template; only the SVG charts, built by `svg` with
their own escaping, go in as markup.
"""

from __future__ import annotations

from datetime import datetime

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup

from cohort.curriculum import BY_NAME
from cohort.report import svg
from cohort.report.board import Board, Cell, slug
from cohort.report.exercises import Entry, Exercise
from cohort.report.facts import DayFacts
from cohort.report.stuck import Stuck
from cohort.roster import DaySchedule
from cohort.store import DayScore


def short(stamp: str | None) -> str:
    """`2026-01-05T10:11:12.123456Z` -> `2026-01-05 10:11`."""
    return stamp[:16].replace("T", " ") if stamp else ""


def score(row: DayScore) -> str:
    return f"{row.score:g}/{row.max_score:g}"


def color(row: DayScore) -> str:
    frac = row.score / row.max_score if row.max_score else 0.0
    return f"hsl({120 * frac:.0f}, 65%, {88 - 18 * frac:.0f}%)"


def pair_day_href(pair: str, day: str) -> str:
    return f"pairs/{slug(pair)}/{slug(day)}.html"


def pair_href(pair: str) -> str:
    return f"pairs/{slug(pair)}.html"


def first_line(text: str) -> str:
    return next((ln for ln in (text or "").splitlines() if ln.strip()), "")


def hours(h: float) -> str:
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


ENV = Environment(
    loader=PackageLoader("cohort.report", "templates"),
    autoescape=True,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
ENV.filters.update(
    short=short,
    score=score,
    pair_href=pair_href,
    pair_day_href=pair_day_href,
    first_line=first_line,
    hours=hours,
)


def render(template: str, title: str, root: str, **context) -> str:
    """A whole page; `root` is the relative path back to the site's top ('', '../' or '../../')."""
    return ENV.get_template(template).render(title=title, root=root, **context)


def when(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00"))


def released(day: str, schedule: dict[str, DaySchedule], now: datetime) -> bool:
    """Has `day` been released (a day the roster does not schedule counts as released)?"""
    return day not in schedule or schedule[day].release <= now


def late(row: DayScore, day: str, schedule: dict[str, DaySchedule]) -> bool:
    """Was `row` pushed after `day`'s deadline?"""
    return day in schedule and when(row.pushed_at) > schedule[day].deadline


def done(cell: Cell | None) -> bool:
    return bool(cell) and cell.best.max_score > 0 and cell.best.score >= cell.best.max_score


def unsandboxed(doc: dict | None) -> str | None:
    """Why a results document's grade ran without the bubblewrap sandbox (None when it did)."""
    isolation = (doc or {}).get("extra_data", {}).get("isolation")
    if not isinstance(isolation, dict) or isolation.get("mode") != "none":
        return None
    return str(isolation.get("reason") or "no reason given")


def last_push(board: Board, pair: str) -> str | None:
    stamps = [c.latest.pushed_at for d in board.days if (c := board.cell(pair, d))]
    return max(stamps) if stamps else None


def _day_title(day: str, schedule: dict[str, DaySchedule]) -> str:
    title = BY_NAME[day].title if day in BY_NAME else day
    if day in schedule:
        s = schedule[day]
        title += f"; released {s.release:%Y-%m-%d %H:%M}, due {s.deadline:%Y-%m-%d %H:%M}"
    return title


def _marks(
    pair: str, day: str, cell: Cell, facts: dict, schedule: dict, unsandboxed: dict
) -> list[tuple[str, str]]:
    marks = (facts.get((pair, day)) or DayFacts()).marks()
    if late(cell.best, day, schedule):
        marks.append(("late", "its best score was pushed after the deadline"))
    if why := unsandboxed.get((pair, day)):
        marks.append(("isolation: none", f"isolation: none ({why})"))
    return marks


def index(
    name: str,
    board: Board,
    series: dict[str, list[tuple[str, float]]],
    schedule: dict[str, DaySchedule],
    stuck: list[Stuck],
    generated_at: str,
    rules: str,
    facts: dict[tuple[str, str], DayFacts],
    unsandboxed: dict[tuple[str, str], str] | None = None,
    leaderboards: dict[tuple[str, str], list[Entry]] | None = None,
) -> str:
    unsandboxed = unsandboxed or {}
    now = when(generated_at)
    live = {d: released(d, schedule, now) for d in board.days}
    days = [
        {
            "name": d,
            "title": _day_title(d, schedule),
            "live": live[d],
            "schedule": schedule.get(d),
            "done": sum(done(board.cell(p, d)) for p in board.pairs),
        }
        for d in board.days
    ]
    rows = []
    for pair in board.pairs:
        cells = []
        for day in board.days:
            cell = board.cell(pair, day)
            cells.append(
                {
                    "day": day,
                    "cell": cell,
                    "live": live[day],
                    "color": cell and color(cell.best),
                    "marks": cell and _marks(pair, day, cell, facts, schedule, unsandboxed),
                }
            )
        got, total = board.total(pair)
        rows.append(
            {
                "pair": pair,
                "cells": cells,
                "total": f"{got:g}/{total:g}",
                "pushed": last_push(board, pair),
            }
        )
    completion = {}  # day -> (pairs done, pairs with some points)
    for d in days:
        cells = [c for p in board.pairs if (c := board.cell(p, d["name"]))]
        completion[d["name"]] = (d["done"], sum(c.best.score > 0 and not done(c) for c in cells))
    return render(
        "index.html",
        name,
        "",
        name=name,
        board=board,
        days=days,
        rows=rows,
        pushes=sum(len(c.history) for c in board.cells.values()),
        generated_at=generated_at,
        unsandboxed=unsandboxed,
        completion=Markup(svg.completion(completion, len(board.pairs), live)),
        progress=Markup(svg.progress(series)),
        leaderboards=leaderboards or {},
        rules=rules,
        stuck=stuck,
    )


def pair_page(
    pair: str,
    members: tuple[str, ...],
    board: Board,
    progress: list[tuple[str, float]],
    stuck: list[Stuck],
    schedule: dict[str, DaySchedule],
    facts: dict[tuple[str, str], DayFacts],
) -> str:
    rows = []
    for day in board.days:
        cell = board.cell(pair, day)
        rows.append(
            {
                "day": day,
                "cell": cell,
                "href": f"{slug(pair)}/{slug(day)}.html",
                "facts": facts.get((pair, day)) or DayFacts(),
                "marks": cell and _marks(pair, day, cell, facts, schedule, {}),
            }
        )
    got, total = board.total(pair)
    return render(
        "pair.html",
        pair,
        "../",
        pair=pair,
        members=members,
        pushed=last_push(board, pair),
        total=f"{got:g}/{total:g}",
        rows=rows,
        progress=Markup(svg.progress({pair: progress}, f"{pair}: progress")),
        stuck=[s for s in stuck if s.pair == pair],
    )


def _diff(text: str) -> list[tuple[str, str]]:
    """(kind, line) per line of a unified diff; kind: hunk, add, del or ''."""
    lines = []
    for line in text.splitlines():
        kind = (
            "hunk"
            if line.startswith("@@")
            else "add"
            if line.startswith("+") and not line.startswith("+++")
            else "del"
            if line.startswith("-") and not line.startswith("---")
            else ""
        )
        lines.append((kind, line))
    return lines


def _isolation(doc: dict | None) -> str:
    mode = (doc or {}).get("extra_data", {}).get("isolation", {})
    return str(mode.get("mode", "unknown") if isinstance(mode, dict) else "unknown")


def _pack_summary(
    day: str, cell: Cell, doc: dict | None, facts: DayFacts, schedule: dict[str, DaySchedule]
) -> dict:
    """The table at the top: scores, the latest commit and its times, the schedule, the tests
    passed and how the run was isolated."""
    latest = cell.latest
    counts = (
        f"{len(facts.passed)}/{facts.graded}"
        + (f" ({len(facts.skipped)} skipped)" if facts.skipped else "")
        if doc is not None
        else f"{latest.passed}/{latest.total}"
    )
    return {
        "latest": latest,
        "best": cell.best,
        "due": schedule.get(day),
        "latest_late": late(latest, day, schedule),
        "counts": counts,
        "unsandboxed": unsandboxed(doc),
        "isolation": _isolation(doc),
    }


def _pack_benchmarks(day: str, doc: dict | None) -> dict:
    """The day's benchmarks of the latest results."""
    extra = (doc or {}).get("extra_data", {})
    return {
        "bench": [b for b in extra.get("benchmarks", []) if f"test_{day}.py" in b.get("test", "")]
    }


def _pack_diff(day: str, doc: dict | None) -> dict:
    """The pair's diff against the stubs, its lines marked for colour."""
    return {"diff": _diff((doc or {}).get("extra_data", {}).get("diffs", {}).get(day, ""))}


def _pack_pushes(day: str, cell: Cell, schedule: dict[str, DaySchedule]) -> dict:
    """The pushes of the day, newest first (at most 50), each marked late or not."""
    return {
        "history": cell.history,
        "pushes": [(r, late(r, day, schedule)) for r in cell.history[::-1][:50]],
    }


def review_pack(
    pair: str,
    day: str,
    cell: Cell,
    doc: dict | None,
    problem: str | None,
    facts: DayFacts,
    schedule: dict[str, DaySchedule],
) -> str:
    """A pair's page for one day, section by section; the failing tests, skips and static-scan
    flags come from `facts`."""
    return render(
        "pack.html",
        f"{pair} · {day}",
        "../../",
        pair=pair,
        pair_slug=slug(pair),
        day=day,
        doc=doc,
        problem=problem,
        facts=facts,
        **_pack_summary(day, cell, doc, facts, schedule),
        **_pack_benchmarks(day, doc),
        **_pack_diff(day, doc),
        **_pack_pushes(day, cell, schedule),
    )


def exercises_page(name: str, found: list[Exercise], pairs: int, generated_at: str) -> str:
    return render(
        "exercises.html",
        f"{name}: exercises",
        "",
        name=name,
        found=found,
        pairs=pairs,
        generated_at=generated_at,
    )
