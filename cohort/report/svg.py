"""The progress-over-time plot as inline SVG: one line per pair, no script, nothing fetched."""

from __future__ import annotations

from datetime import datetime
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


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()


def _thin(points: list[tuple[str, float]]) -> list[tuple[str, float]]:
    if len(points) <= MAX_POINTS:
        return points
    step = len(points) / MAX_POINTS
    return [points[int(i * step)] for i in range(MAX_POINTS)] + [points[-1]]


def progress(series: dict[str, list[tuple[str, float]]], title: str = "Progress over time") -> str:
    """`series`: pair -> [(push time, fraction of points earned)], drawn as step lines that run on
    to the latest push of anyone."""
    data = {pair: [(_seconds(t), f) for t, f in _thin(pts)] for pair, pts in series.items() if pts}
    if not data:
        return f'<p class="empty">{escape(title)}: no graded pushes yet.</p>'
    t1 = max(p[-1][0] for p in data.values())
    t0 = min(p[0][0] for p in data.values())
    t0 -= max((t1 - t0) * 0.02, 60.0)  # room to see a line that starts at the last push
    span = t1 - t0

    def x(t: float) -> float:
        return PAD + (t - t0) / span * (WIDTH - 2 * PAD)

    def y(f: float) -> float:
        return HEIGHT - PAD - f * (HEIGHT - 2 * PAD)

    parts = [
        f'<svg class="progress" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" '
        f'role="img" aria-label="{escape(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for frac in (0, 0.25, 0.5, 0.75, 1):
        parts.append(
            f'<line x1="{PAD}" x2="{WIDTH - PAD}" y1="{y(frac):.1f}" y2="{y(frac):.1f}" class="grid"/>'
            f'<text x="{PAD - 6}" y="{y(frac) + 4:.1f}" text-anchor="end">{frac:.0%}</text>'
        )
    for t, anchor in ((t0, "start"), (t1, "end")):
        label = datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")
        parts.append(
            f'<text x="{x(t):.1f}" y="{HEIGHT - PAD + 18}" text-anchor="{anchor}">{label}</text>'
        )
    for i, (pair, pts) in enumerate(sorted(data.items())):
        coords, last = [], None
        for t, f in [*pts, (t1, pts[-1][1])]:  # each line runs on to the latest push
            if last is not None:
                coords.append(f"{x(t):.1f},{y(last):.1f}")
            coords.append(f"{x(t):.1f},{y(f):.1f}")
            last = f
        color = PALETTE[i % len(PALETTE)]
        parts.append(
            f'<polyline points="{" ".join(coords)}" stroke="{color}" class="pair">'
            f"<title>{escape(pair)}: {pts[-1][1]:.0%}</title></polyline>"
        )
    parts.append("</svg>")
    if len(data) <= LEGEND_MAX:
        parts.append('<p class="legend">')
        parts += [
            f'<span style="color:{PALETTE[i % len(PALETTE)]}">&#9632;</span> {escape(pair)} '
            for i, pair in enumerate(sorted(data))
        ]
        parts.append("</p>")
    return "".join(parts)
