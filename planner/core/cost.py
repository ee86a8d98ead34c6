"""The invalidation cost model. Pure.

Cost(P) = price * max(0, submitted - F) + miss_cost * collateral(P)

where ``submitted`` is the number of paths sent (the plan's paths times the distributions
they go to: the free allowance is per account), F the free paths this deploy may take (the
pace's allowance: see ``pacing``), and collateral the cached URLs a wildcard invalidates
needlessly (each a cache miss). That is the objective the minimizer minimises (``cost_usd``).

Two figures are reported apart, never mixed (``Figures``): the AWS charge (``charge_usd``:
the paths beyond the account's free paths really left this month, times the price: what the
bill will say) and the miss estimate (``miss_cost_usd``: the model's price of the needless
misses, an estimate). The objective is their sum, plus the price of the free paths the pace
holds back for later deploys (``paced_paths``: free, but beyond this deploy's allowance).
Pricing page: first 1,000 paths a month free per account, then $0.005 per path; a wildcard
counts as one path (Developer Guide, "Paying for invalidation").

This module is the one place the formula is worked out: the plan and the minimizer price
through :class:`CostModel`, the ledger and the report through :func:`billable` and
:func:`dollars` (the minimizer's search folds the same constants into its inner loop).
"""

from __future__ import annotations

from dataclasses import dataclass

FREE_PATHS_PER_MONTH = 1000
PRICE_PER_PATH = 0.005
MAX_WILDCARDS_IN_PROGRESS = 15
MAX_PATHS_IN_PROGRESS = 3000


@dataclass(frozen=True)
class CostModel:
    free_paths: int = FREE_PATHS_PER_MONTH  # free paths left this month
    price: float = PRICE_PER_PATH  # dollars per path beyond the free ones
    miss_cost: float | None = None  # dollars per needless cache miss; None: price / 1000
    distributions: int = 1  # the plan is submitted to this many distributions
    # Free paths really left in the account for this deploy (what AWS bills against);
    # None: ``free_paths`` (no pace holds any back).
    free_left: int | None = None
    # Dollars per free path used: the shadow price of a free path (one used now is one fewer
    # for the rest of the month; see ``pacing.shadow_price``). At most ``price``.
    free_price: float = 0.0

    @property
    def miss(self) -> float:
        return miss_dollars(self.price, self.miss_cost)

    def paid_paths(self, n_paths: int) -> int:
        return billable(0, n_paths * self.distributions, max(0, self.free_paths))

    def cost(self, n_paths: int, collateral: int) -> float:
        """The objective: free paths at their shadow price, paths beyond the allowance at the
        price, plus every needless miss."""
        paid = self.paid_paths(n_paths)
        free = n_paths * self.distributions - paid
        return (self.free_price * free + self.price * paid
                + self.miss * collateral * self.distributions)

    def figures(self, n_paths: int, collateral: int) -> "Figures":
        """What a plan of ``n_paths`` paths and ``collateral`` needless misses per
        distribution is billed, and what its misses are estimated to cost."""
        submitted = n_paths * self.distributions
        free_left = max(0, self.free_paths if self.free_left is None else self.free_left)
        charged = billable(0, submitted, free_left)
        return Figures(
            paid_paths=charged,
            charge_usd=dollars(charged, self.price),
            miss_cost_usd=round(self.miss * collateral * self.distributions, 9),
            free_paths_used=submitted - charged,
            paced_paths=self.paid_paths(n_paths) - charged,
            shadow_usd=round(self.free_price * (submitted - self.paid_paths(n_paths)), 9),
        )


@dataclass(frozen=True)
class Figures:
    """The two figures of a plan, apart: what AWS bills and what the misses are estimated to
    cost; and how its paths split between the free pool and the bill."""

    paid_paths: int = 0  # paths AWS bills, given the month's usage
    charge_usd: float = 0.0  # paid_paths x price: what the bill will say
    miss_cost_usd: float = 0.0  # needless misses x the model's price of one: an estimate
    free_paths_used: int = 0  # paths taken from the month's free pool
    paced_paths: int = 0  # of those, beyond this deploy's pace allowance (priced by the objective)
    shadow_usd: float = 0.0  # the free paths within the allowance at their shadow price


def miss_dollars(price: float, miss_cost: float | None = None) -> float:
    """Dollars per needless cache miss: ``miss_cost``, by default a thousandth of a path's
    price."""
    return price / 1000 if miss_cost is None else miss_cost


def billable(paths_before: int, paths: int, free_per_month: int) -> int:
    """Paths of ``paths`` beyond the account's free allowance, when ``paths_before`` were
    already submitted this month."""
    return max(0, paths_before + paths - free_per_month) - max(0, paths_before - free_per_month)


def dollars(paid_paths: int, price: float) -> float:
    """What ``paid_paths`` cost, to the micro-dollar (as the ledger and the report keep it)."""
    return round(paid_paths * price, 6)
