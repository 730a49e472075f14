"""cohort.toml: the example `cohort new` writes, and one-line errors for every kind of bad file."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from cohort import roster
from cohort.cli import main
from cohort.errors import RosterError

REPO = Path(__file__).resolve().parents[1]
GOOD = """\
[cohort]
name = "spring"
tas = ["Grace"]

[template]
repo = "/srv/organizer"

[[pairs]]
name = "pair-01"
members = ["Ada", "Alan"]

[[pairs]]
name = "pair-02"
members = ["Kathy", "John"]

[days]
w0_prep = { release = 2026-01-05, deadline = 2026-01-06T18:00:00 }
w1d1_raytracing = { release = "2026-01-06", deadline = "2026-01-07" }
"""


def problems(text: str) -> list[str]:
    with pytest.raises(RosterError) as e:
        roster.parse(text, Path("cohort.toml"))
    return str(e.value).splitlines()


def test_a_good_roster_reads_into_typed_fields():
    r = roster.parse(GOOD, Path("/c/cohort.toml"))
    assert r.name == "spring" and r.tas == ("Grace",) and r.dir == Path("/c")
    assert r.template == roster.TemplateSource(Path("/srv/organizer"), "HEAD")
    assert [(p.name, p.members) for p in r.pairs] == [
        ("pair-01", ("Ada", "Alan")),
        ("pair-02", ("Kathy", "John")),
    ]
    assert [d.name for d in r.days] == ["w0_prep", "w1d1_raytracing"]
    w0 = r.days[0]
    assert w0.release.date() == date(2026, 1, 5) and w0.deadline.hour == 18 and w0.release.tzinfo
    assert r.days[1].deadline.hour == 23  # a bare date is due at the end of that day
    assert r.forge == roster.ForgeSettings() and r.grading == roster.GradingSettings()


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda t: t.replace('"pair-02"', '"PAIR-01"'),
            "cohort.toml: pairs[1].name: duplicate pair name 'PAIR-01' (also pairs[0])",
        ),
        (
            lambda t: t.replace('"Kathy"', '"ada"'),
            "cohort.toml: pairs[1].members: 'ada' is also in pairs[0]",
        ),
        (
            lambda t: t.replace("w1d1_raytracing =", "w0prep ="),
            "cohort.toml: days.w0prep: unknown day (did you mean 'w0_prep'?)",
        ),
        (
            lambda t: t.replace('"2026-01-07"', '"2026-13-07"'),
            "cohort.toml: days.w1d1_raytracing.deadline: bad date '2026-13-07' (use 2026-01-05 or 2026-01-05T18:00:00)",
        ),
        (
            lambda t: t.replace('"2026-01-07"', '"2026-01-01"'),
            "cohort.toml: days.w1d1_raytracing.deadline: ",
        ),
        (
            lambda t: t.replace('name = "pair-01"', 'name = "../evil"'),
            "cohort.toml: pairs[0].name: '../evil' must be",
        ),
        (
            lambda t: t.replace("tas =", "ta ="),
            "cohort.toml: cohort.ta: unknown field (did you mean 'tas'?)",
        ),
        (
            lambda t: t.replace('members = ["Ada", "Alan"]', 'members = "Ada"'),
            "cohort.toml: pairs[0].members: must be a list of non-empty strings",
        ),
        (
            lambda t: t + '[forge]\nbackend = "gitlab"\n',
            "cohort.toml: forge.backend: unknown backend 'gitlab' (known: local, github)",
        ),
        (
            lambda t: t + "[grading]\ntest_timeout = -1\n",
            "cohort.toml: grading.test_timeout: must be a number above 0",
        ),
        (
            lambda t: t.replace("[[pairs]]", "[[pair]]", 1),
            "cohort.toml: pair: unknown field (did you mean 'pairs'?)",
        ),
        (
            lambda t: t.replace("[days]", "[days]\nw0_prep = 3\n").replace(
                "w0_prep = {", "w0_old = {"
            ),
            "cohort.toml: days.w0_prep: must be { release = DATE, deadline = DATE }",
        ),
        (lambda t: t.replace('name = "spring"', "name = "), "cohort.toml: not valid TOML ("),
    ],
)
def test_each_problem_is_one_line_naming_file_and_field(edit, expected):
    found = problems(edit(GOOD))
    assert any(line.startswith(expected) for line in found), found
    assert all(line.startswith("cohort.toml: ") for line in found)


def test_every_problem_is_reported_at_once():
    text = (
        GOOD.replace('"pair-02"', '"pair-01"')
        .replace('"Kathy"', '"Ada"')
        .replace("w1d1_raytracing", "w9")
    )
    assert len(problems(text)) == 3


def test_missing_file_says_how_to_make_one(tmp_path):
    with pytest.raises(
        RosterError, match=r"cohort.toml: not found \(create one with `cohort new DIR`\)"
    ):
        roster.load(tmp_path)


def test_cohort_new_writes_a_valid_commented_example(tmp_path, capsys):
    assert main(["new", str(tmp_path / "c"), "--repo", str(REPO)]) == 0
    text = (tmp_path / "c" / "cohort.toml").read_text()
    assert text.count("\n# ") > 5
    r = roster.load(tmp_path / "c")
    assert r.name == "c" and r.template.repo == REPO and len(r.pairs) == 3
    assert "w0_prep" in [d.name for d in r.days]
    assert main(["new", str(tmp_path / "c")]) == 2
    assert "already exists" in capsys.readouterr().err


def test_nothing_is_created_from_a_bad_roster(tmp_path, capsys):
    (tmp_path / "cohort.toml").write_text(GOOD.replace('"Kathy"', '"Ada"'))
    assert main(["generate", "--dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "pairs[1].members: 'Ada' is also in pairs[0]" in err and len(err.splitlines()) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["cohort.toml"]


def test_cohort_new_outside_git_takes_the_template_from_disk_and_generate_works(tmp_path, capsys):
    from tests.test_forge_local import tiny_organizer

    organizer = tiny_organizer(tmp_path / "org")
    shutil.rmtree(organizer / ".git")  # a downloaded copy, not a clone
    d = tmp_path / "c"
    assert main(["new", str(d), "--repo", str(organizer)]) == 0
    assert "not a git repository" in capsys.readouterr().out
    assert roster.load(d).template.ref == roster.WORKTREE
    assert main(["generate", "--dir", str(d)]) == 0


def test_store_status_in_an_empty_folder_says_so_and_creates_nothing(tmp_path, capsys):
    assert main(["store", "status", "--dir", str(tmp_path)]) == 2
    assert "no cohort.db here" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_pair_problems_name_the_pairs():
    found = problems(GOOD.replace('"Kathy"', '"ada"'))
    assert any("'ada' is also in pairs[0] = 'pair-01' (pair 'pair-02')" in line for line in found)


GITHUB = """
[forge]
backend = "github"

[forge.github]
org = "mlab-2027"
grader_repository = "mlab-2027/cohort-template"
grader_ref = "v1.0"
reviews = 2
gpu = false
"""


def test_github_settings_are_checked_with_the_rest_of_the_roster():
    r = roster.parse(GOOD + GITHUB, Path("cohort.toml"))
    assert r.forge.github == roster.GitHubSettings(
        "mlab-2027", "mlab-2027/cohort-template", "v1.0", reviews=2, gpu=False
    )
    assert roster.parse(GOOD, Path("cohort.toml")).forge.github is None  # local: none
    bad = (
        GOOD.replace('"Kathy"', '"Ada"')  # a roster problem, reported with the settings' ones
        + GITHUB.replace("grader_ref", "grader_reff")
        .replace("reviews = 2", "reviews = -1")
        .replace('"mlab-2027"', '"mlab 2027"')
        + "gpu_runs_on = 'arc-gpu'\n"
    )
    assert sorted(problems(bad)) == [
        "cohort.toml: forge.github.gpu_runs_on: must be JSON, e.g. '[\"arc-gpu\"]'",
        "cohort.toml: forge.github.grader_ref: missing (see docs/github.md)",
        "cohort.toml: forge.github.grader_reff: unknown setting (did you mean 'grader_ref'?)",
        "cohort.toml: forge.github.org: 'mlab 2027' is not a valid org",
        "cohort.toml: forge.github.reviews: must be a whole number >= 0, not -1",
        "cohort.toml: pairs[1].members: 'Ada' is also in pairs[0] = 'pair-01' (pair 'pair-02')",
    ]
