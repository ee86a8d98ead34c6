"""The ``planner`` command: the click group (the configuration file becomes every command's
defaults) and ``main``. Each command lives in a module of its own and only parses options,
calls the library, and renders."""

from __future__ import annotations

import os
import sys

import click

from planner import __version__
from planner.cli import config
from planner.cli.common import (
    Group,
    as_list_if_multiple,
    detailed_exitcode,
    flags_of,
    read_environment,
)

# No auto_envvar_prefix: click would name variables per command and after the Python names
# (PLANNER_PLAN_FMT); read_environment gives every option its names (see docs/commands.md).
CONTEXT = {"help_option_names": ["-h", "--help"]}



@click.group(cls=Group, context_settings=CONTEXT)
@click.version_option(__version__, "--version", prog_name="planner")
@click.option("--config", "config_path", metavar="FILE", envvar="PLANNER_CONFIG",
              help="Configuration file  [default: ./planner.toml, else [tool.planner] in "
                   "./pyproject.toml]")
@click.pass_context
def cli(ctx: click.Context, config_path: str | None) -> None:
    """Deploy a static site to S3 and invalidate CloudFront as cheaply as possible.

    \b
    Example:
      planner plan public --target s3://my-bucket --distribution E123ABC
    """
    group = ctx.command
    assert isinstance(group, click.Group)
    try:
        cfg = config.load(config.find(os.getcwd(), config_path))
        config.check_keys(
            cfg, {k for c in group.commands.values() for k in flags_of(c)} | {"headers"}
        )
    except config.ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1 if detailed_exitcode(ctx.invoked_subcommand) else exc.exit_code)
    ctx.obj = cfg
    # The file's top level is every command's defaults: below flags and PLANNER_* variables.
    ctx.default_map = {
        name: {flags[k]: as_list_if_multiple(command, flags[k], v)
               for k, v in cfg.options.items() if k in flags}
        for name, command in group.commands.items()
        for flags in (flags_of(command),)
    }




from planner.cli.deploy import deploy  # noqa: E402 - the commands live in their own modules
from planner.cli.paths import paths  # noqa: E402
from planner.cli.plan import plan  # noqa: E402
from planner.cli.report import report  # noqa: E402
from planner.cli.state import move_state, unlock  # noqa: E402
from planner.cli.verify import verify  # noqa: E402

for _command in (plan, deploy, unlock, move_state, paths, report, verify):
    cli.add_command(_command)
    read_environment(_command)

def _detailed(ctx: click.Context | None) -> bool:
    command = ctx.info_name if ctx is not None and ctx.parent is not None else None
    return detailed_exitcode(command)


def main() -> None:
    # With `plan --detailed-exitcode`, 2 means "something would change": bad usage (and a bad
    # configuration file) exit 1 then, as in Terraform, so `|| [ $? -eq 2 ]` hides no error.
    try:
        code = cli.main(prog_name="planner", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        detailed = _detailed(getattr(exc, "ctx", None))
        sys.exit(1 if detailed and exc.exit_code == 2 else exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)

