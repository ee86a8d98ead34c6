"""Building a plan: read the target's state (manifest, pending record, what it holds when it
has no manifest), scan the build meanwhile, ask the backend how its distributions serve the
target, and hand it all to :func:`planner.plan.compute.compute_plan`. Writes nothing."""

from __future__ import annotations

import contextlib
import datetime as _dt
import gc
import os
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterator

from manifests import DEFAULT_EXCLUDES, Entry, load_manifest
from manifests.etags import parts_of, proves, stored_etag
from manifests.model import STATE_DIR
from manifests.scan import scan_meanwhile
from manifests.stores import MANIFEST_NAME
from planner import ledger
from planner.backends import Backend
from planner.backends.places import SITE_MARK_NAME
from planner.core.adopt import Listing, Takeover, candidates, takeover
from planner.core.headers import compress, headers_for
from planner.core.origins import Distribution
from planner.core.pacing import month_of
from planner.core.places import (
    LEDGER_DIR,
    SITE_MARK,
    check_nested,
    check_places,
    check_touched,
    folders_of,
)
from planner.core.words import plural
from planner.errors import BadTarget
from planner.plan.compute import (
    Cdn,
    Options,
    Plan,
    TargetState,
    UrlGroup,
    compute_plan,
    exposed_state,
    group_distributions,
)
from planner.plan.journal import JOURNAL_NAME, Journal


def url_groups_for(
    backend: Backend, options: Options, seen: dict[str, Distribution] | None = None
) -> tuple[UrlGroup, ...]:
    """The distributions, grouped by how they serve the target's keys, read from their
    configs (origins and origin paths, behaviors, default root object), in the order given;
    one group when --url-prefix is given (it overrides every mapping) or no distribution is.
    A distribution that serves no key of the target is refused (:func:`group_distributions`).
    ``seen``: what :meth:`Backend.distributions` gave, if read already."""
    dists = options.distribution_ids
    if not dists:
        return (UrlGroup(dists),)
    if seen is None:
        seen = backend.distributions(dists)
    return group_distributions(seen, options, getattr(backend.target, "prefix", ""),
                               backend.target.uri)



def read_journal(backend: Backend) -> Journal | None:
    return _read_journal(backend)[0]


def _read_journal(backend: Backend) -> tuple[Journal | None, str | None]:
    data, version = backend.store.read(JOURNAL_NAME)
    if data is None:
        return None, None
    where = getattr(backend.store, "location", "") + JOURNAL_NAME
    return Journal.loads(data, where, backend.target.uri), version


def state_unchanged(backend: Backend, plan: Plan) -> bool:
    """The manifest and the pending record are still those ``plan`` was made against (read
    again once the deploy lock is held: another deploy may have finished meanwhile)."""

    with ThreadPoolExecutor(2) as pool:  # two round trips at once
        manifest = pool.submit(backend.store.read, MANIFEST_NAME)
        journal = pool.submit(backend.store.read, JOURNAL_NAME)
        return (manifest.result()[1] == plan.previous_version
                and journal.result()[1] == plan.journal_version)


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """No cyclic garbage collection inside: building a plan (or a path list) makes tens of
    thousands of new objects, which would set off collections that walk the whole heap again
    and again (about a third more time on 100,000 URLs)."""
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


def build_plan(
    site: str,
    backend: Backend,
    options: Options,
    tool_version: str,
    progress: Callable[[int, int, int], None] | None = None,
    suspects: frozenset[str] = frozenset(),
    also: Callable[[], None] | None = None,
) -> Plan:
    """Read the target's state, scan the build, and compute the plan. Writes nothing.
    ``progress(files_hashed, bytes_hashed, files_in_all)`` follows the hashing of the build
    (see :func:`manifests.scan.scan`); ``suspects``: see :func:`compute_plan`; ``also()``: one
    more read sent with those of the state (a deploy's lock), its errors after theirs."""
    with paused_gc():
        return _build_plan(site, backend, options, tool_version, progress, suspects, also)


def _build_plan(
    site: str,
    backend: Backend,
    options: Options,
    tool_version: str,
    progress: Callable[[int, int, int], None] | None = None,
    suspects: frozenset[str] = frozenset(),
    also: Callable[[], None] | None = None,
) -> Plan:
    target = backend.target.uri
    state: dict[str, object] = {}

    def read_state() -> None:
        # The round trips at once (the surroundings, the manifest, the pending record, and
        # ``also``), after the walk: botocore made in a thread during it would hold the GIL
        # that each of the walk's system calls gives up and takes again. Their errors come in
        # this order, as if read one after another.
        backend.store  # noqa: B018 - the store (and its client) made here, not in a race
        with ThreadPoolExecutor(4) as pool:
            around = pool.submit(check_surroundings, backend)
            manifest = pool.submit(load_manifest, backend.store, target)
            pending = pool.submit(_read_journal, backend)
            more = pool.submit(also) if also is not None else None
            around.result()
            state["previous"], state["version"] = manifest.result()
            state["journal"], state["journal_version"] = pending.result()
            if more is not None:
                more.result()
        if state["previous"] is None:
            check_state_given(backend)
            # No manifest: what the target holds is the previous deploy (a takeover).
            state["listing"] = backend.list_site()
            state["recorded"] = sum(
                ledger.is_deploy_record(n) for n in backend.store.list(f"{LEDGER_DIR}/"))

    prefix = getattr(backend.target, "prefix", "")
    # The stored state is read while helper processes hash the build (same result, same
    # errors first, as reading it before the scan).
    entries = scan_meanwhile(
        site,
        headers_for(options.cache_control, options.header_rules),
        excludes=DEFAULT_EXCLUDES + tuple(options.excludes),
        workers=options.hash_workers,
        meanwhile=read_state,
        progress=progress,
        key_prefix=prefix,
    )
    previous, version, journal = state["previous"], state["version"], state["journal"]
    listing = state.get("listing")
    if listing is not None:
        check_nested(target, listing.kinds, listing.itself)  # type: ignore[attr-defined]
    seen = backend.distributions(options.distribution_ids)
    url_groups = url_groups_for(backend, options, seen)
    warnings = []
    exposed = None if backend.state_apart or options.url_prefix else exposed_state(seen, prefix)
    if exposed:
        warnings.append(
            f"{exposed} serves this target's manifest (every key, hash and header of the site), "
            "whatever the objects' ACL: keep the state apart with `planner move-state --target "
            f"{target} --state s3://ANOTHER-BUCKET/PREFIX` (see \"The state's own place\")"
        )
    adopted = None
    if previous is None and entries:
        adopted = survey(backend, site, entries, state["listing"],  # type: ignore[arg-type]
                         takeover_reason(state["recorded"], journal), target)  # type: ignore[arg-type]
    plan = compute_plan(
        site=os.path.abspath(site),
        target=target,
        state=TargetState(
            previous, version, journal, state["journal_version"], adopted,  # type: ignore[arg-type]
            cdn=Cdn(backend.default_distributions, url_groups, tuple(seen.values())),
            warnings=tuple(warnings),
            suspects=suspects,
        ),
        entries=entries,
        options=options,
        tool_version=tool_version,
        usage=lambda: backend.usage(
            month_of(options.now or _dt.datetime.now(_dt.UTC)),
            options.distribution_ids or backend.default_distributions,
        ),
        pace_history=lambda: ledger.pace_history(
            backend.store, options.now or _dt.datetime.now(_dt.UTC)
        ),
    )
    if plan.takeover is None:  # (a takeover's listing found every nested place already)
        check_untouched(backend, plan)
    return plan


def check_surroundings(backend: Backend) -> None:
    """Refuse, before anything is written, a target that lies inside another target or a
    state place, or is one; a state place apart that lies inside either, is a target, holds
    another target's state or anything but state (see :func:`planner.core.places.check_places`).
    A target may not hold one either: its takeover listing, or :func:`check_untouched`,
    tells."""
    state = backend.state.uri if backend.state_apart else None  # type: ignore[union-attr]
    check_places(backend.target.uri, state, backend.surroundings())


def check_state_given(backend: Backend) -> None:
    """A target without a manifest in the state place given: refused when its state is in
    fact elsewhere, rather than taken over with a second state. Without ``--state``, a target
    whose ``.planner/`` holds only the marker of a state kept apart (a new state there would
    be in the site, where ``--state`` was meant to keep it out of); with ``--state``, a target
    whose manifest is still in its own ``.planner/`` (not moved there yet)."""
    uri = backend.target.uri
    own = getattr(backend.store, "site", None)  # with --state: the target's own .planner/
    if own is not None:
        if own.read(MANIFEST_NAME)[0] is not None:
            there = backend.state.uri  # type: ignore[union-attr]
            raise BadTarget(
                f"{uri} keeps its state in {uri}/{STATE_DIR}/ (its manifest is there), not in "
                f"--state {there}: move it there first with `planner move-state --target {uri} "
                f"--state {there}`"
            )
        return
    if backend.state_apart or backend.store.read(SITE_MARK_NAME)[0] is None:
        return
    raise BadTarget(
        f"{uri} keeps its state in a place of its own ({uri}/{SITE_MARK} says so): give it "
        "with --state (or state = ... in the target's table of planner.toml)"
    )


def check_untouched(backend: Backend, plan: Plan) -> None:
    """A deploy never writes or deletes under a folder of the target that belongs to another
    target or a state place (made inside it by an older version, or by hand): it looks at
    each folder it would write or delete in (see :meth:`Backend.owned`) and is refused."""
    writes = [u.key for u in plan.uploads]
    deletes = [*plan.deletes, *(plan.resume.deletes if plan.resume is not None else ())]
    folders = folders_of([*writes, *deletes])
    if folders:
        check_touched(backend.target.uri, writes, deletes, backend.owned(folders))


def takeover_reason(recorded: int, journal: Journal | None) -> str:
    """Why the target is taken over: no manifest yet, or a lost one (``recorded``: the
    deploys the ledger records, repairs left out). Pure."""
    if recorded:
        return (f"the manifest is missing although the ledger records "
                f"{plural(recorded, 'earlier deploy')}: taking over what the target holds")
    if journal is not None:
        return (f"the manifest is missing although deploy {journal.deploy_id} left a pending "
                "record: taking over what the target holds")
    return NO_MANIFEST_YET


NO_MANIFEST_YET = "no manifest yet: taking over what the target holds"


PROOF_WORKERS = 4  # build files read and hashed (MD5) at once for a takeover


def survey(
    backend: Backend,
    site: str,
    entries: dict[str, Entry],
    listing: Listing,
    reason: str,
    target: str,
) -> Takeover:
    """Which objects of the target already hold the build's bytes, and their headers: each
    candidate's ETag recomputed from the build file (read again, checked against the scan),
    single-part ETags first; then HeadObject for the proven ones (headers) and the multipart
    ones (headers and part size), whose ETags are recomputed with that part size last."""
    found = candidates(entries, listing.objects)
    multipart = frozenset(k for k in found if parts_of(listing.objects[k].etag) != 1)

    def proof(key: str, part_size: int | None = None) -> str | None:
        entry = entries[key]
        encoding = entry.content_encoding
        mine = stored_etag(
            os.path.join(site, *key.split("/")), key, (entry.hash, entry.size),
            (lambda data: compress(data, encoding)) if encoding else None, part_size,
        )
        return key if proves(listing.objects[key].etag, mine) else None


    with ThreadPoolExecutor(max_workers=PROOF_WORKERS) as pool:
        proven = {k for k in pool.map(proof, [k for k in found if k not in multipart]) if k}
        heads = backend.heads(sorted(proven | multipart), multipart)
        if heads is not None:
            parts = [(k, heads[k].part_size) for k in sorted(multipart)
                     if k in heads and heads[k].part_size]
            proven |= {k for k in pool.map(lambda kp: proof(*kp), parts) if k}
    return takeover(entries, listing, proven, heads, reason, target)
