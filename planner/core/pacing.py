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
    # paths submitted on each day of the month (UTC; day 1 first), when the source tells
    daily: tuple[int, ...] = ()

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
GRID_STEPS = 12  # shadow prices tried: 0, and the price halved down to price / 2**12

# A point of a frontier: (shadow price tried, paths submitted, needless misses). Records of
# the first version with a frontier kept (price, paths) only.
Point = tuple


def price_grid(price: float) -> tuple[float, ...]:
    """The shadow prices tried, ascending: 0, then price / 4096 ... price / 2, price. At the
    default miss cost (price / 1000), price / 1024 asks a free path to save about one needless
    miss; price asks as much as a paid path."""
    return (0.0, *(price / 2**i for i in range(GRID_STEPS, -1, -1)))


@dataclass(frozen=True)
class PastDeploy:
    """One of the target's earlier deploys, as the shadow price learns from it: when, the
    paths it submitted, and its frontier: the plans its planning found at each shadow price
    it tried (ascending prices), as (price, paths, needless misses)."""

    when: dt.datetime
    submitted: int
    frontier: tuple[Point, ...]

    def options(self) -> tuple[tuple[int, int], ...]:
        """Its plans as (paths, needless misses); none when its record has no misses."""
        if not self.frontier or any(len(p) < 3 for p in self.frontier):
            return ()
        return tuple((p[1], p[2]) for p in self.frontier)


def merged_frontier(frontiers: list[tuple[Point, ...]]) -> tuple[Point, ...]:
    """One deploy's frontier from its groups' (one per way the distributions serve the
    target): at each price any of them tried, the sums of their paths and misses there."""
    prices = sorted({p[0] for f in frontiers for p in f})
    parts = [f for f in frontiers if f]
    out = []
    for lam in prices:
        at = [point_at(f, lam) for f in parts]
        out.append((lam, sum(p[1] for p in at), sum(p[2] for p in at)))
    return tuple(out)


def point_at(frontier: tuple[Point, ...], price: float) -> tuple[float, int, int]:
    """The plan of ``frontier`` at ``price``: that of the dearest price tried not above it
    (the cheapest tried when none is), as (price, paths, misses; 0 when not recorded)."""
    out = frontier[0]
    for point in frontier:
        if point[0] > price + 1e-15:
            break
        out = point
    return (out[0], out[1], out[2] if len(out) > 2 else 0)


def lower_hull(options) -> list[tuple[int, int]]:
    """The (paths, misses) points that some price per path makes cheapest (the lower convex
    hull of misses against paths), most paths first."""
    pareto: list[tuple[int, int]] = []
    for p, m in sorted(set(options)):
        if not pareto or m < pareto[-1][1]:  # more paths only for fewer misses
            pareto.append((p, m))
    hull: list[tuple[int, int]] = []
    for p, m in pareto:
        while len(hull) >= 2:
            (p1, m1), (p2, m2) = hull[-2], hull[-1]
            if (m2 - m1) * (p - p1) < (m - m1) * (p2 - p1):
                break  # hull[-1] lies below the line from hull[-2] to (p, m)
            hull.pop()
        hull.append((p, m))
    return hull[::-1]


@dataclass(frozen=True)
class Future:
    """The target's deploys to come this month as a fluid: ``weight`` deploys like each of
    the samples (the plans of its earlier deploys). ``value(room)`` is the least they cost
    (needless misses, and paths beyond ``room`` at the price of a path), by the dual of the
    month's knapsack: the most, over a price mu of a free path in [0, price], of
    ``weight x sum over samples of min over plans (miss x misses + mu x paths) - mu x room``.
    That is the cost where their paths at mu come down to ``room``: the lowest such mu."""

    # (mu from, sum of miss costs, sum of paths) over the samples: the sums of each sample's
    # cheapest plan while mu is in [mu from, next mu from)
    segments: tuple[tuple[float, float, float], ...]
    weight: float
    price: float

    @classmethod
    def of(cls, samples, weight: float, price: float, miss: float) -> "Future":
        a = b = 0.0
        events: list[tuple[float, float, float]] = []
        for options in samples:
            hull = lower_hull(options)
            if not hull:
                continue
            a += miss * hull[0][1]
            b += hull[0][0]
            for (p1, m1), (p2, m2) in zip(hull, hull[1:]):
                events.append((miss * (m2 - m1) / (p1 - p2), miss * (m2 - m1), p2 - p1))
        events.sort()
        segments = [(0.0, a, b)]
        for mu, da, db in events:
            a, b = a + da, b + db
            if mu <= segments[-1][0]:
                segments[-1] = (segments[-1][0], a, b)
            else:
                segments.append((mu, a, b))
        return cls(tuple(segments), weight, price)

    def paths(self, mu: float) -> float:
        """The paths the deploys to come take at a price ``mu`` of a free path."""
        seg = self.segments[0]
        for s in self.segments:
            if s[0] > mu:
                break
            seg = s
        return self.weight * seg[2]

    def value(self, room: float) -> tuple[float, float]:
        """(the least cost of the deploys to come with ``room`` free paths, the price of a
        free path at which they take no more than ``room``: ``price`` when they pay)."""
        w = self.weight
        last = self.segments[0]
        for seg in self.segments:
            mu, a, b = seg
            if mu > self.price:
                break
            if w * b <= room:
                return w * (a + mu * b) - mu * room, mu
            last = seg
        _, a, b = last  # they pay for paths: the segment the price falls in
        mu = self.price
        return w * (a + mu * b) - mu * room, mu


@dataclass(frozen=True)
class ShadowPrice:
    value: float  # dollars per free path used: the price this deploy's plan is made at
    why: str  # one line: where it came from
    worth: float = 0.0  # what a free path left is worth to the deploys to come (dollars)


# A target's first deploys: the rate of deploys is read as if a day of PRIOR_DEPLOYS_PER_DAY
# had been seen besides (a day-one rate of 8 a day from 4 deploys in a morning misleads).
PRIOR_DAYS = 1.0
# A free path costs at least FLOOR x the price of a path on top (a quarter of a needless miss
# at the default miss cost): the deploys seen so far do not show every kind the month holds.
# (The month simulator's docs site meets its tag renames late in a first month: without the
# floor it spent 131 paths to save 18 misses on the 12th and starved them later, 4.1x the
# optimum's bill; 1.01x with it.)
FLOOR = 1 / 4096
OTHERS_DAYS = 7  # the rest of the account's pace: its paths of the last week, when known


def shadow_price(
    free_left: int,
    now: dt.datetime,
    history: tuple[PastDeploy, ...],
    this: tuple[Point, ...],
    other_used: int,
    price: float,
    miss: float,
    other_daily: tuple[int, ...] = (),
) -> ShadowPrice:
    """The plan this deploy takes, one of ``this`` (its plans at each shadow price tried, as
    (price, paths, needless misses)), and so the shadow price of a free path it is made at:
    the plan whose needless misses, plus FLOOR x price per path, plus the least cost of
    everything to come this month with the free paths it leaves, is the lowest; of plans
    that cost the same, the one with the fewest paths.

    Everything to come: the target's deploys (its rate of deploys over the last HISTORY_DAYS
    days, times the days left after today, each like one of its recent deploys: their plans,
    from their frontiers), as a fluid priced by the dual of the month's knapsack
    (:class:`Future`); and the rest of the account (``other_used``, its paths this month not
    submitted by this target; ``other_daily``, the same per day of the month when known) at
    its pace for the days left, today included. A target with no history is assumed to
    deploy once a day, each deploy like this one (and like this one too when no recent
    record kept its misses). Whole days only, so ``plan`` and ``deploy`` agree within a day."""
    today = now.date()
    # Whole days, and half of today on each side: the rest of today is still to come (later
    # deploys), and plan and deploy made the same day agree.
    days_left = days_left_in_month(now) - 0.5
    recent = [h for h in history if 0 <= (today - h.when.date()).days < HISTORY_DAYS]
    mine = tuple((p[1], p[2]) for p in this)
    if recent:
        span = min(HISTORY_DAYS, (today - min(h.when.date() for h in recent)).days + 1)
        # the deploys seen, this one included, over the days seen (today half), and the prior
        rate = (len(recent) + 1 + PRIOR_DAYS * PRIOR_DEPLOYS_PER_DAY) / (span - 0.5 + PRIOR_DAYS)
        samples = [o for o in (h.options() for h in recent) if o] or [mine]
        basis = f"{plural(len(recent), 'deploy')} of this target in {plural(span, 'day')}"
    else:
        rate, samples = PRIOR_DEPLOYS_PER_DAY, [mine]
        basis = "no history: a deploy a day like this one"
    future = Future.of(samples, rate * days_left / len(samples), price, miss)
    other = others_pace(other_used, other_daily, now, free_left) * days_left_in_month(now)
    best = None
    for lam, paths, misses in sorted(this, key=lambda p: (p[1], p[0])):
        cost, worth = future.value(free_left - other - paths)
        cost += miss * misses + FLOOR * price * paths
        # more paths only for a lower cost
        if best is None or cost < best[0] - 1e-9 * max(abs(best[0]), miss):
            best = (cost, lam, paths, worth)
    _, lam, paths, worth = best
    expected = round(paths + future.paths(worth) + other)
    why = (f"{basis}, {rate:.1f} a day; {plural(expected, 'path')} "
           f"expected by the month's end at this price ({round(other):,} by the rest of the "
           f"account) for {free_left:,} free")
    return ShadowPrice(lam, why, worth)


def others_pace(other_used: int, other_daily: tuple[int, ...], now: dt.datetime,
                free_left: int | None = None) -> float:
    """The rest of the account's paths a day: over the last OTHERS_DAYS days (today half)
    when its paths per day of the month are known, so that a weekly cycle counts whole and a
    burst early in the month is soon out of the window; else over the month so far (today
    half).

    A burst is not a pace: when the month's largest day, repeated every day to the month's
    end, would take more than ``free_left`` (the month's free paths left), it counts as a
    one-off until another day like it comes: as large as the month's next largest day. A day
    that recurs (a weekly run) is its own next largest, and counts whole."""
    if not other_daily:
        return other_used / (now.day - 0.5)
    days = [other_daily[i] if i < len(other_daily) else 0 for i in range(now.day)]
    largest, *rest = sorted(days, reverse=True)
    if free_left is not None and largest * days_left_in_month(now) > free_left:
        cap = rest[0] if rest else 0
        days = [min(n, cap) for n in days]
    window = days[max(0, now.day - OTHERS_DAYS):]
    return sum(window) / (len(window) - 0.5)


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
    daily = [0] * 31
    for inv in account.items:
        if month_of(inv.created) == account.month:
            daily[inv.created.day - 1] += inv.paths
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
    last = max((i + 1 for i, n in enumerate(daily) if n), default=0)
    return Usage(account.month, total, account.source, wild_ip, files_ip, per, in_progress=busy,
                 daily=tuple(daily[:last]))


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
    "point_at",
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
