"""What `plan` and `deploy` share: their options (build, target, distributions, cost model,
output), turning them into a backend and Options, and showing a plan."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click

from planner.apply import WORKERS
from planner.backends.targets import check_apart
from planner.cli import config
from planner.cli.common import (
    Dollars,
    aws_options,
    clients_of,
    distribution_ids,
    make_target_backend,
    state_option,
)
from planner.cli.progress import HashProgress
from planner.core.cost import FREE_PATHS_PER_MONTH, PRICE_PER_PATH
from planner.core.headers import DEFAULT_CACHE_CONTROL
from planner.plan import render
from planner.plan.compute import Options


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
        click.option("--pace", type=click.Choice(["price", "even", "none"]), default="price",
                     show_default=True,
                     help="price: take the plan whose misses, plus the least cost of the "
                          "month's deploys to come (the target's ledger, the account's pace) "
                          "with the free paths it leaves, are lowest; even: spend at most the "
                          "free paths left / days left x 3 per deploy; none: all that is left, "
                          "free."),
        click.option("--miss-cost", type=click.FloatRange(min=0), default=None,
                     help="Dollars per needless cache miss  [default: price-per-path / 1000]"),
        click.option("--wait-timeout", type=click.FloatRange(min=0), default=600.0,
                     show_default=True,
                     help="Bounds each wait for CloudFront, in seconds: while it has too many "
                          "invalidations in progress (then the invalidation stays pending for "
                          "the next run), and with deploy --wait for it to complete them (then "
                          "exit 7)."),
        click.option("--max-cost", type=Dollars(), default=None, metavar="USD",
                     help="Refuse (exit 6, nothing written) when AWS would charge this deploy's "
                          "invalidation more than USD dollars; the message says what fits.  "
                          "[default: no cap]"),
        click.option("--free-paths-per-month", type=click.IntRange(min=0),
                     default=FREE_PATHS_PER_MONTH, show_default=True),
        click.option("--price-per-path", type=click.FloatRange(min=0), default=PRICE_PER_PATH,
                     show_default=True, help="Dollars per paid invalidation path."),
        click.option("--workers", type=click.IntRange(min=1), default=WORKERS, show_default=True,
                     help="Uploads in flight at once (files of 1 MiB or more: at most 8)."),
        click.option("--format", "fmt", type=click.Choice(["table", "json", "markdown"]),
                     default="table", show_default=True),
        click.option("--verbose", "-v", is_flag=True,
                     help="List every upload, delete and path, and log each step (debug)."),
        click.option("--quiet", "-q", is_flag=True,
                     help="No progress or log lines on stderr (errors only). The output asked "
                          "for still goes to stdout: the plan as a table or markdown (and "
                          "deploy's summary line), or the JSON."),
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
        max_cost=kw["max_cost"],
    )
    return backend, options


def _header_rules() -> tuple[Any, ...]:

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

    return HashProgress()


def _show(plan, fmt: str, verbose: bool, result=None) -> None:
    if fmt == "json":  # streamed: a first deploy of a million files lists a million uploads
        out = click.get_text_stream("stdout")
        render.write_json(plan, out.write, result)
        out.write("\n")
        out.flush()
    elif result is None:
        click.echo(render.to_text(plan, fmt, verbose), nl=False)


