"""`planner plan`: what a deploy would upload, delete and invalidate, and what it would cost."""

from __future__ import annotations

import sys
from typing import Any

import click

from planner import __version__
from planner.cli.common import errors as _errors
from planner.cli.common import (
    named_target,
)
from planner.cli.planning import _debug_log, _hashing, _options, _prepare, _show
from planner.errors import PlannerError
from planner.plan import saved
from planner.plan.build import build_plan


@click.command()
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
    _show(the_plan, kw["fmt"], kw["verbose"])  # -q silences stderr's lines, never stdout
    if detailed_exitcode and (the_plan.has_work or the_plan.resume is not None):
        sys.exit(2)


