"""`cohort.toml`, the roster of one cohort: its pairs, TAs, days and where its repositories live.

`load` checks the whole file before anything acts on it. Each problem is one line naming the file,
the field and what is wrong, e.g. `cohort.toml: pairs[2].members: 'ada' is also in pairs[0]`.
"""

from __future__ import annotations

import difflib
import json
import re
import tomllib
from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

from cohort.curriculum import BY_NAME, DAYS
from cohort.errors import RosterError

FILENAME = "cohort.toml"
PAIR_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
FORGE_BACKENDS = ("local", "github")
WORKTREE = "worktree"  # template ref meaning "the files on disk now", uncommitted changes included


@dataclass(frozen=True)
class Pair:
    name: str
    members: tuple[str, ...]


@dataclass(frozen=True)
class DaySchedule:
    name: str
    release: datetime
    deadline: datetime


@dataclass(frozen=True)
class TemplateSource:
    repo: Path  # the organizer repository, which holds template/ (and solutions/)
    ref: str  # a git ref of `repo`, or "worktree"
    # Where the docs site is published (`https://ORG.github.io/REPO/docs`, no trailing slash):
    # the pairs' README and stub messages link there; None keeps `docs/<day>.md#anchor`.
    docs_url: str | None = None


@dataclass(frozen=True)
class GitHubSettings:
    """`[forge.github]` of cohort.toml (docs/github.md)."""

    org: str  # the organization holding the pairs' repositories
    grader_repository: str  # owner/name of the organizers' repository (the reusable workflow)
    grader_ref: str  # the cohort's pinned ref of it: a tag, branch or commit
    template_repo: str = "pair-template"  # in `org`; `cohort generate` creates and fills it
    team: str = "tas"  # slug of the TA team, made if missing; gets push access to every pair
    repo_prefix: str = ""  # pair repository = prefix + pair name
    reviews: int = 1  # approving reviews a pull request into main needs
    gpu: bool = True  # run the gpu/bench job of the grading workflow
    gpu_runs_on: str = ""  # its runs-on as JSON, e.g. '["arc-gpu"]' (default: the workflow's)
    api_url: str = "https://api.github.com"
    git_url: str = "https://github.com"
    write_interval: float = 1.0  # seconds between write requests


GITHUB_OPTIONS = {f.name: f.type for f in fields(GitHubSettings)}  # name -> type, as text
GITHUB_REQUIRED = ("org", "grader_repository", "grader_ref")
KINDS = {
    "str": "a string",
    "int": "a whole number >= 0",
    "float": "a number >= 0",
    "bool": "true or false",
}
NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
GITHUB_PATTERNS = {
    "org": NAME,
    "template_repo": NAME,
    "repo_prefix": re.compile(r"^[A-Za-z0-9_.-]*$"),
    "grader_repository": re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$"),
    "grader_ref": re.compile(r"^[A-Za-z0-9_./-]+$"),
    "team": re.compile(r"^[a-z0-9][a-z0-9-]*$"),
}


@dataclass(frozen=True)
class ForgeSettings:
    backend: str = "local"
    host: str = "127.0.0.1"  # where `cohort serve` listens (local backend)
    port: int = 9418
    github: GitHubSettings | None = None  # [forge.github], checked, when backend = "github"


@dataclass(frozen=True)
class GradingSettings:
    test_timeout: float = 30.0
    run_timeout: float = 900.0
    memory_mb: int = 8192
    lease_s: float = 60.0  # a job whose worker stops renewing its lease for this long is re-run
    stuck_pushes: int = 3  # failing the same test for this many pushes in a row ...
    stuck_hours: float = 24.0  # ... or for this long makes a pair "stuck"


@dataclass(frozen=True)
class Roster:
    path: Path
    name: str
    template: TemplateSource
    pairs: tuple[Pair, ...]
    tas: tuple[str, ...]
    days: tuple[DaySchedule, ...]
    forge: ForgeSettings
    grading: GradingSettings

    @property
    def dir(self) -> Path:
        """The cohort directory: forge/, cohort.db, results/ and site/ live next to the roster.
        Absolute, so it stays right for git and workers running in other directories."""
        return self.path.parent.resolve()


class _Checker:
    """Collects one-line problems while reading the TOML document."""

    def __init__(self, path: Path):
        self.path, self.problems = path, []

    def bad(self, where: str, what: str) -> None:
        self.problems.append(f"{self.path}: {where}: {what}")

    def table(
        self, doc: dict, key: str, known: set[str], required: bool = True, what: str = "field"
    ) -> dict:
        value = doc.get(key)
        if value is None:
            if required:
                self.bad(key, "missing table")
            return {}
        if not isinstance(value, dict):
            self.bad(key, f"must be a table, not {type(value).__name__}")
            return {}
        self.unknown(value, key, known, what)
        return value

    def unknown(self, table: dict, where: str, known: set[str], what: str = "field") -> None:
        for key in sorted(table.keys() - known):
            hint = difflib.get_close_matches(key, known, n=1)
            self.bad(
                f"{where}.{key}" if where else key,
                f"unknown {what}" + (f" (did you mean {hint[0]!r}?)" if hint else ""),
            )

    def text(self, table: dict, key: str, where: str, default: str | None = None) -> str:
        value = table.get(key, default)
        if not isinstance(value, str) or not value.strip():
            self.bad(f"{where}.{key}", "missing" if value is None else "must be a non-empty string")
            return ""
        return value.strip()

    def number(
        self, table: dict, key: str, where: str, default: float, kind: type = float, low: float = 0
    ) -> Any:
        value = table.get(key, default)
        types = int if kind is int else int | float
        if not isinstance(value, types) or isinstance(value, bool) or value <= low:
            self.bad(
                f"{where}.{key}",
                f"must be {'an integer' if kind is int else 'a number'} above {low:g}, "
                f"not {value!r}",
            )
            return default
        return kind(value)

    def strings(self, value: Any, where: str) -> tuple[str, ...]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
            self.bad(where, "must be a list of non-empty strings")
            return ()
        return tuple(v.strip() for v in value)

    def when(self, value: Any, where: str, end_of_day: bool) -> datetime | None:
        """A TOML date or datetime (or ISO string) as an aware datetime; local time when naive."""
        if isinstance(value, str):
            try:
                value = (
                    datetime.fromisoformat(value)
                    if "T" in value or " " in value
                    else date.fromisoformat(value)
                )
            except ValueError:
                self.bad(where, f"bad date {value!r} (use 2026-01-05 or 2026-01-05T18:00:00)")
                return None
        if isinstance(value, datetime):
            return value if value.tzinfo else value.astimezone()
        if isinstance(value, date):
            moment = datetime.combine(value, time.max if end_of_day else time.min)
            return moment.astimezone()
        self.bad(where, f"bad date {value!r} (use 2026-01-05 or 2026-01-05T18:00:00)")
        return None


def _ref(raw: list, j: int) -> str:
    """`pairs[j] = 'name'`: where another pair is, and who it is."""
    return f"pairs[{j}] = {raw[j].get('name')!r}"


def _pairs(check: _Checker, doc: dict) -> tuple[Pair, ...]:
    raw = doc.get("pairs")
    if not isinstance(raw, list) or not raw:
        check.bad("pairs", "missing: add one [[pairs]] table per pair")
        return ()
    pairs, names, members = [], {}, {}
    for i, entry in enumerate(raw):
        where = f"pairs[{i}]"
        if not isinstance(entry, dict):
            check.bad(where, "must be a table with name and members")
            continue
        # errors name the pairs, not only their place in the file
        of = f" (pair {entry['name']!r})" if isinstance(entry.get("name"), str) else ""
        check.unknown(entry, where, {"name", "members"})
        name = check.text(entry, "name", where)
        if name and (not PAIR_NAME.match(name) or name.endswith(".git")):
            check.bad(
                f"{where}.name",
                f"{name!r} must be letters, digits, '.', '_' or '-' (it names a "
                "repository), at most 63, not ending in .git",
            )
        elif name.lower() in names:
            check.bad(
                f"{where}.name",
                f"duplicate pair name {name!r} (also pairs[{names[name.lower()]}])",
            )
        elif name:
            names[name.lower()] = i
        people = check.strings(entry.get("members", []), f"{where}.members")
        if not people and isinstance(entry.get("members", []), list):
            check.bad(f"{where}.members", f"must name at least one member{of}")
        for person in people:
            if person.lower() in members:
                check.bad(
                    f"{where}.members",
                    f"{person!r} is also in {_ref(raw, members[person.lower()])}{of}",
                )
            else:
                members[person.lower()] = i
        pairs.append(Pair(name, people))
    return tuple(pairs)


def _days(check: _Checker, doc: dict) -> tuple[DaySchedule, ...]:
    raw = check.table(doc, "days", set(BY_NAME), what="day")
    if not raw and isinstance(doc.get("days"), dict):
        check.bad(
            "days",
            "lists no day: add e.g. w0_prep = { release = 2026-01-05, deadline = 2026-01-06 }",
        )
    found = {}
    for name, entry in raw.items():
        where = f"days.{name}"
        if name not in BY_NAME:
            continue
        if not isinstance(entry, dict):
            check.bad(where, "must be { release = DATE, deadline = DATE }")
            continue
        check.unknown(entry, where, {"release", "deadline"})
        if "release" not in entry or "deadline" not in entry:
            check.bad(where, "needs both release and deadline")
            continue
        release = check.when(entry["release"], f"{where}.release", end_of_day=False)
        deadline = check.when(entry["deadline"], f"{where}.deadline", end_of_day=True)
        if release and deadline and deadline < release:
            check.bad(
                f"{where}.deadline",
                f"{deadline.isoformat()} is before the release {release.isoformat()}",
            )
        elif release and deadline:
            found[name] = DaySchedule(name, release, deadline)
    return tuple(found[d.name] for d in DAYS if d.name in found)


def _forge(check: _Checker, doc: dict) -> ForgeSettings:
    raw = check.table(doc, "forge", {"backend", "host", "port", *FORGE_BACKENDS}, required=False)
    backend = raw.get("backend", "local")
    if backend not in FORGE_BACKENDS:
        check.bad(
            "forge.backend", f"unknown backend {backend!r} (known: {', '.join(FORGE_BACKENDS)})"
        )
    host = check.text(raw, "host", "forge", "127.0.0.1")
    port = check.number(raw, "port", "forge", 9418, int)
    if port > 65535:
        check.bad("forge.port", f"{port} is not a TCP port")
    options = raw.get(backend, {})
    if not isinstance(options, dict):
        check.bad(f"forge.{backend}", "must be a table of the backend's settings")
        options = {}
    github = _github(check, options) if backend == "github" else None
    return ForgeSettings(backend, host, port, github)


def _typed(value: Any, kind: str) -> bool:
    if isinstance(value, bool):
        return kind == "bool"
    if kind in ("int", "float"):
        return isinstance(value, int if kind == "int" else int | float) and value >= 0
    return kind == "str" and isinstance(value, str)


def _github(check: _Checker, raw: dict) -> GitHubSettings | None:
    """`[forge.github]`: known keys of the right type and form, the required ones present."""
    where = "forge.github"
    check.unknown(raw, where, set(GITHUB_OPTIONS), "setting")
    values = {}
    for name, kind in GITHUB_OPTIONS.items():
        if name not in raw:
            continue
        value = raw[name]
        if not _typed(value, kind):
            check.bad(f"{where}.{name}", f"must be {KINDS[kind]}, not {value!r}")
        elif name in GITHUB_PATTERNS and not GITHUB_PATTERNS[name].match(value):
            check.bad(f"{where}.{name}", f"{value!r} is not a valid {name}")
        else:
            values[name] = value
    for name in GITHUB_REQUIRED:
        if name not in raw:
            check.bad(f"{where}.{name}", "missing (see docs/github.md)")
    if values.get("gpu_runs_on"):
        try:
            json.loads(values["gpu_runs_on"])
        except ValueError:
            check.bad(f"{where}.gpu_runs_on", "must be JSON, e.g. '[\"arc-gpu\"]'")
    if not all(name in values for name in GITHUB_REQUIRED):
        return None
    return GitHubSettings(**values)


def _grading(check: _Checker, doc: dict) -> GradingSettings:
    d = GradingSettings()
    raw = check.table(doc, "grading", set(d.__dataclass_fields__), required=False)
    return GradingSettings(
        test_timeout=check.number(raw, "test_timeout", "grading", d.test_timeout),
        run_timeout=check.number(raw, "run_timeout", "grading", d.run_timeout),
        memory_mb=check.number(raw, "memory_mb", "grading", d.memory_mb, int),
        lease_s=check.number(raw, "lease_s", "grading", d.lease_s),
        stuck_pushes=check.number(raw, "stuck_pushes", "grading", d.stuck_pushes, int, low=1),
        stuck_hours=check.number(raw, "stuck_hours", "grading", d.stuck_hours),
    )


def _docs_url(check: _Checker, tmpl: dict) -> str | None:
    """`template.docs_url`: an http(s) URL without spaces, kept without its trailing slash."""
    if "docs_url" not in tmpl:
        return None
    value = tmpl["docs_url"]
    if not isinstance(value, str) or not re.fullmatch(r"https?://[^\s\"'<>]+", value.strip()):
        check.bad(
            "template.docs_url",
            f"{value!r} must be the http(s) URL the docs site is published at, e.g. "
            "'https://mlab-2027.github.io/cohort-template/docs'",
        )
        return None
    return value.strip().rstrip("/")


def parse(text: str, path: Path) -> Roster:
    """The roster in `text` (read from `path`), or RosterError listing every problem."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RosterError(f"{path}: not valid TOML ({e})") from None
    check = _Checker(path)
    check.unknown(doc, "", {"cohort", "template", "forge", "grading", "pairs", "days"})
    cohort = check.table(doc, "cohort", {"name", "tas"})
    name = check.text(cohort, "name", "cohort")
    tas = check.strings(cohort.get("tas", []), "cohort.tas")
    tmpl = check.table(doc, "template", {"repo", "ref", "docs_url"})
    repo = check.text(tmpl, "repo", "template")
    ref = check.text(tmpl, "ref", "template", "HEAD")
    docs_url = _docs_url(check, tmpl)
    roster = Roster(
        path=path,
        name=name,
        template=TemplateSource((path.parent / repo).resolve() if repo else Path(), ref, docs_url),
        pairs=_pairs(check, doc),
        tas=tas,
        days=_days(check, doc),
        forge=_forge(check, doc),
        grading=_grading(check, doc),
    )
    if check.problems:
        raise RosterError("\n".join(check.problems))
    return roster


def load(cohort_dir: Path) -> Roster:
    """Read `cohort_dir/cohort.toml` (or a path to the file itself)."""
    path = Path(cohort_dir)
    path = path if path.suffix == ".toml" else path / FILENAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise RosterError(f"{path}: not found (create one with `cohort new DIR`)") from None
    except (OSError, UnicodeDecodeError) as e:
        raise RosterError(f"{path}: cannot be read ({e})") from None
    return parse(text, path)


EXAMPLE = """\
# cohort.toml: the roster of one cohort. `cohort generate` reads it to create one repository per
# pair; `cohort runner` and `cohort summary` read it too. Dates are TOML dates or date-times
# (local time unless they carry an offset).

[cohort]
name = "{name}"
tas = ["Grace Hopper", "Edsger Dijkstra"]

[template]
# The organizer repository whose template/ every pair starts from, and the git ref to take it at.
# ref = "worktree" takes the files as they are on disk, uncommitted changes included.
repo = "{repo}"
ref = "{ref}"
# Where the docs site is published (`nox -s docs`; the cohort summary workflow puts it under
# /docs of the Pages site): the pairs' README and stub messages then link to it, e.g.
# `see https://.../docs/w1d1_raytracing/#raytrace_mesh`. Unset: `see docs/<day>.md#anchor`.
# docs_url = "https://mlab-2027.github.io/cohort-template/docs"

[forge]
backend = "local"   # bare repositories under forge/; pairs push with plain git
host = "127.0.0.1"  # where `cohort serve` listens (git daemon); keep it on a trusted network
port = 9418

# GitHub mode (docs/github.md): set backend = "github" above and fill in this table.
# [forge.github]
# org = "mlab-2027"                                # holds one private repository per pair
# grader_repository = "mlab-2027/cohort-template"  # the organizers' repository (graders, workflow)
# grader_ref = "v1.0"                              # the cohort's pinned ref of it
# team = "tas"                                     # TA team, made if missing; reviews every pair
# gpu_runs_on = '["arc-gpu"]'                      # an ARC scale set's installation name

[grading]
test_timeout = 30   # seconds per test (tests marked slow get 4x)
run_timeout = 900   # seconds for a whole grading run
memory_mb = 8192    # address space of the process that runs pair code
lease_s = 60        # a job whose worker goes silent this long is graded again
stuck_pushes = 3    # a pair failing the same test for this many pushes in a row ...
stuck_hours = 24    # ... or for this many hours is listed as stuck on the dashboard

# One [[pairs]] table per pair; the name names its repository. Nobody may be in two pairs.
[[pairs]]
name = "pair-01"
members = ["Ada Lovelace", "Alan Turing"]

[[pairs]]
name = "pair-02"
members = ["Katherine Johnson", "John von Neumann"]

[[pairs]]
name = "pair-03"
members = ["Barbara Liskov", "Claude Shannon"]

# The days this cohort runs (names from the curriculum), with when each is released and due.
# Every push is graded on each of these days that has graders in the template.
[days]
{days}
"""


def example(name: str, repo: Path, days: list[str], start: date, ref: str = "HEAD") -> str:
    """The commented example `cohort new` writes: one weekday per day from `start`."""
    lines, when = [], start
    for day in days:
        while when.weekday() >= 5:
            when += timedelta(days=1)
        lines.append(
            f"{day} = {{ release = {when.isoformat()}, deadline = {when.isoformat()}T23:59:00 }}"
        )
        when += timedelta(days=1)
    return EXAMPLE.format(name=name, repo=repo.as_posix(), ref=ref, days="\n".join(lines))
