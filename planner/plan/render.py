"""Plans and results as tables (people), JSON (machines) and markdown (CI summaries)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from planner.core.minimizer import Covered
from planner.core.pacing import is_completed
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


def money(x: float) -> str:
    return f"${x:,.2f}" if x >= 0.01 or x == 0 else f"${x:.4f}"


def plan_dict(plan: Plan) -> dict[str, Any]:
    """The stable JSON shape (documented in docs/json.md)."""
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
        ],
        "deletes": [{"key": k} for k in plan.deletes],
        "kept": [{"key": k} for k in plan.kept],
        "unchanged": len(d.unchanged),
        "fingerprinted_new": plan.fingerprinted_new,
        # One per group of distributions serving the target under the same URLs;
        # "invalidation" is the first (the only one, unless their origins differ).
        "invalidation": invalidations[0],
        "invalidations": invalidations,
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
        f"takeover: {t.found} objects found: {len(t.adopted)} adopted as they are, "
        f"{len(t.in_place)} with headers fixed in place, {len(t.replaced)} replaced, "
        f"{len(t.orphaned)} orphaned (not in the build); {len(t.new)} new files"
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
                "cost_usd": round(a.solution.cost_usd, 6) if a.solution else None,
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
        "cost_usd": round(sol.cost_usd, 6),
        "cost_lower_bound_usd": round(sol.cost_lower_bound_usd, 6),
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


def _cut(rows: list[Any], verbose: bool) -> tuple[list[Any], str]:
    if verbose or len(rows) <= LIST_LIMIT:
        return rows, ""
    return rows[:LIST_LIMIT], f"... and {len(rows) - LIST_LIMIT} more (--verbose shows all)"


def to_text(plan: Plan, fmt: str = "table", verbose: bool = False) -> str:
    """The plan for people: ``fmt`` is 'table' (terminal) or 'markdown' (CI summaries)."""
    from tabulate import (
        tabulate,  # only for people's formats: JSON runs skip its import cost
    )

    md = fmt == "markdown"
    tf = "github" if md else "simple"
    out: list[str] = []

    def heading(text: str) -> None:
        out.append(f"\n### {text}\n" if md else f"\n{text}")

    t = plan.takeover
    # A takeover worth a word: the target held something, or its manifest was lost.
    told = t is not None and (t.found > 0 or t.reason != NO_MANIFEST_YET)
    prev = plan.previous_deploy_id or ("none (takeover)" if told else "none (first deploy)")
    title = f"Plan: {plan.site} -> {plan.target}"
    out.append(f"## {title}\n" if md else title)
    for warning in plan.warnings:
        out.append(f"warning: {warning}")
    if told:
        out.append(t.reason)
        out.append(takeover_line(t))
    if plan.has_work:
        out.append(f"deploy {plan.deploy_id}, previous {prev}")
    else:
        out.append(f"no changes; the target holds deploy {plan.deploy_id or '-'}")
    if plan.resume is not None:
        r = plan.resume
        out.append(
            f"pending: deploy {r.deploy_id} was interrupted; its {r.path_count} invalidation "
            f"paths and {len(r.deletes)} deletes are finished first"
        )
    d = plan.diff
    rows = [
        ["added", len(d.added), human_bytes(plan.sizes.get("added", 0))],
        ["modified", len(d.modified), human_bytes(plan.sizes.get("modified", 0))],
        ["deleted", len(d.deleted), human_bytes(plan.sizes.get("deleted", 0))],
        ["unchanged", len(d.unchanged), human_bytes(plan.sizes.get("unchanged", 0))],
    ]
    out.append("")
    out.append(tabulate(rows, headers=["change", "files", "bytes"], tablefmt=tf,
                        colalign=("left", "right", "right")))

    if plan.uploads:
        fixes = sum(u.in_place for u in plan.uploads)
        heading(f"Uploads ({len(plan.uploads)}, {human_bytes(plan.upload_bytes)}"
                + (f"; {fixes} of them headers only, set in place" if fixes else "") + ")")
        urows, more = _cut(
            [[u.key, u.reason + (" (in place)" if u.in_place else ""),
              "-" if u.in_place else human_bytes(u.size)] for u in plan.uploads],
            verbose,
        )
        out.append(tabulate(urows, headers=["key", "reason", "size"], tablefmt=tf))
        if more:
            out.append(more)
    if plan.deletes:
        heading(f"Deletes ({len(plan.deletes)})")
        drows, more = _cut([[k] for k in plan.deletes], verbose)
        out.append(tabulate(drows, headers=["key"], tablefmt=tf))
        if more:
            out.append(more)
    if plan.kept:
        out.append(f"\nkept (--no-delete): {len(plan.kept)} removed files stay in the target")

    several = len(plan.invalidations) > 1
    heading("Invalidation")
    if plan.fingerprinted_new:
        out.append(
            f"{plan.fingerprinted_new} new fingerprinted files (a content hash in the name: "
            "never requested before) need no invalidation"
        )
    if several:
        out.append(
            f"the distributions serve {plan.target} under {len(plan.invalidations)} different "
            "URL layouts (origin paths or behaviors): one invalidation each"
        )
    for inv in plan.invalidations:
        if several:
            heading(f"Invalidation on {', '.join(inv.distribution_ids)}")
        _invalidation_text(plan, inv, out, heading, tf, verbose, tabulate)
    if several:
        billed = sum(len(inv.paths) * len(inv.distribution_ids) for inv in plan.invalidations)
        cost = sum(inv.solution.cost_usd for inv in plan.invalidations)
        out.append(f"\nin all: {billed} paths billed over {len(plan.distribution_ids)} "
                   f"distributions; cost: {money(cost)}")
    return "\n".join(out).lstrip("\n") + "\n"


def _invalidation_text(
    plan: Plan, inv, out: list[str], heading, tf: str, verbose: bool, tabulate
) -> None:
    """One group's invalidation, appended to ``out`` (see ``to_text``)."""
    sol = inv.solution
    if not inv.paths:
        out.append(
            "nothing to invalidate"
            + (" (new files were never cached)" if plan.diff.added and plan.has_work else "")
        )
        return
    names = {x.id: x.names for x in plan.distributions}
    where = ", ".join(
        f"{d} ({names[d]})" if names.get(d) else d for d in inv.distribution_ids
    ) or "no distribution given (not submitted)"
    out.append(
        f"{len(inv.paths)} paths ({sol.wildcards} wildcards) for {sol.changed_urls} changed "
        f"URLs, {sol.collateral_urls} needless misses, on {where}"
    )
    b = inv.budget
    if b is not None:
        pace = (
            f"pace even: at most {b.allowance} this deploy ({b.free_left} left / "
            f"{b.days_left} days x 3)" if b.pace == "even" else "pace none"
        )
        out.append(
            f"free paths: {b.free_left} of {b.free_per_month} left this month "
            f"({b.paths_used} used, from {b.source}); {pace}"
        )
        if inv.free_paths < b.allowance:
            out.append(f"{inv.free_paths} of those free paths are left for these distributions "
                       "after the invalidations above")
        if inv.usage is not None and inv.usage.note:
            out.append(f"note: {inv.usage.note}")
    if inv.must_wait:
        out.append(
            f"CloudFront has too many invalidations in progress (wildcards allowed now: "
            f"{inv.max_wildcards}, paths: {inv.max_paths}): the deploy waits (--wait-timeout)"
        )
    prows, more = _cut(
        [[c.path, c.changed, c.collateral] for c in coverage(sol)], verbose
    )
    out.append(tabulate(prows, headers=["path", "changed", "needless"], tablefmt=tf,
                        colalign=("left", "right", "right")))
    if more:
        out.append(more)
    bound = "" if sol.exact else f" (proven lower bound {money(sol.cost_lower_bound_usd)})"
    out.append(f"paid paths: {sol.paid_paths}; cost: {money(sol.cost_usd)}{bound}")
    if inv.alternatives:
        heading("Alternatives")
        arows = [
            [a.name, len(a.solution.paths), a.solution.collateral_urls,
             a.solution.paid_paths, money(a.solution.cost_usd)]
            if a.solution is not None
            else [a.name, "-", "-", "-", "not allowed now"]
            for a in inv.alternatives
        ]
        out.append(tabulate(arows, headers=["plan", "paths", "needless", "paid", "cost"],
                            tablefmt=tf, colalign=("left", "right", "right", "right", "right")))


def summary_line(plan: Plan, result: Result) -> str:
    """One line, s3deploy style: what the deploy did."""
    if not plan.has_work and result.resumed is None:
        return f"Nothing to deploy: {len(plan.diff.unchanged)} files unchanged."
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
        parts.append(f"invalidated {result.paths} paths ({ids})")
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
