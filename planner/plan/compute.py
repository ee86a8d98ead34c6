"""A deploy plan is a value: ``compute_plan`` decides it, purely, from what
:mod:`planner.plan.build` gathered (stored manifest, pending journal, scan of the build), and
:func:`planner.apply.apply_plan` acts on it.
``planner plan`` and ``deploy --dry-run`` print the very value a deploy applies.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import itertools
from dataclasses import dataclass, field
from typing import Callable, Iterable, Mapping

import xxhash

from manifests import Diff, Entry, Manifest, diff
from manifests.columns import Entries, entries_from
from manifests.model import STATE_DIR
from planner.core.adopt import Takeover
from planner.core.cost import (
    FREE_PATHS_PER_MONTH,
    MAX_PATHS_IN_PROGRESS,
    MAX_WILDCARDS_IN_PROGRESS,
    PRICE_PER_PATH,
    CostModel,
    miss_dollars,
)
from planner.core.headers import (
    DEFAULT_CACHE_CONTROL,
    HeaderRule,
    is_fingerprinted,
    is_page,
)
from planner.core.minimizer import Problem, Solution, evaluate, minimize
from planner.core.minimizer import frontier as plan_frontier
from planner.core.origins import Distribution, mapper, serves_prefix
from planner.core.pacing import (
    Budget,
    PastDeploy,
    ShadowPrice,
    Usage,
    days_left_in_month,
    month_of,
    price_grid,
    shadow_price,
)
from planner.core.urls import normalise_url_prefix, urls_of
from planner.core.words import money, plural
from planner.errors import (
    BadSite,
    BadTarget,
    InvalidationError,
    OverCostCap,
    TooManyDeletes,
)
from planner.plan.journal import Journal


@dataclass(frozen=True)
class Options:
    cache_control: str = DEFAULT_CACHE_CONTROL
    excludes: tuple[str, ...] = ()  # added to DEFAULT_EXCLUDES
    invalidate_added: bool = False
    header_rules: tuple[HeaderRule, ...] = ()  # the configuration file's [[headers]]
    max_deletes: int = 256
    delete: bool = True
    url_prefix: str | None = None  # None: from the distributions' origins, else "/"
    distribution_ids: tuple[str, ...] = ()
    free_paths_per_month: int = FREE_PATHS_PER_MONTH
    paths_used: int | None = None  # None: read from CloudFront (or the local log)
    pace: str = "price"  # a shadow price for a free path; or "even", or "none"
    now: _dt.datetime | None = None  # None: the clock (UTC)
    price: float = PRICE_PER_PATH
    miss_cost: float | None = None
    hash_workers: int | None = None
    max_cost: float | None = None  # dollars AWS may charge this deploy; None: no cap
    # --pace price: the target's earlier deploys (from its ledger), not saved with a plan
    pace_history: tuple[PastDeploy, ...] = ()


@dataclass(frozen=True, slots=True)  # a first deploy of a million files makes a million
class Upload:
    key: str
    reason: str  # "new", "changed", "headers", "unconfirmed"
    size: int
    hash: str
    content_type: str
    cache_control: str
    content_encoding: str = ""  # "gzip" or "br": sent compressed, with that Content-Encoding
    # Headers only, of an object whose bytes are proven to be the build's (a takeover): set
    # in place (CopyObject), no bytes sent.
    in_place: bool = False


@dataclass(frozen=True)
class Alternative:
    name: str  # "exact paths", "/*", "chosen"
    solution: Solution | None  # None: not valid now (e.g. more than 3,000 exact paths)


@dataclass(frozen=True)
class Invalidation:
    paths: tuple[str, ...]
    distribution_ids: tuple[str, ...]
    caller_reference: str
    solution: Solution
    free_paths: int  # free paths the cost model counts for this deploy (the pace allowance)
    budget: Budget | None = None
    usage: Usage | None = None
    max_wildcards: int = MAX_WILDCARDS_IN_PROGRESS  # allowed now, after those in progress
    max_paths: int = MAX_PATHS_IN_PROGRESS
    must_wait: bool = False  # not submittable until invalidations in progress complete
    alternatives: tuple[Alternative, ...] = ()
    site_urls: int = 0  # URLs the site serves (what "/*" would invalidate)
    price: float = PRICE_PER_PATH
    miss_cost: float = miss_dollars(PRICE_PER_PATH)  # dollars per needless miss (the cost model's)
    changed: frozenset[str] = frozenset()  # the URLs that must be invalidated
    # Over --max-cost: the plan with the fewest needless misses that AWS would charge no
    # more than the cap for (None: none would, or no cap was passed).
    within_cap: Solution | None = None
    # --pace price: the shadow price of a free path this plan was made at, and why; the paths
    # it would submit at each shadow price tried (the ledger keeps them: the next deploys'
    # history).
    shadow: ShadowPrice | None = None
    frontier: tuple[tuple[float, int, int], ...] = ()

    @property
    def shadow_price(self) -> float | None:
        """Dollars per free path this plan was made at (--pace price), else None."""
        return self.shadow.value if self.shadow is not None else None


@dataclass(frozen=True)
class Plan:
    site: str
    target: str
    manifest: Manifest  # what the target will hold after the deploy
    previous_deploy_id: str | None
    previous_version: str | None  # store version (ETag) the plan was made against
    diff: Diff
    uploads: tuple[Upload, ...]  # in upload order: assets, then pages
    deletes: tuple[str, ...]
    kept: tuple[str, ...]  # removed from the build but kept (--no-delete)
    # One per group of distributions that serve the target under the same URLs (one group
    # unless the distributions' origin paths or behaviors differ), in the order given.
    invalidations: tuple[Invalidation, ...]
    resume: Journal | None = None  # a committed deploy's unfinished invalidation/deletes
    sizes: dict[str, int] = field(default_factory=dict)  # bytes per diff group
    journal_version: str | None = None  # store version of the pending record read, if any
    fingerprinted_new: int = 0  # new files with a content hash in their name: no invalidation
    takeover: Takeover | None = None  # no manifest: what the target held, and what becomes of it
    # ETags known of objects before this deploy (the previous manifest's, or the listing's on
    # a takeover): those of keys left untouched go into the committed manifest.
    known_etags: Mapping[str, str] = field(default_factory=dict)
    distributions: tuple[Distribution, ...] = ()  # what is known of each one given
    warnings: tuple[str, ...] = ()

    @property
    def deploy_id(self) -> str:
        return self.manifest.deploy_id

    @property
    def invalidation(self) -> Invalidation:
        """The first group's invalidation: the only one unless distributions serve the target
        under different URLs."""
        return self.invalidations[0]

    @property
    def distribution_ids(self) -> tuple[str, ...]:
        return tuple(d for inv in self.invalidations for d in inv.distribution_ids)

    @property
    def invalidates(self) -> bool:
        return any(inv.paths for inv in self.invalidations)

    @property
    def has_work(self) -> bool:
        return bool(self.uploads or self.deletes)

    @property
    def upload_bytes(self) -> int:
        """Bytes sent (headers fixed in place send none)."""
        return sum(u.size for u in self.uploads if not u.in_place)

    def committed_manifest(self, written: Mapping[str, str]) -> Manifest:
        """The manifest to commit: ``manifest`` with the ETag of every object, those
        ``written`` by this deploy (key -> ETag, "" when the store gave none) and the known
        ones of objects left as they were."""
        entries = self.manifest.entries
        etags = {k: e for k, e in self.known_etags.items() if k in entries and k not in written}
        etags.update((k, e) for k, e in written.items() if e and k in entries)
        return self.manifest.replace(etags=etags)


def deploy_id_for(previous_deploy_id: str | None, target: str, manifest: Manifest) -> str:
    """Derived from what is deployed and where, chained to the previous deploy: a retried
    deploy of the same build gets the same id, and so the same CallerReference."""
    h = xxhash.xxh3_128()
    h.update(f"{previous_deploy_id or ''}\n{target}\n".encode())
    h.update(manifest.content_digest_input())
    return h.hexdigest()[:20]


@dataclass(frozen=True)
class Cdn:
    """What was read of the CloudFront distributions that serve the target (none on a target
    without any): the target's default ones, how they serve its keys, what is known of each."""

    # The target's own distributions (its configuration): those invalidated without
    # --distribution.
    default_ids: tuple[str, ...] = ()
    # The distributions, grouped by how they serve the target's keys (see
    # :func:`url_groups_for`); None: one group, all distributions, keys under "/" (or
    # --url-prefix).
    url_groups: tuple["UrlGroup", ...] | None = None
    seen: tuple[Distribution, ...] = ()  # what is known of each one given (the plan shows it)


@dataclass(frozen=True)
class TargetState:
    """What was read from the target to plan a deploy: the committed manifest and the
    pending record, each with the store version read (a deploy goes ahead only while both are
    unchanged, see :func:`state_unchanged`), with no manifest what the target holds, and the
    distributions that serve it."""

    previous: Manifest | None = None
    previous_version: str | None = None
    journal: Journal | None = None
    journal_version: str | None = None
    takeover: Takeover | None = None  # see planner.core.adopt
    cdn: Cdn = Cdn()
    warnings: tuple[str, ...] = ()  # found while reading it; the plan shows them
    # Keys whose objects may not hold what ``previous`` says (found so after the lock was
    # taken over from a deploy that lost it): written again (or deleted) and invalidated, as
    # the keys an interrupted deploy touched.
    suspects: frozenset[str] = frozenset()


def compute_plan(
    *,
    site: str,
    target: str,
    state: TargetState,
    entries: Mapping[str, Entry],
    options: Options,
    tool_version: str,
    usage: Usage | Callable[[], Usage] | None = None,
    pace_history: tuple[PastDeploy, ...] | Callable[[], tuple[PastDeploy, ...]] | None = None,
) -> Plan:
    """Everything a deploy will do. Pure, but for ``usage``, which may be a function that
    reads it: called only when there is something to invalidate.

    ``state``: what was read of the target (its manifest, pending record, distributions,
    suspect keys: see :class:`TargetState`). ``state.takeover``: with no manifest
    (``state.previous`` None), what the target holds, which is then diffed against as the
    previous manifest (see :mod:`planner.core.adopt`). ``pace_history``: the target's earlier
    deploys for ``--pace price`` (else ``options.pace_history``; a function is called only
    when there is something to invalidate, like ``usage``)."""
    _refuse_empty(site, entries)
    entries = entries_from(entries)
    if pace_history is not None and not callable(pace_history):
        options = dataclasses.replace(options, pace_history=tuple(pace_history))
    previous, takeover = state.previous, state.takeover
    previous_id = previous.deploy_id if previous else None
    resume, dirty = _resume_or_dirty(previous, state.journal, state.suspects)
    new = Manifest(entries, target=target, previous_deploy_id=previous_id, tool_version=tool_version)
    old = previous if previous is not None or takeover is None else takeover.remote
    d = diff(old, new)
    old_entries = old.entries if old else {}
    new, deletes, kept, orphans = _deletes_and_kept(d, new, old_entries, dirty, options)
    uploads = _uploads(d, entries, dirty, frozenset(takeover.in_place) if takeover else frozenset())
    has_work = bool(uploads or deletes)
    deploy_id = deploy_id_for(previous_id, target, new) if has_work else (previous_id or "")
    new = new.replace(deploy_id=deploy_id)
    must, fingerprinted_new = _keys_to_invalidate(uploads, dirty, options)
    if callable(pace_history) and options.pace == "price" and (must or deletes):
        options = dataclasses.replace(options, pace_history=tuple(pace_history()))
    # Every URL that may be cached matters for what a wildcard would also hit (and for the
    # ledger's "/*" alternative): with nothing to deploy, a 20,000-page site saves the work.
    invalidations = plan_invalidations(
        _groups_given(state.cdn.url_groups, options, state.cdn.default_ids),
        must + deletes,
        lambda: set(old_entries) | set(new.entries) | set(orphans),
        options,
        usage,
        f"planner-{deploy_id}",
        always_universe=has_work,
    )
    plan = Plan(
        site=site,
        target=target,
        manifest=new,
        previous_deploy_id=previous_id,
        previous_version=state.previous_version,
        diff=d,
        uploads=tuple(uploads),
        deletes=tuple(deletes),
        kept=kept,
        invalidations=invalidations,
        resume=resume,
        sizes=_sizes(d, entries, old_entries),
        journal_version=state.journal_version,
        fingerprinted_new=len(fingerprinted_new),
        takeover=takeover,
        known_etags=old.etags if old else {},
        distributions=state.cdn.seen,
        warnings=state.warnings,
    )
    check_cap(plan, options.max_cost)
    return plan


def _refuse_empty(site: str, entries: Mapping[str, Entry]) -> None:
    if not entries:
        raise BadSite(
            f"build folder {site} has no files to deploy; refusing (an empty build would "
            "delete the whole site)"
        )
    # Keys longer than S3 allows with the target's prefix are refused by the scan, with
    # every other rule on names (manifests.scan): one place, before the target is touched.


def _resume_or_dirty(
    previous: Manifest | None, journal: Journal | None, suspects: frozenset[str]
) -> tuple[Journal | None, set[str]]:
    """(the pending record of a committed deploy, to finish; the keys whose objects may not
    match the manifest: an uncommitted deploy's touched ones, and ``suspects``)."""
    resume: Journal | None = None
    dirty: set[str] = set()
    if journal is not None:
        if previous is not None and journal.deploy_id == previous.deploy_id:
            resume = journal  # committed: only its invalidation and deletes are left
        else:
            dirty = set(journal.touched)  # never committed: objects may not match the manifest
    return resume, dirty | suspects


def _deletes_and_kept(
    d: Diff, new: Manifest, old_entries: Mapping[str, Entry], dirty: set[str], options: Options
) -> tuple[Manifest, list[str], tuple[str, ...], list[str]]:
    """(the manifest to commit, keys to delete, keys kept by --no-delete, orphans): removed
    keys are deleted, or kept in the manifest with --no-delete; objects an uncommitted deploy
    wrote that neither build nor manifest has (orphans) are deleted. Refused beyond
    --max-deletes."""
    kept: tuple[str, ...] = ()
    deletes = list(d.deleted)
    if not options.delete and deletes:
        kept = tuple(deletes)
        deletes = []
        merged = dict(new.entries)
        merged.update({k: old_entries[k] for k in kept})
        new = new.replace(entries=merged)
    orphans = sorted(k for k in dirty if k not in new.entries and k not in old_entries)
    deletes = sorted(set(deletes) | set(orphans))
    if len(deletes) > options.max_deletes:
        raise TooManyDeletes(
            f"the deploy would delete {plural(len(deletes), 'object')}, more than --max-deletes "
            f"{options.max_deletes}; nothing was changed (raise --max-deletes or use --no-delete)"
        )
    return new, deletes, kept, orphans


def _uploads(
    d: Diff, entries: Entries, dirty: set[str], in_place: frozenset[str]
) -> list[Upload]:
    """Each key to write, with its reason, in upload order (assets, then pages, each in key
    order); headers of proven objects (``in_place``, a takeover) are set without sending
    bytes. A first deploy (every key new) is read off the columns, row by row."""
    if len(d.added) == len(entries) and not d.modified and not d.unchanged:
        return _all_new(entries)
    reasons: dict[str, str] = {k: "new" for k in d.added}
    reasons.update({k: ("headers" if k in d.header_only else "changed") for k in d.modified})
    if dirty:
        reasons.update({k: "unconfirmed" for k in d.unchanged if k in dirty})
    uploads = [
        Upload(k, r, e.size, e.hash, e.content_type, e.cache_control, e.content_encoding,
               in_place=r == "headers" and k in in_place)
        for k, r in sorted(reasons.items())
        for e in (entries[k],)
    ]
    uploads.sort(key=lambda u: (is_page(u.content_type), u.key))
    return uploads


def _all_new(entries: Entries) -> list[Upload]:
    """Every row of ``entries`` as a new upload, assets first, then pages."""
    pages = [is_page(row[0]) for row in entries.table]
    sizes, heads, table, hash_at = entries.sizes, entries.heads, entries.table, entries.hash_at
    assets: list[Upload] = []
    later: list[Upload] = []
    for i, key in enumerate(entries.names):
        head = heads[i]
        ctype, cc, enc = table[head]
        (later if pages[head] else assets).append(
            Upload(key, "new", sizes[i], hash_at(i), ctype, cc, enc))
    return assets + later


def _keys_to_invalidate(
    uploads: list[Upload], dirty: set[str], options: Options
) -> tuple[list[str], list[str]]:
    """(the written keys that may be cached with old content, the new fingerprinted ones)."""
    # Invalidate what may be cached with old content: modified, re-uploaded after an
    # interrupted deploy (and deleted, added by the caller); new files too with
    # --invalidate-added.
    must = [u.key for u in uploads if u.reason != "new" or u.key in dirty]
    # A new fingerprinted file was never requested under its name: never invalidated.
    fingerprinted_new = [u.key for u in uploads if u.reason == "new" and is_fingerprinted(u.key)]
    if options.invalidate_added:
        fresh = set(fingerprinted_new)
        must += [u.key for u in uploads if u.reason == "new" and u.key not in fresh]
    return must, fingerprinted_new


def _groups_given(
    url_groups: tuple["UrlGroup", ...] | None,
    options: Options,
    default_distributions: tuple[str, ...],
) -> tuple["UrlGroup", ...]:
    """The URL groups to invalidate: by default one, of every distribution (--distribution,
    else the target's default ones); a group read without ids gets those."""
    distributions = tuple(options.distribution_ids or default_distributions)
    if url_groups is None:
        return (UrlGroup(distributions),)
    if not options.distribution_ids:
        return tuple(UrlGroup(g.distribution_ids or distributions, g.url_map) for g in url_groups)
    return url_groups


def _sizes(d: Diff, entries: Entries, old_entries: Mapping[str, Entry]) -> dict[str, int]:
    """Bytes per diff group."""
    added_bytes = sum(entries[k].size for k in d.added)
    modified_bytes = sum(entries[k].size for k in d.modified)
    return {
        "added": added_bytes,
        "modified": modified_bytes,
        "deleted": sum(old_entries[k].size for k in d.deleted),
        # Every key of the build is added, modified or unchanged.
        "unchanged": entries.total_size() - added_bytes - modified_bytes,
    }


def _url_function(
    options: Options, url_map: Callable[[str], tuple[str, ...]] | None
) -> Callable[[Iterable[str]], list[str]]:
    """Keys -> the URLs to consider: the distribution's own mapping (``url_map``), unless
    --url-prefix says otherwise; else the keys under "/"."""
    if url_map is None or options.url_prefix is not None:
        prefix = normalise_url_prefix(options.url_prefix or "/")
        return lambda keys: urls_of(keys, prefix)
    return lambda keys: sorted({u for k in keys for u in url_map(k)})


@dataclass(frozen=True)
class UrlGroup:
    """Distributions that serve the target's keys under the same URLs, and that mapping
    (site key -> URLs); ``url_map`` None: the keys under --url-prefix (or "/")."""

    distribution_ids: tuple[str, ...]
    url_map: Callable[[str], tuple[str, ...]] | None = None


def group_distributions(
    seen: dict[str, Distribution], options: Options, prefix: str, target: str
) -> tuple[UrlGroup, ...]:
    """See :func:`url_groups_for`. Pure. Without --url-prefix, a CloudFront distribution
    none of whose origins is the target's bucket, or whose origin paths all lie outside the
    target's prefix, serves nothing of it: refused (a mistyped id or CI variable would
    otherwise deploy and invalidate URLs nobody is served)."""

    dists = options.distribution_ids
    if options.url_prefix is not None or not dists:
        return (UrlGroup(dists),)
    for dist in dists:
        info = seen[dist]
        if info.origins and not (info.served is not None and serves_prefix(info.served, prefix)):
            why = ("none of its origins is the bucket" if info.served is None
                   else "its origin paths lie outside the target's prefix")
            raise BadTarget(
                f"distribution {dist}{f' ({info.names})' if info.names else ''} does not serve "
                f"{target}: {why} (origins: {', '.join(info.origins)}); give the right "
                "distribution, or --url-prefix PATH if it serves the target through another origin"
            )
    groups: dict[object, list[str]] = {}
    for dist in dists:
        groups.setdefault(seen[dist].served, []).append(dist)
    return tuple(
        UrlGroup(tuple(ds), None if view is None else mapper(view, prefix))  # type: ignore[arg-type]
        for view, ds in groups.items()
    )


def exposed_state(seen: dict[str, Distribution], prefix: str) -> str | None:
    """The URL under which a distribution serves the target's manifest, when the state lives
    under the site (``<prefix>.planner/``) and its origins and behaviors route that path to
    the bucket: bucket policies and origin access grant ``bucket/*``, whatever the object's
    ACL. Pure."""
    key = f"{prefix}{STATE_DIR}/manifest.json.gz"
    for info in seen.values():
        urls = info.served.urls(key) if info.served is not None else ()
        if urls:
            host = (info.aliases or (info.domain,))[0] or info.id
            return f"https://{host}{urls[0]}"
    return None


def plan_invalidations(
    groups: tuple[UrlGroup, ...],
    keys: Iterable[str],
    all_keys: Callable[[], Iterable[str]],
    options: Options,
    usage: Usage | Callable[[], Usage] | None,
    reference: str,
    always_universe: bool = True,
) -> tuple[Invalidation, ...]:
    """The invalidation of each group for the changed site keys ``keys``; ``all_keys()`` gives
    every key that may be cached (what a wildcard would also hit), read only when something
    changed or ``always_universe``. Groups share the month's free allowance, in order: each
    spends what the ones before it left; when that leaves a later group paying for paths or
    misses, other ways to split the allowance are tried (``_share_free_paths``). Pure, but for ``usage`` (as in
    ``plan_invalidation``)."""
    keys = list(keys)
    changed = [frozenset(_url_function(options, g.url_map)(keys)) for g in groups]
    if any(changed) and callable(usage) and options.paths_used is None:
        usage = usage()  # read once for every group
    every: list[str] | None = None
    out: list[Invalidation] = []
    universes: list[frozenset[str]] = []
    spent = 0
    for group, urls in zip(groups, changed):
        universe: frozenset[str] = frozenset()
        if urls or always_universe:
            if every is None:
                every = list(all_keys())
            universe = frozenset(_url_function(options, group.url_map)(every))
        inv = plan_invalidation(
            universe, urls, group.distribution_ids, options, usage, reference, spent=spent
        )
        spent += len(inv.paths) * len(group.distribution_ids)
        out.append(inv)
        universes.append(universe)
    # A later group that pays or misses with less than the whole allowance left: the free
    # paths the groups before it took might have saved more there.
    allowance = out[0].budget.allowance if out[0].budget else 0
    if len(out) <= MAX_GROUPS_SEARCHED and any(
        inv.solution.cost_usd > 0 and inv.free_paths < allowance for inv in out[1:]
    ):
        out = _share_free_paths(
            out, allowance, groups, universes, changed, options, usage, reference
        )
    return tuple(out)


MAX_GROUPS_SEARCHED = 6  # 3 ** 6 splits of the allowance at most


def _share_free_paths(
    planned: list[Invalidation],
    allowance: int,
    groups: tuple[UrlGroup, ...],
    universes: list[frozenset[str]],
    changed: list[frozenset[str]],
    options: Options,
    usage: Usage | None,
    reference: str,
) -> list[Invalidation]:
    """When a later group pays for paths or misses, the free allowance may be better spent
    where a free path saves the most: group 1 taking every free path may cost more than group 2
    taking them. Each group's plan is also made with the whole allowance and with none; the
    combination of least total cost (paid paths beyond the allowance, counted over every
    group, plus every needless miss) is kept, never costlier than the in-order split. Each
    group is then priced with what the groups before it left."""
    choices: list[list[Invalidation]] = []
    for i, (group, inv) in enumerate(zip(groups, planned)):
        mine = [inv]
        for free in (allowance, 0):  # the whole allowance; none of it
            if free == inv.free_paths:
                continue  # the plan made in order already
            other = plan_invalidation(universes[i], changed[i], group.distribution_ids, options,
                                      usage, reference, spent=allowance - free)
            if all(other.paths != c.paths for c in mine):
                mine.append(other)
        choices.append(mine)

    # Paths and misses are counted over every distribution already: one "distribution" here.
    model = CostModel(free_paths=allowance, price=options.price, miss_cost=options.miss_cost)

    def total(combo: tuple[Invalidation, ...]) -> float:
        paths = sum(len(c.paths) * len(c.distribution_ids) for c in combo)
        misses = sum(c.solution.collateral_urls * max(1, len(c.distribution_ids)) for c in combo)
        return model.cost(paths, misses)

    best = min(itertools.product(*choices), key=total)  # the first of equals: in-order first
    out, spent = [], 0
    for inv in best:
        out.append(_priced(inv, allowance, spent, options))
        spent += len(inv.paths) * len(inv.distribution_ids)
    return out


def _priced(inv: Invalidation, allowance: int, spent: int, options: Options) -> Invalidation:
    """``inv`` after groups that took ``spent`` of the ``allowance`` (and of the account's
    free paths): paid paths and both figures again (paths and misses stay)."""
    free = max(0, allowance - spent)
    if free == inv.free_paths or not inv.distribution_ids:  # none: nothing submitted, 0
        return inv
    free_left = inv.budget.free_left if inv.budget is not None else allowance
    model = CostModel(free_paths=free, price=options.price, miss_cost=options.miss_cost,
                      distributions=max(1, len(inv.distribution_ids)),
                      free_left=max(0, free_left - spent))

    def priced(sol: Solution) -> Solution:
        again = Solution.of(model, sol.paths, sol.changed_urls, sol.collateral_urls,
                            cover=sol.wildcard_cover)
        # The plan was made for another allowance: what it proved is a bound at most.
        bound = min(sol.cost_lower_bound_usd, again.cost_usd)
        return dataclasses.replace(again, cost_lower_bound_usd=bound,
                                   exact=sol.exact and bound == again.cost_usd)

    return dataclasses.replace(
        inv,
        solution=priced(inv.solution),
        free_paths=free,
        alternatives=tuple(
            Alternative(a.name, None if a.solution is None else priced(a.solution))
            for a in inv.alternatives
        ),
    )


def journal_invalidations(invalidations: tuple[Invalidation, ...]) -> dict[str, object]:
    """The pending record's fields for ``invalidations`` (``Journal(**...)``)."""
    first = invalidations[0]
    if len(invalidations) == 1:
        return {"paths": first.paths, "distribution_ids": first.distribution_ids,
                "caller_reference": first.caller_reference}
    return {
        "paths": (),
        "distribution_ids": tuple(d for inv in invalidations for d in inv.distribution_ids),
        "caller_reference": first.caller_reference,
        "per_distribution": tuple(
            (d, inv.paths) for inv in invalidations for d in inv.distribution_ids
        ),
    }


def plan_invalidation(
    universe: frozenset[str],
    changed: frozenset[str],
    distributions: tuple[str, ...],
    options: Options,
    usage: Usage | Callable[[], Usage] | None,
    reference: str,
    spent: int = 0,
) -> Invalidation:
    """Budget, limits, the minimizer's plan and the alternatives to show beside it, for one
    group of distributions; ``spent``: free paths other groups of this deploy take first. Pure,
    but for ``usage``, which may be a function that reads it: called only when something
    changed."""
    now = options.now or _dt.datetime.now(_dt.UTC)
    if changed and callable(usage) and options.paths_used is None:
        usage = usage()
    if callable(usage):
        usage = None
    if options.paths_used is not None:
        used, source = options.paths_used, "--paths-used"
    elif usage is not None:
        used, source = usage.paths_used, usage.source
    else:
        used, source = 0, "none read"
    budget = Budget(options.free_paths_per_month, used, days_left_in_month(now), options.pace, source)
    max_w, max_p = (
        usage.room_on(distributions) if usage else (MAX_WILDCARDS_IN_PROGRESS, MAX_PATHS_IN_PROGRESS)
    )
    free = max(0, budget.allowance - spent)
    model = CostModel(
        free_paths=free,
        price=options.price,
        miss_cost=options.miss_cost,
        distributions=max(1, len(distributions)),
        free_left=max(0, budget.free_left - spent),
    )
    shadow, frontier, like = None, (), None
    if options.pace == "price" and changed:
        # Every free path counted at each price of the grid (no paid path in the estimate:
        # the price decides how many misses a path must save).
        grid = price_grid(options.price)
        frontier, like = plan_frontier(
            Problem(universe, changed, model, max_wildcards=max_w, max_paths=max_p), grid
        )
        shadow = shadow_price(
            free, now, options.pace_history, frontier,
            max(0, used - sum(h.submitted for h in options.pace_history
                              if month_of(h.when) == month_of(now))),
            options.price, model.miss,
            others_daily(usage, options.pace_history, now) if options.paths_used is None else (),
        )
    solution, problem, must_wait = _solve(universe, changed, model, max_w, max_p,
                                          shadow.value if shadow else 0.0, like)
    unsent = _unsubmitted if not distributions else (lambda sol: sol)
    solution = unsent(solution)
    within_cap = None
    if options.max_cost is not None and solution.charge_usd > options.max_cost:
        within_cap = fewest_misses_within(problem, options.max_cost)
    alternatives: tuple[Alternative, ...] = ()
    if changed:
        exact = tuple(sorted(changed))
        alternatives = (
            Alternative("exact paths", unsent(evaluate(problem, exact))
                        if len(exact) <= problem.max_paths else None),
            Alternative("/*", unsent(evaluate(problem, ("/*",))) if problem.max_wildcards else None),
            Alternative("chosen", solution),
        )
    return Invalidation(
        paths=solution.paths,
        distribution_ids=distributions,
        caller_reference=reference,
        solution=solution,
        free_paths=free,
        budget=budget,
        usage=usage,
        max_wildcards=max_w,
        max_paths=max_p,
        must_wait=must_wait,
        alternatives=alternatives,
        site_urls=len(universe | changed),
        price=options.price,
        miss_cost=model.miss,
        changed=changed,
        within_cap=within_cap,
        shadow=shadow,
        frontier=frontier,
    )


def _unsubmitted(sol: Solution) -> Solution:
    """``sol`` as no distribution takes it (an S3 target planned without --distribution):
    its paths are listed, but nothing is submitted, so nothing is billed and no cached URL is
    missed; both figures and the objective are 0. The paths were chosen as for one
    distribution."""
    return Solution.of(CostModel(distributions=0), sol.paths, sol.changed_urls,
                       sol.collateral_urls, cover=sol.wildcard_cover)


def others_daily(usage: Usage | None, history: tuple[PastDeploy, ...],
                 now: _dt.datetime) -> tuple[int, ...]:
    """The rest of the account's paths on each day of the month so far: the account's (from
    ``usage``, when its source tells them per day) less this target's (its history)."""
    if usage is None or not usage.daily:
        return ()
    daily = list(usage.daily)
    for h in history:
        if month_of(h.when) == month_of(now) and h.when.day <= len(daily):
            daily[h.when.day - 1] -= h.submitted
    return tuple(max(0, n) for n in daily)


def _solve(universe: frozenset[str], changed: frozenset[str], model: CostModel, max_w: int,
           max_p: int, lam: float, like=None) -> tuple[Solution, Problem, bool]:
    """The minimizer's plan with free paths at the shadow price ``lam``: (solution, its
    problem, whether it must wait). A plan CloudFront cannot take while others are in
    progress is planned without those limits, and must wait: the deploy waits for them to
    complete (--wait-timeout), or leaves it pending. ``like``: a search of the same problem
    whose candidates are reused."""
    priced = dataclasses.replace(model, free_price=lam)
    problem = Problem(universe, changed, priced, max_wildcards=max_w, max_paths=max_p)
    try:
        return minimize(problem, like=like), problem, False
    except InvalidationError:
        problem = Problem(universe, changed, priced)
        return minimize(problem), problem, True


# Dollars per path beyond the cap when searching within it: more than any plan's misses.
_OVER_CAP = 1e6


def fewest_misses_within(problem: Problem, max_cost: float) -> Solution | None:
    """The valid plan with the fewest needless misses that AWS charges at most ``max_cost``
    for (priced by ``problem.model``), or None when even one path per distribution is above
    it. The paths the cap allows are the free ones left plus ``max_cost / price``."""
    model = problem.model
    free_left = model.free_paths if model.free_left is None else model.free_left
    if model.price <= 0:
        return minimize(problem)
    allowed = (max(0, free_left) + int(max_cost / model.price + 1e-9)) // model.distributions
    if allowed < 1:
        return None
    capped = dataclasses.replace(model, free_paths=allowed * model.distributions,
                                 price=_OVER_CAP, miss_cost=model.miss, free_left=None)
    try:
        sol = minimize(dataclasses.replace(problem, model=capped))
    except InvalidationError:
        return None
    if len(sol.paths) > allowed:
        return None
    return Solution.of(model, sol.paths, sol.changed_urls, sol.collateral_urls,
                       cover=sol.wildcard_cover)


def check_cap(plan: Plan, max_cost: float | None) -> None:
    """Refuse (:class:`OverCostCap`) a plan whose AWS charge is above ``max_cost``, saying
    what would fit: the plan with the fewest needless misses within the cap, or "/*"."""
    if max_cost is None:
        return
    charge = sum(inv.solution.charge_usd for inv in plan.invalidations)
    if charge <= max_cost + 1e-12:
        return
    paid = sum(inv.solution.paid_paths for inv in plan.invalidations)
    head = (f"this deploy would be charged {money(charge)} by AWS ({plural(paid, 'paid path')}), "
            f"above --max-cost {money(max_cost)}; nothing was written")
    inv = plan.invalidations[0]
    fits = inv.within_cap if len(plan.invalidations) == 1 else None
    star = [a.solution for i in plan.invalidations for a in i.alternatives
            if a.name == "/*" and a.solution is not None]
    star_charge = sum(s.charge_usd for s in star)
    if fits is not None:
        head += (f". Within it: {plural(len(fits.paths), 'path')} "
                 f"({plural(fits.wildcards, 'wildcard')}), charged {money(fits.charge_usd)}, "
                 f"{plural(fits.collateral_urls, 'needless miss', 'needless misses')} "
                 f"(estimated {money(fits.miss_cost_usd)})")
    elif len(star) == len(plan.invalidations) and star_charge <= max_cost + 1e-12:
        head += f'. Within it: "/*" on every distribution, charged {money(star_charge)}'
    else:
        head += ". No invalidation of these changes fits within it"
    raise OverCostCap(head + ". Raise --max-cost, or deploy when the month's free paths allow")


