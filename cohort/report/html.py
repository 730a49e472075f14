"""The dashboard's HTML pages: the cohort index, a page per pair and a review pack per pair and day.

Static files with inline CSS and SVG, no script. Everything that comes from a pair (names, test
output, code, diffs) goes through `escape`.
"""

from __future__ import annotations

from datetime import datetime
from html import escape

from cohort.curriculum import BY_NAME
from cohort.report import svg
from cohort.report.board import Board, Cell, slug
from cohort.report.exercises import Entry, Exercise
from cohort.report.facts import DayFacts
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
.badge { display: inline-block; font-size: 10px; line-height: 1.3; padding: 0 3px; margin: 1px; border-radius: 3px; background: #fff; border: 1px solid #a35a00; color: #a35a00; }
.badge.timeout, .badge.crash { border-color: #b00020; color: #b00020; } .badge.late { border-color: #555; color: #555; }
th.unreleased, td.unreleased { background-image: repeating-linear-gradient(45deg, transparent 0 6px, rgba(0,0,0,.06) 6px 12px); }
th.sched { font-weight: normal; font-size: 10px; color: #555; } td.done { font-size: 11px; }
ul.todo { columns: 2; font-size: 12px; } svg.chart text { font-size: 11px; fill: #555; }
"""


def page(title: str, body: str, root: str) -> str:
    """A whole document; `root` is the relative path back to the site's top ('' or '../')."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{escape(title)}</title><style>{CSS}</style></head><body>"
        f'<nav><a href="{root}index.html">Cohort</a><a href="{root}exercises.html">Exercises</a>'
        f'<a href="{root}summary.md">summary.md</a>'
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


def _badge(mark: str, why: str) -> str:
    return f'<span class="badge {escape(mark)}" title="{escape(why)}">{escape(mark)}</span>'


def last_push(board: Board, pair: str) -> str | None:
    stamps = [c.latest.pushed_at for d in board.days if (c := board.cell(pair, d))]
    return max(stamps) if stamps else None


def _schedule_cell(day: str, schedule: dict[str, DaySchedule], now: datetime) -> str:
    if day not in schedule:
        return '<th class="sched muted">not scheduled</th>'
    s = schedule[day]
    state = "" if s.release <= now else '<br><span class="badge unreleased">not released</span>'
    return (
        f'<th class="sched">released {s.release:%m-%d %H:%M}<br>due {s.deadline:%m-%d %H:%M}'
        f"{state}</th>"
    )


def heatmap(
    board: Board,
    schedule: dict[str, DaySchedule],
    facts: dict[tuple[str, str], DayFacts],
    unsandboxed: dict[tuple[str, str], str],
    now: datetime,
) -> str:
    live = {d: released(d, schedule, now) for d in board.days}
    head = "".join(
        f'<th title="{_day_title(d, schedule)}" class="{"" if live[d] else "unreleased"}">'
        f"{escape(d)}</th>"
        for d in board.days
    )
    sched = "".join(_schedule_cell(d, schedule, now) for d in board.days)
    rows = []
    for pair in board.pairs:
        cells = []
        for day in board.days:
            cell = board.cell(pair, day)
            extra = "" if live[day] else " unreleased"
            if cell is None:
                text = "-" if live[day] else "not released"
                cells.append(f'<td class="cell none{extra}">{text}</td>')
                continue
            best = cell.best
            marks = (facts.get((pair, day)) or DayFacts()).marks()
            if late(best, day, schedule):
                marks.append(("late", "its best score was pushed after the deadline"))
            if why := unsandboxed.get((pair, day)):
                marks.append(("isolation: none", f"isolation: none ({why})"))
            badges = "".join(_badge(m, w) for m, w in marks)
            cells.append(
                f'<td class="cell{extra}" style="background:{_color(best.score, best.max_score)}">'
                f'<a href="{pair_day_href(pair, day)}" title="best of {len(cell.history)} '
                f'push(es); latest {_score(cell.latest)}">{_score(best)}</a>{badges}</td>'
            )
        got, total = board.total(pair)
        pushed = last_push(board, pair)
        total_cell = f"{got:g}/{total:g}" if pushed else '<span class="muted">no push</span>'
        rows.append(
            f'<tr><th><a href="{pair_href(pair)}">{escape(pair)}</a></th>{"".join(cells)}'
            f'<td class="num">{total_cell}</td><td>{short(pushed) or "<span class=muted>never</span>"}</td></tr>'
        )
    n = len(board.pairs)
    foot = "".join(
        f'<td class="num done">{sum(done(board.cell(p, d)) for p in board.pairs)} of {n}</td>'
        for d in board.days
    )
    return (
        '<div class="scroll"><table class="heat"><thead>'
        f'<tr><th>pair</th>{head}<th class="num">total</th><th>last push</th></tr>'
        f'<tr><th class="sched">schedule</th>{sched}<th></th><th></th></tr></thead>'
        f"<tbody>{''.join(rows)}</tbody>"
        f"<tfoot><tr><th>pairs done</th>{foot}<td></td><td></td></tr></tfoot></table></div>"
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


LEGEND = (
    '<p class="muted">Marks: '
    + _badge("timeout", "a test ran past its time limit")
    + " a test ran out of time, "
    + _badge("crash", "the test process died")
    + " the test process died or the code did not import, "
    + _badge("edited", "the pair edited tests")
    + " the pair edited tests (graded with the trusted copy), "
    + _badge("flags", "static-scan flags")
    + " static-scan flags in the pair's code, "
    + _badge("late", "pushed after the deadline")
    + " the best score came after the deadline.</p>"
)


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
    extra_sections: str = "",
) -> str:
    unsandboxed = unsandboxed or {}
    now = when(generated_at)
    pushes = sum(len(c.history) for c in board.cells.values())
    warning = (
        f'<p class="flag">{len(unsandboxed)} pair-day(s) were last graded with isolation: none '
        "(pair code outside the bubblewrap sandbox; see docs/runners.md): marked below.</p>"
        if unsandboxed
        else ""
    )
    completion = {
        d: (
            sum(done(board.cell(p, d)) for p in board.pairs),
            sum(bool(board.cell(p, d)) and not done(board.cell(p, d)) for p in board.pairs),
        )
        for d in board.days
    }
    body = (
        f"<h1>{escape(name)}</h1>"
        f'<p class="muted">{len(board.pairs)} pairs, {len(board.days)} days, {pushes} graded pair-days; '
        f"generated {short(generated_at)} UTC. Each cell is the pair's best score on that day; it links "
        f'to the day\'s review pack. <a href="exercises.html">Every exercise across the cohort</a>.</p>'
        f"<h2>Best scores</h2>{warning}{LEGEND}{heatmap(board, schedule, facts, unsandboxed, now)}"
        f'<h2>Days done</h2><p class="muted">Per day, pairs with every point (green), some work '
        f"graded (amber) and no graded push (grey), in the order of the schedule.</p>"
        f"{svg.completion(completion, len(board.pairs), {d: released(d, schedule, now) for d in board.days})}"
        f'<h2>Points per pair</h2><p class="muted">Share of the cohort\'s points each pair has earned '
        f"(best per day), one marker per push, pushes evenly spaced in time order.</p>"
        f"{svg.progress(series)}{extra_sections}"
        f'<h2>Stuck</h2><p class="muted">{escape(rules)}</p>{stuck_table(stuck)}'
    )
    return page(name, body, "")


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
        if cell is None:
            rows.append(
                f'<tr><td>{escape(day)}</td><td colspan="5" class="muted">no graded push</td></tr>'
            )
            continue
        f = facts.get((pair, day)) or DayFacts()
        marks = f.marks() + (
            [("late", "pushed after the deadline")] if late(cell.best, day, schedule) else []
        )
        rows.append(
            f'<tr><td><a href="{slug(pair)}/{slug(day)}.html">{escape(day)}</a></td>'
            f'<td class="num">{_score(cell.best)}</td><td class="num">{_score(cell.latest)}</td>'
            f'<td class="num">{len(f.real)} failing, {len(f.todo)} not started</td>'
            f'<td class="num">{len(cell.history)}</td><td>{short(cell.latest.pushed_at)} '
            f"{''.join(_badge(m, w) for m, w in marks)}</td></tr>"
        )
    got, total = board.total(pair)
    summary = (
        f"{got:g}/{total:g} points (best per day)" if last_push(board, pair) else "no push yet"
    )
    body = (
        f"<h1>{escape(pair)}</h1><p>{escape(', '.join(members)) or '<span class=muted>members unknown</span>'}"
        f" &middot; {summary}</p>"
        '<table><thead><tr><th>day</th><th class="num">best</th><th class="num">latest</th>'
        '<th class="num">latest push: tests</th>'
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


def _isolation(doc: dict | None) -> str:
    if why := unsandboxed(doc):
        return f'<span class="flag">none: {escape(why)}</span>'
    mode = (doc or {}).get("extra_data", {}).get("isolation", {})
    return escape(str(mode.get("mode", "unknown") if isinstance(mode, dict) else "unknown"))


def first_line(text: str) -> str:
    return next((ln for ln in text.splitlines() if ln.strip()), "")


def _tests(facts: DayFacts) -> str:
    """Real failures first and whole, then the exercises not started, then the skipped tests."""
    parts = [f"<h2>Failing tests ({len(facts.real)} of {facts.graded})</h2>"]
    parts += [
        f"<h3><code>{escape(t['name'])}</code></h3><pre>{escape(t.get('output', ''))}</pre>"
        for t in facts.real
    ]
    if not facts.real:
        parts.append('<p class="muted">None.</p>')
    if facts.todo:
        items = "".join(
            f"<li><code>{escape(t['name'])}</code> <span class=muted>{escape(first_line(t.get('output', '')))}</span></li>"
            for t in facts.todo
        )
        parts.append(
            f"<h2>Not started ({len(facts.todo)} of {facts.graded})</h2>"
            '<p class="muted">The exercise is still the stub (NotImplementedError): to do, not a bug.</p>'
            f'<ul class="todo">{items}</ul>'
        )
    if facts.skipped:
        items = "".join(
            f"<li><code>{escape(t['name'])}</code> <span class=muted>{escape(first_line(t.get('output', '')))}</span></li>"
            for t in facts.skipped
        )
        parts.append(f"<h2>Skipped ({len(facts.skipped)}, not counted)</h2><ul>{items}</ul>")
    return "".join(parts)


def review_pack(
    pair: str,
    day: str,
    cell: Cell,
    doc: dict | None,
    problem: str | None,
    facts: DayFacts,
    schedule: dict[str, DaySchedule],
) -> str:
    latest, best = cell.latest, cell.best
    counts = (
        f"{len(facts.passed)}/{facts.graded}"
        + (f" ({len(facts.skipped)} skipped)" if facts.skipped else "")
        if doc is not None
        else f"{latest.passed}/{latest.total}"
    )
    due = schedule.get(day)
    deadline = (
        f"<tr><th>schedule</th><td>released {due.release:%Y-%m-%d %H:%M}, due {due.deadline:%Y-%m-%d %H:%M}"
        + (
            ' <span class="badge late">latest push late</span>'
            if late(latest, day, schedule)
            else ""
        )
        + "</td></tr>"
        if due
        else ""
    )
    facts_table = (
        f"<table><tbody><tr><th>latest score</th><td>{_score(latest)}</td></tr>"
        f"<tr><th>best score</th><td>{_score(best)} (commit <code>{escape(best.commit[:10])}</code>)</td></tr>"
        f"<tr><th>latest commit</th><td><code>{escape(latest.commit)}</code> on {escape(latest.ref or '?')}</td></tr>"
        f"<tr><th>committed</th><td>{short(latest.committed_at)}</td></tr>"
        f"<tr><th>pushed</th><td>{short(latest.pushed_at)}</td></tr>"
        f"<tr><th>graded</th><td>{short(latest.graded_at)}</td></tr>{deadline}"
        f"<tr><th>tests passed</th><td>{counts}</td></tr>"
        f"<tr><th>isolation</th><td>{_isolation(doc)}</td></tr></tbody></table>"
    )
    parts = [
        f"<h1>{escape(pair)} &middot; {escape(day)}</h1>",
        f'<p><a href="../{slug(pair)}.html">all days of {escape(pair)}</a></p>',
        facts_table,
    ]
    if doc is None:
        parts.append(f'<p class="flag">{escape(problem or "results file missing")}</p>')
    else:
        extra = doc.get("extra_data", {})
        parts.append(_tests(facts))
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
        parts.append("<h2>Static-scan flags</h2>")
        if facts.flags or facts.edited:
            items = [
                f'<li class="flag"><code>{escape(f["file"])}:{f["line"]}</code> {escape(f["why"])}: '
                f"<code>{escape(f['code'])}</code></li>"
                for f in facts.flags
            ]
            items += [
                f'<li class="flag"><code>tests/{escape(p)}</code> differs from the trusted tests '
                "(graded with the trusted copy)</li>"
                for p in facts.edited
            ]
            parts.append(f"<ul>{''.join(items)}</ul>")
        else:
            parts.append('<p class="muted">None in the code the pair changed.</p>')
        parts.append(f"<h2>Diff against the stubs</h2>{_diff(extra.get('diffs', {}).get(day, ''))}")
    rows = "".join(
        f"<tr><td><code>{escape(r.commit[:10])}</code></td><td>{short(r.pushed_at)}"
        f"{' ' + _badge('late', 'after the deadline') if late(r, day, schedule) else ''}</td>"
        f'<td class="num">{_score(r)}</td></tr>'
        for r in cell.history[::-1][:50]
    )
    parts.append(
        f"<h2>Pushes ({len(cell.history)}, newest first)</h2><table><thead><tr><th>commit</th>"
        f'<th>pushed</th><th class="num">score</th></tr></thead><tbody>{rows}</tbody></table>'
    )
    return page(f"{pair} · {day}", "".join(parts), "../../")


def _hours(h: float | None) -> str:
    if h is None:
        return '<span class="muted">-</span>'
    return f"{h * 60:.0f} min" if h < 1 else f"{h:.1f} h" if h < 48 else f"{h / 24:.1f} days"


def exercises_page(name: str, found: list[Exercise], pairs: int, generated_at: str) -> str:
    rows = []
    for e in found:
        common = e.common
        message = (
            f"<code>{escape(common[0])}</code> <span class=muted>({common[1]} pair(s))</span>"
            if common
            else '<span class="muted">-</span>'
        )
        stuck = (
            ", ".join(f'<a href="{pair_day_href(p, e.day)}">{escape(p)}</a>' for p in e.stuck)
            or '<span class="muted">-</span>'
        )
        rows.append(
            f"<tr><td>{escape(e.day)}</td><td><code>{escape(e.test.split('::', 1)[-1])}</code></td>"
            f'<td class="num">{len(e.passing)} of {pairs}</td><td class="num">{len(e.failing)}</td>'
            f'<td class="num">{len(e.todo)}</td><td class="num">{_hours(e.median_hours)}</td>'
            f"<td>{message}</td><td>{stuck}</td></tr>"
        )
    table = (
        '<div class="scroll"><table><thead><tr><th>day</th><th>exercise (test)</th>'
        '<th class="num">pairs passing</th><th class="num">failing</th><th class="num">not started</th>'
        '<th class="num">median time to pass</th><th>most common failure</th><th>stuck</th></tr>'
        f"</thead><tbody>{''.join(rows)}</tbody></table></div>"
        if rows
        else '<p class="muted">No graded push of a released day yet.</p>'
    )
    body = (
        f"<h1>{escape(name)}: every exercise</h1>"
        f'<p class="muted">Every test of every released day, hardest first (fewest pairs passing at '
        "their latest push, then most real failures). Time to pass: from a pair's first push of "
        f"the day to its first push that passes the test, median over the pairs that did. "
        f"Generated {short(generated_at)} UTC.</p>{table}"
    )
    return page(f"{name}: exercises", body, "")


def leaderboards(boards: dict[tuple[str, str], list[Entry]]) -> str:
    """The benchmark leaderboards, a table per (day, benchmark)."""
    if not boards:
        return ""
    parts = [
        '<h2>Benchmarks</h2><p class="muted">Per benchmark, each pair\'s best push: the geometric '
        "mean over the shapes of the speedup against PyTorch, measured on a GPU runner. A run on a "
        "CPU runner only checks correctness.</p>"
    ]
    for (day, name), entries in boards.items():
        rows = "".join(
            f'<tr><td>{i}</td><td><a href="{pair_day_href(e.pair, day)}">{escape(e.pair)}</a></td>'
            + (
                f'<td class="num">{e.speedup:.2f}x</td><td>{escape(e.gpu or "")}</td>'
                if e.speedup is not None
                else '<td class="num muted">-</td><td class="muted">CPU: correctness only</td>'
            )
            + f'<td><code>{escape(e.commit[:10])}</code></td><td class="num">{e.shapes}</td></tr>'
            for i, e in enumerate(entries, 1)
        )
        parts.append(
            f"<h3>{escape(day)}: <code>{escape(name)}</code></h3><table><thead><tr><th>#</th>"
            '<th>pair</th><th class="num">speedup</th><th>runner</th><th>best commit</th>'
            f'<th class="num">shapes</th></tr></thead><tbody>{rows}</tbody></table>'
        )
    return "".join(parts)
