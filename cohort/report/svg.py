"""The dashboard's charts as inline SVG, no script, nothing fetched: points per pair (a step line
per pair, a marker per push) and the days done."""

from __future__ import annotations

from html import escape

WIDTH, HEIGHT, PAD = 760, 280, 44
LEGEND_MAX = 12  # pairs named under the plot; with more, hover a line for its pair
MAX_POINTS = 200  # per pair line; denser histories are thinned
PALETTE = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _thin(points: list[tuple[str, float]]) -> list[tuple[str, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


def _open(title: str, cls: str, height: int = HEIGHT) -> list[str]:
    return [
        f'<svg class="{cls}" viewBox="0 0 {WIDTH} {height}" width="{WIDTH}" height="{height}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def progress(series: dict[str, list[tuple[str, float]]], title: str = "Points per pair") -> str:
    """`series`: pair -> [(push time, fraction of points earned)], drawn as step lines with a
    marker per push. The x axis is the order of the pushes (evenly spaced, dated below), so
    pushes minutes apart read as well as pushes days apart, and a single push shows."""
    data = {pair: _thin(pts) for pair, pts in series.items() if pts}
    if not data:
        return f'<p class="empty">{escape(title)}: no graded pushes yet.</p>'
    stamps = sorted({t for pts in data.values() for t, _ in pts})
    rank = {t: i for i, t in enumerate(stamps)}
    slots = max(len(stamps) - 1, 1)

    def x(t: str) -> float:
        return PAD + (rank[t] + (len(stamps) == 1) * 0.5) / slots * (WIDTH - 2 * PAD)

    def y(f: float) -> float:
        return HEIGHT - PAD - f * (HEIGHT - 2 * PAD)

    parts = _open(title, "progress")
    for frac in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(frac):.1f}" y2="{y(frac):.1f}" class="grid"/>'
            f'<text x="{PAD - 6}" y="{y(frac) + 4:.1f}" text-anchor="end">{frac:.0%}</text>'
        )
    ticks = sorted({stamps[0], stamps[len(stamps) // 2], stamps[-1]})
    for t in ticks:
        anchor = (
            "start" if t == stamps[0] and len(ticks) > 1 else "end" if t == stamps[-1] else "middle"
        )
        label = escape(t[:16].replace("T", " "))
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - PAD + 18}" text-anchor="{anchor}">{label}</text>'
        )
    parts.append(
        f'<text x="{WIDTH / 2:.0f}" y="{HEIGHT - 6}" text-anchor="middle">pushes, in time order '
        f"({len(stamps)})</text>"
    )
    for i, (pair, pts) in enumerate(sorted(data.items())):
        color = PALETTE[i % len(PALETTE)]
        coords, last = [], None
        for t, f in [*pts, (stamps[-1], pts[-1][1])]:  # each line runs on to the latest push
            if last is not None:
                coords.append(f"{x(t):.1f},{y(last):.1f}")
            coords.append(f"{x(t):.1f},{y(f):.1f}")
            last = f
        if len(stamps) == 1:  # a single push in the cohort: a short tick, so the line shows
            coords.append(f"{x(stamps[0]) + 12:.1f},{y(last):.1f}")
        parts.append(
            f'<polyline points="{" ".join(coords)}" stroke="{color}" class="pair">'
            f"<title>{escape(pair)}: {pts[-1][1]:.0%}</title></polyline>"
        )
        parts += [
            f'<circle cx="{x(t):.1f}" cy="{y(f):.1f}" r="3" fill="{color}">'
            f"<title>{escape(pair)} {escape(t[:16].replace('T', ' '))}: {f:.0%}</title></circle>"
            for t, f in pts
        ]
    parts.append("</svg>")
    if len(data) <= LEGEND_MAX:
        parts.append('<p class="legend">')
        parts += [
            f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632;</span> {escape(pair)} '
            for i, pair in enumerate(sorted(data))
        ]
        parts.append("</p>")
    return "".join(parts)


def completion(days: dict[str, tuple[int, int]], pairs: int, released: dict[str, bool]) -> str:
    """Per day (in schedule order), a bar of the pairs with every point, with some points and
    with none yet: reads the same whether the cohort is an hour or a month old."""
    if not days or not pairs:
        return '<p class="empty">No days or no pairs.</p>'
    row, label_w = 22, 170
    height = row * len(days) + 30
    width = WIDTH - label_w - 90
    parts = _open("Days done", "chart", height)
    for i, (day, (n_done, n_some)) in enumerate(days.items()):
        top = 10 + i * row
        x = label_w
        for n, color, what in (
            (n_done, "#3a9a4a", "with every point"),
            (n_some, "#e0a030", "with some points"),
            (pairs - n_done - n_some, "#dddddd", "with no point yet"),
        ):
            w = width * n / pairs
            if n:
                parts.append(
                    f'<rect x="{x:.1f}" y="{top}" width="{w:.1f}" height="{row - 6}" fill="{color}">'
                    f"<title>{escape(day)}: {n} of {pairs} {what}</title></rect>"
                )
            x += w
        name = escape(day) + ("" if released.get(day, True) else " (not released)")
        parts.append(
            f'<text x="{label_w - 6}" y="{top + row - 10}" text-anchor="end">{name}</text>'
            f'<text x="{label_w + width + 6}" y="{top + row - 10}">{n_done} of {pairs} done</text>'
        )
    parts.append("</svg>")
    return "".join(parts)
