"""The monthly report: what invalidations cost the account, what the tool's deploys spent and
saved, and where the month is heading. Pure: ``build_report`` is handed what was read
(``report_sources``) and returns the documented JSON shape, which every format renders.
"""

from __future__ import annotations

import calendar
import datetime as dt
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from planner.core.cost import FREE_PATHS_PER_MONTH, PRICE_PER_PATH, billable, dollars
from planner.core.pacing import AccountInvalidations, month_of, month_start
from planner.core.words import money, plural
from planner.ledger import miss_cost, parse_iso

MONTH = re.compile(r"[1-9]\d{3}-(0[1-9]|1[0-2])")
# At the very start of a month, one deploy would project to a huge month: the pace is taken
# over at least one day.
MIN_ELAPSED_DAYS = 1.0
FAIL_OVER_EXIT = 3
FIRST_MONTH = "2008-11"  # CloudFront's launch: no month before it has anything to report  # `report --fail-over`: the projection passed the amount


def parse_month(text: str, now: dt.datetime) -> str:
    """``YYYY-MM`` not after ``now``'s month; ValueError with a readable message otherwise."""
    if not MONTH.fullmatch(text):
        raise ValueError(f"{text!r} is not a month (YYYY-MM)")
    if text < FIRST_MONTH:
        raise ValueError(f"{text} is before CloudFront existed ({FIRST_MONTH})")
    if text > month_of(now):
        raise ValueError(f"{text} has not started yet (now is {month_of(now)})")
    return text


def days_in(month: str) -> int:
    year, mon = (int(x) for x in month.split("-"))
    return calendar.monthrange(year, mon)[1]


def _zero_counts() -> dict[str, int]:
    return {"paths": 0, "wildcards": 0, "needless_misses": 0, "paid_paths": 0}


def _add(total: dict[str, Any], part: Mapping[str, Any], record: Mapping[str, Any]) -> None:
    """Add a record's totals (or one of its alternatives) to ``total``: counts, the AWS
    charge ("dollars", its older name, kept) and the miss estimate."""
    for key in ("paths", "wildcards", "needless_misses", "paid_paths"):
        total[key] += part[key]
    total["dollars"] = round(total.get("dollars", 0.0) + part["dollars"], 6)
    total["charge_usd"] = total["dollars"]
    total["miss_cost_usd"] = round(total.get("miss_cost_usd", 0.0)
                                   + miss_cost(record, part), 9)


def build_report(
    *,
    month: str,
    now: dt.datetime,
    account: AccountInvalidations | None,
    records: Iterable[Mapping[str, Any]] = (),
    target: str | None = None,
    unreadable: Iterable[str] = (),
    pending: Mapping[str, Any] | None = None,
    free_per_month: int = FREE_PATHS_PER_MONTH,
    price: float = PRICE_PER_PATH,
    warn_over: float = 0.0,
    fail_over: float | None = None,
    notes: Iterable[str] = (),
) -> dict[str, Any]:
    """The report of ``month`` as of ``now`` (UTC). ``account`` is None when CloudFront could
    not be read; ``target`` None leaves out the tool view (no ledger to read)."""
    records = list(records)
    period = _Period.of(month, now)
    days = _empty_days(period.dates)
    doc = _empty_report(month, now, period, free_per_month, price)
    warnings: list[str] = list(notes)
    if account is not None:
        doc["account"] = _account_view(account, month, days, free_per_month, price)
        _bill_days(days, period.dates, free_per_month, price)
    if target is not None:
        unreadable = list(unreadable)
        doc["tool"] = _tool_view(target, records, days, unreadable, pending)
        warnings += _tool_warnings(unreadable, pending)
    # Where the month is heading: the account's paths (or, unread, the tool's) at the pace so
    # far.
    basis = "account" if doc["account"] is not None else "tool"
    if doc[basis] is not None:
        proj = doc["projection"] = _projection(basis, doc[basis]["paths"], period,
                                               free_per_month, price)
        limit = warn_over if fail_over is None else min(warn_over, fail_over)
        if proj["dollars"] > limit:
            warnings.append(_over_warning(month, proj, limit))
        doc["over_fail_amount"] = fail_over is not None and proj["dollars"] > fail_over
    doc["warnings"] = warnings
    doc["days"] = [days[d] for d in period.dates]
    return doc


@dataclass(frozen=True)
class _Period:
    """The days a report covers: the whole month, or up to ``now`` while it runs."""

    days_in_month: int
    start: dt.datetime
    running: bool  # the month of ``now``: not over yet
    elapsed: float  # days, for the pace (at least MIN_ELAPSED_DAYS)
    dates: tuple[str, ...]  # ISO dates shown: the month's first day to today (or its last)

    @classmethod
    def of(cls, month: str, now: dt.datetime) -> "_Period":
        n_days = days_in(month)
        start = month_start(month)
        running = month == month_of(now)
        if running:
            elapsed = max(MIN_ELAPSED_DAYS, (now - start).total_seconds() / 86400)
            shown_days = now.day
        else:
            elapsed = float(n_days)
            shown_days = n_days
        dates = tuple((start + dt.timedelta(days=i)).date().isoformat() for i in range(shown_days))
        return cls(n_days, start, running, elapsed, dates)


def _empty_days(dates: Iterable[str]) -> dict[str, dict[str, Any]]:
    return {
        d: {
            "date": d,
            "invalidations": 0,
            "paths": 0,
            "wildcards": 0,
            "cumulative_paths": 0,
            "paid_paths": 0,
            "dollars": 0.0,
            "tool_deploys": 0,
            "tool_paths": 0,
        }
        for d in dates
    }


def _empty_report(
    month: str, now: dt.datetime, period: _Period, free_per_month: int, price: float
) -> dict[str, Any]:
    """The document's fields in their documented order, the views not filled in yet."""
    return {
        "month": month,
        "generated_at": now.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "complete": not period.running,
        "days_in_month": period.days_in_month,
        "days_elapsed": round(period.elapsed, 2),
        "free_paths_per_month": free_per_month,
        "price_per_path": price,
        "account": None,
        "tool": None,
        "projection": None,
        "over_fail_amount": False,
        "warnings": [],
        "days": [],
    }


def _account_view(
    account: AccountInvalidations,
    month: str,
    days: dict[str, dict[str, Any]],
    free_per_month: int,
    price: float,
) -> dict[str, Any]:
    """What the account's invalidations of ``month`` cost, per distribution and in all;
    ``days`` gets each invalidation's counts."""
    rows = _distribution_rows(account, month, days)
    paths = sum(r["paths"] for r in rows)
    paid = billable(0, paths, free_per_month)
    return {
        "source": account.source,
        "distributions": rows,
        "invalidations": sum(r["invalidations"] for r in rows),
        "paths": paths,
        "wildcards": sum(r["wildcards"] for r in rows),
        "free_paths_left": max(0, free_per_month - paths),
        "paid_paths": paid,
        "dollars": dollars(paid, price),
        "charge_usd": dollars(paid, price),
    }


def _distribution_rows(
    account: AccountInvalidations, month: str, days: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """One row per distribution (most paths first): its invalidations of ``month``, and those
    in progress whenever made. Each invalidation of the month is also counted on its day."""
    per = {d: _distribution_row(d) for d in account.distributions}
    for inv in account.items:
        row = per.setdefault(inv.distribution_id, _distribution_row(inv.distribution_id))
        if not inv.completed:
            row["in_progress"] += 1
        if month_of(inv.created) != month:
            continue
        row["invalidations"] += 1
        row["paths"] += inv.paths
        row["wildcards"] += inv.wildcards
        day = days.get(inv.created.date().isoformat())
        if day is not None:
            day["invalidations"] += 1
            day["paths"] += inv.paths
            day["wildcards"] += inv.wildcards
    return sorted(per.values(), key=lambda r: (-r["paths"], r["id"]))


def _distribution_row(distribution_id: str) -> dict[str, Any]:
    return {"id": distribution_id, "invalidations": 0, "paths": 0, "wildcards": 0,
            "in_progress": 0}


def _bill_days(
    days: dict[str, dict[str, Any]], dates: Iterable[str], free_per_month: int, price: float
) -> None:
    """Each day's paid paths and dollars, the free allowance spent by the days before it."""
    running_total = 0
    for d in dates:
        day = days[d]
        day["paid_paths"] = billable(running_total, day["paths"], free_per_month)
        day["dollars"] = dollars(day["paid_paths"], price)
        running_total += day["paths"]
        day["cumulative_paths"] = running_total


def _tool_warnings(unreadable: list[str], pending: Mapping[str, Any] | None) -> list[str]:
    """Ledger records left out, and a deploy not finished yet."""
    out = []
    if unreadable:
        out.append(
            f"{plural(len(unreadable), 'ledger record')} could not be read and "
            f"{'is' if len(unreadable) == 1 else 'are'} left out: "
            f"{unreadable[0]}" + (" ..." if len(unreadable) > 1 else "")
        )
    if pending:
        out.append(
            f"deploy {pending['deploy_id']} is not finished (its invalidation of "
            f"{plural(pending['paths'], 'path')} is pending); the next deploy finishes it"
        )
    return out


def _projection(
    basis: str, so_far: int, period: _Period, free_per_month: int, price: float
) -> dict[str, Any]:
    """The month's paths and cost at the pace so far (the month's own once it is over)."""
    projected = so_far
    if period.running:
        projected = round(so_far / period.elapsed * period.days_in_month)
    paid = billable(0, projected, free_per_month)
    return {
        "basis": basis,
        "paths": projected,
        "paid_paths": paid,
        "dollars": dollars(paid, price),
        "charge_usd": dollars(paid, price),
        "final": not period.running,
    }


def _over_warning(month: str, projection: Mapping[str, Any], limit: float) -> str:
    what = "spent" if projection["final"] else "projected"
    return (
        f"{month} {what}: {plural(projection['paths'], 'path')}, {projection['paid_paths']:,} "
        f"paid, {money(projection['dollars'])}, over {money(limit)}"
    )


def _tool_view(
    target: str,
    records: list[Mapping[str, Any]],
    days: dict[str, dict[str, Any]],
    unreadable: Iterable[str],
    pending: Mapping[str, Any] | None,
) -> dict[str, Any]:
    zero = {"dollars": 0.0, "charge_usd": 0.0, "miss_cost_usd": 0.0}
    chosen: dict[str, Any] = {**_zero_counts(), **zero}
    alts = {name: {**_zero_counts(), **zero} for name in ("exact_paths", "wildcard_all")}
    view: dict[str, Any] = {
        "target": target,
        "deploys": sum(1 for r in records if r.get("kind", "deploy") == "deploy"),
        "repairs": sum(1 for r in records if r.get("kind") == "repair"),
        "resumed": sum(1 for r in records if r.get("resumed")),
        "uploaded_files": sum(r["uploads"]["files"] for r in records),
        "uploaded_bytes": sum(r["uploads"]["bytes"] for r in records),
        "deletes": sum(r["deletes"] for r in records),
        "changed_urls": sum(r["changed_urls"] for r in records),
    }
    for r in records:
        _add(chosen, r, r)
        for name, total in alts.items():
            _add(total, r["alternatives"][name], r)
        day = days.get(parse_iso(r["started_at"]).date().isoformat())
        if day is not None:
            day["tool_deploys"] += r.get("kind", "deploy") == "deploy"
            day["tool_paths"] += r["paths"]
    view.update(chosen)
    view["alternatives"] = alts
    view["savings"] = {
        # Against "/*" on every deploy: the cached URLs it would have emptied needlessly.
        "needless_misses_vs_wildcard_all": alts["wildcard_all"]["needless_misses"]
        - chosen["needless_misses"],
        # Against one path per changed URL: the paths and dollars the wildcards saved.
        "paths_vs_exact_paths": alts["exact_paths"]["paths"] - chosen["paths"],
        "dollars_vs_exact_paths": round(alts["exact_paths"]["dollars"] - chosen["dollars"], 6),
    }
    view["unreadable_records"] = list(unreadable)
    view["pending"] = dict(pending) if pending else None
    return view
