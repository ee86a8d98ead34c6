"""``planner report``: the pure ``build_report`` fed chosen invalidations and ledger records,
``parse_month``, the renderings, and the real CLI on the local-folder backend (no AWS)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from planner import ledger
from planner.core.pacing import AccountInvalidations, InvalidationCount
from planner.plan.compute import Options, TargetState, compute_plan
from planner.report.build import FAIL_OVER_EXIT, build_report, days_in, parse_month
from planner.report.render import bar, render, to_csv, to_json, to_text

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-site"
UTC = dt.UTC

MONTH = "2026-03"  # 31 days
AFTER = dt.datetime(2026, 5, 10, 12, 0, tzinfo=UTC)  # "now" for reports of MONTH as a past month
TARGET = "s3://bucket"


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: str = MONTH):
    year, mon = (int(x) for x in month.split("-"))
    return dt.datetime(year, mon, day, hour, minute, second, tzinfo=UTC)


def inv(dist: str, when: dt.datetime, paths: int, wildcards: int = 0, completed: bool = True,
        ident: str | None = None) -> InvalidationCount:
    return InvalidationCount(dist, ident or f"I{dist}{when:%d%H%M%S}{paths}", when, paths,
                             wildcards, completed)


def account(*items: InvalidationCount, dists: tuple[str, ...] = ("E1",),
            month: str = MONTH) -> AccountInvalidations:
    return AccountInvalidations(month, dists, tuple(items))


def record(
    started: dt.datetime,
    *,
    paths: int = 1,
    wildcards: int = 0,
    needless: int = 0,
    changed: int = 1,
    site_urls: int = 10,
    dists: tuple[str, ...] = ("E1",),
    made: tuple[str, ...] | None = None,
    before: int = 0,
    free: int = 1000,
    price: float = 0.005,
    files: int = 1,
    size: int = 100,
    deletes: int = 0,
    resumed: bool = False,
    deploy_id: str | None = None,
) -> dict:
    """A ledger record as ``ledger.complete`` makes it, from a draft in ``ledger.draft``'s
    shape (``paths``... are per distribution, as drafted)."""
    draft = {
        "version": ledger.RECORD_VERSION,
        "deploy_id": deploy_id or f"d{started:%d%H%M%S}{paths}",
        "previous_deploy_id": None,
        "target": TARGET,
        "tool_version": "test",
        "started_at": ledger.iso(started),
        "distribution_ids": list(dists),
        "uploads": {"files": files, "bytes": size},
        "deletes": deletes,
        "changed_urls": changed,
        "site_urls": site_urls,
        "account_paths_before": before,
        "free_paths_per_month": free,
        "price_per_path": price,
        "per_distribution": {d: {
            "chosen": {"paths": paths, "wildcards": wildcards, "needless_misses": needless},
            "exact_paths": {"paths": changed, "wildcards": 0, "needless_misses": 0},
            "wildcard_all": {"paths": 1, "wildcards": 1,
                             "needless_misses": max(0, site_urls - changed)},
        } for d in dists},
    }
    made = dists if made is None else made
    return ledger.complete(draft, {d: f"INV{d}" for d in made},
                           started + dt.timedelta(minutes=1), resumed)


def day_row(doc: dict, day: int) -> dict:
    return doc["days"][day - 1]


# --- build_report: the account view ---------------------------------------------------------


def test_account_rows_count_this_months_invalidations_per_distribution():
    acc = account(
        inv("E1", at(3), 200, 2),
        inv("E1", at(4), 100, 1),
        inv("E2", at(4), 300, 0),
        # another month's, done: counted nowhere
        inv("E2", at(27, month="2026-02"), 500, 5),
        # another month's, still in progress: in progress, but not this month's paths
        inv("E1", at(28, 23, 59, month="2026-02"), 40, 1, completed=False),
        # this month's, still in progress: counted and in progress
        inv("E2", at(30), 7, 1, completed=False),
        # a distribution the listing did not name (deleted since): still counted
        inv("E9", at(5), 3),
        dists=("E1", "E2", "E3"),  # E3 made no invalidation
    )
    doc = build_report(month=MONTH, now=AFTER, account=acc)
    a = doc["account"]
    assert a["source"] == "cloudfront"
    assert a["distributions"] == [  # most paths first, then by id
        {"id": "E2", "invalidations": 2, "paths": 307, "wildcards": 1, "in_progress": 1},
        {"id": "E1", "invalidations": 2, "paths": 300, "wildcards": 3, "in_progress": 1},
        {"id": "E9", "invalidations": 1, "paths": 3, "wildcards": 0, "in_progress": 0},
        {"id": "E3", "invalidations": 0, "paths": 0, "wildcards": 0, "in_progress": 0},
    ]
    assert (a["invalidations"], a["paths"], a["wildcards"]) == (5, 610, 4)
    assert (a["free_paths_left"], a["paid_paths"], a["dollars"]) == (390, 0, 0.0)
    assert doc["tool"] is None  # no target: no ledger read
    assert doc["complete"] is True and doc["days_in_month"] == 31


@pytest.mark.parametrize(
    "paths, free, price, paid, dollars, left",
    [
        ([1200], 1000, 0.005, 200, 1.0, 0),  # one big invalidation past the allowance
        ([600, 600], 1000, 0.005, 200, 1.0, 0),  # two that cross it together
        ([1000], 1000, 0.005, 0, 0.0, 0),  # exactly the allowance: nothing paid
        ([999], 1000, 0.005, 0, 0.0, 1),  # one path short of it
        ([10], 0, 0.005, 10, 0.05, 0),  # no free paths: every path is paid
        ([1500], 1000, 0.01, 500, 5.0, 0),  # another price
        ([], 1000, 0.005, 0, 0.0, 1000),  # nothing invalidated
    ],
)
def test_paths_past_the_free_allowance_are_paid(paths, free, price, paid, dollars, left):
    acc = account(*(inv("E1", at(2 + i), n) for i, n in enumerate(paths)))
    a = build_report(month=MONTH, now=AFTER, account=acc, free_per_month=free,
                     price=price)["account"]
    assert a["paths"] == sum(paths)
    assert (a["paid_paths"], a["free_paths_left"]) == (paid, left)
    assert a["dollars"] == pytest.approx(dollars)


def test_days_count_invalidations_on_their_utc_day_and_paid_paths_where_the_total_crossed():
    acc = account(
        inv("E1", at(1, 0, 0, 0), 300),  # first second of the month
        inv("E2", at(1, 23, 59, 59), 200, 1),  # last second of day 1
        inv("E1", at(2, 0, 0, 0), 400),  # first second of day 2: 900 so far
        inv("E1", at(5, 8), 150, 2),
        inv("E2", at(5, 20), 150),  # day 5 takes the total to 1,200: 200 paid that day
        inv("E1", at(6), 50),  # all paid
        inv("E1", at(31, 23, 59, 59), 1),  # last second of the month
        inv("E1", at(1, 0, 0, 0, month="2026-04"), 999),  # next month: not shown
        dists=("E1", "E2"),
    )
    doc = build_report(month=MONTH, now=AFTER, account=acc)
    days = doc["days"]
    assert [d["date"] for d in days] == [f"2026-03-{i:02d}" for i in range(1, 32)]
    assert [(d["invalidations"], d["paths"], d["wildcards"]) for d in days[:6]] == [
        (2, 500, 1), (1, 400, 0), (0, 0, 0), (0, 0, 0), (2, 300, 2), (1, 50, 0)]
    assert [d["cumulative_paths"] for d in days[:6]] == [500, 900, 900, 900, 1200, 1250]
    assert [d["paid_paths"] for d in days[:6]] == [0, 0, 0, 0, 200, 50]
    assert day_row(doc, 5)["dollars"] == pytest.approx(1.0)
    assert day_row(doc, 6)["dollars"] == pytest.approx(0.25)
    assert day_row(doc, 31)["paths"] == 1 and day_row(doc, 31)["paid_paths"] == 1
    assert days[-1]["cumulative_paths"] == doc["account"]["paths"] == 1251
    assert sum(d["paid_paths"] for d in days) == doc["account"]["paid_paths"] == 251
    assert all(d["tool_deploys"] == d["tool_paths"] == 0 for d in days)


# --- build_report: the tool view --------------------------------------------------------------


def test_tool_view_sums_the_ledger_records_and_the_savings():
    records = [
        # one distribution: 3 paths instead of 10 exact ones, or "/*" and 40 needless misses
        record(at(2, 9), paths=3, wildcards=2, needless=4, changed=10, site_urls=50,
               files=4, size=1000, deletes=1),
        # two distributions, planned with 995 paths used: 10 paths, 5 of them paid
        record(at(2, 15), paths=5, wildcards=1, changed=8, site_urls=50, dists=("E1", "E2"),
               before=995, files=2, size=500, deletes=2),
        # finished by a later run; nothing to invalidate (a new file only)
        record(at(7), paths=0, changed=0, site_urls=50, made=(), resumed=True, files=1,
               size=10),
    ]
    doc = build_report(month=MONTH, now=AFTER, account=None, records=records, target=TARGET)
    t = doc["tool"]
    assert t["target"] == TARGET
    assert (t["deploys"], t["resumed"]) == (3, 1)
    assert (t["uploaded_files"], t["uploaded_bytes"], t["deletes"], t["changed_urls"]) == (
        7, 1510, 3, 18)
    assert (t["paths"], t["wildcards"], t["needless_misses"], t["paid_paths"]) == (13, 4, 4, 5)
    assert t["dollars"] == pytest.approx(0.025)
    exact, wild = t["alternatives"]["exact_paths"], t["alternatives"]["wildcard_all"]
    # exact: 10 + 8 x 2 distributions (11 of them past the allowance) + 0
    assert (exact["paths"], exact["wildcards"], exact["paid_paths"]) == (26, 0, 11)
    assert exact["dollars"] == pytest.approx(0.055)
    # "/*" on every deploy, on every distribution it names
    assert (wild["paths"], wild["wildcards"], wild["needless_misses"]) == (4, 4, 40 + 84 + 50)
    assert t["savings"]["needless_misses_vs_wildcard_all"] == 174 - 4
    assert t["savings"]["paths_vs_exact_paths"] == 26 - 13
    assert t["savings"]["dollars_vs_exact_paths"] == pytest.approx(0.03)
    assert (t["unreadable_records"], t["pending"]) == ([], None)
    assert (day_row(doc, 2)["tool_deploys"], day_row(doc, 2)["tool_paths"]) == (2, 13)
    assert (day_row(doc, 7)["tool_deploys"], day_row(doc, 7)["tool_paths"]) == (1, 0)
    assert sum(d["tool_deploys"] for d in doc["days"]) == 3


def test_records_drafted_from_a_real_plan_are_summed():
    old = {"index.html": Entry("1".ljust(32, "0"), 10, "text/html; charset=utf-8", "cc"),
           "about/index.html": Entry("2".ljust(32, "0"), 10, "text/html; charset=utf-8", "cc")}
    new = dict(old, **{"about/index.html": Entry("9".ljust(32, "0"), 12,
                                                 "text/html; charset=utf-8", "cc")})
    plan = compute_plan(
        site="/site", target=TARGET,
        state=TargetState(Manifest(old, target=TARGET, deploy_id="prev"), "etag"), entries=new,
        options=Options(distribution_ids=("E1", "E2"), paths_used=0, now=at(4)),
        tool_version="test",
    )
    assert plan.invalidation.paths == ("/about/*",)
    rec = ledger.complete(ledger.draft(plan, at(4)), {"E1": "I1", "E2": "I2"}, at(4, 13), False)
    doc = build_report(month=MONTH, now=AFTER, account=None, records=[rec], target=TARGET)
    t = doc["tool"]
    assert (t["deploys"], t["uploaded_files"], t["uploaded_bytes"]) == (1, 1, 12)
    assert (t["paths"], t["wildcards"], t["changed_urls"]) == (2, 2, 2)  # 1 path x 2 dists
    assert t["alternatives"]["exact_paths"]["paths"] == 4
    assert (day_row(doc, 4)["tool_deploys"], day_row(doc, 4)["tool_paths"]) == (1, 2)


# --- build_report: projection and warnings ----------------------------------------------------


@pytest.mark.parametrize(
    "now, paths, projected, elapsed, shown, final",
    [
        # 9 days gone on the 10th at midnight: 900 / 9 x 31
        (at(10, 0), 900, 3100, 9.0, 10, False),
        # 6 hours in: the pace is taken over one day, not a quarter of one
        (at(1, 6), 10, 310, 1.0, 1, False),
        # the last second of the month
        (at(31, 23, 59, 59), 31, 31, 31.0, 31, False),
        # a past month: its actual total, final
        (AFTER, 900, 900, 31.0, 31, True),
        # the month just ended
        (at(1, 0, month="2026-04"), 1200, 1200, 31.0, 31, True),
    ],
)
def test_projection_is_the_pace_so_far_or_the_past_months_total(now, paths, projected, elapsed,
                                                               shown, final):
    acc = account(inv("E1", at(1, 0), paths))
    doc = build_report(month=MONTH, now=now, account=acc)
    paid = max(0, projected - 1000)
    assert doc["projection"] == {"basis": "account", "paths": projected, "paid_paths": paid,
                                 "dollars": pytest.approx(paid * 0.005),
                                 "charge_usd": pytest.approx(paid * 0.005), "final": final}
    assert doc["days_elapsed"] == pytest.approx(elapsed, abs=0.01)
    assert len(doc["days"]) == shown
    assert doc["complete"] is final


@pytest.mark.parametrize(
    "paths, warn_over, fail_over, warned, over",
    [
        (1200, 0.0, None, True, False),  # default warn-over 0: any cost is warned about
        (1200, 5.0, None, False, False),  # $1.00 is under the warning amount
        (1200, 5.0, 0.5, True, True),  # over --fail-over (the lower of the two is the limit)
        (1200, 0.5, 5.0, True, False),  # over --warn-over only
        (1200, 1.0, 1.0, False, False),  # exactly the amount is not over it
        (1200, 0.0, 0.99, True, True),  # just over --fail-over
        (900, 0.0, 0.0, False, False),  # no cost: nothing to warn about, not even at 0
    ],
)
def test_cost_over_the_amounts_warns_and_flags_the_failure(paths, warn_over, fail_over, warned,
                                                           over):
    acc = account(inv("E1", at(2), paths))
    doc = build_report(month=MONTH, now=AFTER, account=acc, warn_over=warn_over,
                       fail_over=fail_over)
    assert doc["over_fail_amount"] is over
    if warned:
        (warning,) = doc["warnings"]
        limit = warn_over if fail_over is None else min(warn_over, fail_over)
        assert warning.startswith(f"{MONTH} spent: 1,200 paths, 200 paid, $1.00")
        assert warning.endswith(f"over ${limit:,.2f}")
    else:
        assert doc["warnings"] == []


def test_current_month_warning_speaks_of_the_projection():
    acc = account(inv("E1", at(1), 400))
    doc = build_report(month=MONTH, now=at(11, 0), account=acc, fail_over=1.0)
    # 400 in 10 days -> 1,240 by the 31st: 240 paid, $1.20
    assert doc["warnings"] == [f"{MONTH} projected: 1,240 paths, 240 paid, $1.20, over $0.00"]
    assert doc["over_fail_amount"] is True
    assert doc["account"]["paid_paths"] == 0  # nothing is paid yet


def test_unreadable_records_and_a_pending_deploy_are_warned_about():
    pending = {"deploy_id": "abc123", "started_at": "2026-03-05T10:00:00Z", "paths": 6}
    bad = ["ledger/2026-03/x.json", "ledger/2026-03/y.json"]
    doc = build_report(month=MONTH, now=AFTER, account=account(), records=[record(at(3))],
                       target=TARGET, unreadable=bad, pending=pending)
    assert doc["warnings"] == [
        "2 ledger records could not be read and are left out: ledger/2026-03/x.json ...",
        "deploy abc123 is not finished (its invalidation of 6 paths is pending); the next "
        "deploy finishes it",
    ]
    assert doc["tool"]["unreadable_records"] == bad
    assert doc["tool"]["pending"] == pending
    assert doc["tool"]["deploys"] == 1  # the readable record still counts
    one = build_report(month=MONTH, now=AFTER, account=account(), target=TARGET,
                       unreadable=bad[:1])
    assert one["warnings"] == [
        "1 ledger record could not be read and is left out: ledger/2026-03/x.json"]


def test_without_the_account_the_projection_is_the_tools():
    note = "no permission to list invalidations (AccessDenied): no account view"
    records = [record(at(2), paths=300, dists=("E1", "E2")), record(at(3), paths=100)]
    doc = build_report(month=MONTH, now=at(5, 0), account=None, records=records, target=TARGET,
                       notes=[note])
    assert doc["account"] is None
    assert doc["tool"]["paths"] == 700
    # 700 paths in 4 days -> 5,425 by the 31st
    assert doc["projection"] == {"basis": "tool", "paths": 5425, "paid_paths": 4425,
                                 "dollars": pytest.approx(22.125),
                                 "charge_usd": pytest.approx(22.125), "final": False}
    assert doc["warnings"][0] == note
    assert [(d["paths"], d["tool_paths"]) for d in doc["days"]] == [
        (0, 0), (0, 600), (0, 100), (0, 0), (0, 0)]


def test_with_neither_view_there_is_no_projection_and_no_failure():
    doc = build_report(month=MONTH, now=AFTER, account=None, fail_over=0.0)
    assert (doc["account"], doc["tool"], doc["projection"]) == (None, None, None)
    assert doc["over_fail_amount"] is False
    assert len(doc["days"]) == 31


@pytest.mark.parametrize(
    "month, now, n_days",
    [
        ("2026-02", AFTER, 28),  # a past February
        ("2024-02", AFTER, 29),  # a leap February
        ("2026-04", AFTER, 30),  # a 30-day month
        ("2026-05", AFTER, 10),  # this month, so far: the 1st to the 10th
        ("2026-05", dt.datetime(2026, 5, 1, 0, 0, tzinfo=UTC), 1),  # its very first second
    ],
)
def test_month_without_activity_reports_zeros(month, now, n_days):
    doc = build_report(month=month, now=now, account=account(month=month), target=TARGET)
    assert len(doc["days"]) == n_days
    assert doc["days"][0]["date"] == f"{month}-01"
    for d in doc["days"]:
        assert {k: v for k, v in d.items() if k != "date"} == {
            "invalidations": 0, "paths": 0, "wildcards": 0, "cumulative_paths": 0,
            "paid_paths": 0, "dollars": 0.0, "tool_deploys": 0, "tool_paths": 0}
    a, t = doc["account"], doc["tool"]
    assert (a["paths"], a["paid_paths"], a["free_paths_left"], a["dollars"]) == (0, 0, 1000, 0)
    assert (t["deploys"], t["paths"], t["dollars"]) == (0, 0, 0)
    assert doc["projection"]["paths"] == 0 and doc["projection"]["dollars"] == 0
    assert doc["warnings"] == [] and doc["over_fail_amount"] is False


MONTHS = {"2026-02": 28, "2026-03": 31, "2024-02": 29, "2026-04": 30}


@st.composite
def month_of_invalidations(draw):
    month = draw(st.sampled_from(sorted(MONTHS)))
    start = at(1, 0, month=month)
    seconds = MONTHS[month] * 86400
    offsets = draw(st.lists(st.integers(0, seconds - 1), max_size=25))
    running = draw(st.booleans())
    if running:  # this month, as of a moment after its last invalidation
        now = start + dt.timedelta(seconds=draw(st.integers(max(offsets, default=0), seconds - 1)))
    else:
        now = start + dt.timedelta(days=40)
    items = []
    for i, off in enumerate(offsets):
        n = draw(st.integers(0, 3000))
        items.append(inv(draw(st.sampled_from(["E1", "E2", "E3"])),
                         start + dt.timedelta(seconds=off), n, draw(st.integers(0, min(n, 15))),
                         completed=draw(st.booleans()), ident=f"I{i}"))
    # others' months: never counted
    for i, off in enumerate(draw(st.lists(st.integers(1, 40 * 86400), max_size=3))):
        items.append(inv("E1", start - dt.timedelta(seconds=off), 77, ident=f"B{i}"))
    return month, now, items


@settings(max_examples=150, deadline=None)
@given(month_of_invalidations(), st.integers(0, 5000))
def test_days_add_up_to_the_account(case, free):
    month, now, items = case
    doc = build_report(month=month, now=now, account=account(*items, month=month),
                       free_per_month=free)
    a, days = doc["account"], doc["days"]
    total = sum(i.paths for i in items if i.created.strftime("%Y-%m") == month)
    assert a["paths"] == total
    assert sum(d["paths"] for d in days) == a["paths"]
    assert days[-1]["cumulative_paths"] == a["paths"]
    cumulative = [d["cumulative_paths"] for d in days]
    assert cumulative == sorted(cumulative)
    assert sum(d["paid_paths"] for d in days) == max(0, a["paths"] - free) == a["paid_paths"]
    assert sum(d["invalidations"] for d in days) == a["invalidations"]


# --- parse_month, days_in ---------------------------------------------------------------------

NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "2026-11",  # this month
        "2026-10",  # last month
        "2026-01",  # January
        "2025-12",  # last year's December
        "2008-11",  # CloudFront's first month
    ],
)
def test_parse_month_accepts_months_up_to_now(text):
    assert parse_month(text, NOW) == text


@pytest.mark.parametrize(
    "text, message",
    [
        ("2026-13", "not a month"),  # no 13th month
        ("2026-00", "not a month"),  # no month 0
        ("26-01", "not a month"),  # two-digit year
        ("2026-1", "not a month"),  # one-digit month
        ("2026/01", "not a month"),  # another separator
        ("2026-01-05", "not a month"),  # a day
        (" 2026-01", "not a month"),  # leading space
        ("2026-01\n", "not a month"),  # trailing newline
        ("", "not a month"),  # empty
        ("0000-01", "not a month"),  # year 0: no such date
        ("2008-10", "before CloudFront existed"),  # the month before CloudFront's launch
        ("2026-12", "has not started yet"),  # next month
        ("2027-01", "has not started yet"),  # next year
    ],
)
def test_parse_month_refuses_what_is_not_a_past_or_current_month(text, message):
    with pytest.raises(ValueError, match=message):
        parse_month(text, NOW)


@pytest.mark.parametrize(
    "month, n",
    [
        ("2026-01", 31),  # January
        ("2026-02", 28),  # common year
        ("2024-02", 29),  # leap year
        ("2000-02", 29),  # divisible by 400: leap
        ("1900-02", 28),  # divisible by 100 only: not leap
        ("2026-04", 30),  # 30-day month
        ("2026-12", 31),  # December
    ],
)
def test_days_in_month(month, n):
    assert days_in(month) == n


# --- rendering --------------------------------------------------------------------------------


def sample_doc(**kw) -> dict:
    acc = account(inv("E1", at(2), 700, 3), inv("E2", at(2, 18), 300), inv("E1", at(9), 200),
                  dists=("E1", "E2", "E3"))
    records = [record(at(2), paths=3, changed=9), record(at(9), paths=2, changed=4)]
    args = dict(month=MONTH, now=AFTER, account=acc, records=records, target=TARGET,
                unreadable=["ledger/2026-03/x.json"])
    return build_report(**{**args, **kw})


CSV_HEADER = ["date", "invalidations", "paths", "wildcards", "cumulative_paths", "paid_paths",
              "dollars", "tool_deploys", "tool_paths"]


def test_csv_has_one_row_per_day_under_the_documented_header():
    doc = sample_doc()
    rows = list(csv.reader(io.StringIO(render(doc, "csv"))))
    assert rows[0] == CSV_HEADER
    assert len(rows) == 1 + 31
    parsed = [dict(zip(CSV_HEADER, r)) for r in rows[1:]]
    for day, row in zip(doc["days"], parsed):
        assert row["date"] == day["date"]
        for col in CSV_HEADER[1:]:
            value = float(row[col]) if col == "dollars" else int(row[col])
            assert value == day[col]
    assert sum(int(r["paths"]) for r in parsed) == 1200
    assert sum(int(r["paid_paths"]) for r in parsed) == 200
    assert sum(float(r["dollars"]) for r in parsed) == pytest.approx(1.0)
    assert to_csv(doc) == render(doc, "csv")


def test_json_round_trips_the_document():
    doc = sample_doc()
    assert json.loads(render(doc, "json")) == doc
    assert render(doc, "json") == to_json(doc) + "\n"


def test_markdown_has_a_title_tables_and_warnings():
    out = render(sample_doc(), "markdown")
    lines = out.splitlines()
    assert lines[0] == "## Invalidations in 2026-03 (the whole month)"
    assert "### Account (from cloudfront)" in out
    assert f"### Deploys by this tool ({TARGET})" in out
    assert "### Per day" in out
    table = [ln for ln in lines if ln.startswith("|")]
    assert len(table) >= 2 + 31  # at least the per-day table, header and rule included
    assert any(set(ln.replace("|", "").replace(":", "").strip()) == {"-"} for ln in table)
    assert "| 2026-03-02 " in out and "| E3 " not in out  # the idle distribution is summed up
    assert "- 1 other distribution had no invalidations" in lines
    assert any(ln.startswith("- WARNING: 1 ledger record could not be read") for ln in lines)
    assert "- month total: 1,200 paths, 200 paid, AWS charge $1.00" in lines


def test_table_shows_warnings_and_says_when_the_account_is_missing():
    out = render(sample_doc(), "table")
    assert out.startswith("Invalidations in 2026-03 (the whole month)\n")
    assert "WARNING: 1 ledger record could not be read" in out
    assert "free paths: 0 of 1,000 left\nAWS charge: $1.00 (200 paid paths)" in out
    no_account = to_text(sample_doc(account=None), "table")
    assert "(account columns are empty: CloudFront could not be read)" in no_account
    assert "(this tool's deploys only)" in no_account
    running = to_text(sample_doc(now=at(10, 6)), "table")
    assert running.startswith("Invalidations in 2026-03 (as of 2026-03-10 06:00 UTC, day 10 of 31)")


@pytest.mark.parametrize(
    "value, top, width, expected",
    [
        (0, 100, 30, ""),  # nothing: no bar
        (-5, 100, 30, ""),  # never negative
        (5, 0, 30, ""),  # no top to measure against
        (100, 100, 30, "█" * 30),  # the top fills the width
        (50, 100, 30, "█" * 15),  # half
        (1, 10**6, 30, "▏"),  # a tiny value still shows a sliver
        (1, 2, 1, "▌"),  # half a character: 4 eighths
        (1, 16, 1, "▏"),  # half an eighth rounds to nothing: still a sliver
        (3, 8, 2, "▊"),  # 6 eighths
        (9, 16, 2, "█▏"),  # one full character and one eighth
    ],
)
def test_bar(value, top, width, expected):
    assert bar(value, top, width) == expected


# --- the CLI on the local backend -------------------------------------------------------------


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True,
                          text=True, timeout=60)


def shift_month(month: str, by: int) -> str:
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + mon - 1 + by
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Path:
    """examples/sample-site deployed to a folder twice, with one page changed in between."""
    base = tmp_path_factory.mktemp("report")
    site, target = base / "site", base / "out"
    shutil.copytree(SAMPLE, site)
    r = run("deploy", str(site), "--target", str(target))
    assert r.returncode == 0, r.stderr
    (site / "about" / "index.html").write_text("<h1>new about</h1>")
    (site / "css" / "style.css").write_text("body { color: red }")
    r = run("deploy", str(site), "--target", str(target))
    assert r.returncode == 0, r.stderr
    return target


def this_month() -> str:
    return f"{dt.datetime.now(UTC):%Y-%m}"


def report_json(target: Path, *extra: str) -> dict:
    r = run("report", "--target", str(target), "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.mark.e2e
def test_report_json_matches_the_invalidation_log_and_the_ledger(deployed):
    doc = report_json(deployed)
    log = [json.loads(ln) for ln in
           (deployed / ".planner" / "invalidations.jsonl").read_text().splitlines()]
    assert len(log) == 1  # the first deploy only adds files: nothing to invalidate
    paths = len(log[0]["paths"])
    assert doc["month"] == this_month() and doc["complete"] is False
    a = doc["account"]
    assert a["source"] == "local invalidation log"
    assert a["distributions"] == [{"id": "local", "invalidations": 1, "paths": paths,
                                   "wildcards": sum(p.endswith("*") for p in log[0]["paths"]),
                                   "in_progress": 0}]
    assert (a["invalidations"], a["paths"], a["free_paths_left"]) == (1, paths, 1000 - paths)
    today = doc["days"][-1]
    assert today["date"] == log[0]["create_time"][:10]
    assert (today["invalidations"], today["paths"], today["cumulative_paths"]) == (1, paths, paths)

    t = doc["tool"]
    records = [json.loads(p.read_text()) for p in
               sorted((deployed / ".planner" / "ledger" / this_month()).glob("*.json"))]
    assert t["deploys"] == len(records) == 2
    assert t["target"] == deployed.as_uri()
    assert t["paths"] == sum(r["paths"] for r in records) == paths
    assert t["uploaded_files"] == sum(r["uploads"]["files"] for r in records)
    assert t["uploaded_files"] == len(list(SAMPLE.rglob("*.*"))) + 2
    assert t["changed_urls"] == sum(r["changed_urls"] for r in records) > 0
    assert sum(d["tool_deploys"] for d in doc["days"]) == 2
    assert (t["unreadable_records"], t["pending"], doc["warnings"]) == ([], None, [])
    assert doc["projection"]["basis"] == "account" and doc["over_fail_amount"] is False


@pytest.mark.e2e
@pytest.mark.parametrize(
    "fmt, check",
    [
        # the terminal table: title, account and per-day sections
        ("table", lambda out: out.startswith("Invalidations in ") and "Per day" in out
         and "Account (from local invalidation log)" in out),
        # markdown: a "## " title and "|" tables
        ("markdown", lambda out: out.startswith("## Invalidations in ") and "\n| " in out),
        # CSV: the documented header, a row per day so far
        ("csv", lambda out: out.splitlines()[0] == ",".join(CSV_HEADER)
         and len(out.splitlines()) == 1 + dt.datetime.now(UTC).day),
        # JSON: one document
        ("json", lambda out: json.loads(out)["tool"]["deploys"] == 2),
    ],
)
def test_report_formats(deployed, fmt, check):
    r = run("report", "--target", str(deployed), "--format", fmt)
    assert r.returncode == 0, r.stderr
    assert check(r.stdout), r.stdout
    assert r.stderr == ""


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["table", "json", "csv", "markdown"])
def test_fail_over_exits_3_and_says_why(deployed, fmt):
    # with no free paths, every path of the log is paid: over $0
    r = run("report", "--target", str(deployed), "--format", fmt, "--fail-over", "0",
            "--free-paths-per-month", "0")
    assert r.returncode == FAIL_OVER_EXIT == 3, r.stderr
    said = r.stdout + r.stderr
    assert f"{this_month()} projected: " in said and "over $0.00" in said
    if fmt in ("json", "csv"):  # the machine-readable output stays parseable
        assert r.stderr.startswith("Error: ") and len(r.stderr.splitlines()) == 1
    if fmt == "json":
        doc = json.loads(r.stdout)
        assert doc["over_fail_amount"] is True and doc["account"]["paid_paths"] > 0


@pytest.mark.e2e
def test_fail_over_above_the_cost_exits_0(deployed):
    r = run("report", "--target", str(deployed), "--fail-over", "1000",
            "--free-paths-per-month", "0")
    assert r.returncode == 0, r.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    "month, message",
    [
        ("2026-13", "is not a month"),  # no 13th month
        ("26-01", "is not a month"),  # two-digit year
        ("0000-01", "is not a month"),  # year 0: no such date
        (shift_month(this_month(), 1), "has not started yet"),  # next month
    ],
)
def test_bad_month_is_a_usage_error(deployed, month, message):
    r = run("report", "--target", str(deployed), "--month", month)
    assert r.returncode == 2, (r.stdout, r.stderr)
    errors = [ln for ln in r.stderr.splitlines() if ln.startswith("Error:")]
    assert len(errors) == 1 and message in errors[0], r.stderr
    assert "Traceback" not in r.stderr and r.stdout == ""


@pytest.mark.e2e
def test_past_month_without_activity_is_all_zeros(deployed):
    month = shift_month(this_month(), -1)
    doc = report_json(deployed, "--month", month)
    assert doc["complete"] is True and len(doc["days"]) == days_in(month)
    assert all(d["paths"] == d["tool_deploys"] == d["cumulative_paths"] == 0
               for d in doc["days"])
    assert doc["account"]["paths"] == 0 and doc["account"]["distributions"][0]["id"] == "local"
    assert doc["tool"]["deploys"] == 0
    assert doc["projection"] == {"basis": "account", "paths": 0, "paid_paths": 0,
                                 "dollars": 0.0, "charge_usd": 0.0, "final": True}
    r = run("report", "--target", str(deployed), "--month", month, "--format", "csv")
    assert r.returncode == 0 and len(r.stdout.splitlines()) == 1 + days_in(month)


@pytest.mark.e2e
def test_unreadable_ledger_record_is_a_warning(deployed, tmp_path):
    target = tmp_path / "out"
    shutil.copytree(deployed, target)
    (target / ".planner" / "ledger" / this_month() / "x.json").write_text("{not json")
    doc = report_json(target)
    assert doc["tool"]["deploys"] == 2  # the good records still count
    assert [n.rsplit("/", 1)[-1] for n in doc["tool"]["unreadable_records"]] == ["x.json"]
    assert len(doc["warnings"]) == 1 and "could not be read" in doc["warnings"][0]
    r = run("report", "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert "WARNING: 1 ledger record could not be read" in r.stdout
