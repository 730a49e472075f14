"""What a TA's review pack needs from the checkout itself, computed while it is at hand: the
pair's exercise files against the stubs, and the test files the pair changed (they are graded
with the trusted copies regardless)."""

from __future__ import annotations

import difflib
from pathlib import Path

MAX_DIFF_CHARS = 100_000


def day_files(root: Path, day: str) -> dict[str, Path]:
    """A day's exercise files under `root/mlab` (`<day>.py` or the package `<day>/`), by relative path."""
    mlab = root / "mlab"
    found = [mlab / f"{day}.py", *sorted((mlab / day).rglob("*.py"))] if mlab.is_dir() else []
    return {p.relative_to(root).as_posix(): p for p in found if p.is_file()}


def _lines(path: Path | None) -> list[str]:
    return path.read_text(errors="replace").splitlines(keepends=True) if path else []


def exercise_diffs(checkout: Path, template: Path, days: list[str]) -> dict[str, str]:
    """Per day, the unified diff of the pair's exercise files against the template's stubs."""
    diffs = {}
    for day in days:
        stubs, pair = day_files(template, day), day_files(checkout, day)
        text = "".join(
            line
            for rel in sorted(stubs.keys() | pair.keys())
            for line in difflib.unified_diff(
                _lines(stubs.get(rel)), _lines(pair.get(rel)), f"stubs/{rel}", f"pair/{rel}"
            )
        )
        if len(text) > MAX_DIFF_CHARS:
            text = text[:MAX_DIFF_CHARS] + f"\n... diff cut at {MAX_DIFF_CHARS} characters\n"
        diffs[day] = text
    return diffs


def edited_tests(checkout: Path, trusted: Path) -> list[str]:
    """Files of the pair's tests/ that differ from the trusted tests (added, changed or removed)."""

    def files(root: Path) -> dict[str, bytes]:
        return (
            {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*.py")}
            if root.is_dir()
            else {}
        )

    theirs, ours = files(checkout / "tests"), files(trusted)
    return sorted(rel for rel in theirs.keys() | ours.keys() if theirs.get(rel) != ours.get(rel))
