"""cohort grade: untrusted code in a child process, limits, resume after hangs and crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from cohort.cli import main
from cohort.grading import isolation, sandbox
from tests.conftest import ROOT, write_manifest

CODE = """
import os, time

def ok(x):
    return x + 1

def hang(x):
    while True:
        pass

def exit_now(x):
    os._exit(3)

def shout(x):
    for _ in range(5_000):
        print("x" * 1000)
    return x + 1

def hog(x):
    return bytearray(64 * 1024**3)

def spawn_and_hang(x):
    import subprocess
    subprocess.Popen(["sleep", "1000"])
    time.sleep(1000)
"""

TESTS = """
import pytest
from mlab import toy

@pytest.mark.points(1)
@pytest.mark.parametrize("name", ["ok", "hang", "exit_now", "shout", "hog", "ok"])
def test_case(name):
    assert getattr(toy, name)(1) == 2
"""

FAST = sandbox.Limits(test_timeout=10, run_timeout=300, memory_mb=4096)
CASES = {  # the tests of TESTS, as its manifest lists them
    f"tests/test_toy.py::test_case[{case}]": 1.0
    for case in ("ok0", "hang", "exit_now", "shout", "hog", "ok1")
}


def outcomes(res: dict) -> dict[str, str]:
    return {t["name"].split("::")[1]: t for t in res["tests"]}


def test_each_failure_stays_with_its_test(pair_repo):
    tests = TESTS.replace(
        '["ok", "hang", "exit_now", "shout", "hog", "ok"]',
        '["ok", "hang", "exit_now", "shout", "hog", "ok2"]',
    )
    repo = pair_repo(CODE + "\nok2 = ok\n", tests)
    res = sandbox.grade(repo, limits=FAST)
    got = outcomes(res)
    assert got["test_case[ok]"]["status"] == got["test_case[ok2]"]["status"] == "passed"
    assert "timed out after 10 s" in got["test_case[hang]"]["output"]
    assert "exited with code 3" in got["test_case[exit_now]"]["output"]
    assert got["test_case[shout]"]["status"] == "passed"  # 5 MB of output: only the tail is kept
    assert "MemoryError" in got["test_case[hog]"]["output"]
    assert (res["score"], res["max_score"]) == (3, 6)


def test_timeout_kills_the_whole_process_group(pair_repo, tmp_path):
    marker = tmp_path / "sleepers"
    code = CODE.replace('["sleep", "1000"]', f'["sh", "-c", "echo $$ > {marker}; exec sleep 1000"]')
    tests = TESTS.replace('["ok", "hang", "exit_now", "shout", "hog", "ok"]', '["spawn_and_hang"]')
    res = sandbox.grade(  # without the sandbox: its PID namespace would hide the grandchild
        pair_repo(code, tests),
        limits=sandbox.Limits(test_timeout=1, run_timeout=60),
        isolate="none",
    )
    assert res["tests"][0]["status"] == "failed"
    assert not running(int(marker.read_text())), "the grandchild outlived the grading run"


def running(pid: int) -> bool:
    """Alive and not a zombie waiting to be reaped."""
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"


def test_import_error_fails_the_days_tests_with_the_error(pair_repo):
    repo = pair_repo("import not_a_module_anywhere\n", TESTS)
    write_manifest(repo, CASES)
    res = sandbox.grade(repo, limits=FAST)
    assert res["max_score"] == 6 and res["score"] == 0
    assert "No module named 'not_a_module_anywhere'" in res["tests"][0]["output"]


def test_hang_at_import_is_reported(pair_repo):
    repo = pair_repo("while True:\n    pass\n", TESTS)
    write_manifest(repo, CASES)
    res = sandbox.grade(repo, limits=sandbox.Limits(test_timeout=1, run_timeout=60))
    assert res["max_score"] == 6 and res["score"] == 0
    assert "a loop at import?" in res["tests"][0]["output"]


def test_trusted_tests_replace_edited_ones(pair_repo, tmp_path):
    honest = "import pytest\nfrom mlab import toy\n\n@pytest.mark.points(4)\ndef test_ok():\n    assert toy.ok(1) == 5\n"
    edited = honest.replace("== 5", "== 2")
    repo = pair_repo(CODE, edited)
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    (trusted / "test_toy.py").write_text(honest)
    assert sandbox.grade(repo, limits=FAST)["score"] == 4
    assert sandbox.grade(repo, trusted, limits=FAST)["score"] == 0


def test_secrets_do_not_reach_pair_code(pair_repo, monkeypatch):
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("MY_API_KEY", "secret")
    tests = (
        "import os, pytest\n\n@pytest.mark.points(1)\ndef test_env():\n"
        "    assert not any('secret' in v for v in os.environ.values())\n"
    )
    assert sandbox.grade(pair_repo(CODE, tests), limits=FAST)["score"] == 1


def test_static_scan_flags_reaching_into_the_grader(pair_repo):
    code = "import sys\n\ndef ok(x):\n    sys.modules['pytest'] = None\n    return x + 1\n"
    res = sandbox.grade(
        pair_repo(code, TESTS.replace('"hang", "exit_now", "shout", "hog", ', "")), limits=FAST
    )
    whys = {f["why"] for f in res["extra_data"]["flags"]}
    assert {"edits loaded modules", "reaches into pytest"} <= whys


def test_cli_writes_results_and_errors_are_one_line(pair_repo, tmp_path, capsys):
    repo = pair_repo(CODE, TESTS.replace('"hang", "exit_now", "shout", "hog", ', ""))
    out = tmp_path / "r.json"
    assert main(["grade", str(repo), "--out", str(out), "--pair", "alpha", "-q"]) == 0
    data = json.loads(out.read_text())
    assert data["extra_data"]["pair"] == "alpha" and data["score"] == 2
    assert main(["grade", str(repo), "--day", "nope"]) == 2
    assert "no graders for day 'nope'" in capsys.readouterr().err
    assert main(["grade", str(tmp_path / "missing")]) == 2


def test_child_dies_with_a_killed_parent(pair_repo, tmp_path):
    import signal
    import subprocess
    import sys
    import time

    marker = tmp_path / "child.pid"
    code = f"import os, time\n\ndef ok(x):\n    open({str(marker)!r}, 'w').write(str(os.getpid()))\n    time.sleep(1000)\n"
    repo = pair_repo(code, TESTS.replace('"hang", "exit_now", "shout", "hog", ', ""))
    # without the sandbox, whose PID namespace would hide the child's pid from this test
    script = f"from cohort.grading import sandbox; sandbox.grade({str(repo)!r}, isolate='none')"
    parent = subprocess.Popen([sys.executable, "-c", script])
    for _ in range(600):
        if marker.exists() and marker.read_text():
            break
        time.sleep(0.1)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    pid = int(marker.read_text())
    for _ in range(50):
        if not running(pid):
            break
        time.sleep(0.1)
    assert not running(pid), "the test process outlived its killed parent"


def test_marker_selection_grades_only_the_selected_tests(pair_repo):
    tests = (
        "import pytest\nfrom mlab import toy\n\n"
        "@pytest.mark.points(1)\n@pytest.mark.bench\ndef test_fast():\n    assert toy.ok(1) == 2\n\n"
        "@pytest.mark.points(5)\ndef test_other():\n    assert toy.ok(1) == 2\n"
    )
    res = sandbox.grade(pair_repo(CODE, tests), limits=FAST, markers="bench")
    assert [t["name"].split("::")[1] for t in res["tests"]] == ["test_fast"]
    assert (res["score"], res["max_score"]) == (1, 1)


def test_a_test_file_that_does_not_import_fails_only_its_own_day(tmp_path):
    repo = tmp_path / "pair"
    (repo / "mlab").mkdir(parents=True)
    (repo / "mlab" / "__init__.py").write_text("")
    (repo / "mlab" / "good.py").write_text("def one():\n    return 1\n")
    tests = repo / "tests"
    tests.mkdir()
    (tests / "test_good.py").write_text(
        "import pytest\nfrom mlab import good\n\n"
        "@pytest.mark.points(2)\ndef test_one():\n    assert good.one() == 1\n"
    )
    (tests / "test_broken.py").write_text(
        "import pytest\nimport a_module_nobody_installed\n\n"
        "@pytest.mark.points(3)\ndef test_never():\n    pass\n"
    )
    write_manifest(repo, {"tests/test_good.py::test_one": 2, "tests/test_broken.py::test_never": 3})
    res = sandbox.grade(repo, limits=FAST)
    days = res["extra_data"]["days"]
    assert days["good"]["score"] == days["good"]["max_score"] == 2
    assert (days["broken"]["score"], days["broken"]["max_score"]) == (0, 3)
    broken = next(t for t in res["tests"] if t["name"].startswith("tests/test_broken.py"))
    assert "a_module_nobody_installed" in broken["output"]


@pytest.mark.skipif(isolation.unavailable() is not None, reason="no bubblewrap here")
def test_the_sandbox_runs_an_interpreter_that_lives_under_tmp(tmp_path):
    """A venv under /tmp (act's prepared Python, a CI cache) must survive the sandbox's private /tmp."""
    venv = tmp_path / "venv"
    subprocess.run(
        [sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", str(venv)],
        check=True,
    )
    probe = "from cohort.grading import isolation; print(isolation.unavailable())"
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        check=True,
    ).stdout
    assert out.strip() == "None", out


def test_a_test_file_that_does_not_import_without_a_manifest_is_no_grade(pair_repo, capsys):
    """No manifest: nothing can count the tests of a file that never got collected."""
    repo = pair_repo("import not_a_module_anywhere\n", TESTS)
    with pytest.raises(sandbox.GradeError, match="no manifest.json to count its tests") as e:
        sandbox.grade(repo, limits=FAST)
    assert "tests/test_toy.py: not collected" in str(e.value) and "\n" not in str(e.value)
    assert "`cohort check manifest`" in str(e.value)
    assert main(["grade", str(repo)]) == 2
    assert "cohort check manifest" in capsys.readouterr().err
