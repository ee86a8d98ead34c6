"""The invalidation cost model. Pure.

Cost(P) = price * max(0, submitted - F) + miss_cost * collateral(P)

where ``submitted`` is the number of paths sent (the plan's paths times the distributions
they go to: the free allowance is per account), F the free paths left this month, and
collateral the cached URLs a wildcard invalidates needlessly (each a cache miss).
Pricing page: first 1,000 paths a month free per account, then $0.005 per path; a wildcard
counts as one path (Developer Guide, "Paying for invalidation").
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
        return self.price / 1000 if self.miss_cost is None else self.miss_cost

    def paid_paths(self, n_paths: int) -> int:
        return max(0, n_paths * self.distributions - max(0, self.free_paths))

    def cost(self, n_paths: int, collateral: int) -> float:
        return self.price * self.paid_paths(n_paths) + self.miss * collateral * self.distributions
