"""The monthly free-path budget (``planner/core/pacing.py``; CloudFront's side in ``planner/backends/cloudfront.py``) and the backends' usage readers.

Pure parts by case tables; ``read_usage`` against moto in process (two distributions,
invalidations made with boto3 directly, as another tool would) and against a strict fake of
CloudFront where moto differs from AWS: moto reports every invalidation ``COMPLETED`` at once
and lists oldest first, so "in progress", AWS's ``Completed``, newest-first pages with opaque
markers and invalidations of another month come from the fake.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from e2e_helpers import create_distribution
from moto import mock_aws

from planner.backends import LocalBackend, S3Backend
from planner.backends.cloudfront import read_usage
from planner.backends.targets import LocalTarget, S3Target
from planner.core.pacing import (
    BURST,
    CACHE_NAME,
    Budget,
    Usage,
    cache_codec,
    days_left_in_month,
    month_of,
    pace_allowance,
    recorded_usage,
)
from planner.errors import AwsError

UTC = dt.timezone.utc
MARCH = "2025-03"
IN_MARCH = dt.datetime(2025, 3, 15, 12, 0, tzinfo=UTC)
PLUS_2 = dt.timezone(dt.timedelta(hours=2))
MINUS_1 = dt.timezone(dt.timedelta(hours=-1))


# --- pace_allowance ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free_left", "days_left", "expected"),
    [
        (0, 30, 0),  # nothing left: nothing free, whatever the date
        (-20, 30, 0),  # overspent (other tools went past 1,000): still nothing, never negative
        (1000, 30, 100),  # 1000 / 30 * 3 = 100 exactly
        (1000, 31, 97),  # 96.77 rounded up
        (1000, 5, 600),  # late in the month a deploy may spend more
        (1000, 2, 1000),  # 1500 capped at what is left
        (1000, 1, 1000),  # last day: everything left (3000 capped)
        (10, 31, 1),  # a little left early: at least one free path, not zero
        (1, 30, 1),  # the last free path can still be spent
        (1000, 0, 1000),  # days_left 0 is read as 1, no division by zero
    ],
)
def test_pace_allowance_spends_three_days_worth_capped_at_what_is_left(
    free_left, days_left, expected
):
    assert pace_allowance(free_left, days_left) == expected


@pytest.mark.parametrize(
    ("burst", "expected"),
    [
        (1.0, 34),  # an even share: ceil(1000 / 30) = 34
        (3.0, 100),  # the default burst
        (10.0, 334),  # a larger burst: ceil(333.3)
        (100.0, 1000),  # capped at what is left
    ],
)
def test_pace_allowance_burst_scales_the_daily_share(burst, expected):
    assert pace_allowance(1000, 30, burst=burst) == expected


def test_default_burst_is_three_days_worth():
    assert BURST == 3.0
    assert pace_allowance(900, 30) == pace_allowance(900, 30, burst=3.0) == 90


# --- days_left_in_month, month_of ------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2024, 2, 28, 12, tzinfo=UTC), 2),  # leap year: the 28th and the 29th
        (dt.datetime(2023, 2, 28, 12, tzinfo=UTC), 1),  # common year: the 28th is the last day
        (dt.datetime(2024, 2, 29, 0, tzinfo=UTC), 1),  # leap day itself
        (dt.datetime(2025, 1, 1, 0, 0, tzinfo=UTC), 31),  # the 1st: today included
        (dt.datetime(2025, 4, 1, 0, 0, tzinfo=UTC), 30),  # a 30-day month
        (dt.datetime(2025, 1, 31, 23, 59, 59, tzinfo=UTC), 1),  # the 31st, last second
        (dt.datetime(2025, 12, 31, 0, 0, tzinfo=UTC), 1),  # the year's last day
        (dt.datetime(2025, 3, 15, 12, tzinfo=UTC), 17),  # mid-month: 15..31
    ],
)
def test_days_left_in_month_counts_today(now, expected):
    assert days_left_in_month(now) == expected


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (dt.datetime(2025, 3, 1, tzinfo=UTC), "2025-03"),
        (dt.datetime(2025, 12, 31, 23, 59, tzinfo=UTC), "2025-12"),
        (dt.datetime(987, 1, 2, tzinfo=UTC), "0987-01"),  # zero-padded year
    ],
)
def test_month_of_is_year_dash_month(now, expected):
    assert month_of(now) == expected


# --- Budget ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("free", "used", "days", "pace", "free_left", "allowance"),
    [
        (1000, 250, 30, "none", 750, 750),  # pace none: everything left
        (1000, 250, 30, "even", 750, 75),  # pace even: 750 / 30 * 3
        (1000, 250, 1, "even", 750, 750),  # last day: even pace spends the rest
        (1000, 0, 31, "even", 1000, 97),  # first day of a 31-day month
        (1000, 1000, 10, "none", 0, 0),  # all used
        (1000, 1700, 10, "even", 0, 0),  # overspent by other tools: 0, not negative
        (10, 4, 30, "none", 6, 6),  # --free-paths-per-month 10
        (0, 0, 30, "none", 0, 0),  # --free-paths-per-month 0: every path is paid
    ],
)
def test_budget_allowance_by_pace(free, used, days, pace, free_left, allowance):
    b = Budget(free, used, days, pace, "cloudfront")
    assert b.free_left == free_left
    assert b.allowance == allowance


# --- a strict fake of CloudFront's read API --------------------------------------------------


@dataclass
class Inv:
    id: str
    paths: list[str]
    status: str = "Completed"  # AWS's spelling; moto says "COMPLETED"
    created: Any = IN_MARCH  # datetime (aware or naive) or an ISO string


def _client_error(code: str, operation: str, status: int = 400) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"{code} (fake)"},
            "ResponseMetadata": {"HTTPStatusCode": status},
        },
        operation,
    )


@dataclass
class FakeCloudFront:
    """ListDistributions, ListInvalidations, GetInvalidation as AWS documents them: keyword
    arguments only, MaxItems a string, newest first, opaque markers that must be handed back
    exactly, and no other operation (an unexpected call fails with AttributeError)."""

    dists: dict[str, list[Inv]]  # distribution id -> invalidations, oldest first
    page_size: int = 100  # most items a page holds, whatever MaxItems asks
    dist_page_size: int = 100
    calls: Counter = field(default_factory=Counter)
    markers: dict[str, int] = field(default_factory=dict)  # issued marker -> offset

    def _marker(self, scope: str, offset: int) -> str:
        token = f"opaque-{len(self.markers)}-{scope}"
        self.markers[token] = offset
        return token

    def _offset(self, marker: str | None, operation: str) -> int:
        if marker is None:
            return 0
        if marker not in self.markers:
            raise _client_error("InvalidArgument", operation)
        return self.markers[marker]

    def list_distributions(self, *, Marker: str | None = None, MaxItems: str | None = None):
        assert MaxItems is None or isinstance(MaxItems, str)
        self.calls["list_distributions"] += 1
        ids = list(self.dists)
        start = self._offset(Marker, "ListDistributions")
        size = min(self.dist_page_size, int(MaxItems or 100))
        page = ids[start : start + size]
        out: dict[str, Any] = {
            "Marker": Marker or "",
            "MaxItems": size,
            "IsTruncated": start + size < len(ids),
            "Quantity": len(page),
        }
        if page:
            out["Items"] = [{"Id": d, "Status": "Deployed"} for d in page]
        if out["IsTruncated"]:
            out["NextMarker"] = self._marker("dists", start + size)
        return {"DistributionList": out}

    def list_invalidations(
        self, *, DistributionId: str, Marker: str | None = None, MaxItems: str | None = None
    ):
        assert MaxItems is None or isinstance(MaxItems, str), "boto3 wants MaxItems as a string"
        self.calls["list_invalidations"] += 1
        if DistributionId not in self.dists:
            raise _client_error("NoSuchDistribution", "ListInvalidations", 404)
        newest_first = list(reversed(self.dists[DistributionId]))
        start = self._offset(Marker, "ListInvalidations")
        size = min(self.page_size, int(MaxItems or 100))
        page = newest_first[start : start + size]
        out: dict[str, Any] = {
            "Marker": Marker or "",
            "MaxItems": size,
            "IsTruncated": start + size < len(newest_first),
            "Quantity": len(page),
        }
        if page:
            out["Items"] = [{"Id": i.id, "CreateTime": i.created, "Status": i.status} for i in page]
        if out["IsTruncated"]:
            out["NextMarker"] = self._marker(DistributionId, start + size)
        return {"InvalidationList": out}

    def get_invalidation(self, *, DistributionId: str, Id: str):
        self.calls["get_invalidation"] += 1
        self.calls[f"get:{DistributionId}/{Id}"] += 1
        for inv in self.dists.get(DistributionId, []):
            if inv.id == Id:
                return {
                    "Invalidation": {
                        "Id": inv.id,
                        "Status": inv.status,
                        "CreateTime": inv.created,
                        "InvalidationBatch": {
                            "Paths": {"Quantity": len(inv.paths), "Items": list(inv.paths)},
                            "CallerReference": f"ref-{inv.id}",
                        },
                    }
                }
        raise _client_error("NoSuchInvalidation", "GetInvalidation", 404)


class MemoryCache:
    """The count cache as read_usage sees it: load/save, with the saves counted."""

    def __init__(self, data: dict | None = None) -> None:
        self.data = dict(data or {})
        self.saves = 0

    def load(self) -> dict:
        return json.loads(json.dumps(self.data))  # a copy, as read from storage

    def save(self, cache: dict) -> None:
        self.saves += 1
        self.data = json.loads(json.dumps(cache))


def usage_of(client, month: str = MARCH, targets=(), cache: MemoryCache | None = None) -> Usage:
    cache = cache if cache is not None else MemoryCache()
    return read_usage(client, month, tuple(targets), cache.load, cache.save)


# --- read_usage: in progress, pagination, month, cache (fake) ---------------------------------


def test_in_progress_paths_are_counted_for_target_distributions_only():
    fake = FakeCloudFront(
        {
            "ETARGET": [
                Inv("I1", ["/e/*", "/f"]),  # completed: used, not in progress
                Inv("I2", ["/a/*", "/b/*", "/c", "/d"], status="InProgress"),
            ],
            "EOTHER": [Inv("I3", ["/*", "/x"], status="InProgress")],
        }
    )
    u = usage_of(fake, targets=("ETARGET",))
    assert u.paths_used == 8  # in progress or not, every submitted path is billed
    assert (u.wildcards_in_progress, u.files_in_progress) == (2, 2)

    both = usage_of(fake, targets=("ETARGET", "EOTHER"))
    assert (both.wildcards_in_progress, both.files_in_progress) == (3, 3)


def test_usage_per_distribution_counts_invalidations_paths_and_wildcards():
    fake = FakeCloudFront(
        {
            "EA": [Inv("A1", ["/a", "/b/*"]), Inv("A2", ["/c"], status="InProgress")],
            "EB": [],
        }
    )
    u = usage_of(fake, targets=("EA",))
    assert u.per_distribution == {
        "EA": {"invalidations": 2, "paths": 3, "wildcards": 1},
        "EB": {"invalidations": 0, "paths": 0, "wildcards": 0},
    }
    assert (u.month, u.source, u.note) == (MARCH, "cloudfront", "")


def test_every_page_of_distributions_and_invalidations_is_read():
    fake = FakeCloudFront(
        {
            "E1": [Inv(f"A{i}", [f"/a{i}", f"/a{i}/*"]) for i in range(5)],  # 10 paths
            "E2": [Inv("B0", ["/b"])],
            "E3": [Inv(f"C{i}", ["/c"] * 3) for i in range(4)],  # 12 paths
        },
        page_size=2,
        dist_page_size=2,
    )
    u = usage_of(fake)
    assert u.paths_used == 23
    assert u.per_distribution["E1"] == {"invalidations": 5, "paths": 10, "wildcards": 5}
    assert u.per_distribution["E3"]["invalidations"] == 4
    # 3 distributions on 2 pages; invalidations 5, 1, 4 on 3 + 1 + 2 pages
    assert fake.calls["list_distributions"] == 2
    assert fake.calls["list_invalidations"] == 6


def test_only_invalidations_created_in_the_month_utc_are_counted():
    fake = FakeCloudFront(
        {
            "E1": [
                Inv("FEB", ["/feb"] * 7, created=dt.datetime(2025, 2, 28, 23, 59, 59, tzinfo=UTC)),
                # 01:30 in UTC+2 on March 1st is still February in UTC
                Inv("FEB2", ["/x"] * 5, created=dt.datetime(2025, 3, 1, 1, 30, tzinfo=PLUS_2)),
                Inv("MAR1", ["/m1"], created=dt.datetime(2025, 3, 1, 0, 0, tzinfo=UTC)),
                Inv("MAR2", ["/m2", "/m3"], created="2025-03-20T08:00:00Z"),  # ISO text
                Inv("MAR3", ["/m4"], created=dt.datetime(2025, 3, 31, 23, 59)),  # naive: UTC
                # 23:30 in UTC-1 on March 31st is already April in UTC
                Inv("APR", ["/y"] * 11, created=dt.datetime(2025, 3, 31, 23, 30, tzinfo=MINUS_1)),
            ]
        }
    )
    u = usage_of(fake, month=MARCH, targets=("E1",))
    assert u.paths_used == 4
    assert u.per_distribution["E1"]["invalidations"] == 3
    # Invalidations of other months cost no GetInvalidation.
    assert fake.calls["get_invalidation"] == 3
    assert not any(fake.calls[f"get:E1/{i}"] for i in ("FEB", "FEB2", "APR"))


def test_invalidation_still_in_progress_from_last_month_counts_against_the_limits():
    fake = FakeCloudFront(
        {
            "E1": [
                Inv(
                    "LATE",
                    ["/a/*", "/b/*", "/c"],
                    status="InProgress",
                    created=dt.datetime(2025, 2, 28, 23, 59, tzinfo=UTC),
                )
            ]
        }
    )
    u = usage_of(fake, month=MARCH, targets=("E1",))
    assert u.paths_used == 0  # billed in February
    assert (u.wildcards_in_progress, u.files_in_progress) == (2, 1)


def test_completed_counts_are_cached_and_not_read_again():
    fake = FakeCloudFront(
        {"E1": [Inv("I1", ["/a", "/b/*"]), Inv("I2", ["/c"])], "E2": [Inv("J1", ["/*"])]}
    )
    cache = MemoryCache()
    first = usage_of(fake, cache=cache)
    assert fake.calls["get_invalidation"] == 3
    assert cache.data == {
        "E1/I1": [2, 1, MARCH],
        "E1/I2": [1, 0, MARCH],
        "E2/J1": [1, 1, MARCH],
    }

    second = usage_of(fake, cache=cache)
    assert fake.calls["get_invalidation"] == 3  # no new GetInvalidation
    assert cache.saves == 1  # nothing new: the cache is not written again
    assert second == first


def test_the_count_cache_keeps_a_year_of_counts_when_it_is_written():
    fake = FakeCloudFront({"E1": [Inv("I1", ["/a"])]})
    cache = MemoryCache()
    cache.data = {
        "E1/OLD": [3, 0, "2024-02"],  # 13 months before March 2025: dropped
        "E1/YEAR": [4, 1, "2024-03"],  # 12 months before: kept
        "E1/NEXT": [1, 0, "2025-04"],  # a later month (a report of an earlier one): kept
        "E1/BAD": "not counts",
        "E1/NOMONTH": [1, 0],
    }
    usage_of(fake, month=MARCH, cache=cache)
    assert cache.data == {
        "E1/YEAR": [4, 1, "2024-03"], "E1/NEXT": [1, 0, "2025-04"], "E1/I1": [1, 0, MARCH],
    }


@pytest.mark.parametrize(("month", "oldest_kept"), [("2025-03", "2024-03"), ("2025-12", "2024-12"),
                                                     ("2025-01", "2024-01")])
def test_pruning_counts_months_across_years(month, oldest_kept):
    from planner.core.pacing import pruned

    year, mon = (int(x) for x in oldest_kept.split("-"))
    before = f"{year - 1:04d}-12" if mon == 1 else f"{year:04d}-{mon - 1:02d}"
    cache = {"k": [1, 0, oldest_kept], "old": [1, 0, before]}
    assert pruned(cache, month) == {"k": [1, 0, oldest_kept]}


def test_in_progress_invalidations_are_read_again_until_they_complete():
    inv = Inv("I1", ["/a/*", "/b"], status="InProgress")
    fake = FakeCloudFront({"E1": [inv]})
    cache = MemoryCache()
    usage_of(fake, targets=("E1",), cache=cache)
    usage_of(fake, targets=("E1",), cache=cache)
    assert fake.calls["get_invalidation"] == 2
    assert cache.data == {}  # an invalidation in progress is never cached

    inv.status = "Completed"
    done = usage_of(fake, targets=("E1",), cache=cache)
    assert (done.wildcards_in_progress, done.files_in_progress) == (0, 0)
    assert cache.data == {"E1/I1": [2, 1, MARCH]}
    usage_of(fake, targets=("E1",), cache=cache)
    assert fake.calls["get_invalidation"] == 3


def test_a_cached_count_of_an_in_progress_invalidation_is_not_trusted():
    # The tool records what it submits (S3Backend._record) while it is still in progress;
    # until it completes, CloudFront is asked, and it counts as in progress.
    fake = FakeCloudFront({"E1": [Inv("I1", ["/a/*", "/b", "/c"], status="InProgress")]})
    cache = MemoryCache({"E1/I1": [99, 0, MARCH]})
    u = usage_of(fake, targets=("E1",), cache=cache)
    assert u.paths_used == 3
    assert (u.wildcards_in_progress, u.files_in_progress) == (1, 2)


@pytest.mark.parametrize(
    "entry",
    [
        [],  # empty
        [5],  # no wildcard count
    ],
)
def test_short_cache_entries_are_read_again(entry):
    fake = FakeCloudFront({"E1": [Inv("I1", ["/a", "/b/*"])]})
    cache = MemoryCache({"E1/I1": entry})
    assert usage_of(fake, cache=cache).paths_used == 2
    assert cache.data["E1/I1"] == [2, 1, MARCH]


@pytest.mark.parametrize(
    "entry",
    [
        "garbage",  # a string: counts[0] is "g"
        {"paths": 2, "wildcards": 1},  # another tool version's shape
        [None, None, MARCH],
        ["2", "1", MARCH],  # counts as text
    ],
)
def test_malformed_cache_entries_are_read_again(entry):
    fake = FakeCloudFront({"E1": [Inv("I1", ["/a", "/b/*"])]})
    cache = MemoryCache({"E1/I1": entry})
    assert usage_of(fake, cache=cache).paths_used == 2


# --- cache_codec -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stored",
    [
        None,  # no cache object yet
        b"",  # empty object
        b"{not json",  # cut short
        b"\xff\xfe\x00garbage",  # not text
        b"[1, 2, 3]",  # JSON, not an object
        b'"a string"',
        b"null",
    ],
)
def test_a_missing_or_corrupt_cache_loads_empty(stored):
    load, _ = cache_codec(lambda: stored, lambda data: None)
    assert load() == {}


def test_cache_codec_round_trips_counts():
    box: dict[str, bytes] = {}
    load, save = cache_codec(lambda: box.get("c"), lambda data: box.__setitem__("c", data))
    save({"E1/I1": [3, 1, MARCH]})
    assert json.loads(box["c"]) == {"E1/I1": [3, 1, MARCH]}
    assert load() == {"E1/I1": [3, 1, MARCH]}


def test_a_corrupt_cache_is_ignored_and_rebuilt_from_cloudfront():
    box = {"c": b'{"E1/I1": [3, 1, "2025-03"'}  # truncated write
    load, save = cache_codec(lambda: box["c"], lambda data: box.__setitem__("c", data))
    fake = FakeCloudFront({"E1": [Inv("I1", ["/a", "/b", "/c/*", "/d"])]})
    u = read_usage(fake, MARCH, ("E1",), load, save)
    assert u.paths_used == 4
    assert json.loads(box["c"]) == {"E1/I1": [4, 1, MARCH]}


# --- recorded_usage --------------------------------------------------------------------------


def test_recorded_usage_sums_the_month_and_skips_other_months_and_junk():
    cache = {
        "E1/A": [3, 1, MARCH],
        "E1/B": [5, 0, "2025-02"],  # last month
        "E2/C": [2, 2, MARCH],
        "E2/D": [7, 0],  # no month: cannot be placed
        "E2/E": "junk",
        "E2/F": {"n": 4},
    }
    assert recorded_usage(cache, MARCH) == 5
    assert recorded_usage(cache, "2025-02") == 5
    assert recorded_usage(cache, "2025-04") == 0
    assert recorded_usage({}, MARCH) == 0


# --- read_usage against moto (in process) ----------------------------------------------------


@pytest.fixture
def aws(monkeypatch, tmp_path):
    """moto in process, fake credentials, no endpoint, profile or config of the machine."""
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none" / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none" / "credentials"))
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="site")
        yield SimpleNamespace(s3=s3, cloudfront=boto3.client("cloudfront", region_name="us-east-1"))


def invalidate(cf, dist: str, paths: list[str], ref: str) -> str:
    """An invalidation made with boto3 directly (another tool); returns its month (UTC)."""
    batch = {"Paths": {"Quantity": len(paths), "Items": paths}, "CallerReference": ref}
    resp = cf.create_invalidation(DistributionId=dist, InvalidationBatch=batch)
    return month_of(resp["Invalidation"]["CreateTime"].astimezone(UTC))


class Counting:
    """A client wrapper counting GetInvalidation calls."""

    def __init__(self, client) -> None:
        self.client = client
        self.gets = 0

    def get_invalidation(self, **kw):
        self.gets += 1
        return self.client.get_invalidation(**kw)

    def __getattr__(self, name):
        return getattr(self.client, name)


@pytest.fixture
def two_distributions(aws):
    """Two distributions with 5 and 6 paths (1 and 2 wildcards) made by another tool."""
    cf = aws.cloudfront
    a, b = create_distribution(cf, "site"), create_distribution(cf, "other")
    invalidate(cf, a, ["/a.html", "/b.html", "/c.html"], "t1")
    invalidate(cf, a, ["/img/*", "/x.css"], "t2")
    invalidate(cf, b, ["/*"], "t3")
    month = invalidate(cf, b, ["/p1", "/p2", "/p3", "/p4", "/dir/*"], "t4")
    return SimpleNamespace(a=a, b=b, month=month)


def test_usage_from_moto_sums_every_distribution_of_the_account(aws, two_distributions):
    d = two_distributions
    u = usage_of(aws.cloudfront, month=d.month, targets=(d.a,))
    assert u.paths_used == 11
    assert u.source == "cloudfront"
    assert u.per_distribution == {
        d.a: {"invalidations": 2, "paths": 5, "wildcards": 1},
        d.b: {"invalidations": 2, "paths": 6, "wildcards": 2},
    }
    # moto completes every invalidation at once (status COMPLETED): nothing in progress
    assert (u.wildcards_in_progress, u.files_in_progress) == (0, 0)


def test_usage_of_another_month_is_zero(aws, two_distributions):
    d = two_distributions
    year, mon = map(int, d.month.split("-"))
    other = f"{year - 1:04d}-{mon:02d}"
    u = usage_of(aws.cloudfront, month=other, targets=(d.a,))
    assert u.paths_used == 0
    assert u.per_distribution[d.a]["invalidations"] == 0


def test_moto_completed_invalidations_are_cached_and_not_read_again(aws, two_distributions):
    d = two_distributions
    cache = MemoryCache()
    client = Counting(aws.cloudfront)
    first = usage_of(client, month=d.month, cache=cache)
    assert client.gets == 4
    assert len(cache.data) == 4 and all(v[2] == d.month for v in cache.data.values())

    second = usage_of(client, month=d.month, cache=cache)
    assert client.gets == 4
    assert second.paths_used == first.paths_used == 11

    invalidate(aws.cloudfront, d.b, ["/new"], "t5")  # only the new one is read
    third = usage_of(client, month=d.month, cache=cache)
    assert client.gets == 5
    assert third.paths_used == 12


def test_more_than_a_hundred_invalidations_are_read_across_pages(aws):
    cf = aws.cloudfront
    dist = create_distribution(cf, "site")
    for i in range(104):
        month = invalidate(cf, dist, [f"/p{i}", f"/q{i}/*"], f"r{i}")
    u = usage_of(cf, month=month, targets=(dist,))
    assert u.per_distribution[dist] == {"invalidations": 104, "paths": 208, "wildcards": 104}
    assert u.paths_used == 208


# --- backends' usage --------------------------------------------------------------------------


def s3_backend(aws, cloudfront=None, prefix: str = "") -> S3Backend:
    clients = SimpleNamespace(s3=aws.s3, cloudfront=cloudfront or aws.cloudfront)
    return S3Backend(S3Target("site", prefix), clients)  # type: ignore[arg-type]


def cache_object(aws, prefix: str = "") -> dict | None:
    try:
        obj = aws.s3.get_object(Bucket="site", Key=f"{prefix}.planner/{CACHE_NAME}")
    except aws.s3.exceptions.NoSuchKey:
        return None
    return json.loads(obj["Body"].read())


def test_s3_backend_keeps_the_count_cache_in_the_state_folder(aws, two_distributions):
    d = two_distributions
    client = Counting(aws.cloudfront)
    b = s3_backend(aws, client, prefix="www/")
    assert b.usage(d.month, (d.a,)).paths_used == 11
    stored = cache_object(aws, "www/")
    assert stored is not None and sorted(v[0] for v in stored.values()) == [1, 2, 3, 5]
    assert b.usage(d.month, (d.a,)).paths_used == 11
    assert client.gets == 4  # the second deploy's read used the cache


def test_s3_backend_ignores_a_corrupt_cache_object(aws, two_distributions):
    d = two_distributions
    aws.s3.put_object(Bucket="site", Key=f".planner/{CACHE_NAME}", Body=b"\x1f\x8b garbage {")
    u = s3_backend(aws).usage(d.month, (d.a,))
    assert (u.paths_used, u.source) == (11, "cloudfront")
    assert len(cache_object(aws)) == 4  # rebuilt


class Denied:
    """A CloudFront client that may create invalidations but is refused ``denied`` calls."""

    def __init__(self, client, denied=("list_distributions",), code: str = "AccessDenied") -> None:
        self.client, self.denied, self.code = client, denied, code

    def __getattr__(self, name):
        if name in self.denied:

            def refuse(**kw):
                raise _client_error(self.code, name, 403)

            return refuse
        return getattr(self.client, name)


@pytest.mark.parametrize(
    "denied",
    [
        ("list_distributions",),  # no cloudfront:ListDistributions
        ("list_invalidations",),  # may list distributions, not their invalidations
        ("get_invalidation",),  # may list, not read an invalidation's paths
    ],
)
def test_without_permission_to_read_usage_the_tools_own_record_is_counted(aws, denied):
    cf = aws.cloudfront
    dist = create_distribution(cf, "site")
    b = s3_backend(aws)
    b.invalidate(dist, ["/a", "/b/*", "/c"], "deploy-1")  # S3Backend._record writes these
    b.invalidate(dist, ["/d"], "deploy-2")
    month = invalidate(cf, dist, [f"/other{i}" for i in range(50)], "another-tool")

    u = s3_backend(aws, Denied(cf, denied)).usage(month, (dist,))
    assert u.source == "tool record"
    assert u.paths_used == 4  # the tool's own 4 paths; another tool's 50 cannot be seen
    assert "AccessDenied" in u.note and "--paths-used" in u.note
    assert (u.wildcards_in_progress, u.files_in_progress) == (0, 0)


def test_the_tool_record_keeps_counts_read_from_cloudfront_before(aws, two_distributions):
    d = two_distributions
    s3_backend(aws).usage(d.month, (d.a,))  # a run allowed to read: the cache holds all 11
    s3_backend(aws).invalidate(d.a, ["/z"], "deploy-3")
    u = s3_backend(aws, Denied(aws.cloudfront)).usage(d.month, (d.a,))
    assert (u.source, u.paths_used) == ("tool record", 12)


def test_other_errors_reading_usage_are_not_hidden(aws):
    create_distribution(aws.cloudfront, "site")
    b = s3_backend(aws, Denied(aws.cloudfront, code="InternalError"))
    with pytest.raises(AwsError) as err:
        b.usage("2025-03", ())
    assert err.value.code == "InternalError"
    assert "InternalError" in str(err.value)


def test_local_backend_counts_its_log_of_the_month(tmp_path):
    b = LocalBackend(LocalTarget(str(tmp_path / "out")))
    assert b.usage("2025-03", ("local",)) == Usage("2025-03", 0, "local invalidation log")
    b.invalidate("local", ["/a", "/b/*"], "ref-000000000001")
    b.invalidate("local", ["/c"], "ref-000000000002")
    month = month_of(dt.datetime.now(UTC))
    u = b.usage(month, ("local",))
    assert (u.paths_used, u.source) == (3, "local invalidation log")
    assert b.usage("1999-01", ("local",)).paths_used == 0


# --- _invalidations: the early stop on newest-first pages (fake) ------------------------------


JAN_2 = dt.datetime(2025, 1, 2, tzinfo=UTC)


def _old_and_new(n_old: int, n_month: int) -> list[Inv]:
    """``n_old`` completed invalidations of January (one path each), then ``n_month`` of
    March (two paths, one wildcard each); oldest first."""
    old = [
        Inv(f"OLD{i}", [f"/old{i}"], created=JAN_2 + dt.timedelta(hours=i))
        for i in range(n_old)
    ]
    new = [
        Inv(f"MAR{i}", [f"/m{i}", f"/m{i}/*"], created=IN_MARCH + dt.timedelta(hours=i))
        for i in range(n_month)
    ]
    return old + new


def _pages(n_items: int, page_size: int) -> int:
    return -(-n_items // page_size)


@pytest.mark.parametrize("n_month", [1, 2, 3, 5])
def test_newest_first_listing_stops_once_a_page_reaches_before_the_month(n_month):
    invs = _old_and_new(40, n_month)
    fake = FakeCloudFront({"E1": invs}, page_size=2)
    u = usage_of(fake, targets=("E1",))

    assert u.paths_used == 2 * n_month
    assert u.per_distribution["E1"] == {
        "invalidations": n_month, "paths": 2 * n_month, "wildcards": n_month
    }
    every_page = _pages(len(invs), 2)
    calls = fake.calls["list_invalidations"]
    assert calls < every_page
    # The pages holding the month's invalidations, and at most one more.
    assert calls <= _pages(n_month, 2) + 1
    # Old completed invalidations cost no GetInvalidation.
    assert fake.calls["get_invalidation"] == n_month


def test_the_early_stop_is_per_distribution_and_reads_the_month_of_each():
    fake = FakeCloudFront(
        {"E1": _old_and_new(30, 3), "E2": _old_and_new(10, 0), "E3": _old_and_new(0, 4)},
        page_size=2,
    )
    u = usage_of(fake)
    assert u.paths_used == 2 * 3 + 2 * 4
    assert u.per_distribution["E2"]["invalidations"] == 0
    assert u.per_distribution["E3"]["invalidations"] == 4
    assert fake.calls["list_invalidations"] < _pages(33, 2) + _pages(10, 2) + _pages(4, 2)


def test_a_past_month_is_found_below_newer_pages_and_listing_stops_after_it():
    # Newest first: April's and March's pages, then February's, then January's.
    def day(month: int, hour: int) -> dt.datetime:
        return dt.datetime(2025, month, 10, hour, tzinfo=UTC)

    invs = [
        *(Inv(f"JAN{i}", ["/j"], created=day(1, i)) for i in range(10)),
        *(Inv(f"FEB{i}", ["/f", "/f/*"], created=day(2, i)) for i in range(3)),
        *(Inv(f"MAR{i}", ["/m"], created=day(3, i)) for i in range(6)),
    ]
    fake = FakeCloudFront({"E1": invs}, page_size=2)
    u = usage_of(fake, month="2025-02", targets=("E1",))
    assert u.paths_used == 6
    assert u.per_distribution["E1"] == {"invalidations": 3, "paths": 6, "wildcards": 3}
    assert fake.calls["list_invalidations"] < _pages(len(invs), 2)
    assert fake.calls["get_invalidation"] == 3  # neither March's nor January's are read


def test_an_invalidation_in_progress_from_just_before_the_month_is_still_listed():
    # Newest first, two a page: [MAR, FEB_DONE] then [LATE, OLD...]. The first page already
    # reaches before March 1st; only the one-day margin keeps the listing going to LATE.
    invs = [
        *(Inv(f"OLD{i}", ["/o"], created=dt.datetime(2025, 1, 5, i, tzinfo=UTC)) for i in range(8)),
        Inv(
            "LATE",
            ["/a/*", "/b/*", "/c"],
            status="InProgress",
            created=dt.datetime(2025, 2, 28, 6, 0, tzinfo=UTC),
        ),
        Inv("FEB_DONE", ["/x"], created=dt.datetime(2025, 2, 28, 18, 0, tzinfo=UTC)),
        Inv("MAR", ["/m"], created=dt.datetime(2025, 3, 1, 9, 0, tzinfo=UTC)),
    ]
    fake = FakeCloudFront({"E1": invs}, page_size=2)
    u = usage_of(fake, month=MARCH, targets=("E1",))
    assert u.paths_used == 1  # LATE and FEB_DONE are February's
    assert (u.wildcards_in_progress, u.files_in_progress) == (2, 1)
    assert fake.calls["get:E1/LATE"] == 1
    assert fake.calls["get:E1/FEB_DONE"] == 0  # completed and February's: not read
    assert fake.calls["list_invalidations"] < _pages(len(invs), 2)


@dataclass
class OldestFirstCloudFront(FakeCloudFront):
    """The strict fake, listing oldest first as moto does (the fake lists its lists reversed)."""

    def __post_init__(self) -> None:
        self.dists = {d: list(reversed(invs)) for d, invs in self.dists.items()}


def test_an_oldest_first_listing_is_read_to_the_last_page():
    invs = _old_and_new(20, 3)
    fake = OldestFirstCloudFront({"E1": invs}, page_size=2)
    first = fake.list_invalidations(DistributionId="E1", MaxItems="2")["InvalidationList"]
    assert [i["Id"] for i in first["Items"]] == ["OLD0", "OLD1"]  # the variant is oldest first
    fake.calls.clear()

    u = usage_of(fake, targets=("E1",))
    assert u.paths_used == 6
    assert u.per_distribution["E1"] == {"invalidations": 3, "paths": 6, "wildcards": 3}
    assert fake.calls["list_invalidations"] == _pages(len(invs), 2)
    assert fake.calls["get_invalidation"] == 3



# --- report sources: the account view without permission to list ---------------------------


@pytest.mark.parametrize(
    "denied",
    [
        ("list_distributions",),  # no cloudfront:ListDistributions
        ("get_invalidation",),  # may list, not read an invalidation's paths
    ],
)
def test_report_without_permission_to_list_has_no_account_view_but_the_ledger(aws, denied):
    from planner import ledger
    from planner.report.build import build_report
    from planner.report.sources import read_sources

    dist = create_distribution(aws.cloudfront, "site")
    month = invalidate(aws.cloudfront, dist, ["/a", "/b/*"], "another-tool")
    store = s3_backend(aws).store
    record = {
        "version": 1, "deploy_id": "d1", "started_at": f"{month}-02T10:00:00Z",
        "uploads": {"files": 3, "bytes": 300}, "deletes": 1, "changed_urls": 4,
        "paths": 2, "wildcards": 1, "needless_misses": 5, "paid_paths": 0, "dollars": 0.0,
        "alternatives": {
            name: {"paths": p, "wildcards": w, "needless_misses": m, "paid_paths": 0, "dollars": 0.0}
            for name, p, w, m in (("exact_paths", 4, 0, 0), ("wildcard_all", 1, 1, 40))
        },
    }
    assert ledger.write(store, record)
    clients = SimpleNamespace(s3=aws.s3, cloudfront=Denied(aws.cloudfront, denied))

    src = read_sources("s3://site", month, clients)  # type: ignore[arg-type]

    assert src.account is None
    assert [r["deploy_id"] for r in src.records] == ["d1"]
    assert "AccessDenied" in src.notes[0]
    doc = build_report(
        month=month, now=dt.datetime.now(dt.UTC), account=src.account, records=src.records,
        target=src.target, notes=src.notes,
    )
    assert doc["account"] is None and doc["tool"]["paths"] == 2
    assert doc["projection"]["basis"] == "tool"
    assert any("AccessDenied" in w for w in doc["warnings"])


def test_report_without_a_target_does_not_hide_access_denied(aws, tmp_path, monkeypatch):
    from planner.report.sources import read_sources

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    clients = SimpleNamespace(cloudfront=Denied(aws.cloudfront))
    with pytest.raises(AwsError) as err:  # nothing to show without the account: an error
        read_sources(None, "2025-03", clients)  # type: ignore[arg-type]
    assert err.value.code == "AccessDenied"
