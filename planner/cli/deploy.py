"""`planner deploy`: plan, take the lock, upload, commit, delete, invalidate."""

from __future__ import annotations

import dataclasses
from typing import Any

import click

from planner import __version__
from planner.apply import Waiting, check_finished, deploy_site, plan_deploy
from planner.cli.common import (
    clients_of,
    make_target_backend,
    named_target,
)
from planner.cli.common import errors as _errors
from planner.cli.planning import _debug_log, _hashing, _options, _prepare, _show
from planner.cli.progress import UploadProgress
from planner.lock import LEASE_SECONDS, MARGIN_SECONDS
from planner.plan import render, saved


@click.command()
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
@click.option("--wait", is_flag=True,
              help="After submitting the invalidations, wait until CloudFront has completed "
                   "them all (at most --wait-timeout; then exit 7, the deploy itself done).")
@named_target
@_errors
def deploy(dry_run: bool, lock_timeout: float, lock_lease: float, lock_margin: float,
           plan_file: str | None, wait: bool, **kw: Any) -> None:
    """Upload what changed, commit the manifest, invalidate, delete what was removed.

    \b
    Example:
      planner deploy public --target s3://my-bucket --distribution E123ABC
    """
    site, backend, options, accept = _deploy_inputs(kw, plan_file)
    _debug_log(kw["verbose"])
    # Lines for people on stderr (progress, log): none with --quiet or --format json. The
    # output asked for (the plan as a table or markdown and the summary line, or the JSON)
    # goes to stdout whatever -q says.
    people = kw["fmt"] != "json" and not kw["quiet"]
    if dry_run:
        with _hashing(people) as hashed:
            dry = plan_deploy(site, backend, options, __version__, accept, hashed)
        _show(dry, kw["fmt"], kw["verbose"])
        return
    with _hashing(people) as hashed:
        the_plan, result = deploy_site(
            site, backend, options, __version__, lock_timeout=lock_timeout,
            workers=kw["workers"], waiting=Waiting(kw["wait_timeout"], for_completion=wait),
            accept=accept,
            hash_progress=hashed, lease=lock_lease, margin=lock_margin,
            **_deploy_feedback(kw["fmt"], kw["verbose"], people),
        )
    if kw["fmt"] == "json":
        _show(the_plan, "json", kw["verbose"], result)
    else:
        click.echo(("\n" if kw["fmt"] == "table" else "\n**") + render.summary_line(the_plan, result)
                   + ("" if kw["fmt"] == "table" else "**"))
    check_finished(result)  # --wait past --wait-timeout: exit 7


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
    return saved_plan.site, backend, _capped(saved_plan.options, kw["max_cost"]), saved_plan.accept


def _capped(options, max_cost: float | None):
    """A saved plan's options under a --max-cost given now too: the lower cap holds (the
    month's usage may have grown since the plan was made)."""
    if max_cost is None:
        return options
    caps = [c for c in (options.max_cost, max_cost) if c is not None]
    return dataclasses.replace(options, max_cost=min(caps))


def _deploy_feedback(fmt: str, verbose: bool, people: bool) -> dict[str, Any]:
    """``deploy_site``'s plan display (on stdout, as a table or markdown, also with --quiet;
    --format json prints the plan with the result instead), log and upload progress (on
    stderr for people, none with --format json or --quiet)."""
    feedback: dict[str, Any] = {}
    if fmt != "json":
        feedback["show"] = lambda p: _show(p, fmt, verbose)
    if people:
        feedback["log"] = lambda msg: click.echo(msg, err=True)
        feedback["progress"] = lambda p: UploadProgress(len(p.uploads), p.upload_bytes)
    return feedback


