"""``planner verify``: compare the target with its manifest; ``--repair SITE`` fixes it.
The command parses, calls :mod:`planner.verify`, and renders."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from planner.backends.targets import check_apart
from planner.cli.common import (
    clients_of,
    distribution_ids,
    make_target_backend,
    named_target,
    state_option,
    with_aws_options,
)
from planner.cli.common import errors as _errors
from planner.core.words import plural
from planner.lock import DeployLock
from planner.plan.build import check_surroundings, url_groups_for
from planner.plan.compute import Options
from planner.verify import DRIFT_EXIT, refuse_pending, repair
from planner.verify import verify as check_target


def to_dict(v) -> dict[str, Any]:
    paths = [p for inv in v.invalidations for p in inv.paths]
    return {
        "target": v.target,
        "deploy_id": v.deploy_id,
        "checked": v.checked,
        "drift": [
            {"key": d.key, "problem": d.problem, "manifest_size": d.manifest_size,
             "target_size": d.target_size, "detail": d.detail}
            for d in v.drift
        ],
        "deep": v.deep,
        "nested_targets": list(v.nested),
        "repaired": v.repaired,
        "deleted": v.deleted,
        "not_repairable": [{"key": k, "why": why} for k, why in v.not_repairable],
        "invalidation": None if not v.invalidations else {
            "paths": sorted(set(paths)),
            "distribution_ids": [d for inv in v.invalidations for d in inv.distribution_ids],
            "ids": v.invalidation_ids,
            # per group of distributions serving the target under the same URLs
            "invalidations": [
                {"paths": list(inv.paths), "distribution_ids": list(inv.distribution_ids)}
                for inv in v.invalidations
            ],
        },
        "clean": v.clean,
    }


def to_text(v, repairing: bool) -> str:
    from tabulate import tabulate

    out = [f"Verify {v.target} (deploy {v.deploy_id or '-'}): {plural(v.checked, 'key')} in the manifest"
           + ("; headers compared" if v.deep else "")]
    for prefix in v.nested:
        if prefix in v.states:
            out.append(f"{prefix} holds the state of another target (its manifest, ledger "
                       "and lock): left out")
        else:
            out.append(f"{prefix} holds another target (its own state folder): left out")
    if not v.drift:
        out.append("no drift: the target holds exactly what the manifest records")
        return "\n".join(out) + "\n"
    fixed = set(v.repaired) | set(v.deleted)
    why = dict(v.not_repairable)
    rows = []
    for d in v.drift:
        row = [d.key, d.problem + (f" ({d.detail})" if d.detail else ""),
               "-" if d.manifest_size is None else d.manifest_size,
               "-" if d.target_size is None else d.target_size]
        if repairing:
            row.append(("deleted" if d.key in v.deleted else "re-uploaded") if d.key in fixed
                       else f"left: {why.get(d.key, '')}")
        rows.append(row)
    headers = ["key", "problem", "manifest size", "target size"] + (["repair"] if repairing else [])
    align = ("left", "left", "right", "right") + (("left",) if repairing else ())
    out.append(tabulate(rows, headers=headers, tablefmt="simple", colalign=align))
    count = sum(len(inv.paths) for inv in v.invalidations)
    if count:
        ids = ", ".join(f"{k}:{i}" for k, i in v.invalidation_ids.items()) or "not submitted"
        out.append(f"invalidated {plural(count, 'path')} ({ids})")
    counts = {p: sum(d.problem == p for d in v.drift)
              for p in ("missing", "size", "etag", "headers", "extra")}
    other = "".join(f", {counts[p]} {p} mismatch" for p in ("etag", "headers") if counts[p])
    out.append(
        f"drift: {counts['missing']} missing, {counts['size']} size mismatch{other}, "
        f"{counts['extra']} extra" + (f"; repaired {len(fixed)}" if repairing else "")
    )
    return "\n".join(out) + "\n"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--target", "-t", required=True, metavar="TARGET",
              help="s3://bucket[/prefix], file:///abs/dir or a folder path.")
@click.option("--repair", "site", metavar="SITE", default=None,
              type=click.Path(file_okay=False, path_type=str),
              help="Re-upload missing or wrong objects from this build folder (only files "
                   "identical to the manifest's) and invalidate their URLs.")
@click.option("--delete-extra", is_flag=True,
              help="With --repair: delete objects the manifest does not have.")
@click.option("--distribution", "-d", "distributions", multiple=True, metavar="ID",
              help="With --repair: CloudFront distribution to invalidate (repeatable).")
@click.option("--url-prefix", default=None, metavar="PATH",
              help="URL path under which the target's root is served  [default: read from the "
                   "distribution's origins and behaviors, else /]")
@click.option("--lock-timeout", type=click.FloatRange(min=0), default=0.0, show_default=True,
              help="With --repair: seconds to wait for the target's lock.")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True)
@click.option("--acl", type=click.Choice(["private", "public-read"]), default=None,
              help="With --repair: canned ACL of re-uploaded files.")
@click.option("--deep", is_flag=True,
              help="Also compare every object's Content-Type, Cache-Control and "
                   "Content-Encoding with the manifest (a HeadObject per object).")
@state_option()
@with_aws_options
@named_target
@_errors
def verify(target: str, site: str | None, delete_extra: bool, distributions: tuple[str, ...],
           url_prefix: str, lock_timeout: float, fmt: str, acl: str | None, deep: bool,
           state: str | None, **kw: Any) -> None:
    """Compare the target with its manifest (missing, extra, size, ETag); exit 5 on drift.

    \b
    Example:
      planner verify --target s3://my-bucket --repair public -d E123ABC
    """

    backend = make_target_backend(target, state, clients_of(kw), acl=acl)
    if site is not None:
        check_apart(site, backend.target)
    if site is None:
        _, found = check_target(backend, deep)
    else:
        options = Options(url_prefix=url_prefix,
                          distribution_ids=distribution_ids(backend, distributions))
        # Refuse bad input before the lock is taken, so a refused repair writes nothing: a
        # target inside another one or a state place, a state place inside a site...
        check_surroundings(backend)
        _, found = check_target(backend, deep)
        refuse_pending(backend)
        if found.drift and options.distribution_ids:
            url_groups_for(backend, options)  # each one exists and serves the target
        with DeployLock(backend.store, "verify --repair", timeout=lock_timeout,
                        fence=backend.fence) as lock:
            manifest, found = check_target(backend, deep)
            if found.drift:
                lock.keep_alive()
                found = repair(backend, manifest, found, site, options, delete_extra, lock.check)
    if fmt == "json":
        click.echo(json.dumps(to_dict(found), indent=2, ensure_ascii=False))
    else:
        click.echo(to_text(found, site is not None), nl=False)
    if not found.clean:
        sys.exit(DRIFT_EXIT)
