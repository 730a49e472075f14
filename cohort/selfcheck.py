"""The organizer's checks on the curriculum itself: the solutions score 100%, the untouched
template scores 0 with clean `NotImplementedError` failures, and snapshots come from the solutions.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from cohort import manifest
from cohort.errors import CheckFailed
from cohort.grading import sandbox, workspace


def _listing(tests: list[dict], limit: int = 15) -> str:
    lines = [
        f"  {t['name']}: {t['output'].splitlines()[0] if t['output'] else t['status']}"
        for t in tests[:limit]
    ]
    if len(tests) > limit:
        lines.append(f"  ... and {len(tests) - limit} more")
    return "\n".join(lines)


def check_solutions(root: Path, day: str | None = None) -> dict:
    """Grade `solutions/` with the template's tests: every test must pass (or skip, e.g. gpu)."""
    res = sandbox.grade(root / "solutions", root / "template" / "tests", day)
    failed = [t for t in res["tests"] if t["status"] == "failed"]
    if failed or res["max_score"] <= 0:
        raise CheckFailed(
            f"solutions score {res['score']:g}/{res['max_score']:g}:\n{_listing(failed)}"
        )
    return res


def check_template(root: Path, day: str | None = None, tests: Path | None = None) -> dict:
    """Grade the untouched template: 0 points, every failure a clean NotImplementedError."""
    res = sandbox.grade(root / "template", tests, day)
    unclean = [
        t
        for t in res["tests"]
        if t["status"] != "skipped" and "NotImplementedError" not in t["output"]
    ]
    if res["score"] != 0 or unclean:
        raise CheckFailed(
            f"the untouched template scores {res['score']:g}/{res['max_score']:g}; these tests do not fail "
            f"with NotImplementedError:\n{_listing(unclean)}"
        )
    return res


def record_manifest(root: Path) -> manifest.Manifest:
    """Grade the untouched stubs with the template's tests (without the current manifest) and
    record what every test is worth and which exercise it fails on first."""
    tests = root / "template" / "tests"
    with tempfile.TemporaryDirectory(prefix="cohort-manifest-") as tmp:
        copy = Path(tmp, "tests")
        shutil.copytree(
            tests, copy, ignore=shutil.ignore_patterns(manifest.FILENAME, "__pycache__")
        )
        res = check_template(root, None, copy)
        return manifest.record(res, copy, root / "template")


def write_manifest(root: Path, check: bool = False) -> Path:
    """Write `template/tests/manifest.json`; with `check`, fail when the file differs instead."""
    path = root / "template" / "tests" / manifest.FILENAME
    text = manifest.dump(record_manifest(root))
    if check:
        if not path.exists() or path.read_text() != text:
            raise CheckFailed(f"{path}: stale; run `cohort check manifest`")
    else:
        path.write_text(text)
    return path


def update_snapshots(root: Path, day: str | None = None) -> list[Path]:
    """Re-record `template/tests/snapshots/<day>/` from the solutions; returns the files written."""
    tests = root / "template" / "tests"
    with tempfile.TemporaryDirectory(prefix="cohort-snapshots-") as tmp:
        ws = Path(tmp)
        targets, _ = workspace.prepare(root / "solutions", tests, ws, day)
        shutil.rmtree(ws / "tests" / "snapshots", ignore_errors=True)
        env = {
            **os.environ,
            "PYTHONPATH": str(ws),
            "MLAB_UPDATE_SNAPSHOTS": "1",
            "MPLBACKEND": "Agg",
        }
        proc = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", *targets],
            cwd=ws,
            env=env,
            capture_output=True,
            text=True,
        )
        if proc.returncode not in (0, 5):
            raise CheckFailed(f"recording snapshots failed:\n{proc.stdout[-3000:]}")
        fresh = ws / "tests" / "snapshots"
        written = []
        for src in sorted(fresh.rglob("*.npz")) if fresh.exists() else []:
            dst = tests / "snapshots" / src.relative_to(fresh)
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
            written.append(dst)
    return written
