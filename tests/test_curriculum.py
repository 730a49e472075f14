"""The curriculum itself: every day's solutions score 100%, the untouched template 0."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from markdown.extensions.toc import slugify

from cohort import selfcheck
from cohort.curriculum import BY_NAME, available_days
from tests.conftest import ROOT

DAYS = available_days(ROOT / "template" / "tests")


def test_days_with_graders_are_curriculum_days():
    files = {p.stem.removeprefix("test_") for p in (ROOT / "template" / "tests").glob("test_*.py")}
    assert files <= BY_NAME.keys(), f"graders for unknown days: {files - BY_NAME.keys()}"
    assert "w0_prep" in DAYS


@pytest.mark.parametrize("day", DAYS)
def test_solutions_score_full_marks(day):
    res = selfcheck.check_solutions(ROOT, day)
    assert res["score"] == res["max_score"] > 0


@pytest.mark.parametrize("day", DAYS)
def test_untouched_template_scores_zero_cleanly(day):
    res = selfcheck.check_template(ROOT, day)
    assert res["score"] == 0


def anchors(page: str) -> Iterator[str]:
    """The heading ids mkdocs gives a page: toc's slugify, `_1`, `_2` ... for repeats."""
    seen: dict[str, int] = {}
    for line in page.splitlines():
        if line.startswith("#"):
            slug = slugify(line.lstrip("#").strip().replace("`", ""), "-")
            n = seen.get(slug, 0)
            seen[slug] = n + 1
            yield slug if n == 0 else f"{slug}_{n}"


@pytest.mark.parametrize("day", DAYS)
def test_every_day_has_a_docs_page_with_its_exercises(day):
    page = ROOT / "docs" / f"{day}.md"
    assert page.exists(), f"docs/{day}.md is missing"
    stubs = (ROOT / "template" / "mlab").glob(f"{day}*")
    linked = {
        line.split("#", 1)[1].split('"')[0]
        for path in stubs
        for file in ([path] if path.is_file() else path.rglob("*.py"))
        for line in file.read_text().splitlines()
        if f"see docs/{day}.md#" in line
    }
    missing = linked - set(anchors(page.read_text()))
    assert not missing, f"docs/{day}.md lacks headings for {sorted(missing)}"
