"""``planner paths``: the minimizer on its own, for sites deployed with other tools.

The command only parses options, calls :mod:`planner.pathlist` and the minimizer, and
renders. ``planner.cli`` registers it with ``cli.add_command(paths)``; it also runs alone.
"""

from __future__ import annotations

import json
import sys
from typing import Any, BinaryIO

import click

from manifests import ManifestError
from planner.core.cost import (
    FREE_PATHS_PER_MONTH,
    MAX_PATHS_IN_PROGRESS,
    MAX_WILDCARDS_IN_PROGRESS,
    PRICE_PER_PATH,
    CostModel,
)
from planner.core.minimizer import Solution, minimize
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


def _money(x: float) -> str:
    return f"${x:,.2f}" if x >= 0.01 or x == 0 else f"${x:.4f}"


def to_table(sol: Solution) -> str:
    """Each path with the changed URLs and needless misses it covers, then a summary line."""
    if not sol.paths:
        return "nothing to invalidate\n"
    from tabulate import tabulate

    cover = {c.path: c for c in sol.wildcard_cover}
    rows = [
        [p, cover[p].changed, cover[p].collateral] if p in cover else [p, 1, 0]
        for p in sol.paths
    ]
    table = tabulate(rows, headers=["path", "changed", "needless"], tablefmt="simple")
    bound = "" if sol.exact else f" (not proven optimal; lower bound {_money(sol.cost_lower_bound_usd)})"
    return (
        f"{table}\n\n{len(sol.paths)} paths ({sol.wildcards} wildcards) for {sol.changed_urls}"
        f" changed URLs, {sol.collateral_urls} needless misses; paid paths: {sol.paid_paths};"
        f" cost: {_money(sol.cost_usd)}{bound}\n"
    )


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--universe", "-u", required=True, metavar="FILE|DIR|-",
              help="Every URL that may be cached: a list file, or the build folder.")
@click.option("--changed", "-c", required=True, metavar="FILE|-",
              help="The URLs (or keys) that must be invalidated; '-' reads standard input.")
@click.option("--free", type=click.IntRange(min=0), default=FREE_PATHS_PER_MONTH,
              show_default=True, help="Free invalidation paths left this month.")
@click.option("--max-wildcards", type=click.IntRange(0, MAX_WILDCARDS_IN_PROGRESS),
              default=MAX_WILDCARDS_IN_PROGRESS, show_default=True,
              help="Wildcard paths allowed (15 minus those in progress).")
@click.option("--max-paths", type=click.IntRange(0, MAX_PATHS_IN_PROGRESS),
              default=MAX_PATHS_IN_PROGRESS, show_default=True,
              help="Other paths allowed (3,000 minus those in progress).")
@click.option("--miss-cost", type=click.FloatRange(min=0), default=None,
              help="Dollars per needless cache miss.  [default: price/1000]")
@click.option("--price-per-path", type=click.FloatRange(min=0), default=PRICE_PER_PATH,
              show_default=True, help="Dollars per paid path.")
@click.option("--distributions", type=click.IntRange(min=1), default=1, show_default=True,
              help="Distributions the paths are sent to.")
@click.option("--url-prefix", default="/", show_default=True,
              help="URL path under which keys are served.")
@click.option("--format", "fmt", type=click.Choice(["text", "json", "table"]), default="text",
              show_default=True)
def paths(
    universe: str,
    changed: str,
    free: int,
    max_wildcards: int,
    max_paths: int,
    miss_cost: float | None,
    price_per_path: float,
    distributions: int,
    url_prefix: str,
    fmt: str,
) -> None:
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
    model = CostModel(
        free_paths=free, price=price_per_path, miss_cost=miss_cost, distributions=distributions
    )
    stdin = getattr(sys.stdin, "buffer", None)  # read only when a list is '-'
    try:
        sol, n_universe = solve(universe, changed, model, max_wildcards, max_paths, url_prefix, stdin)
    except (PlannerError, ManifestError) as exc:
        raise click.ClickException(" ".join(str(exc).split("\n"))) from None
    if fmt == "json":
        click.echo(json.dumps(to_dict(sol, free, n_universe), indent=2, ensure_ascii=False))
    elif fmt == "table":
        click.echo(to_table(sol), nl=False)
    else:
        click.echo("".join(p + "\n" for p in sol.paths), nl=False)
