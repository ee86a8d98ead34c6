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

from planner.core.cost import MAX_PATHS_IN_PROGRESS, MAX_WILDCARDS_IN_PROGRESS
from planner.core.words import plural

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

    def room_on(self, distributions: tuple[str, ...]) -> tuple[int, int]:
        """(wildcard paths, other paths) CloudFront accepts now on every one of
        ``distributions``: 15 and 3,000, less those in progress on the busiest."""
        wild, files = self.in_progress_on(distributions)
        return max(0, MAX_WILDCARDS_IN_PROGRESS - wild), max(0, MAX_PATHS_IN_PROGRESS - files)

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
        """Free paths this deploy may spend before the rest is priced as paid (pace "price"
        prices each free path by its shadow price instead: every free path is allowed)."""
        if self.pace in ("none", "price"):
            return self.free_left
        return pace_allowance(self.free_left, self.days_left)


def pace_allowance(free_left: int, days_left: int, burst: float = BURST) -> int:
    """ceil(free_left / days_left * burst), at most free_left."""
    if free_left <= 0:
        return 0
    return min(free_left, math.ceil(free_left / max(1, days_left) * burst))


# --- the shadow price of a free path (--pace price) ---------------------------------------------

HISTORY_DAYS = 30  # the target's deploys that tell how it deploys
PRIOR_DEPLOYS_PER_DAY = 1.0  # a target with no history: a deploy a day, each like this one
MARGIN_SD = 1.0  # standard deviations of the future's paths kept in reserve
# Between two prices of the grid no deploy has a plan: a deploy takes the lower one when at
# least this share of the deploys to come could (measured on the month simulator: 0.5 took
# the lower price too often on release storms, never mixing left blog months 1.3x to 1.5x).
MIX_SHARE = 0.9
GRID_STEPS = 12  # shadow prices tried: 0, and the price halved down to price / 2**12


def price_grid(price: float) -> tuple[float, ...]:
    """The shadow prices tried, ascending: 0, then price / 4096 ... price / 2, price. At the
    default miss cost (price / 1000), price / 1024 asks a free path to save about one needless
    miss; price asks as much as a paid path."""
    return (0.0, *(price / 2**i for i in range(GRID_STEPS, -1, -1)))


@dataclass(frozen=True)
class PastDeploy:
    """One of the target's earlier deploys, as the shadow price learns from it: when, the
    paths it submitted, and its frontier: the paths it would have submitted at each shadow
    price its planning tried (ascending prices)."""

    when: dt.datetime
    submitted: int
    frontier: tuple[tuple[float, int], ...]

    def paths_at(self, price: float) -> int:
        """Paths at ``price``: those at the dearest price tried that is not above it (paths
        fall as the price rises, so between two prices tried this over-estimates)."""
        out = self.frontier[0][1] if self.frontier else self.submitted
        for lam, paths in self.frontier:
            if lam > price + 1e-15:
                break
            out = paths
        return out


def merged_frontier(frontiers: list[tuple[tuple[float, int], ...]]) -> tuple[tuple[float, int], ...]:
    """One deploy's frontier from its groups' (one per way the distributions serve the
    target): at each price any of them tried, the sum of their paths there."""
    prices = sorted({lam for f in frontiers for lam, _ in f})
    parts = [PastDeploy(dt.datetime.min, 0, f) for f in frontiers if f]
    return tuple((lam, sum(p.paths_at(lam) for p in parts)) for lam in prices)


@dataclass(frozen=True)
class ShadowPrice:
    value: float  # dollars per free path used
    why: str  # one line: where it came from


def shadow_price(
    free_left: int,
    now: dt.datetime,
    history: tuple[PastDeploy, ...],
    this_paths: Callable[[float], int],
    other_used: int,
    grid: tuple[float, ...],
) -> ShadowPrice:
    """The lowest shadow price of a free path at which the paths expected until the month's
    end fit in the ``free_left`` free paths; the dearest of ``grid`` when none does.

    Expected: this deploy's paths at that price (``this_paths``), the target's deploys to
    come (its rate of deploys over the last HISTORY_DAYS days, times the days left after
    today, times their mean paths at that price, read from their frontiers), and the rest of
    the account (``other_used``, its paths this month not submitted by this target, at the
    same pace for the days left). A target with no history is assumed to deploy once a day,
    each deploy like this one. Whole days only, so ``plan`` and ``deploy`` agree within a day.
    Paths fall as the price rises, so the grid is searched by bisection."""
    today = now.date()
    # Whole days, and half of today on each side: the rest of today is still to come (later
    # deploys, the other tools), and plan and deploy made the same day agree.
    days_left = days_left_in_month(now) - 0.5
    elapsed = now.day - 0.5  # days of the month so far
    recent = [h for h in history if 0 <= (today - h.when.date()).days < HISTORY_DAYS]
    if recent:
        span = min(HISTORY_DAYS, (today - min(h.when.date() for h in recent)).days + 1)
        rate = len(recent) / span

        def future(lam: float) -> float:
            """The paths expected of the deploys to come, and a margin of one standard
            deviation of their total (a path beyond the free ones costs a thousand misses;
            one spent early saves a few)."""
            each = [h.paths_at(lam) for h in recent]
            mean = sum(each) / len(each)
            spread = (sum((x - mean) ** 2 for x in each) / len(each)) ** 0.5
            return rate * days_left * mean + MARGIN_SD * spread * (rate * days_left) ** 0.5

        basis = f"{plural(len(recent), 'deploy')} of this target in {plural(span, 'day')}"
    else:
        rate = PRIOR_DEPLOYS_PER_DAY

        def future(lam: float) -> float:
            return rate * days_left * this_paths(lam)

        basis = "no history: a deploy a day like this one"
    other = other_used / elapsed * days_left

    def fits(lam: float) -> bool:
        return this_paths(lam) + future(lam) + other <= free_left

    lo, hi = 0, len(grid) - 1
    if fits(grid[lo]):
        hi = lo
    elif not fits(grid[hi]):
        lo = hi
    while hi - lo > 1:  # fits(grid[hi]) and not fits(grid[lo])
        mid = (lo + hi) // 2
        if fits(grid[mid]):
            hi = mid
        else:
            lo = mid
    lam = grid[hi]
    if lo < hi:
        # Plans are whole: between the two prices no deploy has a plan, and the free paths
        # left would take a mix (a share theta of the deploys at the lower price). Rounded:
        # this deploy takes the lower price while nearly all of them may (MIX_SHARE). Each
        # deploy decides again with what is left, so the mix tracks the free paths.
        low, high = (this_paths(g) + future(g) + other for g in (grid[lo], grid[hi]))
        if low > high and (free_left - high) / (low - high) >= MIX_SHARE:
            lam = grid[lo]
    need = this_paths(lam) + future(lam) + other
    expected = round(need)
    why = (f"{basis}, {rate:.1f} a day; {plural(expected, 'path')} "
           f"expected by the month's end at this price ({round(other):,} by the rest of the "
           f"account) for {free_left:,} free")
    return ShadowPrice(lam, why)


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
    "PastDeploy",
    "ShadowPrice",
    "price_grid",
    "shadow_price",
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
