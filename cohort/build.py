"""Generate the pair template's stubs from the reference solutions.

`solutions/mlab/<day>.py` is the single source of truth. Each region between `# BEGIN SOLUTION`
and `# END SOLUTION` becomes `raise NotImplementedError("<exercise>: see docs/<day>.md#<anchor>")`
in `template/mlab/<day>.py`; `# BEGIN SOLUTION: <code>` puts `<code>` there instead. Files
without markers are copied byte for byte.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from cohort.errors import BuildError

BEGIN = re.compile(r"^(?P<indent>[ \t]*)# BEGIN SOLUTION(?::[ \t]*(?P<stub>.*?))?[ \t]*$")
END = re.compile(r"^[ \t]*# END SOLUTION[ \t]*$")
SCOPE = re.compile(r"^(?P<indent>[ \t]*)(?:async[ \t]+)?(?:def|class)[ \t]+(?P<name>\w+)")
IGNORED = {"__pycache__", ".pytest_cache"}


def exercise_name(lines: list[str], lineno: int, indent: str) -> str:
    """Qualified name of the def/class enclosing line `lineno` (0-based), e.g. `Linear.forward`."""
    names, depth = [], len(indent.expandtabs())
    for line in reversed(lines[:lineno]):
        m = SCOPE.match(line)
        if m and len(m["indent"].expandtabs()) < depth:
            names.append(m["name"])
            depth = len(m["indent"].expandtabs())
            if depth == 0:
                break
    return ".".join(reversed(names)) or "<module>"


def stub_source(text: str, path: Path, day: str) -> str:
    """The stub version of one solution file; `path` is only used in error messages."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    open_at: int | None = None
    for i, line in enumerate(lines):
        begin, end = BEGIN.match(line), END.match(line)
        if begin:
            if open_at is not None:
                raise BuildError(
                    f"{path}:{i + 1}: nested BEGIN SOLUTION (open since line {open_at + 1})"
                )
            open_at = i
            indent = begin["indent"]
            if begin["stub"]:
                out.append(f"{indent}{begin['stub']}\n")
            else:
                name = exercise_name(lines, i, indent)
                anchor = name.split(".")[0].lower()
                out.append(
                    f'{indent}raise NotImplementedError("{name}: see docs/{day}.md#{anchor}")\n'
                )
        elif end:
            if open_at is None:
                raise BuildError(f"{path}:{i + 1}: END SOLUTION without a matching BEGIN SOLUTION")
            open_at = None
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise BuildError(f"{path}:{open_at + 1}: BEGIN SOLUTION is never closed by END SOLUTION")
    return "".join(out)


def source_files(src: Path) -> list[Path]:
    return sorted(
        p
        for p in src.rglob("*")
        if p.is_file() and not IGNORED.intersection(p.relative_to(src).parts)
    )


def render(src: Path) -> dict[Path, bytes]:
    """Every file the template's `mlab/` should hold, by path relative to `mlab/`."""
    files = {}
    for path in source_files(src):
        rel = path.relative_to(src)
        data = path.read_bytes()
        if path.suffix == ".py":
            day = rel.parts[0].removesuffix(".py")
            data = stub_source(data.decode(), path, day).encode()
        files[rel] = data
    return files


@dataclass
class Plan:
    write: dict[Path, bytes]
    remove: list[Path]

    @property
    def stale(self) -> list[Path]:
        return sorted([*self.write, *self.remove])


def plan(src: Path, dst: Path) -> Plan:
    """What must change in `dst` so that it equals the stubs rendered from `src`."""
    wanted = render(src)
    present = {p.relative_to(dst) for p in source_files(dst)} if dst.exists() else set()
    write = {
        rel: data
        for rel, data in wanted.items()
        if rel not in present or (dst / rel).read_bytes() != data
    }
    return Plan(write=write, remove=sorted(present - wanted.keys()))


def apply(p: Plan, dst: Path) -> None:
    for rel, data in p.write.items():
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        (dst / rel).write_bytes(data)
    for rel in p.remove:
        (dst / rel).unlink()
    for d in sorted((d for d in dst.rglob("*") if d.is_dir()), reverse=True):
        if d.name in IGNORED:
            shutil.rmtree(d)
        elif not any(d.iterdir()):
            d.rmdir()
