"""What every ``planner`` command shares: AWS options, error handling, and the configuration
file's named targets. Command modules import this, never ``planner.cli`` (which imports them).
"""

from __future__ import annotations

import functools
import os
import sys
from typing import Any, Callable

import click

from manifests import ManifestError
from planner.backends import make_backend
from planner.backends.aws import Clients
from planner.backends.targets import (
    check_distribution_names,
    is_bare_name,
    parse_state,
    parse_target,
)
from planner.errors import PlannerError


class Dollars(click.FloatRange):
    """An amount of dollars: a finite number, 0 or more ("nan" and "inf" are refused)."""

    name = "dollars"

    def __init__(self) -> None:
        super().__init__(min=0)

    def convert(self, value: Any, param: Any, ctx: Any) -> Any:
        import math

        amount = super().convert(value, param, ctx)
        if not math.isfinite(amount):
            self.fail(f"{value!r} is not a finite amount of dollars", param, ctx)
        return amount


def aws_options() -> list[Callable[[Callable[..., Any]], Callable[..., Any]]]:
    """Options of every command that may talk to AWS."""
    return [
        click.option("--profile", default=None, help="AWS profile."),
        click.option("--region", default=None, help="AWS region of the bucket."),
        click.option("--retry-mode", type=click.Choice(["standard", "adaptive"]),
                     default="standard", show_default=True,
                     help="botocore's retry mode for throttling and transient errors."),
        click.option("--max-attempts", type=click.IntRange(min=1), default=5, show_default=True,
                     help="Attempts per AWS request (botocore's retries), the first included."),
    ]


def state_option() -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--state``: the target's state kept apart from its site."""
    return click.option(
        "--state", default=None, metavar="PLACE",
        help="Where the target's manifest, ledger and lock live: s3://bucket/prefix (or a "
             "folder, for a local target)  [default: <target>/.planner/]",
    )


def make_target_backend(
    target: str, state: str | None, clients: Any, read_only: bool = False,
    acl: str | None = None,
):
    """The backend of ``--target`` (with ``--state``, if given)."""

    parsed = parse_target(target)
    place = parse_state(state, parsed) if state else None
    return make_backend(parsed, clients, read_only=read_only, acl=acl, state=place)


def distribution_ids(backend: Any, names: tuple[str, ...]) -> tuple[str, ...]:
    """``--distribution`` values checked (nothing empty, no white space) and resolved to ids
    (a domain or alternate domain name names its distribution), in order, without repeats."""

    check_distribution_names(names)
    return tuple(dict.fromkeys(backend.resolve_distributions(tuple(dict.fromkeys(names)))))


def with_aws_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add ``aws_options()`` to a command."""
    for opt in reversed(aws_options()):
        func = opt(func)
    return func


def clients_of(kw: dict[str, Any]):

    return Clients(profile=kw["profile"], region=kw["region"], max_attempts=kw["max_attempts"],
                   retry_mode=kw["retry_mode"])


def errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's errors into a one-line message and a non-zero exit."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (PlannerError, ManifestError) as exc:
            click.echo(f"Error: {exc}", err=True)
            code = getattr(exc, "exit_code", 1)
            # With `plan --detailed-exitcode`, 2 means "something would change".
            command = click.get_current_context().info_name
            sys.exit(1 if code == 2 and detailed_exitcode(command) else code)

    return wrapper


def flags_of(command: click.Command) -> dict[str, str]:
    """Configuration key (the long flag without dashes, or the argument's name) -> the
    parameter's name."""
    out: dict[str, str] = {}
    for param in command.params:
        if isinstance(param, click.Argument):
            out[param.name.replace("_", "-")] = param.name  # type: ignore[union-attr]
        elif isinstance(param, click.Option) and param.name not in ("help", "version"):
            for opt in param.opts + param.secondary_opts:
                if opt.startswith("--"):
                    out[opt[2:]] = param.name  # type: ignore[assignment]
    return out


def as_list_if_multiple(command: click.Command, name: str, value: Any) -> Any:
    """``exclude = "*.map"`` in the file means the one-item list. A flag's value must be a
    boolean (or a word click reads as one): click fails on a number (``wait = 2``)."""
    for param in command.params:
        if param.name != name:
            continue
        if getattr(param, "multiple", False) and isinstance(value, str):
            return [value]
        if getattr(param, "is_bool_flag", False) and not isinstance(value, (bool, str)):
            raise click.BadParameter(
                f"{value!r} in the configuration file is not a valid boolean: write true or "
                "false", param=param,
            )
    return value


class UnknownTarget(click.ClickException):
    """``--target NAME`` that names no configured target (bad usage: exit 2; one line)."""

    exit_code = 2


def _refuse_unknown_name(cfg: Any, name: str) -> None:
    """A bare word (no '/', '.' or scheme) is meant as a target's name when the configuration
    file defines targets: refused when it names none, rather than taken as a new local
    folder (a typo would deploy the site into ./prd)."""
    import difflib


    if not is_bare_name(name):
        return
    close = difflib.get_close_matches(name, sorted(cfg.targets), n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else f" (targets: {', '.join(sorted(cfg.targets))})."
    raise UnknownTarget(
        f"{name!r} is not a target in {cfg.path}{hint} A local folder is written ./{name}"
    )


def named_target(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--target NAME`` of a ``[targets.NAME]`` table: its target, and its options wherever
    neither a flag nor a PLANNER_* variable set them (they come before the file's top level)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kw: Any) -> Any:
        from click.core import ParameterSource

        ctx = click.get_current_context()
        cfg = ctx.find_root().obj
        name = kw.get("target")
        if cfg is not None and cfg.targets and name and name not in cfg.targets:
            _refuse_unknown_name(cfg, name)
        if cfg is not None and name in cfg.targets:
            flags = flags_of(ctx.command)
            params = {p.name: p for p in ctx.command.params}
            for key, value in cfg.targets[name].items():
                pname = flags.get(key)
                if key == "target" or pname is None:
                    continue
                if ctx.get_parameter_source(pname) in (
                    ParameterSource.DEFAULT, ParameterSource.DEFAULT_MAP
                ):
                    value = as_list_if_multiple(ctx.command, pname, value)
                    kw[pname] = params[pname].type_cast_value(ctx, value)
            kw["target"] = cfg.targets[name]["target"]
            ctx.meta["planner.target_name"] = name  # for what only the file holds ([[headers]])
        return func(*args, **kw)

    return wrapper


# --- environment variables -------------------------------------------------------------------

ENV_PREFIX = "PLANNER"

# Options read only from their command's own variable, PLANNER_<COMMAND>_<OPTION>, never from
# the shared PLANNER_<OPTION>: they say what one run prints, writes or risks, not where the
# site goes or what invalidation costs, and a shared name would carry them to every command
# (and every step of a CI job) with an option of that name. Key: the long flag, or
# "COMMAND --flag" for one command's option; value: why (docs/commands.md shows it).
OWN_VARIABLE_ONLY = {
    "format": "its choices differ from command to command (report has csv, paths text, verify "
              "neither markdown), and it changes what a script reads on stdout: a shared "
              "PLANNER_FORMAT=csv would break plan",
    "detailed-exitcode": "it changes what exit 2 means; the script that tests the exit code "
                         "should say so itself",
    "out": "it writes (and replaces) a plan file: one run's output",
    "plan": "it deploys a saved plan in place of the build",
    "dry-run": "a deploy that writes nothing, left set for a whole job, passes without deploying",
    "repair": "it turns verify, which only reads, into uploads and invalidations",
    "delete-extra": "it deletes objects",
    "pending-record": "it removes the record an interrupted deploy needs to finish",
    "paths --distributions": "a count of distributions, not the ids of --distribution "
                             "(PLANNER_DISTRIBUTION)",
    "move-state --state": "the place the state moves to, where every other command's --state "
                          "is the place it is now (PLANNER_STATE)",
    "move-state --from": "with move-state's --state, one move's source: given for that move",
}


def _variable(*parts: str) -> str:
    return "_".join((ENV_PREFIX, *parts)).upper().replace("-", "_")


def option_key(param: click.Parameter) -> str | None:
    """The option's long flag without dashes (its configuration key), or an argument's name."""
    if isinstance(param, click.Argument):
        return param.name.replace("_", "-")  # type: ignore[union-attr]
    longs = [o[2:] for o in param.opts if o.startswith("--")]
    return longs[0] if longs else None


def own_variable_only(command: str, key: str) -> str | None:
    """Why the option has no shared variable, or None when it has one."""
    return OWN_VARIABLE_ONLY.get(f"{command} --{key}", OWN_VARIABLE_ONLY.get(key))


def variables_of(command: str, param: click.Parameter) -> tuple[str | None, list[str]]:
    """(the shared variable PLANNER_<OPTION>, or None; the command's own variables:
    PLANNER_<COMMAND>_<OPTION>, then the older spelling click derived from the parameter's
    Python name where it differs, e.g. PLANNER_PLAN_FMT for plan's --format)."""
    key = option_key(param)
    if key is None or param.name is None:
        return None, []
    own = [_variable(command, key)]
    if isinstance(param, click.Option) and _variable(command, param.name) not in own:
        own.append(_variable(command, param.name))
    return (None if own_variable_only(command, key) else _variable(key)), own


def read_environment(command: click.Command) -> None:
    """Give each parameter of the command its variables, in the order they are read: the
    command's own ones first (the narrower setting wins), then the shared one. Below a flag,
    above the configuration file and the default (click's order). Multiple-value options
    split a variable's value at white space, as click does."""
    for param in command.params:
        shared, own = variables_of(command.name or "", param)
        if own:
            param.envvar = own + ([shared] if shared else [])
        if isinstance(param, click.Option):
            param.allow_from_autoenv = False  # every name is explicit, and listed in the docs


def detailed_exitcode(command: str | None) -> bool:
    """`plan --detailed-exitcode` (on the command line, or in its variable): exit 2 means
    "something would change", so bad usage exits 1."""
    if "--detailed-exitcode" in sys.argv[1:]:
        return True
    value = os.environ.get(_variable("plan", "detailed-exitcode"), "")
    return command == "plan" and value.strip().lower() in ("1", "true", "t", "yes", "y", "on")


class Group(click.Group):
    """The ``planner`` group: a bad value from a variable names the variable."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.BadParameter as exc:
            _name_variable(exc)
            raise


def _name_variable(exc: click.BadParameter) -> None:
    from click.core import ParameterSource

    param, ctx = exc.param, exc.ctx
    if param is None or ctx is None or exc.param_hint is not None or param.name is None:
        return
    if ctx.get_parameter_source(param.name) is not ParameterSource.ENVIRONMENT:
        return
    names = [param.envvar] if isinstance(param.envvar, str) else list(param.envvar or ())
    used = next((n for n in names if os.environ.get(n)), None)
    if used:
        exc.param_hint = f"{param.get_error_hint(ctx)} (from {used})"
