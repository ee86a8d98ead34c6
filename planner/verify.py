"""Drift: compare what the target holds with its manifest, and repair it from the build.

``repair_plan`` is pure (the comparison is :func:`planner.core.drift.compare`); ``verify`` lists the target (the backend's
``list_site``) and ``repair`` writes, under the deploy lock.
"""

from __future__ import annotations

import datetime as _dt
import os
import secrets
from dataclasses import dataclass, field
from typing import Callable, Mapping

import xxhash

from manifests import DEFAULT_EXCLUDES, Entry, Manifest, commit_manifest, load_manifest
from manifests.scan import scan
from planner import ledger
from planner.apply import Result, Waiting, finish, put_bytes
from planner.backends import Backend
from planner.core.drift import Drift, compare
from planner.core.headers import headers_for, is_page
from planner.errors import PlannerError
from planner.plan.build import check_state_given, read_journal, url_groups_for
from planner.plan.compute import (
    Invalidation,
    Options,
    Upload,
    UrlGroup,
    journal_invalidations,
    plan_invalidations,
)
from planner.plan.journal import JOURNAL_NAME, Journal

DRIFT_EXIT = 5


@dataclass
class Verification:
    target: str
    deploy_id: str
    checked: int  # keys in the manifest
    drift: list[Drift]
    repaired: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    not_repairable: list[tuple[str, str]] = field(default_factory=list)  # (key, why)
    invalidations: tuple[Invalidation, ...] = ()
    invalidation_ids: dict[str, str] = field(default_factory=dict)
    nested: tuple[str, ...] = ()  # folders holding another target: never this one's extras
    states: tuple[str, ...] = ()  # those of ``nested`` that are another target's state place
    deep: bool = False  # headers compared too (HeadObject per object)
    version: str | None = None  # the manifest's store version (ETag) when it was read

    @property
    def clean(self) -> bool:
        """No drift left: none found, or all of it repaired."""
        fixed = set(self.repaired) | set(self.deleted)
        return all(d.key in fixed for d in self.drift)


class NothingDeployed(PlannerError):
    """verify on a target without a manifest."""


def repair_plan(
    manifest: Manifest, drift: list[Drift], build: Mapping[str, Entry], delete_extra: bool
) -> tuple[list[Upload], list[str], list[tuple[str, str]]]:
    """(uploads, deletes, not repairable with why). A key is re-uploaded only from a build
    file whose content is what the manifest records, and with the manifest's headers:
    repairing makes the target equal the manifest, never something else. Pure."""
    uploads: list[Upload] = []
    deletes: list[str] = []
    refused: list[tuple[str, str]] = []
    for d in drift:
        if d.problem == "extra":
            if delete_extra:
                deletes.append(d.key)
            else:
                refused.append((d.key, "not in the manifest (--delete-extra removes it)"))
            continue
        want = manifest.entries[d.key]
        have = build.get(d.key)
        if have is None:
            refused.append((d.key, "not in the build folder"))
        elif (have.hash, have.size) != (want.hash, want.size):
            refused.append((d.key, "the build's file differs from the deployed one (deploy it)"))
        else:
            uploads.append(
                Upload(d.key, d.problem, want.size, want.hash, want.content_type,
                       want.cache_control, want.content_encoding)
            )
    uploads.sort(key=lambda u: (is_page(u.content_type), u.key))
    return uploads, deletes, refused


def verify(backend: Backend, deep: bool = False) -> tuple[Manifest, Verification]:
    """List the target and compare it with its manifest; ``deep``: also read every object's
    headers (HeadObject per object, on a pool of threads)."""
    target = backend.target.uri
    manifest, version = load_manifest(backend.store, target)
    if manifest is None:
        check_state_given(backend)  # its state is kept apart: --state was forgotten
        raise NothingDeployed(f"{target} has no manifest: nothing was deployed there yet")
    listing = backend.list_site()
    heads = None
    if deep:
        heads = backend.heads(sorted(k for k in manifest.entries if k in listing.objects))
    drift = compare(manifest, listing.objects, heads)
    return manifest, Verification(target, manifest.deploy_id, len(manifest.entries), drift,
                                  nested=listing.nested, states=listing.states,
                                  deep=heads is not None, version=version)


def refuse_pending(backend: Backend) -> None:

    if read_journal(backend) is not None:
        raise PlannerError(
            f"{backend.target.uri} has an unfinished deploy (pending record); run deploy first"
        )


def repair(
    backend: Backend,
    manifest: Manifest,
    found: Verification,
    site: str,
    options: Options,
    delete_extra: bool = False,
    check: Callable[[], None] = lambda: None,
    log: Callable[[str], None] = lambda _: None,
) -> Verification:
    """Re-upload (from ``site``) what is missing or wrong, delete extras if asked, and
    invalidate the URLs of what was repaired (the CDN may have cached the wrong answer).

    Done like the end of a deploy: a pending record (naming the committed deploy, so a run
    that stops half-way is finished by the next deploy), the uploads, then ``finish``
    (invalidation, deletes, ledger record, pending record removed)."""

    refuse_pending(backend)
    wanted = {d.key for d in found.drift if d.problem != "extra"}
    build = scan(site, headers_for(options.cache_control, options.header_rules), DEFAULT_EXCLUDES + options.excludes)
    build = {k: e for k, e in build.items() if k in wanted}
    # Keys under another target's folder (made inside this one by an older version) are
    # never written: that target owns them now.
    def owner(key: str) -> str | None:
        return next((p for p in found.nested if key.startswith(p)), None)

    drift = [d for d in found.drift if owner(d.key) is None]
    uploads, deletes, refused = repair_plan(manifest, drift, build, delete_extra)
    refused += [(d.key, f"under {owner(d.key)}, another target's folder")
                for d in found.drift if owner(d.key) is not None]
    found.not_repairable = refused
    touched = [u.key for u in uploads] + deletes
    if not touched:
        return found

    now = _dt.datetime.now(_dt.UTC)
    # New for every repair: the same drift repaired twice must be invalidated twice. A repair
    # that stops half-way is finished from its pending record, which keeps this reference.
    digest = secrets.token_hex(8)
    distributions = tuple(options.distribution_ids or backend.default_distributions)
    groups = tuple(
        UrlGroup(g.distribution_ids or distributions, g.url_map)
        for g in url_groups_for(backend, options)
    )
    invs = plan_invalidations(
        groups, touched, lambda: [*manifest.entries, *touched], options,
        lambda: backend.usage(f"{now:%Y-%m}", distributions), f"planner-repair-{digest}",
    )
    found.invalidations = invs
    journal = Journal(
        deploy_id=manifest.deploy_id,
        base_deploy_id=manifest.previous_deploy_id,
        touched=tuple(touched),
        deletes=tuple(deletes),
        record=ledger.draft_repair(
            manifest, invs, (len(uploads), sum(u.size for u in uploads)), len(deletes), now, digest
        ),
        **journal_invalidations(invs),  # type: ignore[arg-type]
    )
    if journal.submissions():
        backend.check_distributions(journal.distribution_ids)
    check()
    backend.store.write(JOURNAL_NAME, journal.dumps())
    etags = dict(manifest.etags)
    for up in uploads:
        check()
        with open(os.path.join(site, *up.key.split("/")), "rb") as f:
            data = f.read()
        if xxhash.xxh3_128_hexdigest(data) != up.hash:
            raise PlannerError(f"{up.key} changed since it was scanned; run again")
        etag = put_bytes(backend, up, data)  # compressed if the manifest says so
        if etag:
            etags[up.key] = etag
        else:
            etags.pop(up.key, None)
        found.repaired.append(up.key)
    if uploads:
        # The manifest records each object's ETag as written: a re-upload has a new one (a
        # multipart object sent again in one piece, SSE-KMS), or verify would see drift.
        check()
        commit_manifest(backend.store, manifest.replace(etags=etags), found.version)
    result = Result()
    finish(journal, backend, result, log, Waiting(), check=check)
    found.deleted = list(deletes)
    found.invalidation_ids = dict(result.invalidations)
    return found
