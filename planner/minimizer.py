"""Turn changed URLs into CloudFront invalidation paths. Pure.

The interface is ``minimize(Problem) -> Solution``. This first implementation submits the
exact paths, and ``/*`` when there are more than CloudFront accepts in progress at once; the
cost-aware search replaces it behind the same interface.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .cost import MAX_PATHS_IN_PROGRESS, MAX_WILDCARDS_IN_PROGRESS, CostModel
from .errors import InvalidationError


@dataclass(frozen=True)
class Problem:
    universe: frozenset[str]  # every encoded URL that may be cached
    changed: frozenset[str]  # encoded URLs that must be invalidated
    model: CostModel = field(default_factory=CostModel)
    max_wildcards: int = MAX_WILDCARDS_IN_PROGRESS
    max_paths: int = MAX_PATHS_IN_PROGRESS


@dataclass(frozen=True)
class Solution:
    paths: tuple[str, ...]
    changed_urls: int
    collateral_urls: int
    paid_paths: int
    cost_usd: float

    @property
    def wildcards(self) -> int:
        return sum(1 for p in self.paths if p.endswith("*"))


def covers(path: str, url: str) -> bool:
    """Whether invalidation ``path`` covers cached ``url`` (a trailing '*' is a prefix match)."""
    return url.startswith(path[:-1]) if path.endswith("*") else url == path


def evaluate(problem: Problem, paths: tuple[str, ...]) -> Solution:
    """Cost and coverage of a given list of paths."""
    universe = problem.universe | problem.changed
    wild = [p[:-1] for p in paths if p.endswith("*")]
    exact = {p for p in paths if not p.endswith("*")}
    covered = {u for u in universe if u in exact or any(u.startswith(w) for w in wild)}
    collateral = len(covered - problem.changed)
    cost = problem.model.cost(len(paths), collateral)
    return Solution(
        paths=paths,
        changed_urls=len(problem.changed),
        collateral_urls=collateral,
        paid_paths=problem.model.paid_paths(len(paths)),
        cost_usd=cost,
    )


def minimize(problem: Problem) -> Solution:
    """Exact paths, or ``/*`` when they exceed the paths CloudFront accepts at once."""
    if not problem.changed:
        return evaluate(problem, ())
    if len(problem.changed) <= problem.max_paths:
        return evaluate(problem, tuple(sorted(problem.changed)))
    if problem.max_wildcards < 1:
        raise InvalidationError(
            f"{len(problem.changed)} paths exceed the {problem.max_paths} CloudFront accepts "
            "at once, and no wildcard may be submitted now"
        )
    return evaluate(problem, ("/*",))
