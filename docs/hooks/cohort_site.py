"""mkdocs hook for the cohort docs site (named in mkdocs.yml under `hooks:`).

- The navigation is built from the pages present, so a new day page (`docs/<day>.md`) slots into
  its week without editing mkdocs.yml: Start here, Prep (w0_*), Week 1..3 (w<N>d<M>_*), Week 4
  projects, Organizers; any other page lands in Organizers.
- Two pages come from the pair template itself, not typed twice: "Your repository" is
  `template/README.md`, "Final projects" is `template/projects/README.md`.
- Every day page gets an "Exercises and points" table, read statically (with `ast`, nothing is
  imported) from the day's graders `template/tests/test_<day>.py`: each test's
  `@pytest.mark.points(n)` times its parametrized cases, grouped by the exercise it targets. It
  goes where the page has the line `<!-- exercises-and-points -->`, else just before the page's
  `## Exercises...` heading, else at the end.

Nothing here imports `cohort`, so the site builds without torch (the Pages workflow).
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path

from mkdocs.structure.files import File

PLACEHOLDER = "<!-- exercises-and-points -->"
DAY_PAGE = re.compile(r"^w(?P<week>\d+)(?:d(?P<day>\d+))?_[a-z0-9_]+\.md$")
WEEKS = {0: "Prep", 1: "Week 1", 2: "Week 2", 3: "Week 3", 4: "Week 4 projects"}
ORGANIZERS = ("organizer.md", "github.md", "runners.md", "ta-guide.md", "cli.md", "architecture.md")
# Pages generated from the pair template: (page, source relative to the repository root, title).
FROM_TEMPLATE = (
    ("start/your-repository.md", "template/README.md", "Your repository"),
    ("projects.md", "template/projects/README.md", "Final projects"),
)
STUB = r'NotImplementedError\("(?P<name>[^":]+): see docs/{day}\.md#(?P<anchor>[\w-]+)"\)'


# -- the graders, read statically ---------------------------------------------------------------


@dataclass
class Test:
    name: str  # as pytest's -k sees it: `test_x` or `TestX::test_y`
    points: float
    cases: int | None  # parametrized cases; None when the parameters are not a literal
    marks: tuple[str, ...] = ()

    @property
    def total(self) -> float:
        return self.points * (self.cases or 1)


@dataclass
class Exercise:
    anchor: str  # the heading id on the day page ("" for tests matching no exercise)
    name: str
    tests: list[Test] = field(default_factory=list)

    @property
    def points(self) -> float:
        return sum(t.total for t in self.tests)


def _mark_name(node: ast.expr, aliases: set[str]) -> str | None:
    """`pytest.mark.X` / `mark.X` / an alias of `pytest.mark.points` -> X."""
    if isinstance(node, ast.Call):
        node = node.func
    if isinstance(node, ast.Name) and node.id in aliases:
        return "points"
    if isinstance(node, ast.Attribute):
        base = node.value
        if (isinstance(base, ast.Attribute) and base.attr == "mark") or (
            isinstance(base, ast.Name) and base.id == "mark"
        ):
            return node.attr
    return None


def _length(node: ast.expr, lengths: dict[str, int | None]) -> int | None:
    """How many parameter sets an expression holds, when that is plain from the source."""
    if isinstance(node, ast.List | ast.Tuple | ast.Set):
        return None if any(isinstance(e, ast.Starred) for e in node.elts) else len(node.elts)
    if isinstance(node, ast.Dict):
        return len(node.keys)
    if isinstance(node, ast.Name):
        return lengths.get(node.id)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        a, b = _length(node.left, lengths), _length(node.right, lengths)
        return None if a is None or b is None else a + b
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) == 1:
        if node.func.id in ("list", "tuple", "sorted"):
            return _length(node.args[0], lengths)
        if node.func.id == "range" and isinstance(node.args[0], ast.Constant):
            return int(node.args[0].value)
    return None


SAFE = {
    f.__name__: f for f in (list, tuple, dict, set, range, len, sorted, zip, enumerate, min, max)
}


def _evaluate(node: ast.expr, values: dict) -> object:
    """A module-level constant built from literals and earlier constants (a comprehension over a
    dict literal, say), with no builtins but a few containers: anything else raises."""
    code = compile(ast.Expression(node), "<graders>", "eval")
    return eval(code, {"__builtins__": SAFE}, dict(values))  # noqa: S307 - names limited as above


def read_tests(source: str) -> list[tuple[Test, ast.AST]]:
    """Every test in a grader file with its points, parametrized case count and marks."""
    tree = ast.parse(source)
    aliases, lengths, values = set(), {}, {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Name):
                if _mark_name(node.value, set()) == "points":
                    aliases.add(target.id)
                lengths[target.id] = _length(node.value, lengths)
                try:
                    values[target.id] = _evaluate(node.value, values)
                    if lengths[target.id] is None:
                        lengths[target.id] = len(values[target.id])
                except Exception:
                    values.pop(target.id, None)
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value:
            lengths[node.target.id] = _length(node.value, lengths)
        elif isinstance(node, ast.AugAssign) and isinstance(node.target, ast.Name):
            a, b = lengths.get(node.target.id), _length(node.value, lengths)
            add = isinstance(node.op, ast.Add) and a is not None and b is not None
            lengths[node.target.id] = a + b if add else None
            try:
                extra = _evaluate(node.value, values)
                values[node.target.id] = values[node.target.id] + extra if add else None
            except Exception:
                values.pop(node.target.id, None)

    def one(fn: ast.FunctionDef, prefix: str, inherited: list[ast.expr]) -> tuple[Test, ast.AST]:
        points, cases, marks = 0.0, 1, []
        for dec in [*inherited, *fn.decorator_list]:
            kind = _mark_name(dec, aliases)
            if kind == "points" and isinstance(dec, ast.Call) and dec.args:
                try:
                    points = float(ast.literal_eval(dec.args[0]))
                except ValueError:
                    points = 0.0
            elif kind == "parametrize" and isinstance(dec, ast.Call) and len(dec.args) > 1:
                n = _length(dec.args[1], lengths)
                cases = None if n is None or cases is None else cases * n
            elif kind in ("gpu", "bench", "slow"):
                marks.append(kind)
        return Test(prefix + fn.name, points, cases, tuple(marks)), fn

    found = []
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
            found.append(one(node, "", []))
        elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
            for item in node.body:
                if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                    found.append(one(item, f"{node.name}::", node.decorator_list))
    return [(t, fn) for t, fn in found if t.points]


def read_stubs(stubs: list[Path], day: str) -> list[Exercise]:
    """The day's exercises in the order of its stubs, one per docs anchor."""
    pattern, exercises = re.compile(STUB.format(day=re.escape(day))), {}
    for path in stubs:
        for m in pattern.finditer(path.read_text(encoding="utf-8")):
            exercises.setdefault(m["anchor"], Exercise(m["anchor"], m["name"].split(".")[0]))
    return list(exercises.values())


def _words(test: Test) -> str:
    """`TestLinear::test_forward` -> `linear_forward`; `test_make_rays_1d` -> `make_rays_1d`."""
    cls, _, fn = test.name.rpartition("::")
    words = fn.removeprefix("test_").removeprefix("test")
    if cls:
        words = f"{cls.removeprefix('Test')}_{words}"
    return words.lower().strip("_")


def _referenced(fn: ast.AST) -> list[str]:
    """Names a test refers to, in source order (`m.raytrace_mesh` gives `raytrace_mesh`)."""
    names = []
    for node in ast.walk(fn):
        if isinstance(node, ast.Attribute):
            names.append((node.lineno, node.col_offset, node.attr))
        elif isinstance(node, ast.Name):
            names.append((node.lineno, node.col_offset, node.id))
    return [n for *_, n in sorted(names)]


def exercises(tests_file: Path, stubs: list[Path], day: str) -> list[Exercise]:
    """The day's exercises with the tests that target each: the longest exercise whose name the
    test name starts with (underscores aside, for CamelCase classes), else one whose every word is
    in the test name, else the first exercise the test's body names; the rest in "other"."""
    found = read_stubs(stubs, day)
    by_anchor = {e.anchor: e for e in found}
    other = Exercise("", "other")
    for test, fn in read_tests(tests_file.read_text(encoding="utf-8")):
        words = _words(test)
        prefix = [a for a in by_anchor if words == a or words.startswith(a.replace("-", "_") + "_")]
        # CamelCase exercises: `test_replay_buffer_sample` targets `ReplayBuffer` (`replaybuffer`)
        squashed = [a for a in by_anchor if words.replace("_", "").startswith(a.replace("-", ""))]
        # `test_triton_add` targets `add-triton`: every word of the anchor is in the test's name
        tokens = set(words.split("_"))
        subset = [a for a in by_anchor if set(re.split(r"[-_]", a)) <= tokens]
        used = [n.lower() for n in _referenced(fn) if n.lower() in by_anchor]
        target = max(prefix or squashed or subset or used[:1] or [None], key=lambda a: len(a or ""))
        (by_anchor[target] if target else other).tests.append(test)
    return [e for e in found if e.tests] + ([other] if other.tests else [])


def _num(x: float) -> str:
    return f"{x:g}"


def points_table(day: str, found: list[Exercise]) -> str:
    """The Markdown section injected into the day page."""
    total = sum(e.points for e in found)
    ntests = sum(t.cases or 1 for e in found for t in e.tests)
    unknown = any(t.cases is None for e in found for t in e.tests)
    lines = [
        "## Exercises and points",
        "",
        f"Read from the graders, `tests/test_{day}.py`: **{_num(total)} points** over {ntests} "
        f"tests{' (at least: some parameters are computed)' if unknown else ''}. Run one "
        f"exercise's tests with `pytest tests/test_{day}.py -k NAME`.",
        "",
        "| exercise | tests | points |",
        "| --- | ---: | ---: |",
    ]
    for e in found:
        label = f"[`{e.name}`](#{e.anchor})" if e.anchor else "other tests"
        count = sum(t.cases or 1 for t in e.tests)
        lines.append(f"| {label} | {count} | {_num(e.points)} |")
    lines += [
        "",
        '??? info "Every test and its points"',
        "",
        "    | test | exercise | points | marks |",
        "    | --- | --- | ---: | --- |",
    ]
    for e in found:
        for t in e.tests:
            each = (
                f"{_num(t.points)} x {t.cases}"
                if (t.cases or 1) > 1
                else (f"{_num(t.points)} per case" if t.cases is None else _num(t.points))
            )
            marks = ", ".join(t.marks)
            lines.append(f"    | `{t.name}` | {e.name if e.anchor else '-'} | {each} | {marks} |")
    return "\n".join(lines) + "\n"


def inject(markdown: str, section: str) -> str:
    """Put `section` at the placeholder, else before `## Exercises...`, else at the end."""
    if PLACEHOLDER in markdown:
        return markdown.replace(PLACEHOLDER, section, 1)
    m = re.search(r"^## Exercises\b", markdown, flags=re.M)
    if m:
        return markdown[: m.start()] + section + "\n" + markdown[m.start() :]
    return markdown.rstrip("\n") + "\n\n" + section


# -- the navigation -------------------------------------------------------------------------------


def _title(path: Path) -> str | None:
    """`# w1d1_raytracing: a renderer as array programming` -> `w1d1 · A renderer as ...`."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            head, sep, rest = line[2:].partition(":")
            if not sep:
                return None
            short = head.strip().split("_", 1)[0]
            rest = rest.strip()
            return f"{short} · {rest[:1].upper()}{rest[1:]}"
    return None


def _day_key(name: str) -> tuple[int, int, str]:
    m = DAY_PAGE.match(name)
    assert m
    return int(m["week"]), int(m["day"] or 0), name


def build_nav(docs_dir: Path) -> list:
    pages = sorted(
        p.relative_to(docs_dir).as_posix()
        for p in docs_dir.rglob("*.md")
        if not {"hooks", "scripts", "assets"} & set(p.relative_to(docs_dir).parts)
    )
    days = sorted((p for p in pages if DAY_PAGE.match(p)), key=_day_key)
    weeks: dict[str, list] = {title: [] for title in WEEKS.values()}
    for page in days:
        title = _title(docs_dir / page)
        week = WEEKS.get(_day_key(page)[0], "Week 4 projects")
        weeks[week].append({title: page} if title else page)
    weeks["Week 4 projects"].insert(0, {"Final projects": "projects.md"})
    start = [{"Home": "index.md"}, {"Your repository": "start/your-repository.md"}]
    known = {"index.md", *days, *(page for page, _, _ in FROM_TEMPLATE)}
    organizers = [p for p in ORGANIZERS if p in pages]
    organizers += [p for p in pages if p not in known and p not in organizers]
    nav = [{"Start here": start}]
    nav += [{title: entries} for title, entries in weeks.items() if entries]
    nav.append({"Organizers": organizers})
    return nav


# -- mkdocs events --------------------------------------------------------------------------------


def _root(config) -> Path:
    return Path(config.config_file_path).resolve().parent


def on_config(config):
    if not config.nav:  # an explicit nav in mkdocs.yml wins
        config.nav = build_nav(Path(config.docs_dir))
    return config


def on_files(files, config):
    root = _root(config)
    for page, source, title in FROM_TEMPLATE:
        text = (root / source).read_text(encoding="utf-8")
        text = re.sub(r"^# .*$", f"# {title}", text, count=1, flags=re.M)
        origin = f"*This page is `{source}` of the organizers' repository: every pair's repository starts with it.*\n\n"
        head, _, body = text.partition("\n")
        files.append(File.generated(config, page, content=f"{head}\n\n{origin}{body}"))
    return files


def on_page_markdown(markdown, page, config, files):
    name = page.file.src_uri
    if not DAY_PAGE.match(name):
        return markdown
    day, root = name.removesuffix(".md"), _root(config)
    tests = root / "template" / "tests" / f"test_{day}.py"
    if not tests.exists():
        return markdown
    stubs = [
        f
        for p in sorted((root / "template" / "mlab").glob(f"{day}*"))
        for f in ([p] if p.is_file() else sorted(p.rglob("*.py")))
        if f.suffix == ".py"
    ]
    return inject(markdown, points_table(day, exercises(tests, stubs, day)))
