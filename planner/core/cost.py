"""The invalidation cost model. Pure.

Cost(P) = price * max(0, submitted - F) + miss_cost * collateral(P)

where ``submitted`` is the number of paths sent (the plan's paths times the distributions
they go to: the free allowance is per account), F the free paths left this month, and
collateral the cached URLs a wildcard invalidates needlessly (each a cache miss).
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

    @property
    def miss(self) -> float:
        return miss_dollars(self.price, self.miss_cost)

    def paid_paths(self, n_paths: int) -> int:
        return billable(0, n_paths * self.distributions, max(0, self.free_paths))

    def cost(self, n_paths: int, collateral: int) -> float:
        return self.price * self.paid_paths(n_paths) + self.miss * collateral * self.distributions


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
