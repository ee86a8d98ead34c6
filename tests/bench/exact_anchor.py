"""The exact optimum of a minimizer problem, as a mixed-integer programme solved by HiGHS: the
anchor of ``bench_minimizer.py`` (never a runtime dependency of the planner).

The formulation is built here from the cost model's definitions alone, none of the
minimizer's code (no trie, no Lagrangian):

- Candidates. Every prefix of a changed URL that does not end inside a ``%XX`` escape is a
  wildcard the planner may send; it covers the changed URLs of an interval of the sorted
  changed list. Of the prefixes covering the same interval the longest covers the fewest
  URLs (a longer prefix covers a subset), so one candidate per interval, the one covering the
  fewest URLs of the universe, loses nothing. A wildcard that covers no changed URL only adds
  a path and misses, so it is never needed.
- Variables: x_j in {0, 1} per candidate (c_j changed URLs, u_j unchanged ones covered),
  p >= 0 the paths beyond the free ones.
- Every changed URL is covered by at most one chosen wildcard (two covering the same URL
  would nest: the inner one is useless, so an optimum exists without it, and the outer one's
  coverage is what counts); the URLs no wildcard covers are exact paths.
  n = m - sum (c_j - 1) x_j paths; at most W wildcards; at most M exact paths
  (m - sum c_j x_j <= M).
- Cost = lam * k * n + (price - lam) * p + miss * k * sum u_j x_j with p >= k * n - F
  (that is lam * min(kn, F) + price * max(0, kn - F) + the misses: the cost model's formula,
  ``CostModel.cost``).

``brute_force`` enumerates the same formulation on tiny inputs (the test checks it against
the minimizer's exact answers and the prefix brute force of tests/test_minimizer.py), so the
formulation is checked without HiGHS; ``solve`` needs ``highspy`` (the bench installs it into
``~/.cache/planner-bench/highspy`` on first use).
"""

from __future__ import annotations

import bisect
import itertools
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

HIGHSPY_HOME = Path.home() / ".cache" / "planner-bench" / "highspy"
_TOP = "\x7f"  # after every character of an encoded URL


@dataclass(frozen=True)
class Candidate:
    prefix: str  # the wildcard is prefix + "*"
    lo: int  # the changed URLs [lo, hi) of the sorted list
    hi: int
    collateral: int  # unchanged URLs it covers


@dataclass(frozen=True)
class Formulation:
    changed: tuple[str, ...]  # sorted
    candidates: tuple[Candidate, ...]
    free: int
    price: float
    lam: float  # the shadow price of a free path, at most price
    miss: float
    k: int
    max_wildcards: int
    max_paths: int

    def cost(self, chosen) -> float | None:
        """The cost of the candidates ``chosen`` (indices), None when the choice is not a
        valid plan."""
        m = len(self.changed)
        cands = [self.candidates[j] for j in chosen]
        spans = sorted((c.lo, c.hi) for c in cands)
        if any(a[1] > b[0] for a, b in zip(spans, spans[1:])):
            return None  # two chosen wildcards cover the same changed URL
        covered = sum(c.hi - c.lo for c in cands)
        if len(cands) > self.max_wildcards or m - covered > self.max_paths:
            return None
        n = m - covered + len(cands)
        paid = max(0, self.k * n - self.free)
        lam = min(self.lam, self.price)
        return (lam * (self.k * n - paid) + self.price * paid
                + self.miss * self.k * sum(c.collateral for c in cands))

    def plan(self, chosen) -> tuple[str, ...]:
        cands = [self.candidates[j] for j in chosen]
        inside = set()
        for c in cands:
            inside.update(range(c.lo, c.hi))
        exact = [u for i, u in enumerate(self.changed) if i not in inside]
        return tuple(sorted(exact + [c.prefix + "*" for c in cands]))


def _valid_prefix(p: str) -> bool:
    """Not ending inside a %XX escape (``planner.core.urls.trim_escape``'s rule, restated)."""
    return not (p.endswith("%") or (len(p) >= 2 and p[-2] == "%"))


def formulate(problem) -> Formulation:
    """The MIP data of a ``planner.core.minimizer.Problem``."""
    changed = sorted(problem.changed)
    universe = sorted(problem.universe | problem.changed)
    best: dict[tuple[int, int], tuple[int, str]] = {}  # interval -> (covered, prefix)
    for url in changed:
        for n in range(1, len(url) + 1):
            p = url[:n]
            if not _valid_prefix(p):
                continue
            lo = bisect.bisect_left(changed, p)
            hi = bisect.bisect_left(changed, p + _TOP, lo)
            ulo = bisect.bisect_left(universe, p)
            covered = bisect.bisect_left(universe, p + _TOP, ulo) - ulo
            key = (lo, hi)
            if key not in best or covered < best[key][0]:
                best[key] = (covered, p)
    # A wildcard of one changed URL saves no path: worth a wildcard only when the limit on
    # exact paths binds.
    single = len(changed) > max(0, problem.max_paths)
    cands = tuple(Candidate(p, lo, hi, covered - (hi - lo))
                  for (lo, hi), (covered, p) in sorted(best.items()) if single or hi - lo >= 2)
    model = problem.model
    return Formulation(
        changed=tuple(changed), candidates=cands, free=max(0, model.free_paths),
        price=model.price, lam=min(model.free_price, model.price), miss=model.miss,
        k=max(1, model.distributions), max_wildcards=max(0, problem.max_wildcards),
        max_paths=max(0, problem.max_paths))


def brute_force(f: Formulation) -> tuple[float, tuple[int, ...]] | None:
    """The least cost over every choice of at most W candidates (tiny inputs only)."""
    best = None
    for r in range(min(f.max_wildcards, len(f.candidates)) + 1):
        for chosen in itertools.combinations(range(len(f.candidates)), r):
            cost = f.cost(chosen)
            if cost is not None and (best is None or cost < best[0] - 1e-15):
                best = (cost, chosen)
    return best


@dataclass(frozen=True)
class Optimum:
    cost_usd: float  # the cost of the plan found (recomputed from the chosen wildcards)
    bound_usd: float  # HiGHS's proven dual bound
    proven: bool  # the plan's cost is within the solver's proof of the bound
    paths: tuple[str, ...]
    seconds: float  # solve time (HiGHS run), the model build excluded
    build_seconds: float
    candidates: int


def highspy_module(install: bool = True):
    """``highspy``, imported from the environment or the bench cache (installed there with
    pip on first use when ``install``); None when neither works."""
    try:
        import highspy  # noqa: F401
        return highspy
    except ImportError:
        pass
    lib = HIGHSPY_HOME / "lib"
    if not (lib / "highspy").exists() and install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target", str(lib),
                        "highspy"], check=False)
    if (lib / "highspy").exists():
        sys.path.insert(0, str(lib))
        try:
            import highspy
            return highspy
        except ImportError:
            return None
    return None


def _quiet_highs(highspy):
    """A Highs instance, its banner (printed on stdout when it is made) kept off stdout."""
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
    finally:
        os.dup2(saved, 1)
        os.close(saved)
    return h


def solve(problem, highspy=None, time_limit: float = 600.0, threads: int = 1) -> Optimum:
    """The exact optimum of ``problem`` by HiGHS (relative and absolute gap 0)."""
    highspy = highspy or highspy_module()
    if highspy is None:
        raise RuntimeError("highspy is not available")
    import numpy as np

    t0 = time.perf_counter()
    f = formulate(problem)
    m, cands = len(f.changed), f.candidates
    nc = len(cands)
    # Scale to misses: integral objective when price / miss is (the default: 1000).
    unit = f.miss * f.k if f.miss > 0 else f.price
    h = _quiet_highs(highspy)
    h.setOptionValue("mip_rel_gap", 0.0)
    h.setOptionValue("mip_abs_gap", 1e-7)
    h.setOptionValue("threads", threads)
    h.setOptionValue("time_limit", time_limit)
    inf = highspy.kHighsInf
    # Columns: x_0..x_{nc-1}, then p. Cost of x_j: lam*k*(-(c_j-1)) + miss*k*u_j (n's constant
    # lam*k*m added back after).
    lam, k = f.lam, f.k
    col_cost = np.array([(-lam * k * (c.hi - c.lo - 1) + f.miss * k * c.collateral) / unit
                         for c in cands] + [(f.price - lam) / unit])
    lower = np.zeros(nc + 1)
    upper = np.array([1.0] * nc + [inf])
    h.addVars(nc + 1, lower, upper)
    h.changeColsCost(nc + 1, np.arange(nc + 1, dtype=np.int32), col_cost)
    h.changeColsIntegrality(nc, np.arange(nc, dtype=np.int32),
                            np.array([highspy.HighsVarType.kInteger] * nc))
    # Rows. Each changed URL covered at most once: the candidates whose interval holds it.
    starts, index, value, row_lo, row_hi = [], [], [], [], []

    def row(cols, vals, lo, hi):
        starts.append(len(index))
        index.extend(cols)
        value.extend(vals)
        row_lo.append(lo)
        row_hi.append(hi)

    over: list[list[int]] = [[] for _ in range(m)]
    for j, c in enumerate(cands):
        for i in range(c.lo, c.hi):
            over[i].append(j)
    for i in range(m):
        if len(over[i]) >= 2:
            row(over[i], [1.0] * len(over[i]), -inf, 1.0)
    row(list(range(nc)), [1.0] * nc, -inf, float(f.max_wildcards))
    # m - sum c_j x_j <= M  <=>  sum c_j x_j >= m - M
    row(list(range(nc)), [float(c.hi - c.lo) for c in cands], float(m - f.max_paths), inf)
    # p >= k*n - F = k*m - k*sum (c_j-1) x_j - F  <=>  p + k*sum (c_j-1) x_j >= k*m - F
    row(list(range(nc)) + [nc], [float(k * (c.hi - c.lo - 1)) for c in cands] + [1.0],
        float(k * m - f.free), inf)
    h.addRows(len(row_lo), np.array(row_lo), np.array(row_hi), len(index),
              np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32),
              np.array(value))
    built = time.perf_counter() - t0
    t1 = time.perf_counter()
    h.run()
    seconds = time.perf_counter() - t1
    sol = h.getSolution()
    chosen = [j for j in range(nc) if sol.col_value[j] > 0.5]
    cost = f.cost(chosen)
    if cost is None:
        raise RuntimeError(f"HiGHS returned an invalid plan ({h.modelStatusToString(h.getModelStatus())})")
    info = h.getInfo()
    const = lam * k * m
    # No candidate: an LP, whose optimum is its own bound.
    dual = info.mip_dual_bound if nc else info.objective_function_value
    bound = dual * unit + const
    status = h.modelStatusToString(h.getModelStatus())
    proven = status == "Optimal" and cost <= bound + max(1e-9, 1e-9 * abs(cost)) + 0.5 * unit
    return Optimum(cost_usd=cost, bound_usd=min(bound, cost), proven=proven,
                   paths=f.plan(chosen), seconds=seconds, build_seconds=built, candidates=nc)


if __name__ == "__main__":  # a quick self-check: python tests/bench/exact_anchor.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    from planner.core.minimizer import Problem, minimize

    universe = frozenset(f"/s{i % 5}/p{i}/" for i in range(300))
    changed = frozenset(u for u in universe if hash(u) % 3 == 0)
    pr = Problem(universe, changed)
    print(solve(pr).cost_usd, minimize(pr).cost_usd)
