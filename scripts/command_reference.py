"""Write the command reference in docs/commands.md from the CLI's own ``--help``, and the
table of environment variables from the variables the CLI reads.

    .venv/bin/python scripts/command_reference.py

rewrites what stands between the two marker lines of docs/commands.md with the ``--help`` of
``planner`` and of every command in ``cli.commands`` (sorted), as click prints them at a fixed
width, from an empty folder and without ``PLANNER_*`` variables (a planner.toml or a variable
would change the defaults shown); and what stands between the environment block's markers with
the variables of every option (``planner.cli.common.variables_of``). ``--check`` writes nothing
and exits 1 when the file is stale; ``tests/test_docs.py`` does the same check.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from click.testing import CliRunner

from planner.cli import cli
from planner.cli.common import OWN_VARIABLE_ONLY, option_key, own_variable_only, variables_of

ROOT = Path(__file__).resolve().parent.parent
COMMANDS_MD = ROOT / "docs" / "commands.md"
BEGIN = "<!-- begin generated: scripts/command_reference.py -->"
END = "<!-- end generated -->"
ENV_BEGIN = "<!-- begin generated: scripts/command_reference.py (environment) -->"
ENV_END = "<!-- end generated (environment) -->"
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


def _option(param) -> str:
    key = option_key(param)
    return f"`{key.upper()}`" if param.param_type_name == "argument" else f"`--{key}`"


def render_environment() -> str:
    """The environment block, markers included: the shared variables, the options read from
    their command's own variable only (and why), and the older spellings still read."""
    shared: dict[str, tuple[str, set[str]]] = {}  # variable -> (option, commands)
    own_only: dict[str, tuple[list[str], str]] = {}  # option -> (variables, why)
    older: list[tuple[str, str]] = []
    for name in sorted(cli.commands):
        for param in cli.commands[name].params:
            variable, own = variables_of(name, param)
            option = _option(param)
            if variable:
                shared.setdefault(variable, (option, set()))[1].add(name)
            else:
                key = option_key(param) or ""
                label = f"`{name} --{key}`" if f"{name} --{key}" in OWN_VARIABLE_ONLY else option
                why = own_variable_only(name, key) or ""
                own_only.setdefault(label, ([], why))[0].append(own[0])
            older += [(o, own[0]) for o in own[1:]]
    parts = [ENV_BEGIN, f"<!-- do not edit: run `{COMMAND}` -->", "",
             "| variable | option | read by |", "| --- | --- | --- |"]
    parts += [f"| `{v}` | {o} | {', '.join(sorted(c))} |" for v, (o, c) in sorted(shared.items())]
    parts += ["", "Read only from the command's own variable:", "",
              "| variables | option | why no shared variable |", "| --- | --- | --- |"]
    parts += [f"| {', '.join(f'`{v}`' for v in vs)} | {o} | {why} |"
              for o, (vs, why) in sorted(own_only.items())]
    parts += ["", "Older spellings, still read (the names click gave, after the option's Python "
              "name): " + ", ".join(f"`{o}` for `{n}`" for o, n in sorted(older)) + ".", ENV_END]
    return "\n".join(parts) + "\n"


BLOCKS = ((BEGIN, END, render), (ENV_BEGIN, ENV_END, render_environment))


def current(text: str, begin: str = BEGIN, end: str = END) -> str:
    """A block as it stands in the file, markers included."""
    start, stop = text.index(begin), text.index(end) + len(end)
    return text[start:stop] + "\n"


def updated(text: str) -> str:
    for begin, end, make in BLOCKS:
        start, stop = text.index(begin), text.index(end) + len(end)
        text = text[:start] + make().rstrip("\n") + text[stop:]
    return text


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
