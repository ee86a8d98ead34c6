"""``planner report``: the month's invalidations, the tool's deploys, and where the month is
heading. The command parses, calls :mod:`planner.report.sources` and :mod:`planner.report.build`,
and renders; ``planner.cli`` registers it.
"""

from __future__ import annotations

import datetime as dt
import sys
from typing import Any

import click

from manifests import ManifestError
from planner.cli.common import clients_of, named_target, state_option, with_aws_options
from planner.core.cost import FREE_PATHS_PER_MONTH, PRICE_PER_PATH
from planner.errors import PlannerError
from planner.report.build import FAIL_OVER_EXIT, build_report, parse_month
from planner.report.render import render
from planner.report.sources import read_sources


def _month(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:

    if value is None:
        return None
    try:
        return parse_month(value, dt.datetime.now(dt.UTC))
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--month", "-m", callback=_month, metavar="YYYY-MM",
              help="Calendar month (UTC).  [default: this month]")
@click.option("--target", "-t", metavar="TARGET",
              help="Also report this target's deploys (its ledger); s3://bucket[/prefix] or a "
                   "folder.")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "csv", "markdown"]),
              default="table", show_default=True)
@click.option("--warn-over", type=click.FloatRange(min=0), default=0.0, show_default=True,
              metavar="USD", help="Print a warning when the month's projected cost is above.")
@click.option("--fail-over", type=click.FloatRange(min=0), default=None, metavar="USD",
              help="Warn and exit 3 when the month's projected cost is above.")
@click.option("--free-paths-per-month", type=click.IntRange(min=0),
              default=FREE_PATHS_PER_MONTH, show_default=True)
@click.option("--price-per-path", type=click.FloatRange(min=0), default=PRICE_PER_PATH,
              show_default=True, help="Dollars per paid invalidation path.")
@state_option()
@with_aws_options
@named_target
def report(month: str | None, target: str | None, fmt: str, warn_over: float,
           fail_over: float | None, free_paths_per_month: int, price_per_path: float,
           state: str | None, **aws: Any) -> None:
    """Monthly invalidation usage and cost: the account (from CloudFront, other tools
    included), the tool's deploys (from the target's ledger), and a projection.

    \b
    Example:
      planner report --target s3://my-bucket --format markdown >> "$GITHUB_STEP_SUMMARY"
    """

    now = dt.datetime.now(dt.UTC)
    month = month or f"{now:%Y-%m}"
    try:
        src = read_sources(target, month, clients_of(aws), state)
    except (PlannerError, ManifestError) as exc:
        click.echo(f"Error: {exc}", err=True)
        sys.exit(getattr(exc, "exit_code", 1))
    doc: dict[str, Any] = build_report(
        month=month,
        now=now,
        account=src.account,
        records=src.records,
        target=src.target,
        unreadable=src.unreadable,
        pending=src.pending,
        free_per_month=free_paths_per_month,
        price=price_per_path,
        warn_over=warn_over,
        fail_over=fail_over,
        notes=src.notes,
    )
    click.echo(render(doc, fmt), nl=False)
    if doc["over_fail_amount"]:
        if fmt in ("json", "csv"):  # the warning is in the document; say it where people look
            click.echo(f"Error: {doc['warnings'][-1]}", err=True)
        sys.exit(FAIL_OVER_EXIT)
