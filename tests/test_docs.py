"""The documentation: the generated command reference is current."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _reference_module():
    spec = importlib.util.spec_from_file_location(
        "command_reference", ROOT / "scripts" / "command_reference.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_command_reference_is_generated_from_the_current_cli() -> None:
    ref = _reference_module()
    text = ref.COMMANDS_MD.read_text(encoding="utf-8")
    assert ref.current(text) == ref.render(), (
        f"docs/commands.md is stale (the CLI's --help changed): run `{ref.COMMAND}`"
    )


def test_command_reference_covers_every_command() -> None:
    from planner.cli import cli

    text = (ROOT / "docs" / "commands.md").read_text(encoding="utf-8")
    for name in cli.commands:
        assert f"### planner {name}\n" in text, name
