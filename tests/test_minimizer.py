"""The cost-aware minimizer: case tables and a brute-force oracle (hypothesis)."""

import itertools

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.core.cost import CostModel
from planner.core.minimizer import Problem, evaluate, minimize
from planner.core.urls import covers, trim_escape, urls_of
from planner.errors import InvalidationError

PAGES = ["index.html", "about/index.html", "blog/index.html"] + [
    f"blog/post-{i}/index.html" for i in range(12)
]
ASSETS = ["css/site.3f2a.css", "js/app.js", "img/café menu.png", "img/100%.png", "img/a*b.png"]
SITE = urls_of(PAGES + ASSETS)


def solve(changed_keys, universe=SITE, **kw):
    model_kw = {k: kw.pop(k) for k in list(kw) if k in ("free_paths", "price", "miss_cost", "distributions")}
    problem = Problem(frozenset(universe), frozenset(urls_of(changed_keys)), CostModel(**model_kw), **kw)
    return minimize(problem)


@pytest.mark.parametrize(
    "changed, kwargs, paths",
    [
        # root-only change: '/' and '/index.html'; '/*' would hit the whole site
        (["index.html"], {}, ("/", "/index.html")),
        # pretty URL: one wildcard covers both forms and nothing else
        (["about/index.html"], {}, ("/about/*",)),
        # every post of a section changed: one wildcard, no needless miss
        ([f"blog/post-{i}/index.html" for i in range(12)], {}, ("/blog/post-*",)),
        # the section index too: the whole section
        ([f"blog/post-{i}/index.html" for i in range(12)] + ["blog/index.html"], {}, ("/blog/*",)),
        # a fingerprinted CSS change rewrites every page: within the free allowance, the fewest
        # paths that invalidate nothing needlessly
        (PAGES + ["css/site.3f2a.css"], {}, ("/", "/about/*", "/blog/*", "/css/site.3f2a.css", "/index.html")),
        # ... and with no free path left, '/*' (4 needless misses) beats 5 paid paths
        (PAGES + ["css/site.3f2a.css"], {"free_paths": 0}, ("/*",)),
        # names with a space, non-ASCII and '%': encoded exact paths
        (["img/café menu.png", "img/100%.png"], {}, ("/img/100%25.png", "/img/caf%C3%A9%20menu.png")),
        # a literal '*' stays encoded; the folder wildcard covers all three images
        (["img/café menu.png", "img/100%.png", "img/a*b.png"], {}, ("/img/*",)),
        # no wildcard may be submitted now: exact paths only
        ([f"blog/post-{i}/index.html" for i in range(3)], {"max_wildcards": 0},
         tuple(sorted(urls_of([f"blog/post-{i}/index.html" for i in range(3)])))),
    ],
)
def test_cases(changed, kwargs, paths):
    assert solve(changed, **kwargs).paths == paths


def test_deleted_urls_are_covered_even_if_gone_from_the_build():
    universe = urls_of(["a.html", "old/x.html", "old/y.html"])
    sol = solve(["old/x.html", "old/y.html"], universe=universe)
    assert sol.paths == ("/old/*",) and sol.collateral_urls == 0


def test_nothing_changed_means_no_paths():
    sol = solve([])
    assert sol.paths == () and sol.cost_usd == 0 and sol.exact


def test_beyond_the_free_paths_wildcards_trade_misses_for_paths():
    universe = [f"/p/{i}" for i in range(100)] + ["/q"]
    changed = universe[:60]
    # 60 exact paths, 59 paid ($0.295) vs '/p/*' with 40 needless misses ($0.0052)
    sol = minimize(Problem(frozenset(universe), frozenset(changed), CostModel(free_paths=1)))
    assert sol.paths == ("/p/*",) and sol.collateral_urls == 40
    assert sol.cost_usd == pytest.approx(0.005 * 40 / 1000)


def test_expensive_misses_keep_exact_paths():
    universe = [f"/p/{i}" for i in range(100)]
    changed = universe[:3]
    sol = minimize(Problem(frozenset(universe), frozenset(changed), CostModel(free_paths=0, miss_cost=0.01)))
    assert sorted(sol.paths) == sorted(changed)


def test_too_many_paths_without_wildcards_is_an_error():
    changed = frozenset(f"/p{i}" for i in range(4))
    with pytest.raises(InvalidationError, match="wildcards"):
        minimize(Problem(changed, changed, max_paths=3, max_wildcards=0))


@pytest.mark.parametrize(
    "changed, max_paths, message",
    [
        (["/p0"], 0, "1 changed URL needs more than the 0 paths and 0 wildcards"),
        (["/p0", "/p1"], 1, "2 changed URLs need more than the 1 path and 0 wildcards"),
    ],
)
def test_no_plan_counts_urls_paths_and_wildcards_in_words(changed, max_paths, message):
    urls = frozenset(changed)
    with pytest.raises(InvalidationError) as refused:
        minimize(Problem(urls, urls, max_paths=max_paths, max_wildcards=0))
    assert str(refused.value) == f"{message} CloudFront accepts now"


def test_more_than_3000_changed_urls_use_wildcards():
    universe = [f"/s{i % 7}/p{i}" for i in range(5000)]
    sol = minimize(Problem(frozenset(universe), frozenset(universe[:4000]), CostModel()))
    assert len([p for p in sol.paths if not p.endswith("*")]) <= 3000
    assert sol.wildcards <= 15
    assert all(any(covers(p, u) for p in sol.paths) for u in universe[:4000])


@pytest.mark.parametrize(
    "prefix, trimmed",
    [("/a%C3%A9", "/a%C3%A9"), ("/a%C3%A", "/a%C3"), ("/a%C3%", "/a%C3"), ("/a", "/a")],
)
def test_wildcards_never_end_inside_an_escape(prefix, trimmed):
    assert trim_escape(prefix) == trimmed


@pytest.mark.parametrize(
    "path, url, hit",
    [
        ("/a.css", "/a.css", True),  # exact
        ("/a.css", "/a.css.map", False),  # exact is not a prefix
        ("/img/*", "/img/x.png", True),  # wildcard prefix
        ("/img/*", "/img", False),  # the slash is part of the prefix
        ("/img/hero-*", "/img/hero-2x.png", True),  # wildcard inside a name
        ("/*", "/", True),
    ],
)
def test_covers(path, url, hit):
    assert covers(path, url) is hit


def test_evaluate_counts_collateral_of_wildcards():
    problem = Problem(frozenset({"/a/1", "/a/2", "/b"}), frozenset({"/a/1"}))
    assert evaluate(problem, ("/a/*",)).collateral_urls == 1


# --- brute force ------------------------------------------------------------------------------


def brute_force(problem):
    """Every wildcard a URL prefix allows (never ending inside an escape), every subset of at
    most W of them, exact paths for the rest: the lexicographic best (cost, paths, misses)."""
    universe = sorted(problem.universe | problem.changed)
    changed = problem.changed
    prefixes = sorted(
        {u[:n] for u in universe for n in range(1, len(u) + 1) if trim_escape(u[:n]) == u[:n]}
    )
    best = None
    for r in range(min(problem.max_wildcards, len(prefixes)) + 1):
        for combo in itertools.combinations(prefixes, r):
            covered = {u for u in universe if any(u.startswith(p) for p in combo)}
            exact = changed - covered
            if len(exact) > problem.max_paths:
                continue
            n, misses = r + len(exact), len(covered - changed)
            key = (round(problem.model.cost(n, misses), 9), n, misses)
            best = key if best is None or key < best else best
    return best


segment = st.sampled_from(["a", "b", "/", "%C3%A9", "ab", "-"])
url = st.lists(segment, max_size=3).map(lambda parts: "/" + "".join(parts))


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(url, min_size=1, max_size=7), st.data())
def test_minimizer_matches_brute_force(universe, data):
    ordered = sorted(universe)
    changed = data.draw(st.sets(st.sampled_from(ordered)), label="changed")
    model = CostModel(
        free_paths=data.draw(st.integers(0, 5), label="free"),
        miss_cost=data.draw(st.sampled_from([0.0, 0.000005, 0.001, 0.0025, 0.004, 0.006, 0.02]), label="miss"),
        distributions=data.draw(st.integers(1, 2), label="k"),
        # the shadow price of a free path (pacing by price), up to the price itself
        free_price=data.draw(st.sampled_from([0.0, 0.0, 0.000005, 0.0005, 0.002, 0.005]),
                             label="lambda"),
    )
    problem = Problem(
        frozenset(ordered),
        frozenset(changed),
        model,
        max_wildcards=data.draw(st.integers(0, 3), label="W"),
        max_paths=data.draw(st.integers(0, 7), label="M"),
    )
    want = brute_force(problem)
    try:
        sol = minimize(problem)
    except InvalidationError:
        assert want is None
        return
    assert want is not None, sol.paths
    assert all(any(covers(p, u) for p in sol.paths) for u in changed)
    assert sol.wildcards <= problem.max_wildcards
    assert len(sol.paths) - sol.wildcards <= problem.max_paths
    assert (round(sol.cost_usd, 9), len(sol.paths), sol.collateral_urls) == want
    assert sol.exact and sol.cost_lower_bound_usd == pytest.approx(sol.cost_usd)
    # the reported figures are those of the paths themselves
    check = evaluate(problem, sol.paths)
    assert (check.collateral_urls, check.paid_paths) == (sol.collateral_urls, sol.paid_paths)


@settings(max_examples=800, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(url, min_size=1, max_size=7), st.data())
def test_out_of_work_the_bound_stays_below_the_optimum(universe, data):
    """However little work the exact search may do, the plan is valid, costs at least the
    optimum, its bound is at most the optimum, and a plan called exact is optimal."""
    ordered = sorted(universe)
    changed = data.draw(st.sets(st.sampled_from(ordered)), label="changed")
    model = CostModel(
        free_paths=data.draw(st.integers(0, 5), label="free"),
        miss_cost=data.draw(st.sampled_from([0.000005, 0.001, 0.004, 0.02]), label="miss"),
        distributions=data.draw(st.integers(1, 2), label="k"),
        free_price=data.draw(st.sampled_from([0.0, 0.0005, 0.005]), label="lambda"),
    )
    problem = Problem(frozenset(ordered), frozenset(changed), model,
                      max_wildcards=data.draw(st.integers(0, 3), label="W"),
                      max_paths=data.draw(st.integers(0, 7), label="M"))
    want = brute_force(problem)
    budget = data.draw(st.sampled_from([0, 1, 3, 10, 40]), label="budget")
    try:
        sol = minimize(problem, work_budget=budget)
    except InvalidationError:
        assert want is None
        return
    assert want is not None
    assert all(any(covers(p, u) for p in sol.paths) for u in changed)
    assert sol.wildcards <= problem.max_wildcards
    assert len(sol.paths) - sol.wildcards <= problem.max_paths
    assert round(sol.cost_usd, 9) >= want[0]
    assert sol.cost_lower_bound_usd <= want[0] + 1e-12
    if sol.exact:
        assert round(sol.cost_usd, 9) == want[0]


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_lower_bound_never_exceeds_the_cost_on_larger_instances(seed):
    import random

    rng = random.Random(seed)
    universe = sorted({f"/s{rng.randrange(4)}/t{rng.randrange(6)}/p{rng.randrange(30)}" for _ in range(400)})
    changed = rng.sample(universe, rng.randrange(1, len(universe)))
    model = CostModel(free_paths=rng.randrange(0, 200),
                      free_price=rng.choice([0.0, 0.0001, 0.001, 0.004]))
    problem = Problem(frozenset(universe), frozenset(changed), model,
                      max_wildcards=rng.randrange(0, 16), max_paths=rng.randrange(50, 400))
    try:
        sol = minimize(problem, work_budget=20_000)
    except InvalidationError:
        return
    assert sol.cost_lower_bound_usd <= sol.cost_usd + 1e-12
    assert all(any(covers(p, u) for p in sol.paths) for u in changed)


@settings(max_examples=200, deadline=None)
@given(st.sets(url, min_size=1, max_size=7), st.data())
def test_the_frontier_falls_as_the_price_rises_and_matches_the_minimizer(universe, data):
    """The plans at each shadow price (the Lagrangian subproblem), as (price, paths,
    misses): without a needless miss when a path is free (and then the fewest paths of
    such plans), ever fewer paths and more misses as a path gets dearer, and each as cheap
    at its price as the minimizer's plan when every path costs that price."""
    from planner.core.minimizer import frontier

    ordered = sorted(universe)
    changed = frozenset(data.draw(st.sets(st.sampled_from(ordered), min_size=1)))
    k = data.draw(st.integers(1, 2))
    prices = (0.0, 0.000001, 0.00001, 0.0001, 0.001, 0.005)
    model = CostModel(distributions=k)
    points, _ = frontier(Problem(frozenset(ordered), changed, model), prices)
    paths = [n for _, n, _ in points]
    misses = [m for _, _, m in points]
    assert misses[0] == 0 and paths[0] <= len(changed) * k
    assert paths == sorted(paths, reverse=True) and misses == sorted(misses)
    for lam, n, m in points:
        sol = minimize(Problem(frozenset(ordered), changed, CostModel(
            free_paths=0, price=lam, miss_cost=model.miss, distributions=k)))
        if lam == 0:
            assert sol.collateral_urls == 0 and n <= len(sol.paths) * k
        else:
            assert lam * n + model.miss * m == pytest.approx(sol.cost_usd, abs=1e-12)
