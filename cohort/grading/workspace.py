"""The scratch folder a grading child works in: the pair's `mlab/` and the trusted tests.

Only plain files and folders are copied from the pair: a symbolic link (into the organizers'
checkout, or to a secret) or a special file (a FIFO, a device) refuses the grade, since copying
would follow it into places the child must not see.
"""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

from cohort.errors import GradeError

PYTEST_INI = """\
[pytest]
addopts = --strict-markers -p no:cacheprovider -q -rN
testpaths = tests
"""
SKIPPED = {"__pycache__", ".pytest_cache"}
MAX_COPY_MB = 512


class Refused(Exception):
    """The pair's code cannot be graded as it is (a symbolic link, a special file, too large):
    every test fails with this one-line reason."""


def _plain_files(src: Path) -> list[Path]:
    """Every file under `src` to copy; Refused at the first link or special file."""
    files, total = [], 0
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src.parent).as_posix()
        if SKIPPED.intersection(path.relative_to(src).parts) or path.suffix == ".pyc":
            continue
        mode = path.lstat().st_mode
        if stat.S_ISLNK(mode):
            raise Refused(f"{rel} is a symbolic link: grading takes only plain files")
        if stat.S_ISDIR(mode):
            continue
        if not stat.S_ISREG(mode):
            raise Refused(
                f"{rel} is a special file (not a plain file): grading takes only plain files"
            )
        total += path.lstat().st_size
        if total > MAX_COPY_MB << 20:
            raise Refused(f"{src.name}/ holds over {MAX_COPY_MB} MB: too large to grade")
        files.append(path)
    return files


def copy_pair_code(repo: Path, ws: Path) -> None:
    """Copy `repo/mlab` into `ws/mlab`, plain files only (Refused otherwise)."""
    src = repo / "mlab"
    if src.is_symlink():
        raise Refused("mlab is a symbolic link: grading takes only plain files")
    if not src.is_dir():
        return
    for path in _plain_files(src):
        dst = ws / "mlab" / path.relative_to(src)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, dst, follow_symlinks=False)


def prepare(repo: Path, tests: Path, ws: Path, day: str | None) -> tuple[list[str], str | None]:
    """Copy the pair's `mlab/` and the (trusted) tests into `ws`.

    Returns pytest's targets, and why the pair's code was refused (None when it was taken)."""
    if not tests.is_dir():
        raise GradeError(f"{tests}: no tests directory to grade with")
    if day is not None and not (tests / f"test_{day}.py").exists():
        raise GradeError(f"{tests}: no graders for day {day!r} (expected test_{day}.py)")
    ignore = shutil.ignore_patterns(*SKIPPED, "*.pyc")
    shutil.copytree(tests, ws / "tests", ignore=ignore, symlinks=False)
    (ws / "pytest.ini").write_text(PYTEST_INI)
    targets = ["tests"] if day is None else [f"tests/test_{day}.py"]
    try:
        copy_pair_code(repo, ws)
    except Refused as e:
        return targets, str(e)
    return targets, None
