"""The dashboard's HTML pages: the cohort index, a page per pair and a review pack per pair and day.

Static files with inline CSS and SVG, no script. Everything that comes from a pair (names, test
output, code, diffs) goes through `escape`.
"""

from __future__ import annotations

from html import escape

from cohort.curriculum import BY_NAME
from cohort.report import svg
from cohort.report.board import Board, Cell, slug
from cohort.report.stuck import Stuck
from cohort.roster import DaySchedule
from cohort.store import DayScore

CSS = """
body { font: 14px/1.45 system-ui, sans-serif; margin: 1.5em auto; max-width: 1200px; padding: 0 1em; color: #222; }
h1 { font-size: 1.6em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
table { border-collapse: collapse; } th, td { padding: 3px 8px; border: 1px solid #ddd; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
th { white-space: nowrap; } .scroll { overflow-x: auto; }
table.heat { font-size: 12px; } table.heat td.cell { text-align: center; min-width: 3.6em; padding: 2px 4px; }
table.heat td.cell a { color: #111; text-decoration: none; display: block; }
td.none { background: #f4f4f4; color: #999; }
pre { background: #f7f7f7; padding: .6em; overflow-x: auto; max-height: 30em; font-size: 12px; }
pre.diff .add { color: #116611; } pre.diff .del { color: #aa1111; } pre.diff .hunk { color: #555588; }
svg.progress text { font-size: 11px; fill: #555; } svg.progress .grid { stroke: #e4e4e4; }
svg.progress .pair { fill: none; stroke-width: 1.5; opacity: .8; }
.muted { color: #777; } nav a { margin-right: 1em; } .flag { color: #a35a00; }
"""


def page(title: str, body: str, root: str) -> str:
    """A whole document; `root` is the relative path back to the site's top ('' or '../')."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<nav><a href="{root}index.html">Cohort</a><a href="{root}summary.md">summary.md</a>'
        f'<a href="{root}scores.csv">scores.csv</a></nav>\n{body}\n</body></html>\n'
    )


def short(stamp: str | None) -> str:
    """`2026-01-05T10:11:12.123456Z` -> `2026-01-05 10:11`."""
    return escape(stamp[:16].replace("T", " ")) if stamp else ""


def _score(row: DayScore) -> str:
    return f"{row.score:g}/{row.max_score:g}"


def _color(score: float, max_score: float) -> str:
    frac = score / max_score if max_score else 0.0
    return f"hsl({120 * frac:.0f}, 65%, {88 - 18 * frac:.0f}%)"


def pair_day_href(pair: str, day: str) -> str:
    return f"pairs/{slug(pair)}/{slug(day)}.html"


def pair_href(pair: str) -> str:
    return f"pairs/{slug(pair)}.html"


def _day_title(day: str, schedule: dict[str, DaySchedule]) -> str:
    title = BY_NAME[day].title if day in BY_NAME else day
    if day in schedule:
        s = schedule[day]
        title += f"; released {s.release:%Y-%m-%d %H:%M}, due {s.deadline:%Y-%m-%d %H:%M}"
    return escape(title)


def unsandboxed(doc: dict | None) -> str | None:
    """Why a results document's grade ran without the bubblewrap sandbox (None when it did)."""
    isolation = (doc or {}).get("extra_data", {}).get("isolation")
    if not isinstance(isolation, dict) or isolation.get("mode") != "none":
        return None
    return str(isolation.get("reason") or "no reason given")


def heatmap(
    board: Board,
    schedule: dict[str, DaySchedule],
    unsandboxed: dict[tuple[str, str], str] | None = None,
) -> str:
    unsandboxed = unsandboxed or {}
    head = "".join(f'<th title="{_day_title(d, schedule)}">{escape(d)}</th>' for d in board.days)
    rows = []
    for pair in board.pairs:
        cells = []
        for day in board.days:
            cell = board.cell(pair, day)
            if cell is None:
                cells.append('<td class="cell none">-</td>')
                continue
            best, why = cell.best, unsandboxed.get((pair, day))
            mark = (
                f' <span class="flag" title="isolation: none ({escape(why)})">isolation: none</span>'
                if why
                else ""
            )
            cells.append(
                f'<td class="cell" style="background:{_color(best.score, best.max_score)}">'
                f'<a href="{pair_day_href(pair, day)}" title="best of {len(cell.history)} '
                f'push(es); latest {_score(cell.latest)}">{_score(best)}</a>{mark}</td>'
            )
        got, total = board.total(pair)
        rows.append(
            f'<tr><th><a href="{pair_href(pair)}">{escape(pair)}</a></th>{"".join(cells)}'
            f'<td class="num">{got:g}/{total:g}</td></tr>'
        )
    return (
        f'<div class="scroll"><table class="heat"><thead><tr><th>pair</th>{head}<th class="num">total</th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody></table></div>"
    )


def stuck_table(stuck: list[Stuck], root: str = "") -> str:
    if not stuck:
        return '<p class="muted">Nobody is stuck.</p>'
    rows = "".join(
        f'<tr><td><a href="{root}{pair_day_href(s.pair, s.day)}">{escape(s.pair)}</a></td><td>{escape(s.day)}</td>'
        f'<td><code>{escape(s.test)}</code></td><td class="num">{s.pushes}</td>'
        f'<td class="num">{s.hours:.1f}</td><td>{short(s.since)}</td></tr>'
        for s in stuck
    )
    return (
        '<table><thead><tr><th>pair</th><th>day</th><th>failing test</th><th class="num">pushes</th>'
        f'<th class="num">hours</th><th>since</th></tr></thead><tbody>{rows}</tbody></table>'
    )


def index(
    name: str,
    board: Board,
    series: dict[str, list[tuple[str, float]]],
    schedule: dict[str, DaySchedule],
    stuck: list[Stuck],
    generated_at: str,
    rules: str,
    unsandboxed: dict[tuple[str, str], str] | None = None,
) -> str:
    pushes = sum(len(c.history) for c in board.cells.values())
    warning = (
        f'<p class="flag">{len(unsandboxed)} pair-day(s) were last graded with isolation: none '
        "(pair code outside the bubblewrap sandbox; see docs/runners.md): marked below.</p>"
        if unsandboxed
        else ""
    )
    body = (
        f"<h1>{escape(name)}</h1>"
        f'<p class="muted">{len(board.pairs)} pairs, {len(board.days)} days, {pushes} graded pair-days; '
        f"generated {short(generated_at)} UTC. Each cell is the pair's best score on that day; it links "
        "to the day's review pack.</p>"
        f"<h2>Best scores</h2>{warning}{heatmap(board, schedule, unsandboxed)}"
        f'<h2>Progress over time</h2><p class="muted">Share of the cohort\'s points each pair has earned '
        f"(best per day) after each push.</p>{svg.progress(series)}"
        f'<h2>Stuck</h2><p class="muted">{escape(rules)}</p>{stuck_table(stuck)}'
    )
    return page(name, body, "")


def pair_page(
    pair: str,
    members: tuple[str, ...],
    board: Board,
    progress: list[tuple[str, float]],
    stuck: list[Stuck],
) -> str:
    rows = []
    for day in board.days:
        cell = board.cell(pair, day)
        if cell is None:
            rows.append(
                f'<tr><td>{escape(day)}</td><td colspan="4" class="muted">no graded push</td></tr>'
            )
            continue
        rows.append(
            f'<tr><td><a href="{slug(pair)}/{slug(day)}.html">{escape(day)}</a></td>'
            f'<td class="num">{_score(cell.best)}</td><td class="num">{_score(cell.latest)}</td>'
            f'<td class="num">{len(cell.history)}</td><td>{short(cell.latest.pushed_at)}</td></tr>'
        )
    got, total = board.total(pair)
    body = (
        f"<h1>{escape(pair)}</h1><p>{escape(', '.join(members)) or '<span class=muted>members unknown</span>'}"
        f" &middot; {got:g}/{total:g} points (best per day)</p>"
        '<table><thead><tr><th>day</th><th class="num">best</th><th class="num">latest</th>'
        f'<th class="num">pushes</th><th>latest push</th></tr></thead><tbody>{"".join(rows)}</tbody></table>'
        f"<h2>Progress</h2>{svg.progress({pair: progress}, f'{pair}: progress')}"
        f"<h2>Stuck</h2>{stuck_table([s for s in stuck if s.pair == pair], '../')}"
    )
    return page(pair, body, "../")


def _diff(text: str) -> str:
    if not text:
        return '<p class="muted">No change from the stubs.</p>'
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
        lines.append(f'<span class="{kind}">{escape(line)}</span>' if kind else escape(line))
    return f'<pre class="diff">{chr(10).join(lines)}</pre>'


def _belongs(path: str, day: str) -> bool:
    """Is `path` (e.g. `mlab/w0_prep.py`, `tests/test_w0_prep.py`) one of `day`'s files, or no day's?"""
    parts = path.replace("tests/test_", "tests/").split("/")
    names = {p.removesuffix(".py") for p in parts}
    return day in names or not names & set(BY_NAME)


def _isolation(doc: dict | None) -> str:
    if why := unsandboxed(doc):
        return f'<span class="flag">none: {escape(why)}</span>'
    mode = (doc or {}).get("extra_data", {}).get("isolation", {})
    return escape(str(mode.get("mode", "unknown") if isinstance(mode, dict) else "unknown"))


def review_pack(pair: str, day: str, cell: Cell, doc: dict | None, problem: str | None) -> str:
    latest, best = cell.latest, cell.best
    facts = (
        f"<table><tbody><tr><th>latest score</th><td>{_score(latest)}</td></tr>"
        f"<tr><th>best score</th><td>{_score(best)} (commit <code>{escape(best.commit[:10])}</code>)</td></tr>"
        f"<tr><th>latest commit</th><td><code>{escape(latest.commit)}</code> on {escape(latest.ref or '?')}</td></tr>"
        f"<tr><th>committed</th><td>{short(latest.committed_at)}</td></tr>"
        f"<tr><th>pushed</th><td>{short(latest.pushed_at)}</td></tr>"
        f"<tr><th>graded</th><td>{short(latest.graded_at)}</td></tr>"
        f"<tr><th>tests passed</th><td>{latest.passed}/{latest.total}</td></tr>"
        f"<tr><th>isolation</th><td>{_isolation(doc)}</td></tr></tbody></table>"
    )
    parts = [
        f"<h1>{escape(pair)} &middot; {escape(day)}</h1>",
        f'<p><a href="../{slug(pair)}.html">all days of {escape(pair)}</a></p>',
        facts,
    ]
    if doc is None:
        parts.append(f'<p class="flag">{escape(problem or "results file missing")}</p>')
    else:
        extra = doc.get("extra_data", {})
        tests = [t for t in doc.get("tests", []) if (t.get("tags") or [""])[0] == day]
        failed = [t for t in tests if t["status"] == "failed"]
        parts.append(f"<h2>Failing tests ({len(failed)} of {len(tests)})</h2>")
        parts += [
            f"<h3><code>{escape(t['name'])}</code></h3><pre>{escape(t.get('output', ''))}</pre>"
            for t in failed
        ]
        if not failed:
            parts.append('<p class="muted">None.</p>')
        bench = [b for b in extra.get("benchmarks", []) if f"test_{day}.py" in b.get("test", "")]
        if bench:
            rows = "".join(
                f"<tr><td>{escape(str(b['name']))}</td><td>{escape(str(b['shape']))}</td>"
                f'<td class="num">{b["time_s"]:.3g}</td><td class="num">{b["ref_time_s"]:.3g}</td>'
                f'<td class="num">{b["speedup"]:.2f}x</td><td>{escape(str(b.get("note", "")))}</td></tr>'
                for b in bench
            )
            parts.append(
                "<h2>Benchmarks</h2><table><thead><tr><th>benchmark</th><th>shape</th>"
                '<th class="num">time (s)</th><th class="num">reference (s)</th>'
                f'<th class="num">speedup</th><th>note</th></tr></thead><tbody>{rows}</tbody></table>'
            )
        flags = [f for f in extra.get("flags", []) if _belongs(f.get("file", ""), day)]
        edited = [p for p in extra.get("edited_tests", []) if _belongs(f"tests/{p}", day)]
        parts.append("<h2>Static-scan flags</h2>")
        if flags or edited:
            items = [
                f'<li class="flag"><code>{escape(f["file"])}:{f["line"]}</code> {escape(f["why"])}: '
                f"<code>{escape(f['code'])}</code></li>"
                for f in flags
            ]
            items += [
                f'<li class="flag"><code>tests/{escape(p)}</code> differs from the trusted tests '
                "(graded with the trusted copy)</li>"
                for p in edited
            ]
            parts.append(f"<ul>{''.join(items)}</ul>")
        else:
            parts.append('<p class="muted">None.</p>')
        parts.append(f"<h2>Diff against the stubs</h2>{_diff(extra.get('diffs', {}).get(day, ''))}")
    rows = "".join(
        f"<tr><td><code>{escape(r.commit[:10])}</code></td><td>{short(r.pushed_at)}</td>"
        f'<td class="num">{_score(r)}</td></tr>'
        for r in cell.history[::-1][:50]
    )
    parts.append(
        f"<h2>Pushes ({len(cell.history)}, newest first)</h2><table><thead><tr><th>commit</th>"
        f'<th>pushed</th><th class="num">score</th></tr></thead><tbody>{rows}</tbody></table>'
    )
    return page(f"{pair} · {day}", "".join(parts), "../../")
