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
   Pareto frontier of (g, u)) is exact; a lower bound prunes it.

3. The bound, and the first plans, come from Lagrangian relaxation: for a slope s >= 0,
   cost(S) >= D(s) := min_g (phi(g) + s*g) + min_{|S| <= W} (miss*k*u(S) - s*g(S)) for
   every valid S (phi(g) + s*g >= the first minimum at g = g(S)), and the inner minimum is a
   tree knapsack over at most W nodes, solved exactly per node and count of wildcards
   (``lagrange``). D is concave; the best s is found by cutting planes (``_dual``).

4. The exact search (``exact``) drops a partial plan (a point of a node's frontier: w
   wildcards, savings g, collateral u) only when no completion of it can cost at most a
   limit L: (a) any completion adds an antichain outside the node, disjoint from it and from
   its ancestors, of at most W - w wildcards, whose reduced value miss*k*u - s*g is at least
   the best such antichain's (``_outside``, per count of wildcards left: the tree knapsack
   again, top down), so cost >= alpha(s) + (miss*k*u - s*g) + that best; (b) the changed
   URLs outside the point can at best all be saved, so at least m - g - (those) paths remain;
   and a point is dropped as dominated only by one with no more wildcards (or, when the limit
   on exact paths binds, as many), at least the savings and at most the collateral, which
   every completion of the first completes as well. So the search keeps every plan of cost
   at most L: if it finds one, the cheapest it finds is optimal; if it finds none, the
   optimum is above L, and L is a proven lower bound. It is run with limits rising from just
   above the Lagrangian bound (``_DEEPEN_FIRST``, the distance growing by sqrt(2), or 2
   after a search that did little work) to the best plan known: the first that finds a plan
   ends it, exact. The limits before it raise the bound.

When the searches together would exceed the work budget (very large, adversarial inputs), the
best plan met (improved by hill-climbing) is returned with ``exact=False`` and, as
``cost_lower_bound_usd``, the larger of the Lagrangian bound and the last limit proven empty:
both are lower bounds of every valid plan's cost by the arguments above.
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
# Pairs of frontier points the exact searches may combine (those that pass the Lagrangian
# test) before the best plan found is returned with its proven bound. A count, not a clock, so
# the same input gives the same plan on every machine (plan and deploy agree); about a second
# here.
WORK_BUDGET = 1_000_000
# The deepening exact searches: the first limit this far above the Lagrangian bound (relative;
# at least one needless miss), each next one sqrt(2) times as far, the last the incumbent.
_DEEPEN_FIRST = 2 ** -10
_DEEPEN_RATIO = 2 ** 0.5  # twice as far when the search before did less work than this:
_DEEPEN_CHEAP = 50_000


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
    convolution of two 'at most t' arrays (each non-increasing, 0 at t = 0), kept
    non-increasing. Either argument may be returned as it is: never change the result."""
    if len(arr) == 1:
        return acc if len(acc) <= W + 1 else acc[:W + 1]
    if len(acc) == 1:
        return arr if len(arr) <= W + 1 else arr[:W + 1]
    if len(acc) < len(arr):
        acc, arr = arr, acc
    n = min(W + 1, len(acc) + len(arr) - 1)
    out = acc[:n]
    if len(out) < n:
        out += [acc[-1]] * (n - len(out))
    for j in range(1, min(len(arr), n)):
        b = arr[j]
        seg = [a + b for a in acc[:n - j]]
        out[j:j + len(seg)] = map(min, out[j:j + len(seg)], seg)
    for t in range(1, n):
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
        self._parents: dict[int, _Node] | None = None
        if same:
            self.roots, self.order = like.roots, like.order  # type: ignore[union-attr]
            self._parents = like._parents  # type: ignore[union-attr]
            return
        leaves = self.m > self.M
        self.roots = build_candidates(self.changed, self.universe, leaves) if self.W else []
        self.order = _postorder(self.roots)

    def parents(self) -> dict[int, _Node]:
        """Each node's parent (roots have none), by id."""
        if self._parents is None:
            self._parents = {id(c): n for n in self.order for c in n.children}
        return self._parents

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

    def lagrange(self, mu: float) -> tuple[float, list[_Node], dict[int, list[float]]]:
        W = self.W
        best: dict[int, list[float]] = {}
        pres: dict[int, list[list[float]]] = {}
        for node in self.order:
            if node.changed == 1:
                continue  # a one-URL wildcard saves nothing: never a negative value
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
        return acc[-1], chosen, best

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

    def exact(self, incumbent: float, budget: int, slope: float = 0.0, alpha: float = -1e300,
              inside: dict[int, list[float]] | None = None,
              outside: "_Outside | None" = None, rests: tuple | None = None):
        """Exact search: per node and wildcard count, the Pareto frontier of (savings g,
        collateral u). A partial point is dropped when even the best completion cannot beat
        the incumbent: cost >= alpha + sum over S of (miss_k*u - slope*g) (the Lagrangian
        bound), the part outside the point bounded by the best antichain there with the
        wildcards left (``inside``: per node, the best reduced value of its subtree with at
        most t wildcards, from ``lagrange``). Returns the chosen nodes, or None if no plan is
        valid. ``self.work``: the work it took (or had taken when it ran out)."""
        if inside is None:
            inside = self.lagrange(slope)[2]
        if outside is None or outside.inside is not inside:
            outside = _Outside(self, inside)
        if rests is None or rests[0] is not inside:
            rests = (inside, {})
        self.rests = rests[1]  # per parent: the bound on the rest when merging each child
        fronts = _Frontiers(self, incumbent + 1e-9, budget, slope, alpha)
        self.work = 0
        try:
            return self._exact(fronts, inside, outside)
        finally:
            self.work = fronts.work

    def _exact(self, fronts: "_Frontiers", inside, outside):
        frontier: dict[int, list[list[tuple]]] = {}
        wild = self.W >= 1
        cost_ok, m = fronts.cost_ok, self.m
        # A plan holding a node holds at most W - 1 others, whose reduced value is at least
        # the best of any W - 1 nodes: a node's own wildcard failing that test is left out at
        # once (before the finer test with the best outside the node).
        best_rest = _suffixes(self.roots, inside, self.W)[0]
        room = fronts.limit - fronts.alpha - best_rest[min(self.W - 1, len(best_rest) - 1)]
        miss_k, slope = self.miss_k, fronts.slope
        for node in self.order:
            if not node.children:
                # A leaf: its own wildcard or nothing (its full Lagrangian test comes with
                # its parent's merge).
                if (node.prefix and wild and (fronts.single or node.changed > 1)
                        and miss_k * node.collateral - slope * node.saving <= room
                        and cost_ok(node.saving, node.collateral, m - node.changed)):
                    frontier[id(node)] = [[(0, 0, None)],
                                          [(node.saving, node.collateral, node)]]
                continue
            acc = fronts.merge_siblings(node, frontier, inside, outside)
            if (node.prefix and wild
                    and miss_k * node.collateral - slope * node.saving <= room):
                acc = fronts.with_wildcard(acc, node, outside.get(node))
            if len(acc) > 1:
                frontier[id(node)] = acc
        return self._cheapest(fronts.merge_siblings(None, frontier, inside, outside),
                              fronts.limit)

    def _cheapest(self, acc: list[list[tuple]], limit: float) -> list[_Node] | None:
        """The valid plan of least cost key among the points of ``acc`` (per wildcard count)
        that cost at most ``limit``, or None."""
        best = None
        for w, level in enumerate(acc):
            for g, u, ref in level:
                if not self.feasible(w, g) or self.cost(self.m - g, u) > limit:
                    continue
                key = self.key(w, g, u)
                if best is None or key < best[0]:
                    best = (key, ref)
        if best is None:
            return None
        return _collect(best[1])


class _Outside:
    """Per node with children: the best reduced value of an antichain of at most t wildcards
    outside its subtree, its ancestors excluded (a lower bound of what the rest of a plan
    adds), under the Lagrangian values ``inside``. Worked out top down on first use, for all
    the children of a node at once (prefix and suffix min-plus sums of their siblings)."""

    def __init__(self, search: "_Search", inside: dict[int, list[float]]) -> None:
        self.search, self.inside = search, inside
        self.out: dict[int, list[float]] = {}
        self.parent = search.parents()

    def get(self, node: _Node | None) -> list[float]:
        if node is None:
            return [0.0]
        out = self.out.get(id(node))
        if out is not None:
            return out
        chain = [node]
        parent = self.parent.get(id(node))
        while parent is not None and id(parent) not in self.out:
            chain.append(parent)
            parent = self.parent.get(id(parent))
        for n in reversed(chain):
            self._fill(self.parent.get(id(n)))
        return self.out[id(node)]

    def _fill(self, parent: _Node | None) -> None:
        """The outside of every child with children of ``parent`` (None: of the roots)."""
        search, inside, W = self.search, self.inside, self.search.W
        kids = search.roots if parent is None else parent.children
        up = self.get(parent)
        suf = _suffixes(kids, inside, W)
        pre = [0.0]
        for i, c in enumerate(kids):
            if c.children:
                self.out[id(c)] = _min_plus(_min_plus(up, pre, W), suf[i + 1], W)
            a = inside.get(id(c))
            if a is not None:
                pre = _min_plus(pre, a, W)


class _Frontiers:
    """The exact search's frontiers: per wildcard count, a list of points (g, u, ref), ref
    naming the chosen nodes (a node, a pair of refs, or None). Merging two counts the work
    done, and raises _Budget past ``budget``; a point that cannot beat ``limit`` is dropped
    (``keep``)."""

    def __init__(self, search: _Search, limit: float, budget: int, slope: float,
                 alpha: float) -> None:
        self.W, self.m = search.W, search.m
        self.search, self.rests = search, search.rests
        self.work, self.budget = 0, budget
        # Across wildcard counts only when the exact-path limit cannot bind (see pareto()).
        # It cannot bind either when every plan of at most M paths costs more than the limit
        # (then a plan under the limit has fewer than M paths, exact ones fewer still), and
        # then a one-URL wildcard is never needed: its URL as an exact path does as well.
        self.cross = search.m <= search.M or search.cost(search.M, 0) > limit
        self.single = not self.cross
        miss_k, m, cost = search.miss_k, search.m, search.cost

        self.miss_k, self.slope, self.alpha, self.limit = miss_k, slope, alpha, limit

        def cost_ok(g: int, u: int, others: int) -> bool:
            """Whether savings g and collateral u may still beat the limit when ``others``
            changed URLs are left to cover by exact paths at most."""
            return cost(max(0, m - g - others), u) <= limit

        self.cost_ok = cost_ok

        # A node's own wildcard (``merge`` inlines the same tests for the points it combines).
        def keep(g: int, u: int, rest: float, others: int) -> bool:
            """Whether a partial point of savings g and collateral u may still beat the
            limit: ``rest`` bounds the reduced value outside, ``others`` changed URLs are
            left to cover by exact paths at most."""
            if alpha + miss_k * u - slope * g + rest > limit:
                return False
            return cost(max(0, m - g - others), u) <= limit

        self.keep = keep

    def merge_siblings(self, parent: _Node | None, frontier: dict[int, list[list[tuple]]],
                       inside: dict[int, list[float]], outside: _Outside
                       ) -> list[list[tuple]]:
        """The frontier of the children of ``parent`` (None: the roots), taken out of
        ``frontier``, combined, the rest of a plan bounded by the best outside ``parent``
        and its other children (per count of wildcards left)."""
        acc: list[list[tuple]] = [[(0, 0, None)]]
        kids = self.search.roots if parent is None else parent.children
        W = self.W
        rests = None
        merged = 0
        for i, child in enumerate(kids):
            fc = frontier.pop(id(child), None)
            if fc is None or len(fc) == 1:
                continue
            merged += child.changed
            if rests is None:
                # per parent, kept for the searches to come: the bound on the rest of a
                # plan when merging each child
                rests = self.rests.get(id(parent))
                if rests is None:
                    rests = self.rests[id(parent)] = [None] * len(kids)
                suf = None
            rest = rests[i]
            if rest is None:
                if suf is None:
                    up = outside.get(parent)
                    suf = _suffixes(kids, inside, W)
                rest = rests[i] = _min_plus(up, suf[i + 1], W)
            acc = self.merge(acc, fc, rest, self.m - merged)
        return acc

    def with_wildcard(self, acc: list[list[tuple]], node: _Node,
                      up: list[float] | None) -> list[list[tuple]]:
        """``acc`` (the node's children's) with the node's own wildcard as a one-wildcard
        point."""
        rest = -1e300 if up is None else up[min(self.W - 1, len(up) - 1)]
        if not self.keep(node.saving, node.collateral, rest, self.m - node.changed):
            return acc
        point = (node.saving, node.collateral, node)
        if len(acc) == 1:
            return [acc[0], [point]]
        levels = [list(x) for x in acc] + [[] for _ in range(2 - len(acc))]
        levels[1].append(point)
        return self.pareto(levels)

    def merge(self, A, B, rest, others):
        """Every point of ``A`` combined with every point of ``B`` (at most W wildcards in
        all) that ``keep`` keeps, then the dominated ones dropped; ``rest``: per count of
        wildcards left, a bound on the reduced value of the rest of a plan (None: none).
        The points of ``B`` are taken in order of reduced value (miss_k*u - slope*g), so
        only the pairs that pass the Lagrangian test are met (and counted as work)."""
        W, budget, work = self.W, self.budget, self.work
        miss_k, slope, head = self.miss_k, self.slope, self.limit - self.alpha
        search, limit = self.search, self.limit
        k, free, price, fp = search.k, search.free, search.price, search.free_price
        mo = self.m - others  # paths left at least: mo - g (the cost test of cost_ok, inline)
        res: list[list[tuple]] = [[] for _ in range(min(W + 1, len(A) + len(B) - 1))]
        last = len(rest) - 1 if rest is not None else 0
        sorted_b: list = [None] * len(B)
        for wa, la in enumerate(A):
            if not la:
                continue
            for wb, lb in enumerate(B):
                if wa + wb > W:
                    break
                if not lb:
                    continue
                sb = sorted_b[wb]
                if sb is None:
                    sb = sorted(((miss_k * u - slope * g, g, u, ref) for g, u, ref in lb),
                                key=_first)
                    sorted_b[wb] = sb = (sb, [p[0] for p in sb])
                pts, keys = sb
                bucket = res[wa + wb]
                top = head - (-1e300 if rest is None else rest[min(W - wa - wb, last)])
                first = keys[0]
                for ga, ua, ra in la:
                    cut = top - (miss_k * ua - slope * ga)
                    if first > cut:
                        continue
                    j = bisect.bisect_right(keys, cut)
                    work += j + 1
                    for i in range(j):
                        _, gb, ub, rb = pts[i]
                        g, u = ga + gb, ua + ub
                        n = mo - g
                        if n > 0:
                            kn = k * n
                            c = (fp * free + price * (kn - free) if kn > free else fp * kn)
                            if c + miss_k * u > limit:
                                continue
                        elif miss_k * u > limit:
                            continue
                        bucket.append((g, u, (ra, rb)))
                if work > budget:
                    self.work = work
                    raise _Budget
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


def _first(point: tuple) -> float:
    return point[0]


def _suffixes(kids: list[_Node], inside: dict[int, list[float]], W: int) -> list[list[float]]:
    """suf[i]: the best reduced value of kids[i:] together, per count of wildcards."""
    suf = [[0.0]] * (len(kids) + 1)
    acc = [0.0]
    for i in range(len(kids) - 1, -1, -1):
        a = inside.get(id(kids[i]))
        if a is not None:
            acc = _min_plus(acc, a, W)
        suf[i] = acc
    return suf


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
    bound, slope, alpha, inside = (_dual(search, consider) if search.roots
                                   else (0.0, 0.0, -1e300, None))
    if not best and not search.roots:
        raise InvalidationError(_no_plan(search))
    incumbent = best[0][0][0] if best else float("inf")
    if not search.roots:
        if not best:
            raise InvalidationError(_no_plan(search))
        return _solution(search, best[0][1], bound, True)
    # Deepening: search for a plan of cost at most a limit between the bound and the
    # incumbent, rising from just above the bound. Every plan that costs no more than the
    # limit survives the pruning, so a search that finds one has found the optimum, and one
    # that finds none proves the limit a lower bound. The work budget is for all of them.
    outside = _Outside(search, inside)
    rests = (inside, {})  # bounds shared by the searches
    left = work_budget
    base = bound
    step = max(bound * _DEEPEN_FIRST, search.miss_k, 1e-12)
    while True:
        limit = base + step if best and base + step < incumbent - 1e-9 else incumbent
        try:
            nodes = search.exact(limit, left, slope, alpha, inside, outside, rests)
        except _Budget:
            # Out of work: the best plan met, improved by hill-climbing, with the best bound.
            for _, nodes in sorted(seen.values(), key=lambda kn: kn[0])[:3]:
                consider(_improve(search, nodes))
            if not best:
                # No valid plan met (only when the limit on exact paths binds hard, e.g.
                # one-URL wildcards needed): search for one, without a budget.
                nodes = search.exact(float("inf"), 1 << 62, slope, alpha, inside, outside, rests)
                if nodes is None:
                    raise InvalidationError(_no_plan(search)) from None
                return _solution(search, nodes, bound, True)
            incumbent = best[0][0][0]
            return _solution(search, best[0][1], bound, incumbent <= bound + 1e-9)
        left -= search.work
        if nodes is not None:
            return _solution(search, nodes, bound, True)
        bound = max(bound, limit)
        if limit >= incumbent:
            break
        # Cheap searches (little work under the limit) step on faster.
        step *= 2 if search.work < _DEEPEN_CHEAP else _DEEPEN_RATIO
    if not best:
        raise InvalidationError(_no_plan(search))
    return _solution(search, best[0][1], bound, True)


def _dual(search: _Search, consider) -> tuple[float, float, float, dict | None]:
    """Best Lagrangian lower bound on the cost; every plan met on the way goes to ``consider``.

    psi(g) = lam * min(k*(m - g), F) + price * max(0, k*(m - g) - F) (lam, the shadow price of
    a free path, at most price), for g >= g_min (fewer savings would need more
    exact paths than allowed: infinite), is convex; for a slope s >= 0,
    cost(S) >= min_g (psi(g) + s*g) + min_S (miss_k*u(S) - s*g(S)) =: D(s), a valid bound for
    every s; the best s is found by cutting planes (D is concave).
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
    best_inside: dict[int, list[float]] | None = None

    lines: list[tuple[float, float]] = []  # D(s) <= a + b*s for every slope s

    def probe(slope: float) -> float:
        """Evaluate the bound at ``slope``; return its subgradient (>0: a larger slope helps)."""
        nonlocal bound, best_slope, best_alpha, best_inside
        value, nodes, inside = search.lagrange(slope)
        consider(nodes)
        a, g_star = alpha(slope)
        if a + value > bound or best_inside is None:
            bound, best_slope, best_alpha, best_inside = max(bound, a + value), slope, a, inside
        g = sum(n.saving for n in nodes)
        u = sum(n.collateral for n in nodes)
        lines.append((psi(g_star) + search.miss_k * u, g_star - g))
        return g_star - g

    # The useful slopes are up to price*k, and beyond only when the exact-path limit binds
    # (g_min > 0), up to one that makes every wildcard worth taking.
    lo, hi = 0.0, price * k
    if probe(hi) > 0:
        if g_min == 0:
            return bound, best_slope, best_alpha, best_inside
        lo, hi = hi, price * k + search.miss_k * len(search.universe) + 1.0
        if probe(hi) > 0:
            return bound, best_slope, best_alpha, best_inside
    # The dual D(s) is concave: each probe gives a line above it (the plan found and the g
    # that attains alpha, both fixed), and the next probe is where the lowest of the lines is
    # highest (Kelley's cutting planes in one dimension), until that is no more than a
    # hundredth of a needless miss above the best bound. Without a left line yet: the empty
    # plan with g = m.
    lines.append((psi(m), float(m)))
    tol = max(1e-12, 0.01 * search.miss_k, 1e-6 * price * k)
    for _ in range(40):
        best_s, best_v = lo, None
        points = {lo, hi}
        for i, (a1, b1) in enumerate(lines):
            for a2, b2 in lines[i + 1:]:
                if b1 != b2:
                    x = (a2 - a1) / (b1 - b2)
                    if lo < x < hi:
                        points.add(x)
        for x in points:
            v = min(a + b * x for a, b in lines)
            if best_v is None or v > best_v:
                best_s, best_v = x, v
        if best_v is None or best_v <= bound + tol:
            break
        probe(best_s)
    return bound, best_slope, best_alpha, best_inside


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
