"""The dashboard's plain-text outputs: scores.csv (every graded day of every push) and summary.md."""

from __future__ import annotations

import csv
from pathlib import Path

from cohort.report.board import Board
from cohort.report.html import pair_day_href
from cohort.report.stuck import Stuck
from cohort.store import DayScore

CSV_COLUMNS = DayScore._fields[: DayScore._fields.index("graded_at") + 1]


def write_csv(rows: list[DayScore], path: Path) -> None:
    """One row per graded day of every push, oldest first per pair and day."""
    width = len(CSV_COLUMNS)
    with path.open("w", newline="", encoding="utf-8") as f:
        out = csv.writer(f)
        out.writerow(CSV_COLUMNS)
        out.writerows(row[:width] for row in rows)


def _md(text: str) -> str:
    return text.replace("\\", "\\\\").replace("|", "\\|").replace("\n", " ")


def markdown(name: str, board: Board, stuck: list[Stuck], generated_at: str, rules: str) -> str:
    lines = [
        f"# {_md(name)}",
        "",
        f"Best score per pair and day; generated {generated_at[:16]} UTC.",
        "",
        "| pair | " + " | ".join(board.days) + " | total |",
        "| --- |" + " ---: |" * (len(board.days) + 1),
    ]
    for pair in board.pairs:
        cells = []
        for day in board.days:
            cell = board.cell(pair, day)
            cells.append(
                f"[{cell.best.score:g}/{cell.best.max_score:g}]({pair_day_href(pair, day)})"
                if cell
                else "-"
            )
        got, total = board.total(pair)
        lines.append(f"| {_md(pair)} | " + " | ".join(cells) + f" | {got:g}/{total:g} |")
    lines += ["", "## Stuck", "", rules, ""]
    if stuck:
        lines += [
            "| pair | day | failing test | pushes | hours |",
            "| --- | --- | --- | ---: | ---: |",
        ]
        lines += [
            f"| {_md(s.pair)} | {s.day} | `{_md(s.test)}` | {s.pushes} | {s.hours:.1f} |"
            for s in stuck
        ]
    else:
        lines.append("Nobody is stuck.")
    return "\n".join(lines) + "\n"
