"""``planner paths``: the minimizer on its own, for sites deployed with other tools.

The command only parses options, calls :mod:`planner.pathlist` and the minimizer, and
renders. ``planner.cli`` registers it with ``cli.add_command(paths)``; it also runs alone.
"""

from __future__ import annotations

import datetime as _dt
import json
import sys
from dataclasses import dataclass
from typing import Any, BinaryIO

import click

from manifests import ManifestError
from planner.backends import account_usage
from planner.backends.targets import check_distribution_names
from planner.cli.common import (
    clients_of,
    distribution_ids,
    make_target_backend,
    with_aws_options,
)
from planner.core.cost import (
    FREE_PATHS_PER_MONTH,
    MAX_PATHS_IN_PROGRESS,
    MAX_WILDCARDS_IN_PROGRESS,
    PRICE_PER_PATH,
    CostModel,
)
from planner.core.minimizer import Solution, minimize
from planner.core.pacing import month_of
from planner.core.words import Doc, money, plural
from planner.errors import PlannerError
from planner.pathlist import STDIN, list_urls, make_problem, universe_urls
from planner.plan.build import paused_gc
from planner.plan.render import solution_fields


def solve(
    universe: str,
    changed: str,
    model: CostModel,
    max_wildcards: int,
    max_paths: int,
    url_prefix: str = "/",
    stdin: BinaryIO | None = None,
) -> tuple[Solution, int]:
    """Read both lists, minimize; returns the solution and the size of the universe.
    Raises PlannerError (BadPathList, InvalidationError) and ManifestError (ScanError)."""
    with paused_gc():
        all_urls = universe_urls(universe, url_prefix, stdin)
        changed_urls = list_urls(changed, "changed", url_prefix, stdin)
        problem = make_problem(all_urls, changed_urls, model, max_wildcards, max_paths)
        return minimize(problem), len(problem.universe)


def to_dict(sol: Solution, free_paths: int, universe_urls: int) -> dict[str, Any]:
    """The JSON shape: the fields of ``plan``'s ``invalidation`` object that make sense here,
    plus the size of the universe and what each wildcard covers."""
    return {
        "paths": list(sol.paths),
        "universe_urls": universe_urls,
        **solution_fields(sol),
        "free_paths": free_paths,
        "wildcard_cover": [
            {"path": c.path, "changed": c.changed, "collateral": c.collateral}
            for c in sol.wildcard_cover
        ],
    }


def to_table(sol: Solution) -> str:
    """Each path with the changed URLs and needless misses it covers, then the figures: the
    AWS charge and the miss estimate, apart."""
    if not sol.paths:
        return "nothing to invalidate\n"
    doc = Doc("table")
    cover = {c.path: c for c in sol.wildcard_cover}
    doc.table(
        [[p, f"{cover[p].changed:,}", f"{cover[p].collateral:,}"] if p in cover else [p, "1", "0"]
         for p in sol.paths],
        ["path", "changed", "needless"], ("left", "right", "right"),
    )
    doc.line(
        f"{plural(len(sol.paths), 'path')} ({plural(sol.wildcards, 'wildcard')}) for "
        f"{plural(sol.changed_urls, 'changed URL')}, "
        f"{plural(sol.collateral_urls, 'needless miss', 'needless misses')}"
    )
    doc.line(f"AWS charge: {money(sol.charge_usd)} ({plural(sol.paid_paths, 'paid path')})")
    doc.line(f"miss estimate: {money(sol.miss_cost_usd)} (cost model, --miss-cost)")
    if not sol.exact:
        doc.line(f"not proven optimal: cost model total {money(sol.cost_usd)}, lower bound "
                 f"{money(sol.cost_lower_bound_usd)}")
    return doc.text()


@dataclass(frozen=True)
class Room:
    """What the month leaves this invalidation: free paths, and the paths CloudFront accepts
    now on the distributions (15 wildcards and 3,000 others, less those in progress)."""

    free: int
    max_wildcards: int
    max_paths: int
    source: str  # where the usage came from ("" when nothing was read)
    distribution_ids: tuple[str, ...] = ()  # the --distribution names, resolved


def room_for(kw: dict[str, Any]) -> Room:
    """``--free``, ``--max-wildcards`` and ``--max-paths`` as given; those not given come
    from the month's usage when ``--target`` or ``--distribution`` asks for it (the account's
    paths this month, in progress on the distributions), else from CloudFront's defaults."""
    usage, ids = None, ()
    if kw["target"] or kw["distribution_names"]:
        usage, ids = _usage(kw)
    used = usage.paths_used if usage is not None else 0
    max_w, max_p = (
        usage.room_on(ids) if usage is not None
        else (MAX_WILDCARDS_IN_PROGRESS, MAX_PATHS_IN_PROGRESS)
    )
    return Room(
        free=kw["free"] if kw["free"] is not None
        else max(0, kw["free_paths_per_month"] - used),
        max_wildcards=kw["max_wildcards"] if kw["max_wildcards"] is not None else max_w,
        max_paths=kw["max_paths"] if kw["max_paths"] is not None else max_p,
        source=usage.source if usage is not None else "",
        distribution_ids=ids,
    )


def _usage(kw: dict[str, Any]):
    """(the month's usage, the distribution ids): through the target's backend (its count
    cache; a local folder's own invalidation log), else from CloudFront alone (ids only)."""
    month = month_of(_dt.datetime.now(_dt.UTC))
    clients = clients_of(kw)
    if kw["target"]:
        backend = make_target_backend(kw["target"], None, clients, read_only=True)
        ids = distribution_ids(backend, tuple(kw["distribution_names"]))
        return backend.usage(month, ids), ids
    check_distribution_names(tuple(kw["distribution_names"]))
    ids = tuple(dict.fromkeys(kw["distribution_names"]))
    return account_usage(clients, month, ids), ids


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--universe", "-u", required=True, metavar="FILE|DIR|-",
              help="Every URL that may be cached: a list file, or the build folder.")
@click.option("--changed", "-c", required=True, metavar="FILE|-",
              help="The URLs (or keys) that must be invalidated; '-' reads standard input.")
@click.option("--free", type=click.IntRange(min=0), default=None,
              help="Free invalidation paths left this month.  [default: 1,000; with --target "
                   "or --distribution, what the month's usage leaves]")
@click.option("--target", "-t", default=None, metavar="TARGET",
              help="Read the month's usage as `plan` does: CloudFront's count for an s3:// "
                   "target (with its count cache), a local target's own invalidation log.")
@click.option("--distribution", "-d", "distribution_names", multiple=True, metavar="ID",
              help="Distribution the paths go to (repeatable): its invalidations in progress "
                   "limit the paths; without --target, the month's usage is read from "
                   "CloudFront (ids only).")
@click.option("--free-paths-per-month", type=click.IntRange(min=0),
              default=FREE_PATHS_PER_MONTH, show_default=True)
@click.option("--max-wildcards", type=click.IntRange(0, MAX_WILDCARDS_IN_PROGRESS),
              default=None,
              help="Wildcard paths allowed.  [default: 15, less those in progress on the "
                   "distributions]")
@click.option("--max-paths", type=click.IntRange(0, MAX_PATHS_IN_PROGRESS), default=None,
              help="Other paths allowed.  [default: 3,000, less those in progress on the "
                   "distributions]")
@click.option("--miss-cost", type=click.FloatRange(min=0), default=None,
              help="Dollars per needless cache miss.  [default: price/1000]")
@click.option("--price-per-path", type=click.FloatRange(min=0), default=PRICE_PER_PATH,
              show_default=True, help="Dollars per paid path.")
@click.option("--distributions", type=click.IntRange(min=1), default=None,
              help="How many distributions the paths are sent to (each is billed).  "
                   "[default: the --distribution given, else 1]")
@click.option("--url-prefix", default="/", show_default=True,
              help="URL path under which keys are served.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "table"]), default="text",
              show_default=True)
@with_aws_options
def paths(universe: str, changed: str, **kw: Any) -> None:
    """Print the cheapest invalidation paths for a list of changed URLs.

    \b
    Input lists hold one entry a line; blank lines and lines starting
    with '#' are skipped, spaces around an entry dropped.
      /blog/café.html   a URL path (leading '/'), taken as is and
                        percent-encoded as CloudFront needs; existing
                        %XX escapes are kept, any other '%' is %25,
                        '*' and '?' are literal (%2A, %3F)
      blog/index.html   a bucket key: its URLs, /blog/ and
                        /blog/index.html (under --url-prefix)
    --universe is every URL that may be cached (a list, or a build
    folder whose files are its keys); changed URLs missing from it
    (deleted pages) are added. One of the two may be '-' (stdin).

    \b
    Output: text, one path a line (nothing when nothing changed);
    json, {"paths", "cost_usd", "cost_lower_bound_usd", "exact",
    "paid_paths", "collateral_urls", "wildcards", ...}; table, each
    path with the changed URLs and needless misses it covers.

    \b
    Examples:
      planner paths --universe public --changed changed-keys.txt
      planner paths -u urls.txt -c - --free 0 --format json < changed.txt

    \b
    Submitting them (bash; the quoted array keeps a wildcard such as
    /blog/* away from the shell's globbing):
      planner paths -u public -c changed-keys.txt > paths.txt
      mapfile -t P < paths.txt
      [ ${#P[@]} -eq 0 ] || aws cloudfront create-invalidation \\
        --distribution-id E123ABC --paths "${P[@]}"
    """
    if universe == STDIN and changed == STDIN:
        raise click.UsageError("only one of --universe and --changed can be '-' (standard input)")
    try:
        room = room_for(kw)
        model = CostModel(
            free_paths=room.free, price=kw["price_per_path"], miss_cost=kw["miss_cost"],
            distributions=kw["distributions"] or max(1, len(room.distribution_ids)),
        )
        stdin = getattr(sys.stdin, "buffer", None)  # read only when a list is '-'
        sol, n_universe = solve(universe, changed, model, room.max_wildcards, room.max_paths,
                                kw["url_prefix"], stdin)
    except (PlannerError, ManifestError) as exc:
        raise click.ClickException(" ".join(str(exc).split("\n"))) from None
    fmt = kw["fmt"]
    if fmt == "json":
        doc = to_dict(sol, room.free, n_universe)
        doc["usage_source"] = room.source or None
        click.echo(json.dumps(doc, indent=2, ensure_ascii=False))
    elif fmt == "table":
        click.echo(to_table(sol), nl=False)
    else:
        click.echo("".join(p + "\n" for p in sol.paths), nl=False)
