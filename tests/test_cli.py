"""The CLI: every command has help and an entry in docs/cli.md."""

from __future__ import annotations

import argparse

import pytest

from cohort.cli import main, parser


def commands() -> list[str]:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return list(sub.choices)


@pytest.mark.parametrize("command", commands())
def test_every_command_has_help_and_docs(command, root, capsys):
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    assert len(capsys.readouterr().out) > 100
    assert f"## `cohort {command}`" in (root / "docs" / "cli.md").read_text()


def test_an_error_of_any_layer_is_one_line_and_exit_2(tmp_path, capsys):
    """Each layer raises its own subclass of CohortError; the CLI catches the root once."""
    assert main(["status", "--dir", str(tmp_path)]) == 2  # the roster layer: no cohort.toml
    err = capsys.readouterr().err
    assert err.startswith("cohort status: error: ") and err.count("\n") == 1
    assert "Traceback" not in err
    assert main(["grade", str(tmp_path / "nowhere")]) == 2  # the grading layer
    assert "no such directory to grade" in capsys.readouterr().err
    assert main(["comment", "--repo", "not-a-repo", "--pr", "1", "x.json"]) == 2  # usage
    assert "--repo 'not-a-repo': expected owner/name" in capsys.readouterr().err


def test_every_error_is_under_the_root():
    import cohort.errors as errors

    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and c.__module__ == errors.__name__
    ]
    assert len(classes) > 10
    assert all(issubclass(c, errors.CohortError) for c in classes)
    assert not issubclass(errors.GitHubError, errors.ForgeError)  # the GitHub forge maps it
