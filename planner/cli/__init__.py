"""The ``planner`` command. Commands only parse options, call the library, and render."""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

import click

from planner import __version__
from planner.apply import Waiting, deploy_site, plan_deploy
from planner.cli.common import (
    as_list_if_multiple,
    aws_options,
    clients_of,
    distribution_ids,
    flags_of,
    make_target_backend,
    named_target,
    state_option,
    with_aws_options,
)
from planner.cli.common import errors as _errors
from planner.cli.progress import UploadProgress
from planner.core.cost import FREE_PATHS_PER_MONTH, PRICE_PER_PATH
from planner.core.headers import DEFAULT_CACHE_CONTROL
from planner.errors import PlannerError
from planner.lock import LEASE_SECONDS, MARGIN_SECONDS
from planner.plan import render, saved

CONTEXT = {"help_option_names": ["-h", "--help"], "auto_envvar_prefix": "PLANNER"}


def _options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Options shared by ``plan`` and ``deploy``."""
    opts = [
        # Checked in _prepare, not here: `deploy --plan FILE` takes both from the saved plan.
        click.argument("site", required=False, type=click.Path(file_okay=False, path_type=str)),
        click.option("--target", "-t", metavar="TARGET",
                     help="s3://bucket[/prefix], file:///abs/dir or a folder path  [required]"),
        state_option(),
        click.option("--distribution", "-d", "distributions", multiple=True, metavar="ID",
                     help="CloudFront distribution to invalidate: its id, domain name or "
                          "alternate domain name (repeatable; each gets the URLs it serves the "
                          "target under)."),
        click.option("--exclude", "excludes", multiple=True, metavar="GLOB",
                     help="Skip files matching GLOB (a name, or a path with '/'); repeatable."),
        click.option("--cache-control", default=DEFAULT_CACHE_CONTROL, show_default=True,
                     help="Cache-Control header for uploaded files."),
        click.option("--invalidate-added", is_flag=True,
                     help="Invalidate new files too (only needed if they were requested before)."),
        click.option("--max-deletes", type=click.IntRange(min=0), default=256, show_default=True,
                     help="Refuse the deploy if it would delete more objects than this."),
        click.option("--no-delete", is_flag=True, help="Keep objects removed from the build."),
        click.option("--url-prefix", default=None, metavar="PATH",
                     help="URL path under which the target's root is served  [default: read "
                          "from the distribution's origins and behaviors, else /]"),
        click.option("--paths-used", type=click.IntRange(min=0), default=None,
                     help="Paths already used this month in the account (default: read from "
                          "CloudFront, all distributions)."),
        click.option("--pace", type=click.Choice(["even", "none"]), default="even",
                     show_default=True,
                     help="even: spend at most the free paths left / days left x 3 per deploy; "
                          "none: all that is left."),
        click.option("--miss-cost", type=click.FloatRange(min=0), default=None,
                     help="Dollars per needless cache miss  [default: price-per-path / 1000]"),
        click.option("--wait-timeout", type=click.FloatRange(min=0), default=600.0,
                     show_default=True,
                     help="Seconds to wait while CloudFront has too many invalidations in "
                          "progress; then the invalidation stays pending for the next run."),
        click.option("--free-paths-per-month", type=click.IntRange(min=0),
                     default=FREE_PATHS_PER_MONTH, show_default=True),
        click.option("--price-per-path", type=click.FloatRange(min=0), default=PRICE_PER_PATH,
                     show_default=True, help="Dollars per paid invalidation path."),
        click.option("--workers", type=click.IntRange(min=1), default=8, show_default=True,
                     help="Parallel uploads."),
        click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
                     default="table", show_default=True),
        click.option("--verbose", "-v", is_flag=True,
                     help="List every upload, delete and path, and log each step (debug)."),
        click.option("--quiet", "-q", is_flag=True,
                     help="No plan, progress or log lines: errors and the summary line only."),
        click.option("--acl", type=click.Choice(["private", "public-read"]), default=None,
                     help="Canned ACL of uploaded site files (never of the tool's own state "
                          "objects)  [default: none: the bucket's setting]"),
        *aws_options(),
    ]
    for opt in reversed(opts):
        func = opt(func)
    return func


def _prepare(kw: dict[str, Any], read_only: bool = False):
    if kw["site"] is None:
        raise click.UsageError("Missing argument 'SITE'.")
    if not kw["target"]:
        raise click.UsageError("Missing option '--target' / '-t'.")
    from planner.backends.targets import check_apart
    from planner.plan.compute import Options

    backend = make_target_backend(kw["target"], kw["state"], clients_of(kw),
                                  read_only=read_only, acl=kw["acl"])
    check_apart(kw["site"], backend.target)
    if backend.state_apart:
        check_apart(kw["site"], backend.state, "--state")  # type: ignore[attr-defined]
    options = Options(
        cache_control=kw["cache_control"],
        excludes=tuple(kw["excludes"]),
        invalidate_added=kw["invalidate_added"],
        header_rules=_header_rules(),
        max_deletes=kw["max_deletes"],
        delete=not kw["no_delete"],
        url_prefix=kw["url_prefix"],
        distribution_ids=distribution_ids(backend, tuple(kw["distributions"])),
        free_paths_per_month=kw["free_paths_per_month"],
        paths_used=kw["paths_used"],
        pace=kw["pace"],
        price=kw["price_per_path"],
        miss_cost=kw["miss_cost"],
    )
    return backend, options


def _header_rules() -> tuple[Any, ...]:
    from planner.cli import config

    ctx = click.get_current_context()
    cfg = ctx.find_root().obj
    name = ctx.meta.get("planner.target_name")
    return config.header_rules(cfg, name) if cfg is not None else ()


def _debug_log(verbose: bool) -> None:
    """-v: the tool's own debug lines on stderr (never botocore's, which would show request
    signatures)."""
    if verbose:
        import logging

        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("debug: %(message)s"))
        logger = logging.getLogger("planner")
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)


def _hashing(people: bool) -> Any:
    """A context manager giving the hashing progress callback for ``build_plan``: None (no
    progress) with --quiet or --format json."""
    if not people:
        import contextlib

        return contextlib.nullcontext()
    from planner.cli.progress import HashProgress

    return HashProgress()


def _show(plan, fmt: str, verbose: bool, result=None) -> None:
    if fmt == "json":
        click.echo(render.to_json(plan, result))
    elif result is None:
        click.echo(render.to_text(plan, fmt, verbose), nl=False)


@click.group(context_settings=CONTEXT)
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
    from planner.cli import config

    group = ctx.command
    assert isinstance(group, click.Group)
    try:
        cfg = config.load(config.find(os.getcwd(), config_path))
        config.check_keys(
            cfg, {k for c in group.commands.values() for k in flags_of(c)} | {"headers"}
        )
    except config.ConfigError as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(1 if _detailed() else exc.exit_code)
    ctx.obj = cfg
    # The file's top level is every command's defaults: below flags and PLANNER_* variables.
    ctx.default_map = {
        name: {flags[k]: as_list_if_multiple(command, flags[k], v)
               for k, v in cfg.options.items() if k in flags}
        for name, command in group.commands.items()
        for flags in (flags_of(command),)
    }


@cli.command()
@_options
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing would change, 2 when something would (1 stays an error).")
@click.option("--out", "out", metavar="FILE", type=click.Path(dir_okay=False, path_type=str),
              help="Also save the plan, for `planner deploy --plan FILE`.")
@named_target
@_errors
def plan(detailed_exitcode: bool, out: str | None, **kw: Any) -> None:
    """Show what a deploy would upload, delete and invalidate, and what it would cost.

    \b
    Example:
      planner plan public --target ./site-out
    """
    from planner.plan.build import build_plan

    backend, options = _prepare(kw, read_only=True)
    _debug_log(kw["verbose"])
    with _hashing(kw["fmt"] != "json" and not kw["quiet"]) as hashed:
        the_plan = build_plan(kw["site"], backend, options, __version__, progress=hashed)
    if out:
        try:
            with click.open_file(out, "wb", atomic=True) as f:
                f.write(saved.dumps(the_plan, options, acl=kw["acl"], state=kw["state"]))
        except OSError as exc:
            raise PlannerError(f"cannot write {out}: {exc.strerror}") from None
    if not kw["quiet"]:
        _show(the_plan, kw["fmt"], kw["verbose"])
    if detailed_exitcode and (the_plan.has_work or the_plan.resume is not None):
        sys.exit(2)


@cli.command()
@_options
@click.option("--dry-run", is_flag=True, help="Only show the plan (same as `planner plan`).")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="Seconds to wait while another deploy holds the target's lock (0: fail at "
                   "once, exit 4).")
@click.option("--lock-lease", type=click.FloatRange(min=2), default=LEASE_SECONDS,
              show_default=True,
              help="Seconds the lock is held without renewal (renewed every quarter of it); "
                   "on S3 every write is signed to expire with it.")
@click.option("--lock-margin", type=click.FloatRange(min=0), default=MARGIN_SECONDS,
              show_default=True,
              help="Seconds after the lease during which a write S3 began to accept may still "
                   "land: a run taking an expired lock over waits them out.")
@click.option("--plan", "plan_file", metavar="FILE",
              type=click.Path(exists=True, dir_okay=False, path_type=str),
              help="Apply exactly this saved plan (`planner plan --out`): refused if the target "
                   "or the build changed since. SITE, --target, --acl and the plan's options come "
                   "from the file (a SITE, --target or --acl given must be the plan's).")
@named_target
@_errors
def deploy(dry_run: bool, lock_timeout: float, lock_lease: float, lock_margin: float,
           plan_file: str | None, **kw: Any) -> None:
    """Upload what changed, commit the manifest, invalidate, delete what was removed.

    \b
    Example:
      planner deploy public --target s3://my-bucket --distribution E123ABC
    """
    site, backend, options, accept = _deploy_inputs(kw, plan_file)
    _debug_log(kw["verbose"])
    people = kw["fmt"] != "json" and not kw["quiet"]
    if dry_run:
        with _hashing(people) as hashed:
            dry = plan_deploy(site, backend, options, __version__, accept, hashed)
        if not kw["quiet"] or kw["fmt"] == "json":
            _show(dry, kw["fmt"], kw["verbose"])
        return
    with _hashing(people) as hashed:
        the_plan, result = deploy_site(
            site, backend, options, __version__, lock_timeout=lock_timeout,
            workers=kw["workers"], waiting=Waiting(kw["wait_timeout"]), accept=accept,
            hash_progress=hashed, lease=lock_lease, margin=lock_margin,
            **_deploy_feedback(kw["fmt"], kw["verbose"], people),
        )
    if kw["fmt"] == "json":
        _show(the_plan, "json", kw["verbose"], result)
    else:
        click.echo(("\n" if kw["fmt"] == "table" else "\n**") + render.summary_line(the_plan, result)
                   + ("" if kw["fmt"] == "table" else "**"))


def _deploy_inputs(kw: dict[str, Any], plan_file: str | None):
    """(site, read-only backend, options, saved-plan check or None) of a deploy: from the
    command line, or with --plan FILE from the saved plan (checked in full, and against the
    SITE, --target and --acl given, before anything remote is read)."""
    if not plan_file:
        # Planning writes nothing (not even the count cache) until the deploy is under way.
        backend, options = _prepare(kw, read_only=True)
        return kw["site"], backend, options, None
    saved_plan = saved.read_for(plan_file, kw["site"], kw["target"], kw["acl"])
    backend = make_target_backend(
        saved_plan.target, saved_plan.state, clients_of(kw), read_only=True, acl=saved_plan.acl,
    )
    return saved_plan.site, backend, saved_plan.options, saved_plan.accept


def _deploy_feedback(fmt: str, verbose: bool, people: bool) -> dict[str, Any]:
    """``deploy_site``'s log, plan display and upload progress: on stderr for people, none
    for --format json or --quiet."""
    if not people:
        return {}
    return {
        "log": lambda msg: click.echo(msg, err=True),
        "show": lambda p: _show(p, fmt, verbose),
        "progress": lambda p: UploadProgress(len(p.uploads), p.upload_bytes),
    }


@cli.command()
@click.option("--target", "-t", required=True, metavar="TARGET",
              help="s3://bucket[/prefix], file:///abs/dir or a folder path.")
@click.option("--pending-record", is_flag=True,
              help="Also remove the pending record an interrupted deploy left (one that cannot "
                   "be read); then run `planner verify --repair`.")
@state_option()
@with_aws_options
@named_target
@_errors
def unlock(target: str, state: str | None, pending_record: bool, **aws: Any) -> None:
    """Remove the target's deploy lock by hand (when the deploy that held it is gone).

    \b
    Example:
      planner unlock --target s3://my-bucket
    """
    from planner.lock import unlock as remove_lock
    from planner.plan.journal import JOURNAL_NAME

    backend = make_target_backend(target, state, clients_of(aws))
    held = remove_lock(backend.store)
    if held is None:
        click.echo(f"{backend.target.uri} was not locked")
    else:
        click.echo(f"removed the lock of {held.describe()} from {backend.target.uri}")
    if pending_record:
        if backend.store.read(JOURNAL_NAME)[0] is None:
            click.echo(f"{backend.target.uri} has no pending record")
        else:
            backend.store.remove(JOURNAL_NAME)
            click.echo(f"removed the pending record of {backend.target.uri}: run `planner "
                       f"verify --target {backend.target.uri} --repair BUILD` to put right "
                       "what the interrupted deploy left")


@cli.command("move-state")
@click.option("--target", "-t", required=True, metavar="TARGET",
              help="s3://bucket[/prefix], file:///abs/dir or a folder path.")
@click.option("--state", required=True, metavar="PLACE",
              help="Where the state goes: s3://bucket/prefix (a folder for a local target).")
@click.option("--from", "source", default=None, metavar="PLACE",
              help="Where the state is now  [default: <target>/.planner/]")
@with_aws_options
@named_target
@_errors
def move_state(target: str, state: str, source: str | None, **aws: Any) -> None:
    """Move the target's manifest, ledger and other state to a place of its own.

    Afterwards, give the same --state to every command (or `state = ...` in the target's
    table of planner.toml).

    \b
    Example:
      planner move-state --target s3://www-example-com --state s3://example-ops/planner/www
    """
    from planner.movestate import move_state as move

    clients = clients_of(aws)
    old = make_target_backend(target, source, clients)
    new = make_target_backend(target, state, clients)
    moved = move(old.store, new.store, new.target.uri, fence=new.fence)
    click.echo(f"moved {len(moved)} state objects of {new.target.uri} from {old.store.location} "
               f"to {new.store.location}; from now on, pass --state {state}")


from planner.cli.paths import paths  # noqa: E402 - the commands live in their own modules
from planner.cli.report import report  # noqa: E402
from planner.cli.verify import verify  # noqa: E402

cli.add_command(paths)
cli.add_command(report)
cli.add_command(verify)


def _detailed() -> bool:
    return "--detailed-exitcode" in sys.argv[1:]


def main() -> None:
    # With `plan --detailed-exitcode`, 2 means "something would change": bad usage (and a bad
    # configuration file) exit 1 then, as in Terraform, so `|| [ $? -eq 2 ]` hides no error.
    try:
        code = cli.main(prog_name="planner", standalone_mode=False)
    except click.ClickException as exc:
        exc.show()
        sys.exit(1 if _detailed() and exc.exit_code == 2 else exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    sys.exit(code if isinstance(code, int) else 0)
