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
