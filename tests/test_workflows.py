"""Every workflow file (this repository's, the pair template's caller, and the caller as
`cohort generate` fills it in) passes GitHub's workflow schema; scripts never paste `${{ }}`
expressions; the dashboard workflow has least-privilege permissions."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

from cohort.forge.github import caller_workflow
from cohort.roster import GitHubSettings

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted(
    [*ROOT.glob(".github/workflows/*.yml"), *ROOT.glob("template/.github/workflows/*.yml")]
)
CHECKER = shutil.which("check-jsonschema")


def filled_caller(tmp_path: Path) -> Path:
    """The template's caller as `cohort generate` fills it in."""
    settings = GitHubSettings(
        org="o", grader_repository="mlab-org/mlab", grader_ref="v1", gpu_runs_on='["arc-gpu"]'
    )
    text = (ROOT / "template" / ".github" / "workflows" / "grade.yml").read_text()
    path = tmp_path / "filled-caller.yml"
    path.write_text(caller_workflow(text, settings))
    return path


@pytest.mark.skipif(CHECKER is None, reason="check-jsonschema is not installed (pip: [dev])")
def test_every_workflow_passes_the_schema(tmp_path):
    filled = filled_caller(tmp_path)
    assert "uses: mlab-org/mlab/.github/workflows/grade.yml@v1" in filled.read_text()
    assert {p.name for p in WORKFLOWS} >= {"ci.yml", "grade.yml", "cohort-summary.yml"}
    proc = subprocess.run(
        [CHECKER, "--builtin-schema", "vendor.github-workflows", *map(str, WORKFLOWS), str(filled)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("name", [p.relative_to(ROOT).as_posix() for p in WORKFLOWS])
def test_scripts_take_expressions_from_the_environment(name):
    yaml = pytest.importorskip("yaml")
    jobs = yaml.safe_load((ROOT / name).read_text()).get("jobs", {})
    for job in jobs.values():
        for step in job.get("steps", []):
            assert not re.search(r"\$\{\{", step.get("run", "")), (
                f"{name}: step {step.get('name')!r} pastes an expression into its script; "
                "pass it through env:"
            )


def test_summary_workflow_is_scheduled_and_least_privileged():
    yaml = pytest.importorskip("yaml")
    flow = yaml.safe_load((ROOT / ".github" / "workflows" / "cohort-summary.yml").read_text())
    triggers = flow[True]  # YAML 1.1 reads the key `on` as True
    assert set(triggers) == {"schedule", "workflow_dispatch"}
    assert flow["permissions"] == {}
    assert flow["jobs"]["build"]["permissions"] == {"contents": "read"}
    assert flow["jobs"]["deploy"]["permissions"] == {"pages": "write", "id-token": "write"}
    uses = [s.get("uses", "") for j in flow["jobs"].values() for s in j["steps"]]
    assert "actions/upload-pages-artifact@v3" in uses and "actions/deploy-pages@v4" in uses
    steps = flow["jobs"]["build"]["steps"]
    secrets = [s for s in steps if "secrets." in str(s.get("env", {}))]
    assert [s["name"] for s in secrets] == [
        "Collect the pairs' results"
    ]  # the token goes there only


def _grade_jobs() -> dict:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / ".github" / "workflows" / "grade.yml").read_text())["jobs"]


@pytest.mark.parametrize("job", ["cpu", "gpu"])
def test_jobs_running_pair_code_can_only_read_and_hold_no_token(job):
    steps = _grade_jobs()[job]["steps"]
    assert _grade_jobs()[job]["permissions"] == {"contents": "read"}
    for step in steps:
        assert "token" not in str(step.get("env", {})).lower(), step
        assert "secrets." not in str(step), step
        assert not re.search(r"GITHUB_(ENV|PATH)", step.get("run", "")), step
        if step.get("uses", "").startswith("actions/checkout"):
            assert step["with"]["persist-credentials"] is False
    grader = [s for s in steps if s.get("with", {}).get("path") == "grader"][0]["with"]
    assert grader["sparse-checkout-cone-mode"] is False
    assert grader["sparse-checkout"].split() == [
        "/cohort/",
        "/template/tests/",
        "/pyproject.toml",
        "/README.md",
    ]
    assert any("--isolation" in s.get("run", "") for s in steps)
    assert any("bubblewrap" in s.get("run", "") for s in steps)


def test_only_the_report_job_writes_and_it_never_checks_out_pair_code():
    jobs = _grade_jobs()
    report = jobs["report"]
    assert report["needs"] == "cpu" and "pull_request" in report["if"]
    assert report["permissions"] == {"contents": "read", "pull-requests": "write"}
    checkouts = [s for s in report["steps"] if s.get("uses", "").startswith("actions/checkout")]
    assert all(s["with"]["repository"] == "${{ inputs.grader-repository }}" for s in checkouts)
    assert "/template/tests/" not in str(checkouts)
    assert any(s.get("run", "").startswith("cohort comment") for s in report["steps"])
    assert not any("github-script" in s.get("uses", "") for j in jobs.values() for s in j["steps"])
    cpu_install = [s for s in jobs["cpu"]["steps"] if s.get("name") == "Install the grader"][0]
    assert "grader[days,kernels]" in cpu_install["run"]
    assert cpu_install["env"] == {"TORCH_INDEX_URL": "${{ inputs.torch-index-url }}"}


@pytest.mark.parametrize("job", ["cpu", "gpu"])
def test_jobs_grade_the_days_the_push_changed(job):
    steps = _grade_jobs()[job]["steps"]
    pair = [s for s in steps if s.get("with", {}).get("path") == "pair"][0]["with"]
    assert pair["fetch-depth"] == 0  # changed-days needs the commit before the push
    days = [s for s in steps if s.get("id") == "days"][0]
    assert days["env"]["BEFORE"] == "${{ github.event.before }}"
    assert "cohort changed-days pair --tests grader/template/tests" in days["run"]
    assert '[ "$EVENT" = push ]' in days["run"]  # pull requests and manual runs: every day
    assert '|| DAYS=""' in days["run"]  # if it fails, every day is graded rather than none
    grade = [s for s in steps if s.get("run", "").startswith("cohort grade")][0]
    assert grade["env"]["DAYS"] == "${{ steps.days.outputs.days }}"
    assert '--day "$DAYS"' in grade["run"] and '--meta "before=$BEFORE"' in grade["run"]
