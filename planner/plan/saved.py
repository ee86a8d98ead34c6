"""Saved plans: ``planner plan --out plan.json`` and ``planner deploy --plan plan.json``.

A saved plan holds the options it was made with, the version (ETag) of the manifest and of
the pending record it was made against, what it uploads and deletes, and the invalidation
paths a reviewer saw. Applying it rebuilds the plan from the same build and options and
refuses unless the target is unchanged and the build gives the same deploy; the invalidation
is then exactly the saved one, whatever the month's budget says by now. Pure: ``dumps`` and
``load`` work on bytes (``read`` opens the file).

A file is checked in full on load, before anything remote is read, in this order:

1. JSON, the format and its version (format 1, written before checksums, is refused);
2. the checksum: sha256 of the canonical JSON of the document without its ``checksum``
   (:func:`checksum`). A mismatch is named as such and wins over any other finding: the
   file is not what ``planner plan`` wrote, so the only remedy is a new plan, whatever the
   edit broke;
3. the content, as if the tool had computed it (:func:`validate`): every field of its type,
   shape and range, the ACL one of ``--acl``'s values, every invalidation path one CloudFront
   accepts and spelled as the tool encodes URLs, the per-distribution path limits.

Then ``check_given`` compares the deploy's own SITE, --target and --acl with the plan's, and
``accept`` the plan made again now with the saved one: the same target state, build and
distributions, and saved paths that still cover every URL that must be invalidated.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any, Callable

from planner.backends.targets import parse_target
from planner.core.cost import MAX_PATHS_IN_PROGRESS, MAX_WILDCARDS_IN_PROGRESS
from planner.core.headers import HeaderRule
from planner.core.minimizer import Covered, Solution
from planner.core.urls import covers, path_problem
from planner.core.words import plural
from planner.errors import PlannerError
from planner.plan.compute import Alternative, Invalidation, Options, Plan
from planner.plan.render import plan_dict

FORMAT = "invalidation-planner/plan"
VERSION = 2  # 2: with "checksum"
ACLS = ("private", "public-read")  # `--acl` (planner.cli); null: none, the bucket's setting
PACES = ("price", "even", "none")  # `--pace`
# "A path can be a maximum of 4,000 characters" (CloudFront Developer Guide, "Invalidation
# limits"; the 15 wildcard and 3,000 file paths in progress per distribution: planner.core.cost).


class BadSavedPlan(PlannerError):
    """A saved plan that cannot be read, or no longer matches the target or the build."""


class PlanNotForThis(BadSavedPlan):
    """``deploy --plan FILE`` given a SITE, --target or --acl other than the plan's: bad usage."""

    exit_code = 2


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
    where: str = "the saved plan"  # the file, in messages

    def check_given(self, site: str | None, target: str | None, acl: str | None) -> None:
        """The deploy's own SITE, --target and --acl (None: not given) are the plan's. An
        --acl the plan was not made with is refused rather than applied over the one a
        reviewer saw (as it was before plans were checked)."""

        given = {
            "site": (site, site and os.path.abspath(site), self.site),
            "target": (target, target and parse_target(target).uri, self.target),
            "acl": (acl, acl, self.acl),
        }
        for name, (value, normal, saved) in given.items():
            if value is not None and normal != saved:
                shown = saved if saved is not None else "none (the bucket's setting)"
                raise PlanNotForThis(f"--plan {self.where} is for {name} {shown}, not {value}")

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
        for i, (inv, doc) in enumerate(zip(plan.invalidations, self.invalidations)):
            missed = uncovered(inv.changed, doc["paths"])
            if missed:
                raise BadSavedPlan(
                    f"{self.where}: the saved paths no longer invalidate {missed} on "
                    f"{', '.join(inv.distribution_ids)}, which must be invalidated now "
                    f"(plan.invalidations[{i}].paths: the distributions' origins or behaviors "
                    "changed since the plan was made, or the file was edited); make a new plan"
                )
        return dataclasses.replace(
            plan,
            invalidations=tuple(
                _as_saved(inv, doc) for inv, doc in zip(plan.invalidations, self.invalidations)
            ),
        )


def uncovered(urls: frozenset[str], paths: list[str]) -> str | None:
    """The first of ``urls`` (sorted) that none of ``paths`` invalidates (as
    :func:`planner.core.minimizer.covers` decides), if any."""
    exact = {p for p in paths if not p.endswith("*")}
    wild = [p for p in paths if p.endswith("*")]  # 15 at most (validated)
    return next(
        (u for u in sorted(urls) if u not in exact and not any(covers(w, u) for w in wild)), None
    )


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
        # Figures a saved plan of an earlier version lacks: none charged, none estimated.
        charge_usd=inv.get("charge_usd", 0.0),
        miss_cost_usd=inv.get("miss_cost_usd", 0.0),
        free_paths_used=inv.get("free_paths_used", 0),
        paced_paths=inv.get("paced_paths", 0),
        shadow_usd=inv.get("shadow_usd", 0.0),
    )
    alternatives = tuple(
        Alternative(a.name, solution) if a.name == "chosen" else a
        for a in invalidation.alternatives
    )
    return dataclasses.replace(
        invalidation, paths=solution.paths, solution=solution, alternatives=alternatives
    )


# --- writing ---------------------------------------------------------------------------------


def checksum(doc: dict[str, Any]) -> str:
    """``sha256:HEX`` of the canonical JSON of ``doc`` without its "checksum": sorted keys, no
    white space, ASCII only (every other character escaped). It detects a file edited, merged
    or cut short after ``planner plan`` wrote it; it is no signature (anyone can recompute it)."""
    body = {k: v for k, v in doc.items() if k != "checksum"}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True,
                      allow_nan=False)
    return "sha256:" + hashlib.sha256(text.encode("ascii")).hexdigest()


def dumps(plan: Plan, options: Options, acl: str | None = None, state: str | None = None) -> bytes:

    opts = {
        k: (list(v) if isinstance(v, tuple) else v)
        for k, v in dataclasses.asdict(options).items()
        if k not in _NOT_SAVED
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
    doc = {"format": FORMAT, "version": VERSION, "checksum": checksum(doc), **doc}
    return json.dumps(doc, indent=1, ensure_ascii=False).encode()


# --- reading ---------------------------------------------------------------------------------


def read(path: str) -> SavedPlan:
    """The saved plan in file ``path``, checked (see :func:`load`)."""
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as exc:
        raise BadSavedPlan(f"cannot read {path}: {exc.strerror or exc}") from None
    return load(data, path)


def read_for(path: str, site: str | None, target: str | None, acl: str | None) -> SavedPlan:
    """The saved plan in file ``path`` for ``deploy --plan``: checked in full (see :func:`load`),
    then against the deploy's own SITE, --target and --acl (None: not given; see
    :meth:`SavedPlan.check_given`), all before anything remote is read."""
    saved_plan = read(path)
    saved_plan.check_given(site, target, acl)
    return saved_plan


def load(data: bytes, where: str) -> SavedPlan:
    """The saved plan in ``data`` (the file ``where``, named in messages), checked in the
    order of the module docstring. Raises BadSavedPlan, naming the field and the problem."""
    try:
        doc = json.loads(data)
    except ValueError as exc:  # UnicodeDecodeError included
        raise BadSavedPlan(f"{where} is not a readable saved plan ({exc})") from None
    if not isinstance(doc, dict):
        raise BadSavedPlan(f"{where} is not a readable saved plan (not a JSON object)")
    if doc.get("format") != FORMAT:
        raise BadSavedPlan(f"{where} is not a plan saved by `planner plan --out`")
    if doc.get("version") == 1:
        raise BadSavedPlan(
            f"{where} was written by an earlier version of planner (plan format 1, without a "
            "checksum); make the plan again"
        )
    if doc.get("version") != VERSION:
        raise BadSavedPlan(f"{where}: plan format version {doc.get('version')!r} is not {VERSION}")
    try:
        sealed = doc.get("checksum") == checksum(doc)
    except ValueError:  # NaN or Infinity in it: never written by the tool
        sealed = False
    if not sealed:
        raise BadSavedPlan(
            f"{where} was edited after `planner plan` wrote it (checksum mismatch); make the "
            "plan again"
        )
    return validate(doc, where)


class _Bad(Exception):
    """A field and what is wrong with it (turned into BadSavedPlan by ``validate``)."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(f"{field}: {problem}")


def validate(doc: dict[str, Any], where: str) -> SavedPlan:
    """The SavedPlan of a decoded document, if every field is what ``dumps`` writes: type,
    shape, range, ACL, CloudFront's path rules and limits (see the module docstring); the
    checksum is :func:`load`'s. Raises BadSavedPlan("WHERE: FIELD: PROBLEM")."""
    try:
        return _validate(doc, where)
    except _Bad as exc:
        raise BadSavedPlan(f"{where}: {exc}; make the plan again") from None


def _validate(doc: dict[str, Any], where: str) -> SavedPlan:
    for name in _TOP:
        if name not in doc:
            raise _Bad(name, "missing")
    extra = sorted(set(doc) - set(_TOP) - {"format", "version", "checksum"})
    if extra:
        raise _Bad(extra[0], "not a field of a saved plan")
    _text(doc["tool_version"], "tool_version")
    site = _text(doc["site"], "site")
    if not os.path.isabs(site):
        raise _Bad("site", f"{site!r} is not an absolute path")
    target = _target(doc["target"])
    deploy_id = _text(doc["deploy_id"], "deploy_id", empty=True)
    previous_version = _optional(doc["previous_version"], "previous_version", _text)
    journal_version = _optional(doc["journal_version"], "journal_version", _text)
    acl = _optional(doc["acl"], "acl", _text)
    if acl is not None and acl not in ACLS:
        raise _Bad("acl", f"{acl!r} is not one of --acl's values ({', '.join(ACLS)}, or null)")
    state = _optional(doc["state"], "state", _text)
    options = _options(doc["options"])
    uploads = tuple(
        _upload(u, f"uploads[{i}]") for i, u in enumerate(_list(doc["uploads"], "uploads"))
    )

    plan = _object(doc["plan"], "plan")
    for name, value in (("site", site), ("target", target)):
        if plan.get(name) != value:
            raise _Bad(f"plan.{name}", f"{plan.get(name)!r} is not the plan's {name} {value!r}")
    if _object(plan.get("manifest"), "plan.manifest").get("deploy_id") != deploy_id:
        raise _Bad("plan.manifest.deploy_id", f"is not the plan's deploy_id {deploy_id!r}")
    shown = [_key(u, f"plan.uploads[{i}]") for i, u in enumerate(_list(plan.get("uploads"),
                                                                          "plan.uploads"))]
    if shown != [u[0] for u in uploads]:
        raise _Bad("plan.uploads", "are not the keys of uploads")
    deletes = tuple(
        _key(d, f"plan.deletes[{i}]")
        for i, d in enumerate(_list(plan.get("deletes"), "plan.deletes"))
    )
    groups = _list(plan.get("invalidations"), "plan.invalidations")
    if not groups:
        raise _Bad("plan.invalidations", "empty (a plan has one invalidation or more)")
    if plan.get("invalidation") != groups[0]:
        raise _Bad("plan.invalidation", "is not plan.invalidations[0], as the tool writes it")
    invalidations = tuple(_invalidation(g, f"plan.invalidations[{i}]")
                          for i, g in enumerate(groups))
    seen: set[str] = set()
    for i, inv in enumerate(invalidations):
        twice = seen.intersection(inv["distribution_ids"])
        if twice:
            raise _Bad(f"plan.invalidations[{i}].distribution_ids",
                       f"{sorted(twice)[0]} is in another invalidation too")
        seen.update(inv["distribution_ids"])
    return SavedPlan(
        site=site,
        target=target,
        options=options,
        deploy_id=deploy_id,
        previous_version=previous_version,
        journal_version=journal_version,
        uploads=uploads,
        deletes=deletes,
        invalidations=invalidations,
        acl=acl,
        state=state,
        where=where,
    )


_TOP = ("tool_version", "site", "target", "deploy_id", "previous_version", "journal_version",
        "options", "acl", "state", "uploads", "plan")
_NOT_SAVED = ("now", "hash_workers", "pace_history")  # Options of the run, not of the plan


def _invalidation(value: Any, field: str) -> dict[str, Any]:
    inv = _object(value, field)
    paths = [_text(p, f"{field}.paths[{i}]") for i, p in enumerate(_list(inv.get("paths"),
                                                                          f"{field}.paths"))]
    seen: set[str] = set()
    for i, path in enumerate(paths):
        problem = path_problem(path)
        if problem:
            raise _Bad(f"{field}.paths[{i}]", f"{_short(path)} {problem}")
        if path in seen:
            raise _Bad(f"{field}.paths[{i}]", f"{_short(path)} is there twice")
        seen.add(path)
    wild = sum(1 for p in paths if p.endswith("*"))
    if wild > MAX_WILDCARDS_IN_PROGRESS:
        raise _Bad(f"{field}.paths", f"{wild} wildcard paths, more than the "
                   f"{MAX_WILDCARDS_IN_PROGRESS} CloudFront allows in progress per distribution")
    if len(paths) - wild > MAX_PATHS_IN_PROGRESS:
        raise _Bad(f"{field}.paths", f"{len(paths) - wild:,} file paths, more than the "
                   f"{MAX_PATHS_IN_PROGRESS:,} CloudFront allows in progress per distribution")
    dists = [_text(d, f"{field}.distribution_ids[{i}]")
             for i, d in enumerate(_list(inv.get("distribution_ids"), f"{field}.distribution_ids"))]
    if len(set(dists)) != len(dists):
        raise _Bad(f"{field}.distribution_ids", "names a distribution twice")
    for name in ("changed_urls", "collateral_urls", "paid_paths", "wildcards"):
        _count(inv.get(name), f"{field}.{name}")
    if inv["wildcards"] != wild:
        raise _Bad(f"{field}.wildcards", f"{inv['wildcards']} is not the {wild} of its paths")
    for name in ("cost_usd", "cost_lower_bound_usd"):
        _amount(inv.get(name), f"{field}.{name}")
    for name in ("charge_usd", "miss_cost_usd", "shadow_usd"):  # not in earlier saved plans
        _optional(inv.get(name), f"{field}.{name}", _amount)
    for name in ("free_paths_used", "paced_paths"):
        _optional(inv.get(name), f"{field}.{name}", _count)
    _flag(inv.get("exact"), f"{field}.exact")
    _optional(inv.get("caller_reference"), f"{field}.caller_reference", _text)
    cover = _list(inv.get("coverage"), f"{field}.coverage")
    for i, c in enumerate(cover):
        where = f"{field}.coverage[{i}]"
        c = _object(c, where)
        _text(c.get("path"), f"{where}.path")
        _count(c.get("changed"), f"{where}.changed")
        _count(c.get("collateral"), f"{where}.collateral")
    if [c["path"] for c in cover] != paths:
        raise _Bad(f"{field}.coverage", "does not name the paths, in their order")
    return inv


def _options(value: Any) -> Options:
    doc = _object(value, "options")
    fields = {f.name for f in dataclasses.fields(Options)} - set(_NOT_SAVED)
    doc = {**_ADDED_SINCE, **doc}
    missing, unknown = sorted(fields - set(doc)), sorted(set(doc) - fields)
    if missing:
        raise _Bad(f"options.{missing[0]}", "missing")
    if unknown:
        raise _Bad(f"options.{unknown[0]}", "not an option of a plan")
    out = {name: _OPTION[name](doc[name], f"options.{name}") for name in fields}
    return Options(**out)


def _text(value: Any, field: str, empty: bool = False) -> str:
    if not isinstance(value, str):
        raise _Bad(field, f"{_kind(value)}, not text")
    if not value and not empty:
        raise _Bad(field, "empty")
    return value


def _count(value: Any, field: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Bad(field, f"{_kind(value)}, not a whole number")
    if value < 0:
        raise _Bad(field, f"{value} is negative")
    return value


def _amount(value: Any, field: str) -> float:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        raise _Bad(field, f"{_kind(value)}, not a number")
    if not math.isfinite(value) or value < 0:
        raise _Bad(field, f"{value} is not a number of 0 or more")
    return float(value)


def _flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise _Bad(field, f"{_kind(value)}, not true or false")
    return value


def _list(value: Any, field: str) -> list[Any]:
    if not isinstance(value, list):
        raise _Bad(field, f"{_kind(value)}, not a list")
    return value


def _object(value: Any, field: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(field, f"{_kind(value)}, not an object")
    return value


def _optional(value: Any, field: str, check: Callable[[Any, str], Any]) -> Any:
    return None if value is None else check(value, field)


def _texts(value: Any, field: str) -> tuple[str, ...]:
    """A list of non-empty texts."""
    return tuple(_text(v, f"{field}[{i}]") for i, v in enumerate(_list(value, field)))


def _target(value: Any) -> str:

    text = _text(value, "target")
    try:
        uri = parse_target(text).uri
    except PlannerError as exc:
        raise _Bad("target", str(exc)) from None
    if uri != text:
        raise _Bad("target", f"{text!r} is not written as the tool writes it ({uri!r})")
    return text


def _upload(value: Any, field: str) -> tuple[str, str, str]:
    row = _list(value, field)
    if len(row) != 3:
        raise _Bad(field, f"{plural(len(row), 'item')}, not [key, reason, hash]")
    key, reason, hashed = (_text(v, f"{field}[{i}]") for i, v in enumerate(row))
    return key, reason, hashed


def _key(value: Any, field: str) -> str:
    return _text(_object(value, field).get("key"), f"{field}.key")


def _choice(choices: tuple[str, ...]) -> Callable[[Any, str], str]:
    def check(value: Any, field: str) -> str:
        if _text(value, field) not in choices:
            raise _Bad(field, f"{value!r} is not one of {', '.join(choices)}")
        return value

    return check


def _header_rules(value: Any, field: str) -> tuple[HeaderRule, ...]:
    names = [f.name for f in dataclasses.fields(HeaderRule)]
    out = []
    for i, rule in enumerate(_list(value, field)):
        where = f"{field}[{i}]"
        rule = _object(rule, where)
        unknown = sorted(set(rule) - set(names))
        if unknown:
            raise _Bad(f"{where}.{unknown[0]}", "not a field of a header rule")
        _text(rule.get("pattern"), f"{where}.pattern")
        for name in names[1:]:
            _optional(rule.get(name), f"{where}.{name}", lambda v, f: _text(v, f, empty=True))
        out.append(HeaderRule(**rule))
    return tuple(out)


# Each saved option: its check, which gives the value Options holds. Every field of Options
# but _NOT_SAVED (a test keeps the two in step); ranges and choices as the CLI's options.
_OPTION: dict[str, Callable[[Any, str], Any]] = {
    "cache_control": lambda v, f: _text(v, f, empty=True),
    "excludes": lambda v, f: tuple(_text(x, f"{f}[{i}]", empty=True)
                                   for i, x in enumerate(_list(v, f))),
    "invalidate_added": _flag,
    "header_rules": _header_rules,
    "max_deletes": _count,
    "delete": _flag,
    "url_prefix": lambda v, f: _optional(v, f, lambda x, g: _text(x, g, empty=True)),
    "distribution_ids": _texts,
    "free_paths_per_month": _count,
    "paths_used": lambda v, f: _optional(v, f, _count),
    "pace": _choice(PACES),
    "price": _amount,
    "miss_cost": lambda v, f: _optional(v, f, _amount),
    "max_cost": lambda v, f: _optional(v, f, _amount),
}
# Options a saved plan of an earlier version may lack: their value then.
_ADDED_SINCE = {"max_cost": None}


def _kind(value: Any) -> str:
    """A JSON value as messages show it: a list, an object, or the value itself (cut short)."""
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."


def _short(path: str) -> str:
    """``path`` quoted, cut to a readable length."""
    return repr(path if len(path) <= 80 else path[:60] + "..." + path[-10:])
