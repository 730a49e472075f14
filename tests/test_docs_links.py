"""`template.docs_url` in cohort.toml: `cohort generate` points the pairs' README and stub messages
at the published docs site, and keeps the relative `docs/<day>.md#anchor` when it is unset."""

from __future__ import annotations

from pathlib import Path

import pytest

from cohort import docs_links, forge, roster
from cohort.errors import RosterError
from tests.test_forge_local import git, tiny_organizer

URL = "https://mlab-2027.github.io/cohort-template/docs"
README = "# Your bootcamp repository\n\nOne module per day in `mlab/`.\n"


def cohort_with(tmp_path: Path, docs_url: str | None) -> roster.Roster:
    organizer = tmp_path / "organizer"
    (organizer / "template").mkdir(parents=True)
    (organizer / "template" / "README.md").write_text(README)
    tiny_organizer(organizer)
    cohort_dir = tmp_path / "cohort"
    cohort_dir.mkdir()
    line = f'docs_url = "{docs_url}"\n' if docs_url else ""
    (cohort_dir / roster.FILENAME).write_text(
        '[cohort]\nname = "t"\n'
        f'[template]\nrepo = "{organizer}"\nref = "HEAD"\n{line}'
        '[[pairs]]\nname = "pair-01"\nmembers = ["a", "b"]\n'
        "[days]\nw0_prep = { release = 2026-01-05, deadline = 2026-01-06 }\n"
    )
    return roster.load(cohort_dir)


def clone_pair(tmp_path: Path, cohort: roster.Roster) -> Path:
    forge.generate(cohort, progress=lambda _: None)
    work = tmp_path / "work"
    git("clone", "-q", forge.connect(cohort).repo_url("pair-01"), str(work), cwd=tmp_path)
    return work


def test_generate_links_the_pair_repository_to_the_docs_site(tmp_path):
    cohort = cohort_with(tmp_path, URL + "/")  # the trailing slash is dropped
    assert cohort.template.docs_url == URL
    work = clone_pair(tmp_path, cohort)
    stub = (work / "mlab" / "w0_prep.py").read_text()
    assert f'raise NotImplementedError("add: see {URL}/w0_prep/#add")' in stub
    assert f'raise NotImplementedError("mul: see {URL}/w0_prep/#mul")' in stub
    assert "see docs/" not in stub
    readme = (work / "README.md").read_text()
    assert readme.startswith("# Your bootcamp repository\n\n**The course site: <" + URL + "/>**")
    assert "One module per day" in readme
    # the trusted tests are the organizers', byte for byte
    assert (work / "tests" / "test_w0_prep.py").read_text() == (
        tmp_path / "organizer" / "template" / "tests" / "test_w0_prep.py"
    ).read_text()


def test_without_docs_url_stubs_keep_the_relative_docs_path(tmp_path):
    cohort = cohort_with(tmp_path, None)
    assert cohort.template.docs_url is None
    work = clone_pair(tmp_path, cohort)
    assert (
        'raise NotImplementedError("add: see docs/w0_prep.md#add")'
        in (work / "mlab" / "w0_prep.py").read_text()
    )
    assert (work / "README.md").read_text() == README


@pytest.mark.parametrize("bad", ["docs.example.org", "https://a b", 3, ""])
def test_a_bad_docs_url_is_one_line_naming_the_field(tmp_path, bad):
    text = (
        f'[cohort]\nname = "t"\n[template]\nrepo = "."\ndocs_url = {bad!r}\n'.replace("'", '"')
        + '[[pairs]]\nname = "p"\nmembers = ["a"]\n'
        "[days]\nw0_prep = { release = 2026-01-05, deadline = 2026-01-06 }\n"
    )
    with pytest.raises(RosterError, match=r"template\.docs_url: .* must be the http\(s\) URL"):
        roster.parse(text, tmp_path / "cohort.toml")


def test_rewrite_keeps_pages_without_anchor_and_other_text():
    text = (
        'raise NotImplementedError("Linear.forward: see docs/w1d2_resnet.md#linear")\n'
        'raise NotImplementedError("x: see docs/w0_prep.md")\n'
        "# see docs/organizer.md for the rest\n"
    )
    assert docs_links.rewrite_stubs(text, URL + "/") == (
        f'raise NotImplementedError("Linear.forward: see {URL}/w1d2_resnet/#linear")\n'
        f'raise NotImplementedError("x: see {URL}/w0_prep/")\n'
        f"# see {URL}/organizer/ for the rest\n"
    )
