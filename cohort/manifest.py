"""The points manifest: what a grade is made of, recorded from the trusted tests.

`template/tests/manifest.json` lists every test the graders hold (id, day, points, markers,
whether it may skip) and, for each, the exercise the untouched stubs fail on first. It is recorded
by grading the generated stubs (`cohort check manifest`), never by a process that imports pair code, so a
grade's test ids, days and points cannot be forged. The parent of a grading run also hashes the
pair's version of each exercise: a test that "passes" while its exercise still has the stub's body
fails.
"""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from _pytest.mark.expression import Expression  # what pytest's -m uses

from cohort.curriculum import day_of_test_file
from cohort.errors import ManifestError

FILENAME = "manifest.json"
SCHEMA = 1
# The message `cohort build-template` gives every stub: `<Qualified.name>: see docs/<day>.md#<anchor>`
RAISED_AT = re.compile(r"NotImplementedError\b.*\n\s*at (?P<file>mlab/[\w/.-]+\.py):(?P<line>\d+)")
STUB_MESSAGE = re.compile(r"NotImplementedError: (?P<name>[\w.<>]+): see docs/(?P<day>\w+)\.md#")
SKIP_CALLS = {"skip", "importorskip", "skipif"}
RERECORD = "organizers run `cohort check manifest`"


@dataclass(frozen=True)
class Entry:
    """One graded test, as the trusted tests define it."""

    nodeid: str
    day: str
    points: float
    markers: list[str] = field(default_factory=list)  # gpu, bench, slow: tags in results
    marks: list[str] = field(default_factory=list)  # every marker name, for -m selection
    file: str = ""
    line: int = 0
    may_skip: bool = False  # calls pytest.skip/importorskip, or skipped when recorded
    exercise: str | None = None  # "mlab/<file>.py:<Qualified.name>" the stubs fail on first


@dataclass
class Manifest:
    files: dict[str, str]  # sha256 of every .py file of the tests, by path relative to tests/
    tests: dict[str, Entry]
    stubs: dict[str, str]  # exercise -> hash of the stub's body

    def select(self, tests_dir: Path, day: str | None, markers: str | None) -> list[Entry]:
        """The tests a run must report: the day's (or all present), matching `-m markers`."""
        check_fresh(self, tests_dir)
        present = {p.name for p in tests_dir.glob("test_*.py")}
        chosen = [
            e
            for e in self.tests.values()
            if Path(e.file).name in present and (day is None or e.day == day)
        ]
        if markers:
            try:
                expr = Expression.compile(markers)
            except SyntaxError as e:
                raise ManifestError(f"-m {markers!r}: {e}") from None
            chosen = [e for e in chosen if expr.evaluate(lambda name, e=e, **_: name in e.marks)]
        return chosen

    def of_file(self, name: str) -> list[Entry]:
        """The tests of the test file called `name` (e.g. `test_w1d5_autograd.py`)."""
        return [e for e in self.tests.values() if Path(e.file).name == name]


def tests_digest(tests_dir: Path) -> dict[str, str]:
    return {
        p.relative_to(tests_dir).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(tests_dir.rglob("*.py"))
        if "__pycache__" not in p.parts
    }


def check_fresh(manifest: Manifest, tests_dir: Path) -> None:
    """Every .py file of `tests_dir` is one the manifest was recorded from, unchanged."""
    for rel, digest in tests_digest(tests_dir).items():
        if manifest.files.get(rel) != digest:
            what = "is new" if rel not in manifest.files else "changed"
            raise ManifestError(
                f"{tests_dir / FILENAME}: stale ({rel} {what} since it was recorded); {RERECORD}"
            )


def check_current(tests_dir: Path, stubs_root: Path) -> Manifest:
    """The manifest of `tests_dir`, recorded from exactly these tests and the stubs under
    `stubs_root` (its `mlab/`); ManifestError (one line) when it is missing or stale."""
    found = load(tests_dir)
    if found is None:
        raise ManifestError(f"{tests_dir / FILENAME}: missing; {RERECORD}")
    check_fresh(found, tests_dir)
    if gone := sorted(found.files.keys() - tests_digest(tests_dir).keys()):
        raise ManifestError(
            f"{tests_dir / FILENAME}: stale ({gone[0]} is gone since it was recorded); {RERECORD}"
        )
    changed = sorted(
        exercise
        for exercise, stub in found.stubs.items()
        if stub is not None and body_hash(stubs_root, exercise) != stub
    )
    if changed:
        raise ManifestError(
            f"{tests_dir / FILENAME}: stale (the stub of {changed[0]} changed since it was "
            f"recorded); {RERECORD}"
        )
    return found


def load(tests_dir: Path) -> Manifest | None:
    """The manifest beside the trusted tests, or None when there is none."""
    path = tests_dir / FILENAME
    if not path.exists():
        return None
    try:
        raw = json.loads(path.read_text())
        if raw.get("schema") != SCHEMA:
            raise ValueError(f"schema {raw.get('schema')!r}, expected {SCHEMA}")
        tests = {nodeid: Entry(nodeid=nodeid, **e) for nodeid, e in raw["tests"].items()}
        return Manifest(dict(raw["files"]), tests, dict(raw["stubs"]))
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ManifestError(f"{path}: not a readable manifest ({e})") from None


def dump(manifest: Manifest) -> str:
    tests = {
        nodeid: {k: v for k, v in asdict(e).items() if k != "nodeid"}
        for nodeid, e in sorted(manifest.tests.items())
    }
    doc = {"schema": SCHEMA, "files": manifest.files, "tests": tests, "stubs": manifest.stubs}
    return json.dumps(doc, indent=1, sort_keys=True) + "\n"


# -- recording ------------------------------------------------------------------------------


def record(stub_results: dict, tests_dir: Path, stubs_root: Path) -> Manifest:
    """A manifest from a grade of the untouched stubs (`stubs_root` holds their `mlab/`)."""
    skippers = _skipping_tests(tests_dir)
    tests, stubs = {}, {}
    for t in stub_results["tests"]:
        file = t["extra_data"]["file"]
        exercise = _exercise(t["output"], day_of_test_file(file) or "", stubs_root)
        if exercise:
            stubs[exercise] = body_hash(stubs_root, exercise)
        function = t["name"].split("::")[-1].split("[")[0]
        tests[t["name"]] = Entry(
            nodeid=t["name"],
            day=t["tags"][0],
            points=t["extra_data"]["points"],
            markers=t["tags"][1:],
            marks=t["extra_data"]["marks"],
            file=file,
            line=t["extra_data"]["line"],
            may_skip=(t["status"] == "skipped" and "gpu" not in t["tags"])
            or (file, function) in skippers,
            exercise=exercise,
        )
    return Manifest(tests_digest(tests_dir), tests, stubs)


def _exercise(output: str, day: str, stubs_root: Path) -> str | None:
    """`mlab/<file>.py:<Qualified.name>` of the stub a test failed on: the definition around the
    line that raised, else the one whose stub message the error names."""
    if (at := RAISED_AT.search(output)) and at["file"].startswith(f"mlab/{day}"):
        try:
            tree = ast.parse((stubs_root / at["file"]).read_text())
        except (OSError, SyntaxError, ValueError):
            tree = None
        if tree and (name := _enclosing(tree, int(at["line"]))):
            return f"{at['file']}:{name}"
    m = STUB_MESSAGE.search(output)
    if not m or m["day"] != day:
        return None
    needle = f'"{m["name"]}: see docs/{day}.md#'
    for path in sorted((stubs_root / "mlab").glob(f"{day}*")):
        for file in [path] if path.is_file() else sorted(path.rglob("*.py")):
            if needle in file.read_text() and _find(ast.parse(file.read_text()), m["name"]):
                return f"{file.relative_to(stubs_root).as_posix()}:{m['name']}"
    return None


def _enclosing(tree: ast.Module, line: int) -> str | None:
    """Qualified name of the innermost function whose body holds `line`."""
    best, stack = None, [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in getattr(node, "body", []):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if child.lineno <= line <= (child.end_lineno or child.lineno):
                    if not isinstance(child, ast.ClassDef):
                        best = name
                    stack.append((child, f"{name}."))
    return best


def _skipping_tests(tests_dir: Path) -> set[tuple[str, str]]:
    """(file, test function) pairs whose code or decorators call pytest.skip / importorskip."""
    found = set()
    for path in tests_dir.glob("test_*.py"):
        rel = f"tests/{path.name}"
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                names = {
                    n.attr
                    for part in [*node.decorator_list, *node.body]
                    for n in ast.walk(part)
                    if isinstance(n, ast.Attribute)
                }
                if names & SKIP_CALLS:
                    found.add((rel, node.name))
    return found


# -- stubs ----------------------------------------------------------------------------------


def _find(tree: ast.Module, qualname: str) -> ast.AST | None:
    node: ast.AST = tree
    for name in qualname.split("."):
        body = getattr(node, "body", [])
        node = next(
            (
                n
                for n in body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == name
            ),
            None,
        )
        if node is None:
            return None
    return node


def body_hash(root: Path, exercise: str) -> str | None:
    """Hash of the body (docstring left out) of `exercise` in the code under `root`; None when the
    file does not parse or has no such definition."""
    rel, _, qualname = exercise.partition(":")
    try:
        tree = ast.parse((root / rel).read_text())
    except (OSError, SyntaxError, ValueError):
        return None
    node = _find(tree, qualname)
    if node is None:
        return None
    body = list(node.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]
    dumped = "\n".join(
        ast.dump(_without_stub_messages(stmt), include_attributes=False) for stmt in body
    )
    return hashlib.sha256(dumped.encode()).hexdigest()


def _without_stub_messages(stmt: ast.stmt) -> ast.AST:
    """`stmt` with the message of every `raise NotImplementedError(...)` left out: a snapshot may
    point the stubs' messages at the cohort's docs site (`docs_url`), and is still the stub."""
    tree = copy.deepcopy(stmt)
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Raise)
            and isinstance(node.exc, ast.Call)
            and isinstance(node.exc.func, ast.Name)
            and node.exc.func.id == "NotImplementedError"
        ):
            node.exc.args, node.exc.keywords = [], []
    return tree


def still_stubs(manifest: Manifest, root: Path) -> set[str]:
    """The exercises whose body in the code under `root` is still the generated stub's."""
    return {
        exercise
        for exercise, stub in manifest.stubs.items()
        if stub is not None and body_hash(root, exercise) == stub
    }
