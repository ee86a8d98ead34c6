"""The monthly free-path budget: the account's usage as a value, and how fast to spend the
rest. Pure: reading the usage from CloudFront is :mod:`planner.backends.cloudfront`'s, which
caches the path counts of completed invalidations (they never change) with the codec here.
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


def is_completed(status: str) -> bool:
    """Whether an invalidation's Status means done: AWS says ``Completed`` (else
    ``InProgress``); moto says ``COMPLETED``, so the comparison ignores case."""
    return status.lower() == "completed"


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
        if valid_counts(v) and len(v) >= 3 and isinstance(v[2], str) and v[2] >= oldest
    }


def valid_counts(counts: Any) -> bool:
    """A cache entry we wrote: [paths, wildcards, month]; anything else is read again."""
    return (
        isinstance(counts, list)
        and len(counts) >= 2
        and all(type(x) is int and x >= 0 for x in counts[:2])
    )


def month_start(month: str) -> dt.datetime:
    year, mon = (int(x) for x in month.split("-"))
    return dt.datetime(year, mon, 1, tzinfo=dt.timezone.utc)


def recorded_usage(cache: dict, month: str) -> int:
    """Paths of ``month`` in the count cache: the tool's own record (invalidations it read
    from CloudFront before, and the ones it submitted)."""
    return sum(v[0] for v in cache.values() if valid_counts(v) and len(v) >= 3 and v[2] == month)


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
    "recorded_usage",
    "usage_from",
]
