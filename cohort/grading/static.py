"""What can be learned without importing anything: test points from the trusted test files (for a
day whose module does not import), and suspicious constructs in pair code (for the review pack)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from cohort.curriculum import day_of_test_file
from cohort.grading.outcomes import Item


def _is_mark(node: ast.expr, name: str) -> bool:
    """Is `node` the expression `pytest.mark.<name>` (or `mark.<name>`)?"""
    return (
        isinstance(node, ast.Attribute)
        and node.attr == name
        and (
            (isinstance(node.value, ast.Attribute) and node.value.attr == "mark")
            or (isinstance(node.value, ast.Name) and node.value.id == "mark")
        )
    )


def _aliases(tree: ast.Module) -> dict[str, str]:
    """Module-level `points = pytest.mark.points` style aliases: alias -> marker name."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Attribute):
            for target in node.targets:
                if isinstance(target, ast.Name) and _is_mark(node.value, node.value.attr):
                    found[target.id] = node.value.attr
    return found


def _marker_name(dec: ast.expr, aliases: dict[str, str]) -> str | None:
    target = dec.func if isinstance(dec, ast.Call) else dec
    if isinstance(target, ast.Name):
        return aliases.get(target.id)
    if isinstance(target, ast.Attribute) and _is_mark(target, target.attr):
        return target.attr
    return None


def _cases(dec: ast.expr) -> int:
    """Number of cases of a `parametrize` decorator whose values are a literal list."""
    if (
        isinstance(dec, ast.Call)
        and len(dec.args) >= 2
        and isinstance(dec.args[1], ast.List | ast.Tuple)
    ):
        return len(dec.args[1].elts)
    return 1


def scan_tests(path: Path, rel: str) -> list[Item]:
    """One Item per test function in `path`, worth points x parametrized cases."""
    tree = ast.parse(path.read_text(), filename=str(path))
    day = day_of_test_file(path) or path.stem
    aliases, items = _aliases(tree), []
    for node in ast.walk(tree):
        if not isinstance(node, ast.FunctionDef) or not node.name.startswith("test"):
            continue
        points, cases, markers = 0.0, 1, []
        for dec in node.decorator_list:
            name = _marker_name(dec, aliases)
            if name == "points" and isinstance(dec, ast.Call) and dec.args:
                points = float(ast.literal_eval(dec.args[0]))
            elif name == "parametrize":
                cases *= _cases(dec)
            elif name in ("gpu", "bench", "slow"):
                markers.append(name)
        items.append(Item(f"{rel}::{node.name}", day, points * cases, markers, rel, node.lineno))
    return items


SUSPICIOUS = {
    r"\b_?pytest\b": "reaches into pytest",
    r"\bsys\.modules\b": "edits loaded modules",
    r"\bos\._exit\b|\bsys\.exit\b": "exits the process",
    r"results\.json|COHORT_": "touches the grader's files or settings",
    r"\bsys\._getframe\b|\binspect\.(stack|currentframe)\b": "inspects the caller's frames",
    r"\bgc\.get_objects\b|\bbuiltins\b": "reaches into interpreter state",
    r"\bsignal\.": "changes signal handling",
    r"\bsubprocess\b|\bos\.(fork|setsid|spawn\w*|exec\w*|system|popen)\b": "starts processes",
}


def scan_pair_code(mlab: Path) -> list[dict]:
    """Lines of pair code that reach into the grader, the test process or its exit."""
    flags = []
    for path in sorted(mlab.rglob("*.py")) if mlab.is_dir() else []:
        for lineno, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            code = line.split("#", 1)[0]
            for pattern, why in SUSPICIOUS.items():
                if re.search(pattern, code):
                    rel = path.relative_to(mlab.parent).as_posix()
                    flags.append(
                        {"file": rel, "line": lineno, "why": why, "code": line.strip()[:200]}
                    )
    return flags
