"""Saved plans: ``planner plan --out plan.json`` and ``planner deploy --plan plan.json``.

A saved plan holds the options it was made with, the version (ETag) of the manifest and of
the pending record it was made against, what it uploads and deletes, and the invalidation
paths a reviewer saw. Applying it rebuilds the plan from the same build and options and
refuses unless the target is unchanged and the build gives the same deploy; the invalidation
is then exactly the saved one, whatever the month's budget says by now. Pure but for nothing:
``dumps`` and ``load`` work on bytes.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import Any

from .errors import PlannerError
from .headers import HeaderRule
from .minimizer import Covered, Solution
from .plan import Alternative, Invalidation, Options, Plan

FORMAT = "invalidation-planner/plan"
VERSION = 1


class BadSavedPlan(PlannerError):
    """A saved plan that cannot be read, or no longer matches the target or the build."""


@dataclass(frozen=True)
class SavedPlan:
    site: str
    target: str
    options: Options
    deploy_id: str
    previous_version: str | None
    journal_version: str | None
    uploads: tuple[tuple[str, str, str], ...]  # (key, reason, hash)
    deletes: tuple[str, ...]
    invalidations: tuple[dict[str, Any], ...]  # the "invalidations" objects of the plan's JSON
    acl: str | None = None  # --acl of site files
    state: str | None = None  # --state: the state's own place

    def accept(self, plan: Plan) -> Plan:
        """``plan`` (rebuilt now) with the saved invalidation, if it is the saved plan."""
        if (plan.previous_version, plan.journal_version) != (
            self.previous_version,
            self.journal_version,
        ):
            raise BadSavedPlan(
                f"{self.target} changed since the plan was made (another deploy?); make a new "
                "plan"
            )
        now = tuple((u.key, u.reason, u.hash) for u in plan.uploads)
        if plan.deploy_id != self.deploy_id or now != self.uploads or plan.deletes != self.deletes:
            raise BadSavedPlan(
                f"the build in {self.site} is not the one the plan was made from; make a new plan"
            )
        saved = tuple(tuple(inv["distribution_ids"]) for inv in self.invalidations)
        if saved != tuple(inv.distribution_ids for inv in plan.invalidations):
            raise BadSavedPlan(
                "the distributions serve the target differently since the plan was made "
                "(their origins or behaviors changed); make a new plan"
            )
        for inv, doc in zip(plan.invalidations, self.invalidations):
            missed = uncovered(inv.changed, doc["paths"])
            if missed:
                raise BadSavedPlan(
                    f"the saved paths no longer invalidate {missed} on "
                    f"{', '.join(inv.distribution_ids)} (its origins or behaviors changed since "
                    "the plan was made); make a new plan"
                )
        return dataclasses.replace(
            plan,
            invalidations=tuple(
                _as_saved(inv, doc) for inv, doc in zip(plan.invalidations, self.invalidations)
            ),
        )


def uncovered(urls: frozenset[str], paths: list[str]) -> str | None:
    """The first of ``urls`` (sorted) that none of ``paths`` invalidates, if any."""
    exact = {p for p in paths if not p.endswith("*")}
    wild = tuple(p[:-1] for p in paths if p.endswith("*"))
    return next((u for u in sorted(urls) if u not in exact and not u.startswith(wild)), None)


def _as_saved(invalidation: Invalidation, inv: dict[str, Any]) -> Invalidation:
    """``invalidation`` (planned now) with the paths and figures of the saved ``inv``."""
    cover = tuple(
        Covered(c["path"], c["changed"], c["collateral"])
        for c in inv["coverage"]
        if c["path"].endswith("*")
    )
    solution = Solution(
        paths=tuple(inv["paths"]),
        changed_urls=inv["changed_urls"],
        collateral_urls=inv["collateral_urls"],
        paid_paths=inv["paid_paths"],
        cost_usd=inv["cost_usd"],
        cost_lower_bound_usd=inv["cost_lower_bound_usd"],
        exact=inv["exact"],
        wildcard_cover=cover,
    )
    alternatives = tuple(
        Alternative(a.name, solution) if a.name == "chosen" else a
        for a in invalidation.alternatives
    )
    return dataclasses.replace(
        invalidation, paths=solution.paths, solution=solution, alternatives=alternatives
    )


def dumps(plan: Plan, options: Options, acl: str | None = None, state: str | None = None) -> bytes:
    from .render import plan_dict

    opts = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dataclasses.asdict(options).items()
        if k not in ("now", "hash_workers")
    }
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "tool_version": plan.manifest.tool_version,
        "site": plan.site,
        "target": plan.target,
        "deploy_id": plan.deploy_id,
        "previous_version": plan.previous_version,
        "journal_version": plan.journal_version,
        "options": opts,
        "acl": acl,
        "state": state,
        "uploads": [[u.key, u.reason, u.hash] for u in plan.uploads],
        "plan": plan_dict(plan),
    }
    return json.dumps(doc, indent=1, ensure_ascii=False).encode()


def load(data: bytes, where: str) -> SavedPlan:
    try:
        doc = json.loads(data)
        if doc.get("format") != FORMAT:
            raise BadSavedPlan(f"{where} is not a plan saved by `planner plan --out`")
        if doc.get("version") != VERSION:
            raise BadSavedPlan(f"{where}: plan format version {doc.get('version')!r} is not {VERSION}")
        fields = {f.name for f in dataclasses.fields(Options)}
        opts = {
            k: (tuple(v) if isinstance(v, list) else v)
            for k, v in doc["options"].items()
            if k in fields
        }
        opts["header_rules"] = tuple(HeaderRule(**r) for r in opts.get("header_rules", ()))
        return SavedPlan(
            site=str(doc["site"]),
            target=str(doc["target"]),
            options=Options(**opts),
            deploy_id=str(doc["deploy_id"]),
            previous_version=doc["previous_version"],
            journal_version=doc["journal_version"],
            uploads=tuple((str(k), str(r), str(h)) for k, r, h in doc["uploads"]),
            deletes=tuple(str(d["key"]) for d in doc["plan"]["deletes"]),
            # A plan saved before "invalidations" existed has its one group in "invalidation".
            invalidations=tuple(
                doc["plan"].get("invalidations") or [doc["plan"]["invalidation"]]
            ),
            acl=doc.get("acl"),
            state=doc.get("state"),
        )
    except BadSavedPlan:
        raise
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise BadSavedPlan(f"{where} is not a readable saved plan ({exc})") from None
