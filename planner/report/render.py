"""The monthly report as a terminal table, markdown (CI job summaries), CSV (one row per day)
and JSON (the document ``report.build_report`` returns)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from planner.core.words import Doc, money, plural
from planner.plan.render import human_bytes

BAR_WIDTH = 30
_EIGHTHS = " ▏▎▍▌▋▊▉"
CSV_COLUMNS = (
    "date",
    "invalidations",
    "paths",
    "wildcards",
    "cumulative_paths",
    "paid_paths",
    "dollars",
    "tool_deploys",
    "tool_paths",
)


def to_json(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


def to_csv(doc: dict[str, Any]) -> str:
    """One row per day of the month so far: the account's invalidations and the tool's
    deploys (totals are the columns' sums)."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for day in doc["days"]:
        writer.writerow({k: day[k] for k in CSV_COLUMNS})
    return out.getvalue()


def bar(value: int, top: int, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``value`` against ``top`` in eighths of a character; any value
    above zero shows at least a sliver."""
    if value <= 0 or top <= 0:
        return ""
    eighths = max(1, round(value / top * width * 8))
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def to_text(doc: dict[str, Any], fmt: str = "table") -> str:
    """The report for people: a terminal table, or markdown with ``fmt="markdown"`` (every
    table a block of its own, headings, figures as lists)."""
    out = Doc(fmt)
    out.title(_title(doc))
    if doc["account"] is not None:
        _account_section(out, doc["account"], doc["free_paths_per_month"])
    if doc["tool"] is not None:
        _tool_section(out, doc["tool"])
    if doc["projection"] is not None or doc["warnings"]:
        out.heading("Month")
    if doc["projection"] is not None:
        out.line(_projection_line(doc["projection"]))
    for warning in doc["warnings"]:
        out.line(f"WARNING: {warning}")
    _days_section(out, doc["days"])
    if doc["account"] is None:
        out.line("(account columns are empty: CloudFront could not be read)")
    return out.text()


def _title(doc: dict[str, Any]) -> str:
    generated = doc["generated_at"]
    state = (
        "the whole month"
        if doc["complete"]
        else f"as of {generated[:10]} {generated[11:16]} UTC, day {int(generated[8:10])} of "
        f"{doc['days_in_month']}"
    )
    return f"Invalidations in {doc['month']} ({state})"


def _account_section(out: Doc, acc: dict[str, Any], free: int) -> None:
    """The distributions that invalidated (or have invalidations in progress), and the
    month's free and paid paths."""
    out.heading(f"Account (from {acc['source']})")
    active = [d for d in acc["distributions"] if d["invalidations"] or d["in_progress"]]
    rows = [[d["id"], f"{d['invalidations']:,}", f"{d['paths']:,}", f"{d['wildcards']:,}"]
            for d in active]
    rows.append(["total", f"{acc['invalidations']:,}", f"{acc['paths']:,}",
                 f"{acc['wildcards']:,}"])
    out.table(rows, ["distribution", "invalidations", "paths", "wildcards"],
              ("left", "right", "right", "right"))
    idle = len(acc["distributions"]) - len(active)
    if idle:
        out.line(f"{plural(idle, 'other distribution')} had no invalidations")
    out.line(f"free paths: {acc['free_paths_left']:,} of {free:,} left")
    out.line(f"AWS charge: {money(acc['dollars'])} ({plural(acc['paid_paths'], 'paid path')})")


def _tool_section(out: Doc, tool: dict[str, Any]) -> None:
    """What the tool's deploys did, what they cost beside the usual ways, and the savings."""
    out.heading(f"Deploys by this tool ({tool['target']})")
    out.line(
        f"{plural(tool['deploys'], 'deploy')} ({tool['resumed']:,} finished by a later run), "
        f"{plural(tool['uploaded_files'], 'file')} uploaded "
        f"({human_bytes(tool['uploaded_bytes'])}), {tool['deletes']:,} deleted, "
        f"{plural(tool['changed_urls'], 'changed URL')}"
    )
    alts = tool["alternatives"]
    cols = [tool, alts["exact_paths"], alts["wildcard_all"]]
    rows = [
        ["paths", *(f"{c['paths']:,}" for c in cols)],
        ["wildcards", *(f"{c['wildcards']:,}" for c in cols)],
        ["needless misses", *(f"{c['needless_misses']:,}" for c in cols)],
        ["paid paths", *(f"{c['paid_paths']:,}" for c in cols)],
        ["AWS charge", *(money(c["dollars"]) for c in cols)],
        ["miss estimate", *(money(c.get("miss_cost_usd", 0.0)) for c in cols)],
    ]
    out.table(rows, ["", "chosen", "exact paths", "/* every deploy"],
              ("left", "right", "right", "right"))
    s = tool["savings"]
    out.line(
        f"saved: {plural(s['needless_misses_vs_wildcard_all'], 'needless cache miss', 'needless cache misses')} "
        f"against \"/*\" on every deploy; {plural(s['paths_vs_exact_paths'], 'path')} "
        f"({money(s['dollars_vs_exact_paths'])} of AWS charges) against exact paths"
    )
    out.line("the miss estimate prices each needless miss by the cost model (--miss-cost): "
             "an estimate, not a bill")


def _projection_line(proj: dict[str, Any]) -> str:
    when = "month total" if proj["final"] else "projected to the end of the month"
    whose = "" if proj["basis"] == "account" else " (this tool's deploys only)"
    return (
        f"{when}{whose}: {plural(proj['paths'], 'path')}, {proj['paid_paths']:,} paid, "
        f"AWS charge {money(proj['dollars'])}"
    )


def _days_section(out: Doc, days: list[dict[str, Any]]) -> None:
    """One row per day, with a bar of its paths against the busiest day."""
    top = max((d["paths"] for d in days), default=0)
    rows = [
        [
            d["date"],
            f"{d['invalidations']:,}",
            f"{d['paths']:,}",
            bar(d["paths"], top) or ("" if out.md else "·"),
            f"{d['cumulative_paths']:,}",
            f"{d['paid_paths']:,}",
            f"{d['tool_deploys']:,}",
        ]
        for d in days
    ]
    out.heading("Per day")
    out.table(rows, ["date", "invalidations", "paths", "", "month so far", "paid", "tool deploys"],
              ("left", "right", "right", "left", "right", "right", "right"))


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(doc) + "\n"
    if fmt == "csv":
        return to_csv(doc)
    return to_text(doc, fmt)
