"""The deploy ledger: one record per deploy, in the target's state store, filed by month.

A record is written once its deploy is complete (uploads, manifest, invalidation, deletes),
as its own object ``ledger/YYYY-MM/<started>-<deploy id>.json`` with a create-only write, so
two deploys never lose each other's records and a report reads only the month it needs. The
record's counts are drafted when the deploy starts and kept in the pending record, so a deploy
finished by a later run (after a crash, or an invalidation CloudFront made it wait for) is
recorded once, by the run that finishes it.

``draft`` and ``complete`` are pure; ``write`` and ``read_month`` are handed a store.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, Mapping

from manifests.errors import ConflictError
from manifests.stores import ABSENT
from planner.core import places
from planner.core.cost import PRICE_PER_PATH, dollars, miss_dollars
from planner.core.pacing import HISTORY_DAYS, PastDeploy, merged_frontier, month_of
from planner.core.cost import (
    billable as billable,  # re-exported: callers and tests know it here
)
from planner.plan.journal import (
    RECORD_VERSION as RECORD_VERSION,  # re-exported: callers and tests know it here
)

if TYPE_CHECKING:
    from manifests import Store
    from planner.plan.compute import Invalidation, Plan

LEDGER_DIR = places.LEDGER_DIR  # "ledger": state places are known by it (planner.core.places)
_TIME = "%Y-%m-%dT%H:%M:%SZ"
_TIME_TEXT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


def iso(when: dt.datetime) -> str:
    return when.astimezone(dt.UTC).strftime(_TIME)


def parse_iso(text: str) -> dt.datetime:
    """The inverse of ``iso``; ValueError on anything else (strptime alone would take
    unpadded fields, which would not sort)."""
    if not isinstance(text, str) or not _TIME_TEXT.fullmatch(text):
        raise ValueError(f"not a UTC time YYYY-MM-DDTHH:MM:SSZ: {text!r}")
    return dt.datetime.strptime(text, _TIME).replace(tzinfo=dt.UTC)


def draft(plan: "Plan", started: dt.datetime) -> dict[str, Any]:
    """What a deploy will record, per distribution it invalidates; ``complete`` adds what
    happened. Pure."""
    return _draft(
        kind="deploy",
        deploy_id=plan.deploy_id,
        previous_deploy_id=plan.previous_deploy_id,
        target=plan.target,
        tool_version=plan.manifest.tool_version,
        started=started,
        invalidations=plan.invalidations,
        uploads=(sum(1 for u in plan.uploads if not u.in_place), plan.upload_bytes),
        deletes=len(plan.deletes),
    )


def draft_repair(
    manifest: Any,
    invalidations: "tuple[Invalidation, ...]",
    uploads: tuple[int, int],
    deletes: int,
    started: dt.datetime,
    repair_id: str,
) -> dict[str, Any]:
    """The record of ``verify --repair`` (what it re-uploaded, deleted and invalidated). Pure."""
    return {"repair_id": repair_id} | _draft(
        kind="repair",
        deploy_id=manifest.deploy_id,
        previous_deploy_id=manifest.previous_deploy_id,
        target=manifest.target,
        tool_version=manifest.tool_version,
        started=started,
        invalidations=invalidations,
        uploads=uploads,
        deletes=deletes,
    )


def _draft(
    *,
    kind: str,
    deploy_id: str,
    previous_deploy_id: str | None,
    target: str,
    tool_version: str,
    started: dt.datetime,
    invalidations: "tuple[Invalidation, ...]",
    uploads: tuple[int, int],
    deletes: int,
) -> dict[str, Any]:
    budget = invalidations[0].budget  # the account's, shared by every group
    per: dict[str, Any] = {}
    for inv in invalidations:
        sol = inv.solution
        changed = sol.changed_urls
        counts = {
            "chosen": {
                "paths": len(inv.paths),
                "wildcards": sol.wildcards,
                "needless_misses": sol.collateral_urls,
            },
            # What the usual ways would have done: every changed URL as its own path, and
            # "/*" on every deploy (whatever changed), which empties the whole cache.
            "exact_paths": {"paths": changed, "wildcards": 0, "needless_misses": 0},
            "wildcard_all": {
                "paths": 1,
                "wildcards": 1,
                "needless_misses": max(0, inv.site_urls - changed),
            },
        }
        per.update({dist: counts for dist in inv.distribution_ids})
    return {
        "version": RECORD_VERSION,
        "kind": kind,
        "deploy_id": deploy_id,
        "previous_deploy_id": previous_deploy_id,
        "target": target,
        "tool_version": tool_version,
        "started_at": iso(started),
        "distribution_ids": [d for inv in invalidations for d in inv.distribution_ids],
        "uploads": {"files": uploads[0], "bytes": uploads[1]},
        "deletes": deletes,
        # Summed over the ways the distributions serve the target (one, unless their origin
        # paths or behaviors differ): each way's URLs are their own cache entries.
        "changed_urls": sum(inv.solution.changed_urls for inv in invalidations),
        "site_urls": sum(inv.site_urls for inv in invalidations),
        "account_paths_before": budget.paths_used if budget else 0,
        "free_paths_per_month": budget.free_per_month if budget else 0,
        "price_per_path": invalidations[0].price,
        # --pace price: the shadow price the deploy was planned at, and the paths it would
        # have submitted at each price tried (its frontier: the next deploys learn from it)
        "shadow_price_usd": invalidations[0].shadow.value if invalidations[0].shadow else None,
        "frontier": [list(p) for p in merged_frontier([inv.frontier for inv in invalidations])],
        "miss_cost_per_url": invalidations[0].miss_cost,
        # Counts per distribution; summed over those invalidated in ``complete``.
        "per_distribution": per,
    }


def complete(
    record: Mapping[str, Any],
    invalidation_ids: Mapping[str, str],
    finished: dt.datetime,
    resumed: bool,
) -> dict[str, Any]:
    """The record of a finished deploy: totals over the distributions it invalidated, and
    the dollars each way would have cost given the account's usage when it was planned. Pure."""
    out = {k: v for k, v in record.items() if k not in ("each", "per_distribution")}
    if "each" in record:  # a draft of an earlier version: the same counts on every distribution
        per = {d: record["each"] for d in record["distribution_ids"]}
    else:
        per = record["per_distribution"]
    before, free, price = (
        record["account_paths_before"],
        record["free_paths_per_month"],
        record["price_per_path"],
    )
    miss = miss_per_url(record)

    def totals(name: str, dists: list[str]) -> dict[str, Any]:
        sums = {
            k: sum(per[d][name][k] for d in dists) for k in ("paths", "wildcards", "needless_misses")
        }
        paid = billable(before, sums["paths"], free)
        charge = dollars(paid, price)
        # "dollars": the charge's name in records of earlier versions (reports read both).
        return sums | {"paid_paths": paid, "dollars": charge, "charge_usd": charge,
                       "miss_cost_usd": round(sums["needless_misses"] * miss, 9)}

    out.update(totals("chosen", [d for d in per if d in invalidation_ids]))
    # The alternatives would have gone to every distribution the deploy names.
    out["alternatives"] = {name: totals(name, list(per)) for name in ("exact_paths", "wildcard_all")}
    out["finished_at"] = iso(finished)
    out["resumed"] = resumed
    out["invalidation_ids"] = dict(invalidation_ids)
    return out


def miss_per_url(record: Mapping[str, Any]) -> float:
    """Dollars per needless miss the deploy was planned with (records of earlier versions
    kept none: the default, a thousandth of the price per path)."""
    def amount(value: Any) -> bool:
        return type(value) in (int, float) and math.isfinite(value) and value >= 0

    value = record.get("miss_cost_per_url")
    if amount(value):
        return float(value)
    price = record.get("price_per_path")
    return miss_dollars(float(price) if amount(price) else PRICE_PER_PATH)


def miss_cost(record: Mapping[str, Any], part: Mapping[str, Any]) -> float:
    """The miss estimate of ``part`` (the record's totals or one of its alternatives)."""
    if "miss_cost_usd" in part:
        return float(part["miss_cost_usd"])
    return round(part["needless_misses"] * miss_per_url(record), 9)


def record_name(record: Mapping[str, Any]) -> str:
    """``ledger/YYYY-MM/YYYYMMDDTHHMMSSZ-<deploy id>[-repair].json``, by the start (UTC):
    the same name whichever run finishes the deploy, so it is written once."""
    started = parse_iso(record["started_at"])
    kind = "" if record.get("kind", "deploy") == "deploy" else f"-{record['kind']}"
    if "repair_id" in record:  # several repairs of one deploy may start in the same second
        kind += f"-{record['repair_id']}"
    return (
        f"{LEDGER_DIR}/{started:%Y-%m}/{started:%Y%m%dT%H%M%SZ}-{record['deploy_id']}{kind}.json"
    )


def is_deploy_record(name: str) -> bool:
    """A deploy's record (``record_name``), not a repair's (``...-<deploy id>-repair-<id>.json``)
    nor anything else in the ledger's folder. Pure."""
    return places.is_record(name) and "-" not in name.rsplit("Z-", 1)[1]


def write(store: "Store", record: Mapping[str, Any]) -> bool:
    """Create the record's object; False when a run before this one already wrote it."""

    data = json.dumps(record, sort_keys=True, ensure_ascii=False).encode()
    try:
        store.write(record_name(record), data, expect=ABSENT)
    except ConflictError:
        return False
    return True


def read_month(store: "Store", month: str, workers: int = 16) -> tuple[list[dict], list[str]]:
    """(records of ``month`` sorted by start, names of objects that are not valid records)."""
    names = [n for n in store.list(f"{LEDGER_DIR}/{month}/") if n.endswith(".json")]

    def load(name: str) -> dict | None:
        data, _ = store.read(name)
        return None if data is None else _valid(data)

    with ThreadPoolExecutor(max_workers=max(1, min(workers, len(names) or 1))) as pool:
        loaded = list(pool.map(load, names))
    records = [r for r in loaded if r is not None]
    bad = [n for n, r in zip(names, loaded) if r is None]
    records.sort(key=lambda r: (r["started_at"], r["deploy_id"]))
    return records, bad


_COUNTS = ("paths", "wildcards", "needless_misses", "paid_paths")


def _valid(data: bytes) -> dict | None:
    """A record this tool wrote (version 1, the fields a report sums), else None."""
    try:
        rec = json.loads(data)
        if not isinstance(rec, dict) or rec.get("version") != RECORD_VERSION:
            return None
        parse_iso(rec["started_at"])
        if not isinstance(rec["deploy_id"], str) or not rec["deploy_id"]:
            return None
        ints = [rec[k] for k in _COUNTS] + [rec["uploads"]["files"], rec["uploads"]["bytes"]]
        ints += [rec["deletes"], rec["changed_urls"]]
        for alt in ("exact_paths", "wildcard_all"):
            ints += [rec["alternatives"][alt][k] for k in _COUNTS]
        dollars = [rec["dollars"]] + [rec["alternatives"][a]["dollars"] for a in ("exact_paths", "wildcard_all")]
    except (ValueError, KeyError, TypeError):
        return None
    if not all(type(x) is int and x >= 0 for x in ints):
        return None
    if not all(type(x) in (int, float) and math.isfinite(x) and x >= 0 for x in dollars):
        return None
    return rec


def pace_history(store: "Store", now: dt.datetime) -> tuple[PastDeploy, ...]:
    """The target's deploys of the last HISTORY_DAYS days, as ``--pace price`` learns from
    them (this month's records and, early in a month, the last one's): when, the paths each
    submitted, and its frontier. A record of an earlier version, without a frontier, counts
    as the paths it submitted at every price."""
    months = {month_of(now), month_of(now - dt.timedelta(days=HISTORY_DAYS))}
    out = []
    for month in sorted(months):
        for rec in read_month(store, month)[0]:
            when = parse_iso(rec["started_at"])
            if not 0 <= (now.date() - when.date()).days < HISTORY_DAYS or rec.get("kind", "deploy") != "deploy":
                continue
            out.append(PastDeploy(when, rec["paths"], _frontier(rec.get("frontier"))))
    return tuple(out)


def _frontier(value: Any) -> tuple[tuple, ...]:
    """A record's frontier, if it is one (ascending prices; whole paths, and whole misses
    but in the first version's records, which kept [price, paths]); else none."""
    try:
        points = tuple((float(p[0]), *(int(x) for x in p[1:])) for p in value)
    except (TypeError, ValueError, IndexError):
        return ()
    ok = all(len(p) in (2, 3) and math.isfinite(p[0]) and min(p) >= 0 for p in points)
    ok = ok and len({len(p) for p in points}) <= 1
    return points if ok and [p[0] for p in points] == sorted(p[0] for p in points) else ()
