"""The import order of `cohort/`, read from docs/architecture.md: a module imports only from its
own floor or below, every module is on a floor, and the page gives every module its line."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "cohort"
PAGE = ROOT / "docs" / "architecture.md"


def _table(heading: str) -> list[list[str]]:
    """The body rows of the first table after `heading` on the page, as cells."""
    rows: list[list[str]] = []
    for line in PAGE.read_text().split(heading, 1)[1].splitlines():
        if line.startswith("|"):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif rows:
            break
    return rows[2:]  # the header and its rule go


def floors() -> dict[str, int]:
    """Dotted module prefix -> floor, from the page's floor table."""
    found = {}
    for floor, modules, _ in _table("### Which way imports run"):
        for name in re.findall(r"`([\w.]+)`", modules):
            found["cohort" if name == "cohort" else f"cohort.{name}"] = int(floor)
    return found


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


def floor_of(module: str, table: dict[str, int]) -> int | None:
    """The floor of the longest prefix of `module` in the table (`cohort` only for itself)."""
    parts = module.split(".")
    for n in range(len(parts), 1, -1):
        if ".".join(parts[:n]) in table:
            return table[".".join(parts[:n])]
    return table.get("cohort") if module == "cohort" else None


def imported(path: Path, module: str, known: dict[str, Path]) -> set[str]:
    """The cohort modules `path` imports, at the top or inside functions."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.split(".")[0] == "cohort"}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*up, *([base] if base else [])])
            if base.split(".")[0] != "cohort":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in known else base)
    return found


def test_every_module_is_on_a_floor():
    table = floors()
    lost = [m for m in modules() if floor_of(m, table) is None]
    assert not lost, f"put these modules on a floor in {PAGE.name}'s table: {lost}"


def test_no_module_imports_one_above_it():
    table, known = floors(), modules()
    upward = []
    for module, path in known.items():
        mine = floor_of(module, table)
        for target in sorted(imported(path, module, known)):
            theirs = floor_of(target, table)
            if mine is not None and theirs is not None and theirs > mine:
                upward.append(f"{module} (floor {mine}) imports {target} (floor {theirs})")
    assert not upward, "imports that run up the floors of docs/architecture.md:\n" + "\n".join(
        upward
    )


def test_the_page_gives_every_module_a_line():
    listed = set()
    for cells in _table("### One line per module"):
        names = re.findall(r"`([\w/*]+)`", cells[0])
        folder = names[0].rpartition("/")[0] if names else ""
        for name in names:
            listed.add(name if "/" in name or not folder else f"{folder}/{name}")
    missing = []
    for path in modules().values():
        rel = path.relative_to(PACKAGE).with_suffix("").as_posix()
        if rel.startswith("cli/") or rel == "__main__" or rel == "__init__":
            continue
        code = [n for n in ast.parse(path.read_text()).body if not isinstance(n, ast.Expr)]
        if rel.endswith("__init__") and not code:
            continue  # a package's docstring only
        if rel not in listed and rel.removesuffix("/__init__") not in listed:
            missing.append(rel)
    assert "cli/*" in listed, "the page should give the command modules (cli/*) their line"
    assert not missing, f"give these modules a line in {PAGE.name}: {missing}"


def test_the_checker_sees_an_upward_import(tmp_path):
    """The check itself: a roster that imported the runner would be caught."""
    fake = tmp_path / "cohort" / "roster.py"
    fake.parent.mkdir()
    fake.write_text("from cohort.runner import queue\nfrom cohort import curriculum\n")
    known = {**modules(), "cohort.roster": fake}
    targets = imported(fake, "cohort.roster", known)
    assert targets == {"cohort.runner.queue", "cohort.curriculum"}
    table = floors()
    assert floor_of("cohort.runner.queue", table) > floor_of("cohort.roster", table)
