"""cohort build-template: solutions -> stubs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cohort import build
from cohort.cli import main
from cohort.errors import BuildError

SOLUTION = '''\
import torch


def double(x):
    """Twice x."""
    # BEGIN SOLUTION
    return 2 * x
    # END SOLUTION


class Model:
    def forward(self, x):
        # BEGIN SOLUTION
        y = x + 1
        return y
        # END SOLUTION

    def reset(self):
        # BEGIN SOLUTION: self.state = None
        self.state = {}
        # END SOLUTION
'''


def test_regions_become_named_not_implemented_errors():
    stub = build.stub_source(SOLUTION, Path("x.py"), "w9_day")
    assert 'raise NotImplementedError("double: see docs/w9_day.md#double")' in stub
    assert 'raise NotImplementedError("Model.forward: see docs/w9_day.md#model")' in stub
    assert "        self.state = None\n" in stub
    assert "return 2 * x" not in stub and "x + 1" not in stub and "BEGIN" not in stub
    assert '"""Twice x."""' in stub  # docstrings and signatures stay
    compile(stub, "stub", "exec")


@pytest.mark.parametrize(
    "text,line,what",
    [
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", 2, "nested"),
        ("x = 1\n# END SOLUTION\n", 2, "without a matching BEGIN"),
        ("x = 1\n# BEGIN SOLUTION\nx = 2\n", 2, "never closed"),
    ],
)
def test_bad_markers_name_file_and_line(text, line, what):
    with pytest.raises(BuildError, match=rf"^bad\.py:{line}: .*{what}"):
        build.stub_source(text, Path("bad.py"), "d")


def _organizer(tmp_path: Path) -> Path:
    (tmp_path / "solutions" / "mlab").mkdir(parents=True)
    (tmp_path / "solutions" / "mlab" / "__init__.py").write_text("")
    (tmp_path / "solutions" / "mlab" / "w9_day.py").write_text(SOLUTION)
    (tmp_path / "solutions" / "mlab" / "data.txt").write_text("copied as is\n")
    return tmp_path


def test_check_detects_stale_template(tmp_path, capsys):
    root = _organizer(tmp_path)
    assert main(["build-template", "--root", str(root), "--check"]) == 1
    assert main(["build-template", "--root", str(root)]) == 0
    assert (root / "template" / "mlab" / "data.txt").read_text() == "copied as is\n"
    assert main(["build-template", "--root", str(root), "--check"]) == 0
    solution = root / "solutions" / "mlab" / "w9_day.py"
    for change in ['"""Twice x."""', "def double(x):"]:
        original = solution.read_text()
        solution.write_text(original.replace(change, change.replace("x", "x, y=0")))
        capsys.readouterr()
        assert main(["build-template", "--root", str(root), "--check"]) == 1
        assert "stale: template/mlab/w9_day.py" in capsys.readouterr().out
        solution.write_text(original)
    # A body-only change inside the markers leaves the stubs as they are.
    solution.write_text(solution.read_text().replace("return 2 * x", "return x + x"))
    assert main(["build-template", "--root", str(root), "--check"]) == 0


def test_removed_solution_file_is_removed_from_template(tmp_path):
    root = _organizer(tmp_path)
    main(["build-template", "--root", str(root)])
    (root / "solutions" / "mlab" / "data.txt").unlink()
    assert main(["build-template", "--root", str(root), "--check"]) == 1
    main(["build-template", "--root", str(root)])
    assert not (root / "template" / "mlab" / "data.txt").exists()


def test_marker_error_is_one_line_exit_2(tmp_path, capsys):
    root = _organizer(tmp_path)
    (root / "solutions" / "mlab" / "w9_day.py").write_text("# END SOLUTION\n")
    assert main(["build-template", "--root", str(root)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "w9_day.py:1" in err


def test_repository_template_is_up_to_date(root):
    assert build.plan(root / "solutions" / "mlab", root / "template" / "mlab").stale == []


TESTS = """import pytest
from mlab import w9_day as m


@pytest.mark.points(2)
def test_double():
    assert m.double(2) == 4


@pytest.mark.points(1)
def test_forward():
    assert m.Model().forward(1) == 2
"""


def test_build_template_keeps_the_points_manifest_honest(tmp_path, capsys):
    root = _organizer(tmp_path)
    (root / "template" / "tests").mkdir(parents=True)
    (root / "template" / "tests" / "test_w9_day.py").write_text(TESTS)
    manifest_json = root / "template" / "tests" / "manifest.json"
    assert main(["build-template", "--root", str(root)]) == 0  # stubs, then the manifest
    out = capsys.readouterr().out
    assert f"{manifest_json}: missing: re-recording it from the stubs" in out
    assert f"{manifest_json}: re-recorded" in out
    tests = json.loads(manifest_json.read_text())["tests"]
    assert {n: t["points"] for n, t in tests.items()} == {
        "tests/test_w9_day.py::test_double": 2,
        "tests/test_w9_day.py::test_forward": 1,
    }
    assert main(["build-template", "--root", str(root), "--check"]) == 0
    assert main(["build-template", "--root", str(root)]) == 0  # nothing stale: nothing recorded
    assert "re-record" not in capsys.readouterr().out

    test_file = root / "template" / "tests" / "test_w9_day.py"
    test_file.write_text(TESTS.replace("points(2)", "points(3)"))
    assert main(["build-template", "--root", str(root), "--check"]) == 1
    assert capsys.readouterr().out.splitlines() == [
        f"{manifest_json}: stale (test_w9_day.py changed since it was recorded); "
        "organizers run `cohort check manifest`"
    ]
    test_file.write_text(TESTS)

    # A change outside the markers changes the stub of Model.forward: the manifest follows it.
    solution = root / "solutions" / "mlab" / "w9_day.py"
    solution.write_text(
        solution.read_text().replace(
            "    def forward(self, x):\n", "    def forward(self, x):\n        x = +x\n"
        )
    )
    assert main(["build-template", "--root", str(root)]) == 0
    out = capsys.readouterr().out
    assert "stale (the stub of mlab/w9_day.py:Model.forward changed" in out and "re-recorded" in out
    assert main(["build-template", "--root", str(root), "--check"]) == 0
