"""A hostile pair: the untouched stubs plus one attack each. Every attack must score 0, leave no
secret in results.json, leave results.json as the grader wrote it, and not crash the grader."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest

from cohort.cli import main
from cohort.errors import GradeError
from cohort.grading import isolation, sandbox
from tests.conftest import ROOT

DAY = "w0_prep"
TESTS = ROOT / "template" / "tests"
SECRET = "ghp_attackersWantThis0123456789"
LIMITS = sandbox.Limits(test_timeout=20, run_timeout=300)
HONEST_MAX = sum(
    e["points"]
    for e in json.loads((TESTS / "manifest.json").read_text())["tests"].values()
    if e["day"] == DAY
)
needs_bwrap = pytest.mark.skipif(
    isolation.unavailable() is not None, reason=f"no sandbox here: {isolation.unavailable()}"
)

FORGE_EVENTS = """
import json, os
fd = int(os.environ.get("COHORT_EVENTS_FD", "-1"))
ids = list(json.load(open("tests/manifest.json"))["tests"])
def emit(**e):
    os.write(fd, (json.dumps(e) + "\\n").encode())
if fd >= 0:
    fake = {"nodeid": "tests/test_w0_prep.py::test_free", "day": "w0_prep", "points": 1e6}
    emit(event="collected", items=[fake])
    for nodeid in ids + [fake["nodeid"]]:
        emit(event="outcome", nodeid=nodeid, status="passed")
        emit(event="benchmark", nodeid=nodeid, name="fake", shape="1", time_s=1e-12, ref_time_s=1)
"""

PATCH_PYTEST = """
import importlib
reports = importlib.import_module("_py" + "test.reports")
original = reports.TestReport.__init__
def always_passed(self, *args, **kwargs):
    original(self, *args, **kwargs)
    self.outcome, self.longrepr = "passed", None
reports.TestReport.__init__ = always_passed
"""

ALWAYS_SKIPPED = PATCH_PYTEST.replace(
    'self.outcome, self.longrepr = "passed", None',
    'self.outcome, self.longrepr = "skipped", ("x", 1, "Skipped: gpu")',
)

SOLUTIONS_ON_PATH = f"""
__path__.insert(0, {str(ROOT / "solutions" / "mlab")!r})
"""

STEAL_SECRETS = """
import glob, os
found = []
for path in glob.glob("/proc/*/environ"):
    try:
        found.append(open(path, "rb").read().decode(errors="replace"))
    except OSError:
        pass
for path in glob.glob(os.path.expanduser("~/.*")) + [os.environ.get("SECRET_FILE", "")]:
    try:
        found.append(open(path).read())
    except OSError:
        pass
LOOT = " ".join(found + [repr(dict(os.environ))])
def softmax(x):
    raise AssertionError(LOOT)
"""

DETACHED_REWRITER = """
import subprocess, sys
target = {target!r}
subprocess.Popen(
    [sys.executable, "-c", f"import time; time.sleep(4); open({{target!r}}, 'w').write('forged')"],
    start_new_session=True,
)
"""

FLOOD = """
import os
fd = int(os.environ.get("COHORT_EVENTS_FD", "-1"))
if fd >= 0:
    block = b"x" * (1 << 20)
    for _ in range(200):
        os.write(fd, block)
"""

DESELECT_ALL = """
import json, os
path = os.path.join(os.environ.get("TMPDIR", "/tmp"), "everything.txt")
with open(path, "w") as f:
    f.write("\\n".join(json.load(open("tests/manifest.json"))["tests"]))
os.environ["COHORT_DESELECT"] = path
"""

LIAR_TENSOR = """
import torch

class Liar(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        out = super().__torch_function__(func, types, args, kwargs or {})
        if func in (torch.isclose, torch.Tensor.__eq__, torch.eq):
            return torch.ones(torch.Tensor.size(args[0]), dtype=torch.bool)
        return out

def softmax(x, dim=-1):
    return torch.zeros_like(x).as_subclass(Liar)
"""


def stub_pair(tmp_path: Path) -> Path:
    repo = tmp_path / "pair"
    shutil.copytree(ROOT / "template" / "mlab", repo / "mlab")
    shutil.copytree(TESTS, repo / "tests")
    return repo


def with_init(repo: Path, code: str) -> Path:
    (repo / "mlab" / "__init__.py").write_text(code)
    return repo


def append_to_day(repo: Path, code: str) -> Path:
    day = repo / "mlab" / f"{DAY}.py"
    day.write_text(day.read_text() + "\n" + code)
    return repo


def graded(repo: Path, **kw) -> dict:
    res = sandbox.grade(repo, TESTS, DAY, LIMITS, **kw)
    assert res["max_score"] == HONEST_MAX, "the maximum is the manifest's, whatever the child says"
    return res


def test_forged_event_lines_count_nothing(tmp_path):
    res = graded(with_init(stub_pair(tmp_path), FORGE_EVENTS))
    assert res["score"] == 0
    assert not any("test_free" in t["name"] for t in res["tests"])
    assert res["extra_data"]["benchmarks"] == [] and res["leaderboard"] == []
    outputs = {t["output"] for t in res["tests"]}
    assert any("still the stub" in o or "twice" in o for o in outputs)


def test_pytest_patched_to_pass_everything_is_still_the_stub(tmp_path):
    res = graded(with_init(stub_pair(tmp_path), PATCH_PYTEST))
    assert res["score"] == 0
    assert all(
        "still the stub" in t["output"] for t in res["tests"] if t["name"].endswith("softmax")
    )


def test_a_stub_is_still_the_stub_when_its_message_links_the_docs_site(tmp_path):
    repo = with_init(stub_pair(tmp_path), PATCH_PYTEST)  # as a snapshot with `docs_url` has them
    day = repo / "mlab" / f"{DAY}.py"
    day.write_text(day.read_text().replace(f"see docs/{DAY}.md#", f"see https://x.test/{DAY}/#"))
    res = graded(repo)
    assert res["score"] == 0
    assert all(
        "still the stub" in t["output"] for t in res["tests"] if t["name"].endswith("softmax")
    )


def test_forged_skips_do_not_shrink_the_maximum(tmp_path):
    res = graded(with_init(stub_pair(tmp_path), ALWAYS_SKIPPED))
    assert res["score"] == 0
    assert all(t["status"] == "failed" for t in res["tests"])


@needs_bwrap
def test_the_reference_solutions_are_out_of_reach(tmp_path):
    res = graded(with_init(stub_pair(tmp_path), SOLUTIONS_ON_PATH))
    assert res["score"] == 0 and res["extra_data"]["isolation"]["mode"] == "bwrap"


def test_symbolic_links_in_mlab_are_refused(tmp_path):
    repo = stub_pair(tmp_path)
    day = repo / "mlab" / f"{DAY}.py"
    day.unlink()
    day.symlink_to(ROOT / "solutions" / "mlab" / f"{DAY}.py")
    res = graded(repo)
    assert res["score"] == 0
    assert "symbolic link" in res["tests"][0]["output"]


def test_a_tensor_subclass_cannot_fake_a_comparison(tmp_path):
    res = graded(append_to_day(stub_pair(tmp_path), LIAR_TENSOR))
    assert res["score"] == 0
    softmax = [t for t in res["tests"] if "softmax" in t["name"] and "log" not in t["name"]]
    assert softmax and all("not a subclass" in t["output"] for t in softmax), softmax[0]["output"]


@needs_bwrap
def test_no_secret_reaches_the_results(tmp_path, monkeypatch):
    secret_file = tmp_path / "credentials"
    secret_file.write_text(SECRET)
    monkeypatch.setenv("GITHUB_TOKEN", SECRET)
    monkeypatch.setenv("SECRET_FILE", str(secret_file))
    res = graded(append_to_day(stub_pair(tmp_path), STEAL_SECRETS))
    assert res["score"] == 0
    assert SECRET not in json.dumps(res)


@needs_bwrap
def test_nothing_rewrites_results_after_the_grader(tmp_path, capsys):
    out = tmp_path / "results.json"
    repo = with_init(stub_pair(tmp_path), DETACHED_REWRITER.format(target=str(out)))
    rc = main(["grade", str(repo), "--tests", str(TESTS), "--day", DAY, "--out", str(out), "-q"])
    written = out.read_text()
    assert rc == 0 and json.loads(written)["score"] == 0
    time.sleep(6)
    assert out.read_text() == written, "a process of the pair's outlived the grade"


def test_a_flooded_channel_does_not_crash_the_grader(tmp_path):
    res = graded(with_init(stub_pair(tmp_path), FLOOD))
    assert res["score"] == 0
    assert any("flooded" in t["output"] for t in res["tests"])


def test_deselecting_every_test_fails_every_test(tmp_path):
    res = graded(with_init(stub_pair(tmp_path), DESELECT_ALL))
    assert res["score"] == 0
    assert all(t["status"] == "failed" for t in res["tests"])


def test_where_bwrap_cannot_run_the_results_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(isolation, "unavailable", lambda: "bubblewrap (bwrap) is not installed")
    repo = stub_pair(tmp_path)
    res = graded(repo)
    assert res["extra_data"]["isolation"] == {
        "mode": "none",
        "reason": "bubblewrap (bwrap) is not installed",
    }
    with pytest.raises(GradeError, match="--isolation bwrap: bubblewrap"):
        sandbox.grade(repo, TESTS, DAY, LIMITS, isolate="bwrap")


def test_a_stale_manifest_is_a_one_line_error(tmp_path):
    tests = tmp_path / "tests"
    shutil.copytree(TESTS, tests)
    (tests / f"test_{DAY}.py").write_text((tests / f"test_{DAY}.py").read_text() + "\n# edited\n")
    with pytest.raises(GradeError, match="stale .*test_w0_prep.py changed"):
        sandbox.grade(ROOT / "solutions", tests, DAY, LIMITS)


def test_the_manifest_matches_the_tests():
    from cohort import manifest

    found = manifest.load(TESTS)
    assert found is not None, "template/tests/manifest.json is missing: run `cohort check manifest`"
    manifest.check_fresh(found, TESTS)
