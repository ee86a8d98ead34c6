"""The monthly report as a terminal table, markdown (CI job summaries), CSV (one row per day)
and JSON (the document ``report.build_report`` returns)."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from planner.plan.render import human_bytes, money

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


def _n(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def to_text(doc: dict[str, Any], fmt: str = "table") -> str:
    """The report for people: a terminal table, or markdown with ``fmt="markdown"``."""
    md = fmt == "markdown"
    out = [_title(doc, md)]
    if doc["account"] is not None:
        out += _account_section(doc["account"], doc["free_paths_per_month"], md)
    if doc["tool"] is not None:
        out += _tool_section(doc["tool"], md)
    if doc["projection"] is not None:
        out.append(_projection_line(doc["projection"]))
    out += [f"{'**Warning:**' if md else 'WARNING:'} {warning}" for warning in doc["warnings"]]
    out += _days_section(doc["days"], md)
    if doc["account"] is None:
        out.append("(account columns are empty: CloudFront could not be read)")
    return "\n".join(out) + "\n"


def _heading(text: str, md: bool) -> str:
    return f"\n### {text}\n" if md else f"\n{text}"


def _table(rows: list[list[Any]], headers: list[str], md: bool, colalign: tuple[str, ...]) -> str:
    # tabulate only for people's formats: JSON and CSV runs skip its import.
    from tabulate import tabulate

    return tabulate(rows, headers=headers, tablefmt="github" if md else "simple",
                    colalign=colalign)


def _title(doc: dict[str, Any], md: bool) -> str:
    generated = doc["generated_at"]
    state = (
        "the whole month"
        if doc["complete"]
        else f"as of {generated[:10]} {generated[11:16]} UTC, day {int(generated[8:10])} of "
        f"{doc['days_in_month']}"
    )
    title = f"Invalidations in {doc['month']} ({state})"
    return f"## {title}" if md else title


def _account_section(acc: dict[str, Any], free: int, md: bool) -> list[str]:
    """The distributions that invalidated (or have invalidations in progress), and the
    month's free and paid paths."""
    out = [_heading(f"Account (from {acc['source']})", md)]
    active = [d for d in acc["distributions"] if d["invalidations"] or d["in_progress"]]
    rows = [[d["id"], d["invalidations"], d["paths"], d["wildcards"]] for d in active]
    rows.append(["total", acc["invalidations"], acc["paths"], acc["wildcards"]])
    out.append(_table(rows, ["distribution", "invalidations", "paths", "wildcards"], md,
                      ("left", "right", "right", "right")))
    idle = len(acc["distributions"]) - len(active)
    if idle:
        out.append(f"{idle} other distribution(s) had no invalidations")
    out.append(
        f"\nfree paths: {acc['free_paths_left']:,} of {free:,} left; paid paths: "
        f"{acc['paid_paths']:,}; cost: {money(acc['dollars'])}"
    )
    return out


def _tool_section(tool: dict[str, Any], md: bool) -> list[str]:
    """What the tool's deploys did, what they cost beside the usual ways, and the savings."""
    out = [_heading(f"Deploys by this tool ({tool['target']})", md)]
    out.append(
        f"{_n(tool['deploys'], 'deploy')} ({tool['resumed']} finished by a later run), "
        f"{_n(tool['uploaded_files'], 'file')} uploaded "
        f"({human_bytes(tool['uploaded_bytes'])}), {tool['deletes']:,} deleted, "
        f"{_n(tool['changed_urls'], 'changed URL')}"
    )
    alts = tool["alternatives"]
    cols = [tool, alts["exact_paths"], alts["wildcard_all"]]
    rows = [
        ["paths", *(f"{c['paths']:,}" for c in cols)],
        ["wildcards", *(f"{c['wildcards']:,}" for c in cols)],
        ["needless misses", *(f"{c['needless_misses']:,}" for c in cols)],
        ["paid paths", *(f"{c['paid_paths']:,}" for c in cols)],
        ["dollars", *(money(c["dollars"]) for c in cols)],
    ]
    out.append("")
    out.append(_table(rows, ["", "chosen", "exact paths", "/* every deploy"], md,
                      ("left", "right", "right", "right")))
    s = tool["savings"]
    out.append(
        f"\nsaved: {s['needless_misses_vs_wildcard_all']:,} needless cache misses against "
        f"\"/*\" on every deploy; {_n(s['paths_vs_exact_paths'], 'path')} "
        f"({money(s['dollars_vs_exact_paths'])}) against exact paths"
    )
    return out


def _projection_line(proj: dict[str, Any]) -> str:
    when = "month total" if proj["final"] else "projected to the end of the month"
    whose = "" if proj["basis"] == "account" else " (this tool's deploys only)"
    return (
        f"\n{when}{whose}: {proj['paths']:,} paths, {proj['paid_paths']:,} paid, "
        f"{money(proj['dollars'])}"
    )


def _days_section(days: list[dict[str, Any]], md: bool) -> list[str]:
    """One row per day, with a bar of its paths against the busiest day."""
    top = max((d["paths"] for d in days), default=0)
    rows = [
        [
            d["date"],
            d["invalidations"],
            d["paths"],
            bar(d["paths"], top) or ("·" if not md else ""),
            d["cumulative_paths"],
            d["paid_paths"],
            d["tool_deploys"],
        ]
        for d in days
    ]
    return [
        _heading("Per day", md),
        _table(rows, ["date", "invalidations", "paths", "", "month so far", "paid", "tool deploys"],
               md, ("left", "right", "right", "left", "right", "right", "right")),
    ]


def render(doc: dict[str, Any], fmt: str) -> str:
    if fmt == "json":
        return to_json(doc) + "\n"
    if fmt == "csv":
        return to_csv(doc)
    return to_text(doc, fmt)
