"""Plans and results as tables (people), JSON (machines) and markdown (CI summaries)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Callable

from planner.core.minimizer import Covered
from planner.core.pacing import is_completed
from planner.core.words import Doc, money, plural
from planner.plan.build import NO_MANIFEST_YET
from planner.plan.compute import Plan

if TYPE_CHECKING:  # a type only: rendering a plan never loads the executor (or boto3)
    from planner.apply import Result

LIST_LIMIT = 20  # rows of uploads / deletes / paths shown without --verbose


def human_bytes(n: int) -> str:
    size = float(n)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"


# Markers standing for the lists write_json streams (one JSON string each, never a key).
STREAMED = {name: f"\u0000planner:{name}\u0000" for name in ("uploads", "deletes", "kept")}


def plan_dict(plan: Plan, lists: bool = True) -> dict[str, Any]:
    """The stable JSON shape (documented in docs/json.md); ``lists=False`` puts a marker
    (STREAMED) in place of the lists of uploads, deletes and kept keys (see write_json)."""
    invalidations = [invalidation_dict(inv) for inv in plan.invalidations]
    d = plan.diff
    return {
        "target": plan.target,
        "site": plan.site,
        "summary": {
            "added": {"files": len(d.added), "bytes": plan.sizes.get("added", 0)},
            "modified": {"files": len(d.modified), "bytes": plan.sizes.get("modified", 0)},
            "deleted": {"files": len(d.deleted), "bytes": plan.sizes.get("deleted", 0)},
            "unchanged": {"files": len(d.unchanged), "bytes": plan.sizes.get("unchanged", 0)},
        },
        "uploads": [
            {"key": u.key, "reason": u.reason, "size": u.size, "in_place": u.in_place}
            for u in plan.uploads
        ] if lists else STREAMED["uploads"],
        "deletes": [{"key": k} for k in plan.deletes] if lists else STREAMED["deletes"],
        "kept": [{"key": k} for k in plan.kept] if lists else STREAMED["kept"],
        "unchanged": len(d.unchanged),
        "fingerprinted_new": plan.fingerprinted_new,
        # One per group of distributions serving the target under the same URLs;
        # "invalidation" is the first (the only one, unless their origins differ).
        "invalidation": invalidations[0],
        "invalidations": invalidations,
        # Over every invalidation: what AWS bills, and the estimate of the needless misses.
        "cost": totals(plan),
        "manifest": {
            "previous_deploy_id": plan.previous_deploy_id,
            "deploy_id": plan.deploy_id,
        },
        "takeover": takeover_dict(plan.takeover),
        "distributions": [
            {"id": x.id, "domain": x.domain or None, "aliases": list(x.aliases)}
            for x in plan.distributions
        ],
        "warnings": list(plan.warnings),
        "resume": None
        if plan.resume is None
        else {
            "deploy_id": plan.resume.deploy_id,
            "paths": sorted({p for _, ps in plan.resume.submissions() for p in ps}),
            "invalidations": [
                {"distribution_id": dist, "paths": list(ps)}
                for dist, ps in plan.resume.submissions()
            ],
            "deletes": list(plan.resume.deletes),
        },
    }


def takeover_dict(t) -> dict[str, Any] | None:
    """What a takeover found (no manifest: the target's objects, sorted against the build)."""
    if t is None:
        return None
    return {
        "reason": t.reason,
        "found": t.found,
        "adopted": len(t.adopted),
        "fixed_in_place": len(t.in_place),
        "replaced": len(t.replaced),
        "orphaned": len(t.orphaned),
        "new": len(t.new),
    }


def takeover_line(t) -> str:
    """One line: what a takeover found and does with it."""
    return (
        f"takeover: {plural(t.found, 'object')} found: {len(t.adopted):,} adopted as they are, "
        f"{len(t.in_place)} with headers fixed in place, {len(t.replaced)} replaced, "
        f"{len(t.orphaned):,} orphaned (not in the build); {plural(len(t.new), 'new file')}"
    )


def invalidation_dict(inv) -> dict[str, Any]:
    """One group's invalidation (``Plan.invalidations``), as in the plan's JSON."""
    sol = inv.solution
    return {
        "paths": list(inv.paths),
        "distribution_ids": list(inv.distribution_ids),
        **solution_fields(sol),
        "free_paths": inv.free_paths,
        "caller_reference": inv.caller_reference if inv.paths else None,
        "budget": _budget_dict(inv),
        "coverage": [
            {"path": c.path, "changed": c.changed, "collateral": c.collateral}
            for c in coverage(sol)
        ],
        "alternatives": [
            {
                "name": a.name,
                "valid": a.solution is not None,
                "paths": len(a.solution.paths) if a.solution else None,
                "collateral_urls": a.solution.collateral_urls if a.solution else None,
                "paid_paths": a.solution.paid_paths if a.solution else None,
                "charge_usd": round(a.solution.charge_usd, 6) if a.solution else None,
                "miss_cost_usd": round(a.solution.miss_cost_usd, 9) if a.solution else None,
                "cost_usd": round(a.solution.cost_usd, 9) if a.solution else None,
            }
            for a in inv.alternatives
        ],
        "must_wait": inv.must_wait,
    }


def solution_fields(sol) -> dict[str, Any]:
    """What a minimizer solution reports, in the JSON of both ``plan`` and ``paths``."""
    return {
        "changed_urls": sol.changed_urls,
        "collateral_urls": sol.collateral_urls,
        "paid_paths": sol.paid_paths,
        "charge_usd": round(sol.charge_usd, 6),
        "miss_cost_usd": round(sol.miss_cost_usd, 9),
        "free_paths_used": sol.free_paths_used,
        "paced_paths": sol.paced_paths,
        "shadow_usd": round(sol.shadow_usd, 9),
        "cost_usd": round(sol.cost_usd, 9),
        "cost_lower_bound_usd": round(sol.cost_lower_bound_usd, 9),
        "exact": sol.exact,
        "wildcards": sol.wildcards,
    }


def _budget_dict(inv) -> dict[str, Any] | None:
    b = inv.budget
    if b is None:
        return None
    return {
        "free_paths_per_month": b.free_per_month,
        "paths_used": b.paths_used,
        "source": b.source,
        "free_paths_left": b.free_left,
        "pace": b.pace,
        "days_left": b.days_left,
        "pace_allowance": b.allowance,
        # --pace price: dollars per free path used, where it came from, and the paths this
        # deploy would submit at each shadow price tried
        "shadow_price_usd": inv.shadow.value if inv.shadow is not None else None,
        "shadow_price_source": inv.shadow.why if inv.shadow is not None else None,
        "frontier": [{"shadow_price_usd": lam, "paths": n, "misses": m}
                     for lam, n, m in inv.frontier],
        "max_wildcards_now": inv.max_wildcards,
        "max_paths_now": inv.max_paths,
        "note": inv.usage.note if inv.usage is not None else "",
    }


def coverage(sol):
    """Each chosen path with what it covers: wildcards from the solution, exact paths 1/0."""

    wild = {c.path: c for c in sol.wildcard_cover}
    return [wild.get(p) or Covered(p, 1, 0) for p in sol.paths]


def result_dict(result: Result) -> dict[str, Any]:
    return {
        "uploaded": result.uploaded,
        "uploaded_bytes": result.uploaded_bytes,
        "fixed_in_place": result.fixed_in_place,
        "deleted": result.deleted,
        "invalidations": [{"distribution_id": k, "id": v} for k, v in result.invalidations.items()],
        "paths": result.paths,
        "resumed": result.resumed,
        "wait": None if result.wait is None else {
            "completed": result.wait.completed,
            "seconds": round(result.wait.seconds, 1),
            "invalidations": [
                {"distribution_id": d, "id": i, "status": s or None, "completed": is_completed(s)}
                for d, i, s in result.wait.statuses
            ],
        },
    }


def to_json(plan: Plan, result: Result | None = None) -> str:
    doc = plan_dict(plan)
    if result is not None:
        doc["result"] = result_dict(result)
    return json.dumps(doc, indent=2, ensure_ascii=False)


def write_json(plan: Plan, write: Callable[[str], Any], result: Result | None = None) -> None:
    """``to_json(plan, result)``, the same text, handed to ``write`` in pieces: the lists of
    uploads, deletes and kept keys (a million items on a first deploy of a million files) are
    written item by item, a few thousand at a time, never held as dicts or as one string."""
    doc = plan_dict(plan, lists=False)
    if result is not None:
        doc["result"] = result_dict(result)
    text = json.dumps(doc, indent=2, ensure_ascii=False)
    quote = json.encoder.encode_basestring  # what json.dumps writes for a str, quotes and all
    items = {
        "uploads": (
            f'    {{\n      "key": {quote(u.key)},\n      "reason": {quote(u.reason)},\n'
            f'      "size": {u.size},\n      "in_place": {"true" if u.in_place else "false"}\n'
            "    }"
            for u in plan.uploads
        ),
        "deletes": (f'    {{\n      "key": {quote(k)}\n    }}' for k in plan.deletes),
        "kept": (f'    {{\n      "key": {quote(k)}\n    }}' for k in plan.kept),
    }
    for name, marker in STREAMED.items():
        before, _, text = text.partition(quote(marker))
        write(before)
        first = next(items[name], None)
        if first is None:
            write("[]")
            continue
        write("[\n" + first)
        chunk: list[str] = []
        for item in items[name]:
            chunk.append(item)
            if len(chunk) == 4096:
                write(",\n" + ",\n".join(chunk))
                chunk.clear()
        if chunk:
            write(",\n" + ",\n".join(chunk))
        write("\n  ]")
    write(text)


def _cut(rows: list[Any], verbose: bool) -> tuple[list[Any], str]:
    if verbose or len(rows) <= LIST_LIMIT:
        return rows, ""
    return rows[:LIST_LIMIT], f"... and {len(rows) - LIST_LIMIT} more (--verbose shows all)"


def to_text(plan: Plan, fmt: str = "table", verbose: bool = False) -> str:
    """The plan for people: ``fmt`` is 'table' (terminal) or 'markdown' (CI summaries and
    pull-request comments: every table a block of its own, headings, figures as lists)."""
    doc = Doc(fmt)
    t = plan.takeover
    # A takeover worth a word: the target held something, or its manifest was lost.
    told = t is not None and (t.found > 0 or t.reason != NO_MANIFEST_YET)
    prev = plan.previous_deploy_id or ("none (takeover)" if told else "none (first deploy)")
    doc.title(f"Plan: {plan.site} -> {plan.target}")
    for warning in plan.warnings:
        doc.line(f"warning: {warning}")
    if told:
        doc.line(t.reason)
        doc.line(takeover_line(t))
    if plan.has_work:
        doc.line(f"deploy {plan.deploy_id}, previous {prev}")
    else:
        doc.line(f"no changes; the target holds deploy {plan.deploy_id or '-'}")
    if plan.resume is not None:
        r = plan.resume
        doc.line(
            f"pending: deploy {r.deploy_id} was interrupted; its "
            f"{plural(r.path_count, 'invalidation path')} and {plural(len(r.deletes), 'delete')} "
            "are finished first"
        )
    d = plan.diff
    doc.table(
        [[name, f"{len(keys):,}", human_bytes(plan.sizes.get(name, 0))]
         for name, keys in (("added", d.added), ("modified", d.modified),
                            ("deleted", d.deleted), ("unchanged", d.unchanged))],
        ["change", "files", "bytes"], ("left", "right", "right"),
    )
    _changes_text(plan, doc, verbose)
    several = len(plan.invalidations) > 1
    doc.heading("Invalidation")
    if plan.fingerprinted_new:
        doc.line(
            f"{plural(plan.fingerprinted_new, 'new fingerprinted file')} (a content hash in the "
            f"name: never requested before) need{'s' if plan.fingerprinted_new == 1 else ''} no "
            "invalidation"
        )
    if several:
        doc.line(
            f"the distributions serve {plan.target} under {len(plan.invalidations)} different "
            "URL layouts (origin paths or behaviors): one invalidation each"
        )
    for inv in plan.invalidations:
        if several:
            doc.heading(f"Invalidation on {', '.join(inv.distribution_ids)}")
        _invalidation_text(plan, inv, doc, verbose)
    if several:
        billed = sum(len(inv.paths) * len(inv.distribution_ids) for inv in plan.invalidations)
        total = totals(plan)
        doc.heading("In all")
        doc.line(f"{plural(billed, 'path')} submitted over "
                 f"{plural(len(plan.distribution_ids), 'distribution')}")
        _figures_lines(doc, total["paid_paths"], total["charge_usd"],
                       total["collateral_urls"], total["miss_cost_usd"])
    return doc.text()


def _changes_text(plan: Plan, doc: Doc, verbose: bool) -> None:
    """The uploads, deletes and kept files of ``to_text``."""
    if plan.uploads:
        fixes = sum(u.in_place for u in plan.uploads)
        doc.heading(f"Uploads ({len(plan.uploads):,}, {human_bytes(plan.upload_bytes)}"
                    + (f"; {fixes:,} of them headers only, set in place" if fixes else "") + ")")
        urows, more = _cut(
            [[u.key, u.reason + (" (in place)" if u.in_place else ""),
              "-" if u.in_place else human_bytes(u.size)] for u in plan.uploads],
            verbose,
        )
        doc.table(urows, ["key", "reason", "size"])
        if more:
            doc.line(more)
    if plan.deletes:
        doc.heading(f"Deletes ({len(plan.deletes):,})")
        drows, more = _cut([[k] for k in plan.deletes], verbose)
        doc.table(drows, ["key"])
        if more:
            doc.line(more)
    if plan.kept:
        doc.line(f"kept (--no-delete): {plural(len(plan.kept), 'removed file')} stay in the "
                 "target")


def _invalidation_text(plan: Plan, inv, doc: Doc, verbose: bool) -> None:
    """One group's invalidation (see ``to_text``)."""
    sol = inv.solution
    if not inv.paths:
        doc.line(
            "nothing to invalidate"
            + (" (new files were never cached)" if plan.diff.added and plan.has_work else "")
        )
        return
    names = {x.id: x.names for x in plan.distributions}
    where = ", ".join(
        f"{d} ({names[d]})" if names.get(d) else d for d in inv.distribution_ids
    ) or "no distribution given (not submitted)"
    doc.line(
        f"{plural(len(inv.paths), 'path')} ({plural(sol.wildcards, 'wildcard')}) for "
        f"{plural(sol.changed_urls, 'changed URL')}, "
        f"{plural(sol.collateral_urls, 'needless miss', 'needless misses')}, on {where}"
    )
    b = inv.budget
    if b is not None:
        pace = {
            "even": f"pace even: at most {b.allowance:,} this deploy ({b.free_left:,} left / "
                    f"{plural(b.days_left, 'day')} x 3)",
            "price": "pace price",
        }.get(b.pace, "pace none")
        doc.line(
            f"free paths: {b.free_left:,} of {b.free_per_month:,} left this month "
            f"({b.paths_used:,} used, from {b.source}); {pace}"
        )
        if inv.free_paths < b.allowance:
            doc.line(f"{inv.free_paths:,} of those free paths are left for these distributions "
                     "after the invalidations above")
        if inv.shadow is not None:
            doc.line(f"shadow price of a free path: {money(inv.shadow.value)} "
                     f"({inv.shadow.why})")
        if inv.usage is not None and inv.usage.note:
            doc.line(f"note: {inv.usage.note}")
    if inv.must_wait:
        doc.line(
            f"CloudFront has too many invalidations in progress (wildcards allowed now: "
            f"{inv.max_wildcards}, paths: {inv.max_paths}): the deploy waits (--wait-timeout)"
        )
    prows, more = _cut(
        [[c.path, f"{c.changed:,}", f"{c.collateral:,}"] for c in coverage(sol)], verbose
    )
    doc.table(prows, ["path", "changed", "needless"], ("left", "right", "right"))
    if more:
        doc.line(more)
    _figures_lines(doc, sol.paid_paths, sol.charge_usd, sol.collateral_urls, sol.miss_cost_usd)
    if sol.paced_paths:
        doc.line(f"{sol.paced_paths:,} of these paths are free but beyond this deploy's pace "
                 f"allowance: the plan counted them at {money(inv.price)} each (see --pace)")
    if not sol.exact:
        doc.line(f"not proven optimal: cost model total {money(sol.cost_usd)}, proven lower "
                 f"bound {money(sol.cost_lower_bound_usd)}")
    if inv.alternatives:
        doc.heading("Alternatives")
        doc.table(
            [
                [a.name, f"{len(a.solution.paths):,}", f"{a.solution.collateral_urls:,}",
                 f"{a.solution.paid_paths:,}", money(a.solution.charge_usd),
                 money(a.solution.miss_cost_usd)]
                if a.solution is not None
                else [a.name, "-", "-", "-", "not allowed now", "-"]
                for a in inv.alternatives
            ],
            ["plan", "paths", "needless", "paid", "AWS charge", "miss estimate"],
            ("left", "right", "right", "right", "right", "right"),
        )


def _figures_lines(doc: Doc, paid: int, charge: float, misses: int, miss_cost: float) -> None:
    """The two figures, apart: what AWS bills, and what the misses are estimated to cost."""
    doc.line(f"AWS charge: {money(charge)} ({plural(paid, 'paid path')})")
    doc.line(f"miss estimate: {money(miss_cost)} for "
             f"{plural(misses, 'needless miss', 'needless misses')} (cost model, --miss-cost)")


def totals(plan: Plan) -> dict[str, Any]:
    """The plan's figures over every invalidation (the JSON's "cost"): paths and misses
    counted on each distribution they are submitted to (none without a distribution)."""
    sols = [(inv.solution, len(inv.distribution_ids)) for inv in plan.invalidations]
    return {
        "paths": sum(len(s.paths) * k for s, k in sols),
        "paid_paths": sum(s.paid_paths for s, _ in sols),
        "charge_usd": round(sum(s.charge_usd for s, _ in sols), 6),
        "collateral_urls": sum(s.collateral_urls * k for s, k in sols),
        "miss_cost_usd": round(sum(s.miss_cost_usd for s, _ in sols), 9),
        "cost_usd": round(sum(s.cost_usd for s, _ in sols), 9),
    }


def summary_line(plan: Plan, result: Result) -> str:
    """One line, s3deploy style: what the deploy did."""
    if not plan.has_work and result.resumed is None:
        return f"Nothing to deploy: {plural(len(plan.diff.unchanged), 'file')} unchanged."
    total = len(plan.manifest.entries) + len(plan.diff.deleted) - len(plan.kept)
    changed = len(plan.uploads) + len(plan.deletes)
    pct = 100.0 * changed / total if total else 0.0
    parts = [
        f"Uploaded {result.uploaded} ({human_bytes(result.uploaded_bytes)})",
        *([f"fixed headers of {result.fixed_in_place} in place"] if result.fixed_in_place else []),
        f"deleted {result.deleted}",
        f"skipped {len(plan.diff.unchanged) - sum(u.reason == 'unconfirmed' for u in plan.uploads)}",
    ]
    if result.invalidations:
        ids = ", ".join(f"{k}:{v}" for k, v in result.invalidations.items())
        t = totals(plan)
        # The two figures as planned (an interrupted deploy's paths, finished first, aside).
        figures = "" if result.resumed else (f"; AWS charge {money(t['charge_usd'])}, miss "
                                             f"estimate {money(t['miss_cost_usd'])}")
        parts.append(f"invalidated {plural(result.paths, 'path')} ({ids}{figures})")
    else:
        parts.append("no invalidation")
    line = ", ".join(parts) + f" ({pct:.0f}% changed)."
    if result.resumed:
        line = f"Finished interrupted deploy {result.resumed}. " + line
    if result.wait is not None and result.wait.completed and result.wait.statuses:
        n = len(result.wait.statuses)
        line += (f" CloudFront completed the invalidation{'s' if n > 1 else ''} in "
                 f"{result.wait.seconds:.0f} s.")
    return line
