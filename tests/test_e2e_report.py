"""End to end: ``planner report`` against the moto server (see ``conftest.py``).

The account view comes from CloudFront (every distribution of the account, other tools' and
people's invalidations included), the tool view from the target's ledger records. Deploys run
through the real CLI in a subprocess; "other tools" are invalidations made with boto3 directly.
What the report says is checked against what was created (in moto, read with boto3) and
against the ledger objects in the bucket, summed here.

GetInvalidation calls are counted from the moto server's request log: the server runs in this
process (a thread), and werkzeug logs each request it serves to the ``werkzeug`` logger before
the response reaches the client, so a finished subprocess's requests are all logged.

moto gaps: invalidations are listed oldest first and are ``COMPLETED`` at once (the newest-first
early stop and "in progress" are covered with the strict fake in ``test_budget.py``).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import logging
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from e2e_helpers import (
    body,
    create_distribution,
    history,
    inv_paths,
    invalidations,
    objects,
    one_line_error,
    run,
    run_json,
    write_site,
)

pytestmark = pytest.mark.e2e

UTC = dt.timezone.utc
CACHE_KEY = ".planner/invalidation-counts.json"
LEDGER = ".planner/ledger/"
COUNTS = ("paths", "wildcards", "needless_misses", "paid_paths")
CSV_COLUMNS = [
    "date",
    "invalidations",
    "paths",
    "wildcards",
    "cumulative_paths",
    "paid_paths",
    "dollars",
    "tool_deploys",
    "tool_paths",
]

# What other tools and people submitted, by hand: on the site's distribution and on another.
SAME_DIST_BATCHES = [["/a.html", "/b/*", "/c/*"], ["/d.html"]]
OTHER_DIST_BATCHES = [["/*"], ["/x.html", "/y/*", "/z.html"]]


# --- helpers ---------------------------------------------------------------------------------


@pytest.fixture
def env(moto, tmp_path: Path) -> dict[str, str]:
    """The subprocess environment, with the user count cache in a folder of this test."""
    return {**moto.env, "XDG_CACHE_HOME": str(tmp_path / "xdg-cache")}


def user_cache(env: dict[str, str]) -> Path:
    return Path(env["XDG_CACHE_HOME"]) / "invalidation-planner" / "invalidation-counts.json"


def report(moto, env, *args: str) -> subprocess.CompletedProcess:
    return run(["report", *args], env, moto.cwd)


def report_json(moto, env, *args: str) -> dict[str, Any]:
    return run_json(["report", *args], env, moto.cwd)


def wildcards(paths: list[str]) -> int:
    return sum(1 for p in paths if p.endswith("*"))


def create_invalidation(cf, dist: str, paths: list[str], ref: str) -> str:
    """An invalidation made with boto3 directly (another tool, or a person); its id."""
    batch = {"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": ref}
    return cf.create_invalidation(DistributionId=dist, InvalidationBatch=batch)["Invalidation"][
        "Id"
    ]


def held(moto, dist: str) -> dict[str, dict[str, Any]]:
    """Invalidation id -> {paths, created} of a distribution, as moto holds them."""
    return {
        i["Id"]: {"paths": inv_paths(i), "created": i["CreateTime"].astimezone(UTC)}
        for i in invalidations(moto.cloudfront, dist)
    }


def ledger_records(moto, bucket: str, month: str) -> list[dict[str, Any]]:
    """The ledger records of ``month``, read with boto3."""
    keys = objects(moto.s3, bucket, f"{LEDGER}{month}/")
    return [json.loads(body(moto.s3, bucket, f"{LEDGER}{month}/{k}")) for k in sorted(keys)]


def cache_versions(moto, bucket: str) -> list[str]:
    return [vid for kind, key, vid in history(moto.s3, bucket) if key == CACHE_KEY]


def dist_row(doc: dict[str, Any], dist: str) -> dict[str, Any]:
    [row] = [r for r in doc["account"]["distributions"] if r["id"] == dist]
    return row


class RequestLog(logging.Handler):
    """The moto server's request lines (werkzeug logs one per request served)."""

    GET_INVALIDATION = re.compile(
        r"GET /\d{4}-\d\d-\d\d/distribution/([^/ ?]+)/invalidation/([^/ ?]+) HTTP"
    )

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())

    def get_invalidations(self) -> list[tuple[str, str]]:
        """(distribution, invalidation id) of every GetInvalidation served so far."""
        return [m.groups() for line in self.lines if (m := self.GET_INVALIDATION.search(line))]

    def clear(self) -> None:
        self.lines.clear()


@pytest.fixture
def requests_log(moto):
    logger = logging.getLogger("werkzeug")
    if logger.level == logging.NOTSET:
        logger.setLevel(logging.INFO)  # what werkzeug itself sets on its first request
    handler = RequestLog()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


# --- the scenario: two deploys by the tool, invalidations by others --------------------------


@pytest.fixture
def activity(moto, site, env, tmp_path: Path) -> SimpleNamespace:
    """Two deploys with ``--distribution`` (the second one changes pages, a stylesheet and
    deletes a script, so it invalidates), then invalidations made with boto3 on the site's
    distribution and on a second one, and a third distribution with none."""
    public = write_site(tmp_path / "public")
    deploy_args = ["deploy", str(public), "--target", site.target(),
                   "--distribution", site.distribution_id]
    first = run_json(deploy_args, env, moto.cwd)
    (public / "index.html").write_text("<h1>Home, again</h1>\n", encoding="utf-8")
    (public / "about" / "index.html").write_text("<h1>About, again</h1>\n", encoding="utf-8")
    (public / "css" / "site.css").write_text("body { color: #000 }\n", encoding="utf-8")
    (public / "js" / "app.js").unlink()
    second = run_json(deploy_args, env, moto.cwd)
    assert first["result"]["invalidations"] == []  # a first deploy only adds
    tool_ids = [m["id"] for m in second["result"]["invalidations"]]
    assert [m["distribution_id"] for m in second["result"]["invalidations"]] == [
        site.distribution_id
    ]

    other = create_distribution(moto.cloudfront, "another-site")
    idle = create_distribution(moto.cloudfront, "a-quiet-site")
    by_hand = {
        create_invalidation(moto.cloudfront, site.distribution_id, paths, f"same-{n}"): paths
        for n, paths in enumerate(SAME_DIST_BATCHES)
    }
    by_hand.update(
        {
            create_invalidation(moto.cloudfront, other, paths, f"other-{n}"): paths
            for n, paths in enumerate(OTHER_DIST_BATCHES)
        }
    )
    site_held, other_held = held(moto, site.distribution_id), held(moto, other)
    assert set(site_held) | set(other_held) == set(tool_ids) | set(by_hand)
    created = [i["created"] for i in (*site_held.values(), *other_held.values())]
    month = f"{created[0]:%Y-%m}"
    assert all(f"{c:%Y-%m}" == month for c in created)
    return SimpleNamespace(
        public=public,
        first=first,
        second=second,
        tool_ids=tool_ids,
        by_hand=by_hand,
        other=other,
        idle=idle,
        site_held=site_held,
        other_held=other_held,
        month=month,
    )


def expected_row(invs: dict[str, dict[str, Any]]) -> dict[str, int]:
    paths = [i["paths"] for i in invs.values()]
    return {
        "invalidations": len(paths),
        "paths": sum(len(p) for p in paths),
        "wildcards": sum(wildcards(p) for p in paths),
        "in_progress": 0,  # moto completes at once
    }


def check_account_view(doc: dict[str, Any], site, a: SimpleNamespace) -> None:
    """Per distribution, in total and per day, the account view is what moto holds."""
    acc = doc["account"]
    assert acc["source"] == "cloudfront"
    assert sorted(r["id"] for r in acc["distributions"]) == sorted(
        [site.distribution_id, a.other, a.idle]
    )
    for dist, invs in ((site.distribution_id, a.site_held), (a.other, a.other_held), (a.idle, {})):
        row = dist_row(doc, dist)
        assert {k: row[k] for k in ("invalidations", "paths", "wildcards", "in_progress")} == (
            expected_row(invs)
        ), dist

    # Against what was made: the tool's deploy (its JSON paths) and the batches by hand.
    tool_paths = a.second["invalidation"]["paths"]
    assert [a.site_held[i]["paths"] for i in a.tool_ids] == [sorted(tool_paths)]
    hand = list(a.by_hand.values())
    site_row = dist_row(doc, site.distribution_id)
    assert site_row["invalidations"] == 1 + len(SAME_DIST_BATCHES)
    assert site_row["paths"] == len(tool_paths) + sum(len(p) for p in SAME_DIST_BATCHES)
    assert site_row["wildcards"] == wildcards(tool_paths) + 2  # /b/* and /c/*
    assert (dist_row(doc, a.other)["paths"], dist_row(doc, a.other)["wildcards"]) == (4, 2)

    total = len(tool_paths) + sum(len(p) for p in hand)
    assert acc["invalidations"] == 1 + len(hand) == 5
    assert acc["paths"] == total
    assert acc["wildcards"] == wildcards(tool_paths) + 4
    assert acc["free_paths_left"] == 1000 - total
    assert (acc["paid_paths"], acc["dollars"]) == (0, 0)
    # Rows are sorted by paths, most first.
    rows = acc["distributions"]
    assert [r["paths"] for r in rows] == sorted((r["paths"] for r in rows), reverse=True)

    # Per day: each invalidation on the UTC day it was created.
    per_day: dict[str, list[int]] = {}
    for inv in (*a.site_held.values(), *a.other_held.values()):
        d = per_day.setdefault(inv["created"].date().isoformat(), [0, 0])
        d[0] += 1
        d[1] += len(inv["paths"])
    days = {d["date"]: d for d in doc["days"]}
    for date, (n, paths) in per_day.items():
        assert (days[date]["invalidations"], days[date]["paths"]) == (n, paths), date
    assert sum(d["paths"] for d in doc["days"]) == total
    assert doc["days"][-1]["cumulative_paths"] == total


# --- 1, 2: the account view and the tool view -------------------------------------------------


def test_report_with_target_counts_every_distribution_and_sums_the_tools_ledger(
    moto, site, env, activity
):
    a = activity
    before = history(moto.s3, site.bucket)
    doc = report_json(moto, env, "--target", site.target())

    # A report writes nothing but the count cache.
    written = set(history(moto.s3, site.bucket)) - set(before)
    assert {key for _, key, _ in written} == {CACHE_KEY}
    assert doc["month"] == a.month  # the default month is this one
    assert doc["complete"] is False
    check_account_view(doc, site, a)

    # The tool view: the sums of the ledger records in the bucket, read here.
    records = ledger_records(moto, site.bucket, a.month)
    assert len(records) == 2
    assert [r["deploy_id"] for r in records] == [
        a.first["manifest"]["deploy_id"], a.second["manifest"]["deploy_id"]
    ]
    tool = doc["tool"]
    assert tool["target"] == site.target()
    assert tool["deploys"] == 2
    assert tool["resumed"] == 0
    for key in COUNTS:
        assert tool[key] == sum(r[key] for r in records), key
    assert tool["dollars"] == pytest.approx(sum(r["dollars"] for r in records))
    assert tool["uploaded_files"] == sum(r["uploads"]["files"] for r in records)
    assert tool["uploaded_bytes"] == sum(r["uploads"]["bytes"] for r in records)
    assert tool["deletes"] == sum(r["deletes"] for r in records)
    assert tool["changed_urls"] == sum(r["changed_urls"] for r in records)
    for alt in ("exact_paths", "wildcard_all"):
        for key in COUNTS:
            assert tool["alternatives"][alt][key] == sum(
                r["alternatives"][alt][key] for r in records
            ), (alt, key)
    assert tool["savings"]["needless_misses_vs_wildcard_all"] == (
        tool["alternatives"]["wildcard_all"]["needless_misses"] - tool["needless_misses"]
    )
    assert tool["savings"]["paths_vs_exact_paths"] == (
        tool["alternatives"]["exact_paths"]["paths"] - tool["paths"]
    )
    assert (tool["unreadable_records"], tool["pending"]) == ([], None)

    # ... and they agree with what the deploys said and what CloudFront holds.
    assert [r["invalidation_ids"] for r in records] == [
        {}, {m["distribution_id"]: m["id"] for m in a.second["result"]["invalidations"]}
    ]
    tool_paths = a.second["invalidation"]["paths"]
    assert tool["paths"] == len(tool_paths) == sum(len(a.site_held[i]["paths"]) for i in a.tool_ids)
    assert tool["wildcards"] == wildcards(tool_paths)
    assert tool["uploaded_files"] == a.first["result"]["uploaded"] + a.second["result"]["uploaded"]
    assert tool["uploaded_bytes"] == (
        a.first["result"]["uploaded_bytes"] + a.second["result"]["uploaded_bytes"]
    )
    assert tool["deletes"] == a.second["result"]["deleted"] == 1
    assert tool["alternatives"]["wildcard_all"]["paths"] == 2  # "/*" on each deploy

    # Per day: the deploys on the day they started.
    days = {d["date"]: d for d in doc["days"]}
    for r in records:
        assert days[r["started_at"][:10]]["tool_deploys"] >= 1
    assert sum(d["tool_deploys"] for d in doc["days"]) == 2
    assert sum(d["tool_paths"] for d in doc["days"]) == tool["paths"]

    # The projection is the account's, at least what was spent so far.
    proj = doc["projection"]
    assert proj["basis"] == "account" and proj["final"] is False
    assert proj["paths"] >= doc["account"]["paths"]
    assert doc["warnings"] == []

    # The table and markdown say the same.
    table = report(moto, env, "--target", site.target())
    assert table.returncode == 0, table.stderr
    assert table.stdout.startswith(f"Invalidations in {a.month} (as of ")
    assert "Account (from cloudfront)" in table.stdout
    for dist in (site.distribution_id, a.other):
        row = dist_row(doc, dist)
        [line] = [x for x in table.stdout.splitlines() if x.startswith(dist)]
        counts = [str(row[k]) for k in ("invalidations", "paths", "wildcards")]
        assert line.split() == [dist, *counts]
    assert "1 other distribution had no invalidations" in table.stdout  # the idle one
    assert f"Deploys by this tool ({site.target()})" in table.stdout
    assert "2 deploys (0 finished by a later run)" in table.stdout
    md = report(moto, env, "--target", site.target(), "--format", "markdown")
    assert md.returncode == 0, md.stderr
    assert md.stdout.startswith(f"## Invalidations in {a.month} ")
    assert "### Account (from cloudfront)" in md.stdout.splitlines()
    assert f"### Deploys by this tool ({site.target()})" in md.stdout.splitlines()
    assert any(x.startswith(f"| {site.distribution_id} ") for x in md.stdout.splitlines())


def test_report_without_target_shows_the_account_only_and_writes_nothing_to_the_bucket(
    moto, site, env, activity
):
    a = activity
    before = history(moto.s3, site.bucket)

    doc = report_json(moto, env)

    assert doc["tool"] is None
    check_account_view(doc, site, a)
    assert doc["projection"]["basis"] == "account"
    assert all(d["tool_deploys"] == 0 and d["tool_paths"] == 0 for d in doc["days"])
    assert history(moto.s3, site.bucket) == before  # no ledger, no cache object touched
    # The counts are cached in the user's cache folder instead.
    cached = json.loads(user_cache(env).read_text(encoding="utf-8"))
    every = {**a.site_held, **a.other_held}
    assert cached == {
        f"{dist}/{i}": [len(inv["paths"]), wildcards(inv["paths"]), a.month]
        for dist, invs in ((site.distribution_id, a.site_held), (a.other, a.other_held))
        for i, inv in invs.items()
    }
    assert len(cached) == len(every) == 5


# --- 3: a month without activity --------------------------------------------------------------


def test_a_past_month_without_activity_reports_zeros_in_every_format(moto, site, env):
    # Activity this month must not leak into January 2020.
    create_invalidation(moto.cloudfront, site.distribution_id, ["/now.html", "/now/*"], "now")
    month = "2020-01"

    doc = report_json(moto, env, "--target", site.target(), "--month", month)
    assert doc["month"] == month
    assert (doc["complete"], doc["days_in_month"], doc["days_elapsed"]) == (True, 31, 31)
    acc = doc["account"]
    assert acc["distributions"] == [
        {"id": site.distribution_id, "invalidations": 0, "paths": 0, "wildcards": 0,
         "in_progress": 0}
    ]
    assert (acc["invalidations"], acc["paths"], acc["wildcards"]) == (0, 0, 0)
    assert (acc["free_paths_left"], acc["paid_paths"], acc["dollars"]) == (1000, 0, 0)
    tool = doc["tool"]
    assert tool["deploys"] == 0
    assert all(tool[k] == 0 for k in (*COUNTS, "uploaded_files", "deletes", "changed_urls"))
    assert doc["projection"] == {
        "basis": "account", "paths": 0, "paid_paths": 0, "dollars": 0, "charge_usd": 0, "final": True
    }
    assert doc["warnings"] == []
    assert [d["date"] for d in doc["days"]] == [f"2020-01-{n:02d}" for n in range(1, 32)]
    assert all(
        d[k] == 0 for d in doc["days"] for k in CSV_COLUMNS if k != "date"
    )

    proc = report(moto, env, "--target", site.target(), "--month", month, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    reader = csv.DictReader(io.StringIO(proc.stdout))
    assert reader.fieldnames == CSV_COLUMNS
    rows = list(reader)
    assert len(rows) == 31
    assert [r["date"] for r in rows] == [f"2020-01-{n:02d}" for n in range(1, 32)]
    assert all(float(r[k]) == 0 for r in rows for k in CSV_COLUMNS if k != "date")

    proc = report(moto, env, "--month", month, "--format", "markdown")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "## Invalidations in 2020-01 (the whole month)"
    assert "### Account (from cloudfront)" in lines
    assert "### Per day" in lines
    tables = [line for line in lines if line.startswith("|")]
    assert any(re.match(r"\|\s*total\s*\|\s*0\s*\|\s*0\s*\|\s*0\s*\|", t) for t in tables)
    assert sum(1 for t in tables if t.startswith("| 2020-01-")) == 31
    assert "1 other distribution had no invalidations" in proc.stdout
    assert "month total: 0 paths, 0 paid, AWS charge $0.00" in proc.stdout

    # Nothing spent: --fail-over 0 does not fail a month of zeros.
    proc = report(moto, env, "--month", month, "--fail-over", "0", "--free-paths-per-month", "0")
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stdout


# --- 4: warnings and --fail-over -----------------------------------------------------------


@pytest.fixture
def spent(moto, site) -> int:
    """Three paths submitted this month, by hand; their number."""
    create_invalidation(moto.cloudfront, site.distribution_id, ["/a", "/b", "/c/*"], "spent")
    return 3


def test_fail_over_a_projection_above_the_amount_exits_3_with_the_warning(
    moto, site, env, spent
):
    month = f"{dt.datetime.now(UTC):%Y-%m}"
    args = ("--fail-over", "0", "--free-paths-per-month", "0")

    proc = report(moto, env, *args)
    assert proc.returncode == 3, (proc.stdout, proc.stderr)
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1
    assert re.fullmatch(
        rf"WARNING: {month} projected: [\d,]+ paths, [\d,]+ paid, \$[\d,.]+, over \$0\.00",
        warnings[0],
    ), warnings[0]

    proc = report(moto, env, *args, "--format", "json")
    assert proc.returncode == 3
    doc = json.loads(proc.stdout)
    assert doc["account"]["paths"] == spent
    assert doc["account"]["paid_paths"] == spent  # no free paths at all
    assert doc["projection"]["paths"] >= spent
    assert doc["projection"]["paid_paths"] == doc["projection"]["paths"]
    assert doc["projection"]["dollars"] == pytest.approx(doc["projection"]["paths"] * 0.005)
    assert doc["over_fail_amount"] is True
    [warning] = doc["warnings"]
    assert one_line_error(proc) == f"Error: {warning}"  # said where people look, too

    # An amount above the projection passes (the warning stays: --warn-over is 0).
    proc = report(moto, env, "--fail-over", "1000", "--free-paths-per-month", "0")
    assert proc.returncode == 0, proc.stderr
    assert sum(line.startswith("WARNING: ") for line in proc.stdout.splitlines()) == 1


def test_without_fail_over_a_projection_above_warn_over_only_warns(moto, site, env, spent):
    proc = report(moto, env, "--free-paths-per-month", "0")
    assert proc.returncode == 0, proc.stderr
    warnings = [line for line in proc.stdout.splitlines() if line.startswith("WARNING: ")]
    assert len(warnings) == 1 and warnings[0].endswith("over $0.00")
    assert proc.stderr == ""

    doc = report_json(moto, env, "--free-paths-per-month", "0")
    assert doc["over_fail_amount"] is False
    assert len(doc["warnings"]) == 1

    # Within the free paths (the default 1,000) nothing is paid: no warning.
    proc = report(moto, env)
    assert proc.returncode == 0
    assert "WARNING" not in proc.stdout

    # --warn-over above the projection: no warning either.
    proc = report(moto, env, "--free-paths-per-month", "0", "--warn-over", "1000")
    assert proc.returncode == 0
    assert "WARNING" not in proc.stdout


# --- 5: the count cache ----------------------------------------------------------------------


def test_a_second_report_reads_completed_invalidations_from_the_count_cache(
    moto, site, env, activity, requests_log
):
    a = activity
    requests_log.clear()
    first = report_json(moto, env, "--target", site.target())

    # The deploy recorded its own invalidation in the cache when it made it: only the ones
    # made by hand are read from CloudFront, each once.
    gets = requests_log.get_invalidations()
    assert sorted(i for _, i in gets) == sorted(a.by_hand)
    # The cache in the bucket now holds every invalidation of the month, as DIST/ID.
    cached = json.loads(body(moto.s3, site.bucket, CACHE_KEY))
    assert cached == {
        f"{dist}/{i}": [len(inv["paths"]), wildcards(inv["paths"]), a.month]
        for dist, invs in ((site.distribution_id, a.site_held), (a.other, a.other_held))
        for i, inv in invs.items()
    }
    versions = cache_versions(moto, site.bucket)

    requests_log.clear()
    second = report_json(moto, env, "--target", site.target())
    assert requests_log.get_invalidations() == []  # moto's COMPLETED is completed
    assert any("/invalidation" in line for line in requests_log.lines)  # still listed
    assert cache_versions(moto, site.bucket) == versions  # nothing new: not written again
    assert second["account"] == first["account"]
    assert second["tool"] == first["tool"]

    # The counts come from the cache: a (doctored) cached count is what the report shows.
    some_id = next(iter(a.other_held))
    cached[f"{a.other}/{some_id}"] = [40, 7, a.month]
    moto.s3.put_object(Bucket=site.bucket, Key=CACHE_KEY, Body=json.dumps(cached).encode())
    doctored = report_json(moto, env, "--target", site.target())
    row = dist_row(doctored, a.other)
    paths = a.other_held[some_id]["paths"]
    assert row["paths"] == dist_row(first, a.other)["paths"] - len(paths) + 40
    assert row["wildcards"] == dist_row(first, a.other)["wildcards"] - wildcards(paths) + 7

    # A new invalidation is read once, and added to the cache.
    requests_log.clear()
    new = create_invalidation(moto.cloudfront, a.idle, ["/new/*"], "new")
    third = report_json(moto, env, "--target", site.target())
    assert requests_log.get_invalidations() == [(a.idle, new)]
    assert dist_row(third, a.idle)["paths"] == 1
    assert json.loads(body(moto.s3, site.bucket, CACHE_KEY))[f"{a.idle}/{new}"] == [
        1, 1, a.month
    ]


def test_without_target_the_count_cache_is_the_users_and_spares_get_invalidation(
    moto, site, env, requests_log
):
    ids = [
        create_invalidation(moto.cloudfront, site.distribution_id, paths, f"r{n}")
        for n, paths in enumerate(SAME_DIST_BATCHES)
    ]
    requests_log.clear()
    first = report_json(moto, env)
    assert sorted(i for _, i in requests_log.get_invalidations()) == sorted(ids)
    cached = json.loads(user_cache(env).read_text(encoding="utf-8"))
    assert sorted(cached) == sorted(f"{site.distribution_id}/{i}" for i in ids)

    requests_log.clear()
    second = report_json(moto, env)
    assert requests_log.get_invalidations() == []
    assert second["account"] == first["account"]
    assert first["account"]["paths"] == sum(len(p) for p in SAME_DIST_BATCHES) == 4

    # Another user (another cache folder) reads CloudFront again.
    requests_log.clear()
    elsewhere = {**env, "XDG_CACHE_HOME": str(user_cache(env).parents[2] / "another-user")}
    assert run_json(["report"], elsewhere, moto.cwd)["account"] == first["account"]
    assert len(requests_log.get_invalidations()) == len(ids)


# --- 6: bad input ----------------------------------------------------------------------------


def test_a_target_bucket_that_does_not_exist_is_a_one_line_error(moto, site, env):
    proc = report(moto, env, "--target", "s3://no-such-bucket-xyz")
    line = one_line_error(proc)
    assert "no-such-bucket-xyz" in line
    assert "NoSuchBucket" in line
    assert proc.stdout == ""


@pytest.mark.parametrize(
    "month",
    [
        "2020-13",  # no such month
        "january",
        "2999-01",  # not started yet
        "0000-01",  # there is no year 0
    ],
)
def test_a_bad_month_is_a_usage_error(moto, site, env, month):
    proc = report(moto, env, "--month", month)
    assert "Traceback" not in proc.stderr, proc.stderr[-300:]
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "--month" in proc.stderr
    assert proc.stdout == ""


def test_the_first_month_of_the_calendar_is_reported_or_refused_without_a_traceback(
    moto, site, env
):
    proc = report(moto, env, "--month", "0001-01")
    assert "Traceback" not in proc.stderr, proc.stderr[-300:]
    assert proc.returncode in (0, 2), proc.stderr
