"""Write the command reference in docs/commands.md from the CLI's own ``--help``.

    .venv/bin/python scripts/command_reference.py

rewrites what stands between the two marker lines of docs/commands.md with the ``--help`` of
``planner`` and of every command in ``cli.commands`` (sorted), as click prints them at a fixed
width, from an empty folder and without ``PLANNER_*`` variables (a planner.toml or a variable
would change the defaults shown). ``--check`` writes nothing and exits 1 when the file is stale;
``tests/test_docs.py`` does the same check.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from planner.cli import cli

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_MD = ROOT / "docs" / "commands.md"
BEGIN = "<!-- begin generated: scripts/command_reference.py -->"
END = "<!-- end generated -->"
COMMAND = ".venv/bin/python scripts/command_reference.py"
WIDTH = 88


def help_text(args: list[str]) -> str:
    runner = CliRunner()
    env = {k: None for k in os.environ if k.startswith("PLANNER_")}
    cwd = os.getcwd()
    with tempfile.TemporaryDirectory() as empty:
        os.chdir(empty)
        try:
            result = runner.invoke(cli, [*args, "--help"], prog_name="planner", env=env,
                                   terminal_width=WIDTH, max_content_width=WIDTH)
        finally:
            os.chdir(cwd)
    if result.exit_code != 0:
        raise RuntimeError(f"planner {' '.join(args)} --help: exit {result.exit_code}\n"
                           f"{result.output}{result.exception!r}")
    return result.output


def render() -> str:
    """The generated block, markers included."""
    parts = [BEGIN, f"<!-- do not edit: run `{COMMAND}` -->", "", "### planner", "",
             "```text", help_text([]).rstrip(), "```"]
    for name in sorted(cli.commands):
        parts += ["", f"### planner {name}", "", "```text", help_text([name]).rstrip(), "```"]
    parts.append(END)
    return "\n".join(parts) + "\n"


def current(text: str) -> str:
    """The block as it stands in the file, markers included."""
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[start:end] + "\n"


def updated(text: str) -> str:
    start, end = text.index(BEGIN), text.index(END) + len(END)
    return text[:start] + render().rstrip("\n") + text[end:]


def main(argv: list[str]) -> int:
    text = COMMANDS_MD.read_text(encoding="utf-8")
    new = updated(text)
    if "--check" in argv:
        if new != text:
            print(f"{COMMANDS_MD.relative_to(ROOT)} is stale: run `{COMMAND}`", file=sys.stderr)
            return 1
        return 0
    if new != text:
        COMMANDS_MD.write_text(new, encoding="utf-8")
        print(f"wrote {COMMANDS_MD.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
