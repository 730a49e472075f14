"""What one results document says about one pair's day, read once for every page that shows it:
real failures apart from exercises not started, what went wrong with the run (a timeout, a crash,
edited tests, static-scan flags on code the pair wrote) and consistent test counts."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cohort.curriculum import BY_NAME

TODO = "NotImplementedError"  # a stub's failure: the exercise is not started (docs/ta-guide.md)
TIMEOUT = ("timed out after", "hit its")  # the plugin's per-test timer, the parent's kill
CRASH = ("the test process", "could not import")  # the child died, or a day did not import


def is_todo(output: str) -> bool:
    return TODO in output


def belongs(path: str, day: str) -> bool:
    """Is `path` (e.g. `mlab/w0_prep.py`, `tests/test_w0_prep.py`) one of `day`'s files, or no day's?"""
    parts = path.replace("tests/test_", "tests/").split("/")
    names = {p.removesuffix(".py") for p in parts}
    return day in names or not names & set(BY_NAME)


def _template_lines(template: Path | None, rel: str, cache: dict) -> set[str] | None:
    """The stripped lines of the template's copy of `rel` (None when the template lacks it)."""
    if rel not in cache:
        path = template / rel if template else None
        try:
            text = path.read_text(errors="replace") if path and path.is_file() else None
        except OSError:
            text = None
        cache[rel] = None if text is None else {ln.strip()[:200] for ln in text.splitlines()}
    return cache[rel]


def pair_flags(flags: list[dict], template: Path | None, cache: dict | None = None) -> list[dict]:
    """The static-scan flags on lines the pair wrote: a flagged line the template's copy of the
    same file also has (code shipped with the exercises) is dropped."""
    cache = {} if cache is None else cache
    kept = []
    for f in flags:
        lines = _template_lines(template, str(f.get("file", "")), cache)
        if lines is None or str(f.get("code", "")).strip() not in lines:
            kept.append(f)
    return kept


@dataclass
class DayFacts:
    """One day of one results document."""

    real: list[dict] = field(default_factory=list)  # failed for a reason other than a stub
    todo: list[dict] = field(default_factory=list)  # failed with NotImplementedError
    passed: list[dict] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    flags: list[dict] = field(default_factory=list)
    edited: list[str] = field(default_factory=list)

    @property
    def graded(self) -> int:
        """Tests that count: every test but the skipped ones (as the day's score counts them)."""
        return len(self.real) + len(self.todo) + len(self.passed)

    @property
    def timeouts(self) -> list[dict]:
        return [t for t in self.real if any(s in t.get("output", "") for s in TIMEOUT)]

    @property
    def crashes(self) -> list[dict]:
        return [t for t in self.real if any(s in t.get("output", "") for s in CRASH)]

    def marks(self) -> list[tuple[str, str]]:
        """(short mark, what it means) for what a cell of the index must not hide."""
        found = []
        if n := len(self.timeouts):
            found.append(("timeout", f"{n} test(s) timed out"))
        if n := len(self.crashes):
            found.append(("crash", f"the test process died or the code did not import ({n})"))
        if self.edited:
            found.append(("edited", f"edited tests: {', '.join(self.edited)} (graded with ours)"))
        if self.flags:
            found.append(("flags", f"{len(self.flags)} static-scan flag(s) in the pair's code"))
        return found


def day_facts(
    doc: dict | None, day: str, template: Path | None, cache: dict | None = None
) -> DayFacts:
    """The facts of `day` in `doc` (empty when the document could not be read)."""
    facts = DayFacts()
    if doc is None:
        return facts
    for t in doc.get("tests", []):
        if (t.get("tags") or [""])[0] != day:
            continue
        status = t.get("status")
        if status == "failed":
            (facts.todo if is_todo(t.get("output", "")) else facts.real).append(t)
        else:
            (facts.passed if status == "passed" else facts.skipped).append(t)
    extra = doc.get("extra_data", {})
    day_flags = [f for f in extra.get("flags", []) if belongs(str(f.get("file", "")), day)]
    facts.flags = pair_flags(day_flags, template, cache)
    facts.edited = [p for p in extra.get("edited_tests", []) if belongs(f"tests/{p}", day)]
    return facts
