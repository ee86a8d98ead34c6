"""The monthly free-path budget: what CloudFront says was used, and how fast to spend the rest.

``pace_allowance`` and ``Budget`` are pure. ``read_usage`` talks to CloudFront through a
client it is handed (ListDistributions, ListInvalidations, GetInvalidation) and caches the
path counts of completed invalidations in the state store, since they never change.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

# A deploy may spend up to BURST times the even daily share of what is left: a day with
# several deploys, or one larger change, is not priced as paid at once, while a single deploy
# early in the month still cannot take the whole allowance.
BURST = 3.0
CACHE_NAME = "invalidation-counts.json"


@dataclass(frozen=True)
class Usage:
    """Invalidation paths of the account this month, as far as they could be read."""

    month: str  # YYYY-MM (UTC)
    paths_used: int  # submitted this month, all distributions
    source: str  # "cloudfront", "tool record", "--paths-used"
    wildcards_in_progress: int = 0  # on the target distributions
    files_in_progress: int = 0
    per_distribution: dict[str, dict[str, int]] = field(default_factory=dict)
    note: str = ""
    # distribution -> (wildcards, file paths) in progress; the limits are per distribution
    in_progress: dict[str, tuple[int, int]] = field(default_factory=dict)

    def in_progress_on(self, distributions: tuple[str, ...]) -> tuple[int, int]:
        """(wildcards, file paths) in progress on the busiest of ``distributions``: what an
        invalidation submitted to each of them must leave room for."""
        if not self.in_progress:
            return self.wildcards_in_progress, self.files_in_progress
        per = [self.in_progress.get(d, (0, 0)) for d in distributions] or [(0, 0)]
        return max(w for w, _ in per), max(f for _, f in per)


@dataclass(frozen=True)
class Budget:
    free_per_month: int
    paths_used: int
    days_left: int  # today included
    pace: str  # "even" or "none"
    source: str

    @property
    def free_left(self) -> int:
        return max(0, self.free_per_month - self.paths_used)

    @property
    def allowance(self) -> int:
        """Free paths this deploy may spend before the rest is priced as paid."""
        if self.pace == "none":
            return self.free_left
        return pace_allowance(self.free_left, self.days_left)


def pace_allowance(free_left: int, days_left: int, burst: float = BURST) -> int:
    """ceil(free_left / days_left * burst), at most free_left."""
    if free_left <= 0:
        return 0
    return min(free_left, math.ceil(free_left / max(1, days_left) * burst))


def days_left_in_month(now: dt.datetime) -> int:
    """Days from ``now`` (UTC) to the end of its month, today included."""
    last = calendar.monthrange(now.year, now.month)[1]
    return last - now.day + 1


def month_of(now: dt.datetime) -> str:
    return f"{now.year:04d}-{now.month:02d}"


@dataclass(frozen=True)
class InvalidationCount:
    """One invalidation as the budget and the report see it."""

    distribution_id: str
    invalidation_id: str
    created: dt.datetime  # UTC
    paths: int
    wildcards: int
    completed: bool


@dataclass(frozen=True)
class AccountInvalidations:
    """Every distribution of the account, and its invalidations created in ``month`` or still
    in progress (whatever their month)."""

    month: str
    distributions: tuple[str, ...]
    items: tuple[InvalidationCount, ...]
    source: str = "cloudfront"

    def of_month(self) -> list[InvalidationCount]:
        return [i for i in self.items if month_of(i.created) == self.month]


def usage_from(account: AccountInvalidations, targets: tuple[str, ...]) -> Usage:
    """Paths submitted in the month on every distribution, and paths in progress on
    ``targets``. Pure."""
    per = {d: {"invalidations": 0, "paths": 0, "wildcards": 0} for d in account.distributions}
    total = wild_ip = files_ip = 0
    busy: dict[str, tuple[int, int]] = {}
    for inv in account.items:
        if month_of(inv.created) == account.month:
            stats = per.setdefault(
                inv.distribution_id, {"invalidations": 0, "paths": 0, "wildcards": 0}
            )
            stats["invalidations"] += 1
            stats["paths"] += inv.paths
            stats["wildcards"] += inv.wildcards
            total += inv.paths
        # Still in progress, whatever its month (one from 23:59 on the 31st), it holds back
        # the distribution's limits.
        if not inv.completed and inv.distribution_id in targets:
            wild_ip += inv.wildcards
            files_ip += inv.paths - inv.wildcards
            w, f = busy.get(inv.distribution_id, (0, 0))
            busy[inv.distribution_id] = (w + inv.wildcards, f + inv.paths - inv.wildcards)
    return Usage(account.month, total, account.source, wild_ip, files_ip, per, in_progress=busy)


def read_usage(
    cloudfront: Any,
    month: str,
    targets: tuple[str, ...],
    load_cache: Callable[[], dict],
    save_cache: Callable[[dict], None],
) -> Usage:
    """Paths submitted in ``month`` on every distribution of the account (CloudFront's own
    view, so other tools and people count), and paths in progress on ``targets``.

    Raises botocore's ClientError (AccessDenied...) for the caller to fall back.
    """
    return usage_from(read_invalidations(cloudfront, month, load_cache, save_cache), targets)


def read_invalidations(
    cloudfront: Any,
    month: str,
    load_cache: Callable[[], dict],
    save_cache: Callable[[dict], None],
) -> AccountInvalidations:
    """Every distribution of the account and its invalidations of ``month`` (or in progress),
    with their path counts: GetInvalidation once per completed invalidation, then the cache."""
    cache = dict(load_cache())
    changed = False
    dists: list[str] = []
    items: list[InvalidationCount] = []
    for dist in (item["Id"] for item in distribution_summaries(cloudfront)):
        dists.append(dist)
        for item, created in _invalidations(cloudfront, dist, month):
            this_month = month_of(created) == month
            key = f"{dist}/{item['Id']}"
            completed = str(item.get("Status", "")).lower() == "completed"
            if completed and not this_month:
                continue  # another month's, done: neither spent now nor in progress
            counts = cache.get(key)
            if not completed or not _valid_counts(counts):
                paths = cloudfront.get_invalidation(DistributionId=dist, Id=item["Id"])[
                    "Invalidation"
                ]["InvalidationBatch"]["Paths"].get("Items", [])
                wild = sum(1 for p in paths if p.endswith("*"))
                counts = [len(paths), wild, month_of(created)]
                if completed:
                    cache[key] = counts
                    changed = True
            items.append(
                InvalidationCount(dist, item["Id"], created, counts[0], counts[1], completed)
            )
    if changed:
        save_cache(pruned(cache, month))
    return AccountInvalidations(month, tuple(dists), tuple(items))


CACHE_MONTHS = 12  # months of counts kept before the month read


def pruned(cache: dict, month: str) -> dict:
    """The count cache without what no plan or report of the last year reads: entries of
    months more than CACHE_MONTHS before ``month`` (a report of an older month fetches its
    counts again), and entries that are not [paths, wildcards, month]. Keeps it small on a
    busy account (it is read by every plan). Pure."""
    year, mon = (int(x) for x in month.split("-"))
    index = year * 12 + mon - 1 - CACHE_MONTHS
    oldest = f"{index // 12:04d}-{index % 12 + 1:02d}"
    return {
        k: v for k, v in cache.items()
        if _valid_counts(v) and len(v) >= 3 and isinstance(v[2], str) and v[2] >= oldest
    }


def _valid_counts(counts: Any) -> bool:
    """A cache entry we wrote: [paths, wildcards, month]; anything else is read again."""
    return (
        isinstance(counts, list)
        and len(counts) >= 2
        and all(type(x) is int and x >= 0 for x in counts[:2])
    )


def distribution_summaries(cloudfront: Any):
    """Every distribution of the account (ListDistributions' items: Id, DomainName,
    Aliases...), page by page."""
    marker = None
    while True:
        args = {"Marker": marker} if marker else {}
        page = cloudfront.list_distributions(**args)["DistributionList"]
        yield from page.get("Items", []) or []
        if not page.get("IsTruncated"):
            return
        marker = page.get("NextMarker")


# An invalidation in progress for longer than this before the month began is assumed
# completed, so listing may stop there (they complete within minutes).
_IN_PROGRESS_MARGIN = dt.timedelta(days=1)


def month_start(month: str) -> dt.datetime:
    year, mon = (int(x) for x in month.split("-"))
    return dt.datetime(year, mon, 1, tzinfo=dt.timezone.utc)


def _created(item: dict) -> dt.datetime:
    created = item["CreateTime"]
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return created.astimezone(dt.timezone.utc)


def _invalidations(cloudfront: Any, dist: str, month: str):
    """(item, creation time in UTC) for the invalidations of ``dist`` that may matter for
    ``month``. AWS lists newest first: once a whole page is older than the month (less a
    margin for ones still in progress), the rest is too, and listing stops. moto lists oldest
    first; a page in that order never stops the listing early, so every page is read."""
    stop_before = month_start(month) - _IN_PROGRESS_MARGIN
    marker = None
    while True:
        args: dict[str, Any] = {"DistributionId": dist, "MaxItems": "100"}
        if marker:
            args["Marker"] = marker
        page = cloudfront.list_invalidations(**args)["InvalidationList"]
        times = []
        for item in page.get("Items", []) or []:
            created = _created(item)
            times.append(created)
            yield item, created
        if not page.get("IsTruncated"):
            return
        if len(times) >= 2 and times[0] > times[-1] and times[-1] < stop_before:
            return  # newest first, and this page already reached before the month
        marker = page.get("NextMarker")


def recorded_usage(cache: dict, month: str) -> int:
    """Paths of ``month`` in the count cache: the tool's own record (invalidations it read
    from CloudFront before, and the ones it submitted)."""
    return sum(v[0] for v in cache.values() if _valid_counts(v) and len(v) >= 3 and v[2] == month)


def cache_codec(read: Callable[[], bytes | None], write: Callable[[bytes], None]):
    """load/save functions for the count cache over raw bytes."""

    def load() -> dict:
        data = read()
        if not data:
            return {}
        try:
            doc = json.loads(data)
            return doc if isinstance(doc, dict) else {}
        except ValueError:
            return {}  # a damaged cache is only a cache: rebuilt from CloudFront

    def save(cache: dict) -> None:
        write(json.dumps(cache, sort_keys=True).encode())

    return load, save


__all__ = [
    "BURST",
    "AccountInvalidations",
    "Budget",
    "InvalidationCount",
    "Usage",
    "days_left_in_month",
    "month_of",
    "month_start",
    "pace_allowance",
    "read_invalidations",
    "read_usage",
    "recorded_usage",
    "usage_from",
]
