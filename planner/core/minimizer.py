"""Turn changed URLs into the cheapest list of CloudFront invalidation paths. Pure.

The model (docs/cost-model.md): a plan P is a list of paths; a path ending in ``*`` is
a wildcard covering every URL that starts with the text before the ``*``; any other path
covers the identical URL. A plan is valid when it covers every changed URL, has at most
``max_wildcards`` wildcards and at most ``max_paths`` other paths. Its cost is

    lam * min(k * |P|, F) + price * max(0, k * |P| - F) + miss * k * collateral(P)

(k distributions, F free paths left, lam <= price the shadow price of a free path (0 unless
the pace prices them), collateral = unchanged URLs the plan covers). We return
a valid plan of minimum cost; among equal costs, fewest paths, then least collateral.

How (and why it is exact):

1. Candidates. Only the set of *changed* URLs a wildcard covers matters for validity; among
   all wildcards covering the same set X, the longest prefix covers the fewest URLs. The sets
   X a prefix can cover are the nodes of the compressed trie of the sorted changed URLs (the
   "LCP intervals"), and the best prefix for a node is the longest common prefix of its URLs,
   shortened so it never ends inside a ``%XX`` escape. A wildcard covering fewer than two
   changed URLs is never better than an exact path. Two wildcards either nest (one is then
   useless) or cover disjoint sets. So an optimal plan is an antichain S of trie nodes
   (|S| <= W), plus exact paths for the changed URLs no node of S covers.

2. With g(S) = sum(c_v - 1) the paths S saves and u(S) = sum(u_v) its collateral, the cost is
   phi(g) + miss*k*u with phi convex in g. A tree dynamic programme over (wildcards used,
   Pareto frontier of (g, u)) is exact; an incumbent plan and a lower bound prune it.

3. The incumbent and the bound come from Lagrangian relaxation: for mu in [0, price*k],
   phi(g) >= mu * (g_free - g), so cost >= mu * g_free + min_S (miss*k*u - mu*g), and the
   inner minimum is a small tree knapsack over at most W nodes. When the exact programme
   would exceed its work budget (very large, adversarial inputs), the best plan found is
   returned with ``exact=False`` and the best Lagrangian bound as ``cost_lower_bound_usd``.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field

from planner.core.cost import (
    MAX_PATHS_IN_PROGRESS,
    MAX_WILDCARDS_IN_PROGRESS,
    CostModel,
)
from planner.core.urls import covers, trim_escape  # noqa: F401 - trim_escape used here; covers: callers know it here too
from planner.core.words import plural
from planner.errors import InvalidationError

_TOP = "\x7f"  # sorts after every character of an encoded URL path
# Frontier points the exact search may combine before it returns the best plan found (with its
# proven bound). A count, not a clock, so the same input gives the same plan on every machine
# (plan and deploy agree); about half a second here.
WORK_BUDGET = 250_000


@dataclass(frozen=True)
class Problem:
    universe: frozenset[str]  # every encoded URL that may be cached
    changed: frozenset[str]  # encoded URLs that must be invalidated
    model: CostModel = field(default_factory=CostModel)
    max_wildcards: int = MAX_WILDCARDS_IN_PROGRESS  # W: wildcard paths allowed now
    max_paths: int = MAX_PATHS_IN_PROGRESS  # other paths allowed now


@dataclass(frozen=True)
class Covered:
    """One path of a plan and what it covers."""

    path: str
    changed: int
    collateral: int


@dataclass(frozen=True)
class Solution:
    paths: tuple[str, ...]
    changed_urls: int
    collateral_urls: int
    paid_paths: int  # paths AWS bills, given the month's usage (``Figures``)
    cost_usd: float  # the objective minimised (the cost model's)
    cost_lower_bound_usd: float
    exact: bool = True
    wildcard_cover: tuple[Covered, ...] = ()
    charge_usd: float = 0.0  # what AWS bills: paid_paths x price
    miss_cost_usd: float = 0.0  # the needless misses, priced by the cost model: an estimate
    free_paths_used: int = 0  # paths taken from the month's free pool
    paced_paths: int = 0  # free paths beyond the pace allowance (the objective prices them)
    shadow_usd: float = 0.0  # the free paths used at their shadow price (--pace price)

    @classmethod
    def of(cls, model: CostModel, paths: tuple[str, ...], changed_urls: int, collateral: int,
           bound: float | None = None, exact: bool = True,
           cover: tuple[Covered, ...] = ()) -> "Solution":
        """The solution of ``paths`` under ``model``, with both figures; ``bound``: the proven
        lower bound when not ``exact`` (else the cost itself)."""
        cost = model.cost(len(paths), collateral)
        f = model.figures(len(paths), collateral)
        return cls(
            paths=paths, changed_urls=changed_urls, collateral_urls=collateral,
            paid_paths=f.paid_paths, cost_usd=cost,
            cost_lower_bound_usd=cost if exact or bound is None else min(cost, max(0.0, bound)),
            exact=exact, wildcard_cover=cover, charge_usd=f.charge_usd,
            miss_cost_usd=f.miss_cost_usd, free_paths_used=f.free_paths_used,
            paced_paths=f.paced_paths, shadow_usd=f.shadow_usd,
        )

    @property
    def wildcards(self) -> int:
        return sum(1 for p in self.paths if p.endswith("*"))


def _count_prefix(sorted_urls: list[str], prefix: str) -> int:
    lo = bisect.bisect_left(sorted_urls, prefix)
    return bisect.bisect_left(sorted_urls, prefix + _TOP, lo) - lo


def _lcp(a: str, b: str) -> int:
    """Length of the common prefix, by binary search on C-level slice comparisons."""
    lo, hi = 0, min(len(a), len(b))
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if a[:mid] == b[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


@dataclass
class _Node:
    prefix: str  # the wildcard text before '*', or "" when the node offers no wildcard
    changed: int  # c_v: changed URLs below
    collateral: int  # u_v: unchanged URLs the wildcard would cover
    children: list["_Node"]
    lo: int = 0  # range of the sorted changed URLs below
    hi: int = 0

    @property
    def saving(self) -> int:
        return self.changed - 1


def build_candidates(
    changed: list[str], universe: list[str], leaves: bool = False
) -> list[_Node]:
    """The LCP-interval forest of the sorted changed URLs, each node with its best wildcard.

    ``changed`` and ``universe`` are sorted; ``changed`` is a subset of ``universe``. With
    ``leaves``, single changed URLs become nodes too (wildcard = the URL itself + ``*``): worth
    it only when the limit on exact paths binds, so that a wildcard must stand for one URL.
    """
    m = len(changed)
    stack: list[list] = [[0, 0, []]]  # open intervals: [lcp, left bound, children]
    for i in range(1, m):
        cur = _lcp(changed[i - 1], changed[i])
        left = i - 1
        last: _Node | None = None
        while cur < stack[-1][0]:
            lcp_len, left, kids = stack.pop()
            node = _make_node(changed, universe, lcp_len, left, i - 1, kids)
            if cur <= stack[-1][0]:
                stack[-1][2].append(node)
            else:
                last = node
        if cur > stack[-1][0]:
            stack.append([cur, left, [last] if last is not None else []])
    while len(stack) > 1:
        lcp_len, left, kids = stack.pop()
        stack[-1][2].append(_make_node(changed, universe, lcp_len, left, m - 1, kids))
    # The bottom interval (lcp 0) is no candidate: a path must start with "/".
    roots = stack[0][2]
    if leaves:
        roots = _add_leaves(changed, universe, roots, 0, m - 1)
    return roots


def _add_leaves(changed, universe, kids: list[_Node], lo: int, hi: int) -> list[_Node]:
    """``kids`` plus a leaf node for each position in [lo, hi] that no kid covers, sorted."""
    taken = set()
    for kid in kids:
        taken.update(range(kid.lo, kid.hi + 1))
        kid.children = _add_leaves(changed, universe, kid.children, kid.lo, kid.hi)
    out = list(kids)
    for i in range(lo, hi + 1):
        if i not in taken:
            url = changed[i]
            prefix = trim_escape(url)
            if prefix == url and _count_prefix(changed, url) == 1:
                out.append(_Node(url, 1, _count_prefix(universe, url) - 1, [], i, i))
    out.sort(key=lambda n: n.lo)
    return out


def _make_node(
    changed: list[str], universe: list[str], lcp_len: int, left: int, right: int, kids: list
) -> _Node:
    count = right - left + 1
    prefix = trim_escape(changed[left][:lcp_len])
    if not prefix or _count_prefix(changed, prefix) != count:
        # Trimming made it cover more changed URLs: an ancestor offers that set for less.
        return _Node("", count, 0, kids, left, right)
    covered = _count_prefix(universe, prefix)
    return _Node(prefix, count, covered - count, kids, left, right)


def _postorder(roots: list[_Node]) -> list[_Node]:
    out: list[_Node] = []
    stack = [(r, False) for r in reversed(roots)]
    while stack:
        node, done = stack.pop()
        if done:
            out.append(node)
        else:
            stack.append((node, True))
            stack.extend((c, False) for c in reversed(node.children))
    return out


def _min_plus(acc: list[float], arr: list[float], W: int) -> list[float]:
    """Best value with at most t wildcards split between two parts (t <= W): the min-plus
    convolution of two 'at most t' arrays, kept non-increasing."""
    out = [0.0] * min(W + 1, len(acc) + len(arr) - 1)
    for i, a in enumerate(acc):
        for j, b in enumerate(arr):
            if i + j > W:
                break
            if a + b < out[i + j]:
                out[i + j] = a + b
    for t in range(1, len(out)):
        if out[t - 1] < out[t]:
            out[t] = out[t - 1]
    return out


class _Budget(Exception):
    pass


class _Search:
    def __init__(self, problem: Problem, like: "_Search | None" = None) -> None:
        """The search of ``problem``; ``like``: a search of the same URLs and limits under
        another cost model, whose candidate tree is shared (nothing mutates it)."""
        self.problem = problem
        same = like is not None and (like.problem.universe, like.problem.changed,
                                     like.W, like.M) == (problem.universe, problem.changed,
                                                         max(0, problem.max_wildcards),
                                                         max(0, problem.max_paths))
        self.changed = like.changed if same else sorted(problem.changed)  # type: ignore[union-attr]
        self.universe = like.universe if same else sorted(problem.universe | problem.changed)  # type: ignore[union-attr]
        self.m = len(self.changed)
        model = problem.model
        self.k = max(1, model.distributions)
        self.free = max(0, model.free_paths)
        self.price = model.price
        self.free_price = min(model.free_price, model.price)  # convexity needs it no dearer
        self.miss_k = model.miss * self.k  # dollars per needless miss, all distributions
        self.W = max(0, problem.max_wildcards)
        self.M = max(0, problem.max_paths)
        if same:
            self.roots, self.order = like.roots, like.order  # type: ignore[union-attr]
            return
        leaves = self.m > self.M
        self.roots = build_candidates(self.changed, self.universe, leaves) if self.W else []
        self.order = _postorder(self.roots)

    # --- cost ------------------------------------------------------------------------------

    def cost(self, n: int, u: int) -> float:
        paid = max(0, self.k * n - self.free)
        return self.free_price * (self.k * n - paid) + self.price * paid + self.miss_k * u

    def key(self, w: int, g: int, u: int) -> tuple[float, int, int]:
        n = self.m - g
        return (round(self.cost(n, u), 9), n, u)

    def feasible(self, w: int, g: int) -> bool:
        return w <= self.W and (self.m - g) - w <= self.M

    # --- Lagrangian relaxation: min over antichains |S| <= W of sum(miss_k*u - mu*(c-1)) --

    def lagrange(self, mu: float) -> tuple[float, list[_Node]]:
        W = self.W
        best: dict[int, list[float]] = {}
        pres: dict[int, list[list[float]]] = {}
        for node in self.order:
            acc = [0.0]
            pre = [acc]
            for child in node.children:
                arr = best.get(id(child))
                if arr is None or len(arr) == 1:
                    pre.append(acc)
                    continue
                acc = _min_plus(acc, arr, W)
                pre.append(acc)
            val = self.miss_k * node.collateral - mu * node.saving if node.prefix else 0.0
            arr = acc
            if val < 0 and (len(acc) < 2 or val < acc[1]):
                arr = list(acc) if len(acc) > 1 else [0.0, val]
                for t in range(1, len(arr)):
                    arr[t] = min(arr[t], val)
            if len(arr) > 1 and arr[-1] < 0:
                best[id(node)] = arr
                pres[id(node)] = pre
        # Combine the roots like children of a virtual node.
        acc, pre, used = [0.0], [[0.0]], []
        for root in self.roots:
            arr = best.get(id(root))
            if arr is None:
                continue
            acc = _min_plus(acc, arr, W)
            pre.append(acc)
            used.append(root)
        chosen: list[_Node] = []
        self._pick(used, pre, best, pres, len(acc) - 1, acc[-1], mu, chosen)
        return acc[-1], chosen

    def _pick(self, kids, pre, best, pres, w, target, mu, chosen) -> None:
        """Walk back through the sequential merges to find the chosen nodes."""
        stack = [(kids, pre, w, target)]
        while stack:
            kids, pre, w, target = stack.pop()
            for idx in range(len(kids) - 1, -1, -1):
                child = kids[idx]
                arr = best.get(id(child))
                before = pre[idx]
                if arr is None:
                    continue
                found = None
                for j in range(min(w, len(arr) - 1), -1, -1):
                    i = w - j
                    a = before[min(i, len(before) - 1)]
                    if abs(a + arr[j] - target) <= 1e-9 * (1 + abs(target)):
                        found = (i, j, a)
                        break
                if found is None:  # numerical safety: take nothing from this child
                    continue
                i, j, a = found
                if j:
                    self._descend(child, j, arr[j], best, pres, mu, chosen, stack)
                w, target = i, a

    def _descend(self, node, w, target, best, pres, mu, chosen, stack) -> None:
        val = self.miss_k * node.collateral - mu * node.saving if node.prefix else None
        if val is not None and abs(val - target) <= 1e-9 * (1 + abs(target)):
            chosen.append(node)
            return
        kids = [c for c in node.children]
        pre = pres[id(node)]
        stack.append((kids, pre, w, target))

    # --- exact search over Pareto frontiers -------------------------------------------------

    def exact(self, incumbent: float, budget: int, slope: float = 0.0, alpha: float = -1e300):
        """Exact search: per node and wildcard count, the Pareto frontier of (savings g,
        collateral u). A partial point is dropped when even the best completion cannot beat
        the incumbent: cost >= alpha + sum over S of (miss_k*u - slope*g) (the Lagrangian
        bound), with the part outside the node bounded by the best antichain there, ignoring
        the wildcard limit. Returns the chosen nodes, or None if no plan is valid."""
        inside = self._best_inside(slope)
        outside = self._best_outside(inside)
        fronts = _Frontiers(self, incumbent + 1e-9, budget, slope, alpha)
        frontier: dict[int, list[list[tuple]]] = {}
        for node in self.order:
            acc = fronts.merge_siblings(node.children, frontier, inside, outside[id(node)])
            if node.prefix and self.W >= 1:
                acc = fronts.with_wildcard(acc, node, outside[id(node)])
            if len(acc) > 1:
                frontier[id(node)] = acc
        return self._cheapest(fronts.merge_siblings(self.roots, frontier, inside, 0.0))

    def _best_inside(self, slope: float) -> dict[int, float]:
        """Per node: the best reduced value of an antichain inside its subtree (no wildcard
        limit), at most 0 (the empty one)."""
        miss_k = self.miss_k
        f: dict[int, float] = {}
        for node in self.order:
            inside = sum(f[id(c)] for c in node.children)
            if node.prefix:
                inside = min(inside, miss_k * node.collateral - slope * node.saving)
            f[id(node)] = min(0.0, inside)
        return f

    def _best_outside(self, inside: dict[int, float]) -> dict[int, float]:
        """Per node: the best reduced value of an antichain outside its subtree, its
        ancestors excluded."""
        out: dict[int, float] = {}
        total_roots = sum(inside[id(r)] for r in self.roots)
        stack = [(r, total_roots - inside[id(r)]) for r in self.roots]
        while stack:
            node, outside = stack.pop()
            out[id(node)] = outside
            kids_total = sum(inside[id(c)] for c in node.children)
            stack.extend((c, outside + kids_total - inside[id(c)]) for c in node.children)
        return out

    def _cheapest(self, acc: list[list[tuple]]) -> list[_Node] | None:
        """The valid plan of least cost key among the points of ``acc`` (per wildcard count),
        or None."""
        best = None
        for w, level in enumerate(acc):
            for g, u, ref in level:
                if not self.feasible(w, g):
                    continue
                key = self.key(w, g, u)
                if best is None or key < best[0]:
                    best = (key, ref)
        if best is None:
            return None
        return _collect(best[1])


class _Frontiers:
    """The exact search's frontiers: per wildcard count, a list of points (g, u, ref), ref
    naming the chosen nodes (a node, a pair of refs, or None). Merging two counts the work
    done, and raises _Budget past ``budget``; a point that cannot beat ``limit`` is dropped
    (``keep``)."""

    def __init__(self, search: _Search, limit: float, budget: int, slope: float,
                 alpha: float) -> None:
        self.W, self.m = search.W, search.m
        self.work, self.budget = 0, budget
        # Across wildcard counts only when the exact-path limit cannot bind (see pareto()).
        self.cross = search.m <= search.M
        miss_k, m, cost = search.miss_k, search.m, search.cost

        # A closure, not a method: it runs for every point combined (the inner loop).
        def keep(g: int, u: int, rest: float, others: int) -> bool:
            """Whether a partial point of savings g and collateral u may still beat the
            limit: ``rest`` bounds the reduced value outside, ``others`` changed URLs are
            left to cover by exact paths at most."""
            if alpha + miss_k * u - slope * g + rest > limit:
                return False
            return cost(max(0, m - g - others), u) <= limit

        self.keep = keep

    def merge_siblings(self, kids: list[_Node], frontier: dict[int, list[list[tuple]]],
                       inside: dict[int, float], outside: float) -> list[list[tuple]]:
        """The frontier of ``kids`` (taken out of ``frontier``) combined, under a parent
        whose outside is bounded by ``outside``."""
        acc: list[list[tuple]] = [[(0, 0, None)]]
        rest = sum(inside[id(c)] for c in kids)
        merged = 0
        for child in kids:
            rest -= inside[id(child)]
            fc = frontier.pop(id(child), None)
            if fc is None or len(fc) == 1:
                continue
            merged += child.changed
            acc = self.merge(acc, fc, outside + rest, self.m - merged)
        return acc

    def with_wildcard(self, acc: list[list[tuple]], node: _Node,
                      outside: float) -> list[list[tuple]]:
        """``acc`` (the node's children's) with the node's own wildcard as a one-wildcard
        point."""
        levels = [list(x) for x in acc] + [[] for _ in range(self.W + 1 - len(acc))]
        if self.keep(node.saving, node.collateral, outside, self.m - node.changed):
            levels[1].append((node.saving, node.collateral, node))
        return self.pareto(levels)

    def merge(self, A, B, rest, others):
        """Every point of ``A`` combined with every point of ``B`` (at most W wildcards in
        all) that ``keep`` keeps, then the dominated ones dropped."""
        W, keep, budget, work = self.W, self.keep, self.budget, self.work
        res: list[list[tuple]] = [[] for _ in range(min(W + 1, len(A) + len(B) - 1))]
        for wa, la in enumerate(A):
            if not la:
                continue
            for wb, lb in enumerate(B):
                if wa + wb > W:
                    break
                if not lb:
                    continue
                work += len(la) * len(lb)
                if work > budget:
                    raise _Budget
                bucket = res[wa + wb]
                for ga, ua, ra in la:
                    for gb, ub, rb in lb:
                        g, u = ga + gb, ua + ub
                        if keep(g, u, rest, others):
                            bucket.append((g, u, (ra, rb)))
        self.work = work
        return self.pareto(res)

    def pareto(self, levels):
        """Drop dominated points: same or fewer wildcards, at least the savings, at most
        the collateral. Across wildcard counts only when the exact-path limit cannot
        bind (fewer wildcards may need more exact paths)."""
        cross = self.cross
        kept_levels: list[list[tuple]] = []
        stair_u: list[int] = []
        stair_g: list[int] = []
        for level in levels:
            level.sort(key=lambda p: (p[1], -p[0]))
            kept = []
            for point in level:
                g, u = point[0], point[1]
                if kept and kept[-1][0] >= g:
                    continue
                if stair_u:
                    pos = bisect.bisect_right(stair_u, u) - 1
                    if pos >= 0 and stair_g[pos] >= g:
                        continue
                kept.append(point)
            kept_levels.append(kept)
            if kept and cross:
                merged = sorted(list(zip(stair_u, stair_g)) + [(p[1], p[0]) for p in kept])
                stair_u, stair_g = [], []
                for u, g in merged:
                    if stair_g and g <= stair_g[-1]:
                        continue
                    if stair_u and stair_u[-1] == u:
                        stair_g[-1] = g
                        continue
                    stair_u.append(u)
                    stair_g.append(g)
        while kept_levels and not kept_levels[-1]:
            kept_levels.pop()
        return kept_levels


def _collect(ref) -> list[_Node]:
    out: list[_Node] = []
    stack = [ref]
    while stack:
        r = stack.pop()
        if r is None:
            continue
        if isinstance(r, _Node):
            out.append(r)
        else:
            stack.extend(r)
    return out


def _solution(search: _Search, wild: list[_Node], bound: float, exact: bool) -> Solution:
    covered: set[int] = set()
    paths: list[str] = []
    cover: list[Covered] = []
    changed = search.changed
    for node in sorted(wild, key=lambda n: n.prefix):
        lo = bisect.bisect_left(changed, node.prefix)
        covered.update(range(lo, lo + node.changed))
        paths.append(node.prefix + "*")
        cover.append(Covered(node.prefix + "*", node.changed, node.collateral))
    exact_paths = [u for i, u in enumerate(changed) if i not in covered]
    all_paths = tuple(sorted(exact_paths + paths))
    collateral = sum(n.collateral for n in wild)
    return Solution.of(search.problem.model, all_paths, search.m, collateral, bound, exact,
                       tuple(cover))


def evaluate(problem: Problem, paths: tuple[str, ...]) -> Solution:
    """Cost and coverage of a given list of paths (for alternatives and tests)."""
    universe = problem.universe | problem.changed
    wild = [p[:-1] for p in paths if p.endswith("*")]
    exact = {p for p in paths if not p.endswith("*")}
    covered = {u for u in universe if u in exact or any(u.startswith(w) for w in wild)}
    collateral = len(covered - problem.changed)
    return Solution.of(problem.model, tuple(paths), len(problem.changed), collateral)


def frontier(problem: Problem, prices: tuple[float, ...]) -> tuple[tuple[tuple[float, int, int], ...], "_Search"]:
    """The plans at each shadow price of a path, as (price, paths submitted over every
    distribution, needless misses over every distribution): for a price lam, the plan
    minimising lam x paths + miss cost x needless misses, from the Lagrangian subproblem with
    slope lam x k (a tree knapsack: the supported points of the frontier of paths against
    misses, without the limit on exact paths). At a price of nothing, of the plans without a
    needless miss the one with the fewest paths. Cheap next to ``minimize``: the candidates
    are built once (pass the search returned to ``minimize`` as ``like`` to share them)."""
    search = _Search(problem)
    # A slope this small takes every wildcard that covers no unchanged URL and none that does.
    least = search.miss_k / (2 * search.m + 2) if search.miss_k > 0 else 1e-12
    out = []
    for lam in prices:
        saved = missed = 0
        if search.m and search.roots:
            chosen = search.lagrange(max(lam * search.k, least))[1]
            saved = sum(n.saving for n in chosen)
            missed = sum(n.collateral for n in chosen)
        out.append((lam, (search.m - saved) * search.k, missed * search.k))
    return tuple(out), search


def minimize(problem: Problem, work_budget: int = WORK_BUDGET,
             like: "_Search | None" = None) -> Solution:
    """A valid plan of minimum cost (see the module docstring); raises InvalidationError when
    no valid plan exists (more changed URLs than paths allowed, and no wildcard allowed).
    ``like``: a search of the same URLs and limits (see ``frontier``), whose candidates are
    reused."""
    search = _Search(problem, like)
    if search.m == 0:
        return _solution(search, [], 0.0, True)
    best: list = []  # [(key, nodes)]
    seen: dict[tuple, tuple] = {}  # every valid plan met: ids -> (key, nodes)

    def consider(nodes: list[_Node]) -> None:
        g = sum(n.saving for n in nodes)
        if search.feasible(len(nodes), g):
            key = search.key(len(nodes), g, sum(n.collateral for n in nodes))
            seen.setdefault(tuple(sorted(id(n) for n in nodes)), (key, nodes))
            if not best or key < best[0][0]:
                best[:] = [(key, nodes)]

    consider([])  # exact paths
    bound, slope, alpha = _dual(search, consider) if search.roots else (0.0, 0.0, -1e300)
    for _, nodes in sorted(seen.values(), key=lambda kn: kn[0])[:3]:
        consider(_improve(search, nodes))
    if not best and not search.roots:
        raise InvalidationError(_no_plan(search))
    incumbent = best[0][0][0] if best else float("inf")
    if best and incumbent <= bound + 1e-9 and not search.roots:
        return _solution(search, best[0][1], bound, True)
    try:
        nodes = search.exact(incumbent, work_budget, slope, alpha) if search.roots else None
    except _Budget:
        if not best:
            raise InvalidationError(_no_plan(search)) from None
        return _solution(search, best[0][1], bound, incumbent <= bound + 1e-9)
    if nodes is None:
        if not best:
            raise InvalidationError(_no_plan(search))
        nodes = best[0][1]
    return _solution(search, nodes, bound, True)


def _dual(search: _Search, consider) -> tuple[float, float, float]:
    """Best Lagrangian lower bound on the cost; every plan met on the way goes to ``consider``.

    psi(g) = lam * min(k*(m - g), F) + price * max(0, k*(m - g) - F) (lam, the shadow price of
    a free path, at most price), for g >= g_min (fewer savings would need more
    exact paths than allowed: infinite), is convex; for a slope s >= 0,
    cost(S) >= min_g (psi(g) + s*g) + min_S (miss_k*u(S) - s*g(S)), and the best s is found
    by bisection on the sign of the subgradient.
    """
    m, k, price = search.m, search.k, search.price
    g_min = max(0, m - search.M - search.W)
    g_free = min(max(m - search.free / k, g_min), m)

    lam = search.free_price

    def psi(g: float) -> float:
        paid = max(0.0, k * (m - g) - search.free)
        return lam * (k * (m - g) - paid) + price * paid

    def alpha(slope: float) -> tuple[float, float]:
        return min((psi(g) + slope * g, g) for g in (g_min, g_free, m))

    bound, best_slope, best_alpha = 0.0, 0.0, 0.0

    def probe(slope: float) -> float:
        """Evaluate the bound at ``slope``; return its subgradient (>0: a larger slope helps)."""
        nonlocal bound, best_slope, best_alpha
        value, nodes = search.lagrange(slope)
        consider(nodes)
        a, g_star = alpha(slope)
        if a + value > bound:
            bound, best_slope, best_alpha = a + value, slope, a
        return g_star - sum(n.saving for n in nodes)

    # The useful slopes are up to price*k, and beyond only when the exact-path limit binds
    # (g_min > 0), up to one that makes every wildcard worth taking.
    lo, hi = 0.0, price * k
    if probe(hi) > 0:
        if g_min == 0:
            return bound, best_slope, best_alpha
        lo, hi = hi, price * k + search.miss_k * len(search.universe) + 1.0
        if probe(hi) > 0:
            return bound, best_slope, best_alpha
    for _ in range(20):
        mid = (lo + hi) / 2
        if probe(mid) > 0:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-7 * price * k:
            break
    return bound, best_slope, best_alpha


def _improve(search: _Search, nodes: list[_Node]) -> list[_Node]:
    """Hill-climb from a plan: drop a wildcard (its URLs become exact paths), split one into
    its child wildcards, or add the best wildcard that overlaps none, while the cost key
    (cost, paths, misses) improves. Fixes what the relaxation's granularity leaves, e.g. a
    wildcard that free paths left over could replace."""
    if not search.order:
        return nodes

    def key(sel: list[_Node]):
        g = sum(n.saving for n in sel)
        if not search.feasible(len(sel), g):
            return None
        return search.key(len(sel), g, sum(n.collateral for n in sel))

    current = list(nodes)
    best = key(current)
    if best is None:
        return nodes
    candidates = [n for n in search.order if n.prefix]
    for _ in range(32):
        move, move_key = None, best
        for v in current:
            rest = [x for x in current if x is not v]
            for option in (rest, rest + [c for c in v.children if c.prefix]):
                k = key(option)
                if k is not None and k < move_key:
                    move, move_key = option, k
        if len(current) < search.W:
            spans = sorted((n.lo, n.hi) for n in current)
            starts = [a for a, _ in spans]
            for c in candidates:
                i = bisect.bisect_right(starts, c.hi) - 1
                if i >= 0 and spans[i][1] >= c.lo:
                    continue  # overlaps a chosen wildcard
                k = key(current + [c])
                if k is not None and k < move_key:
                    move, move_key = current + [c], k
        if move is None:
            return current
        current, best = move, move_key
    return current


def _no_plan(search: _Search) -> str:
    return (
        f"{plural(search.m, 'changed URL')} need{'s' if search.m == 1 else ''} more than the "
        f"{plural(search.M, 'path')} and {plural(search.W, 'wildcard')} CloudFront accepts now"
    )
