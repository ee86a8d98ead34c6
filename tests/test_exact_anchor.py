"""The minimizer bench's anchor (tests/bench/exact_anchor.py, a MIP solved by HiGHS) is exact:
its formulation, enumerated on tiny inputs, gives the minimizer's proven optimum and the prefix
brute force's; the MIP itself is checked against it when highspy is already there (nothing is
installed here)."""

import os
import random
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.core.cost import CostModel
from planner.core.minimizer import Problem, minimize
from planner.errors import InvalidationError

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "bench"))
import exact_anchor  # noqa: E402

from test_minimizer import brute_force as prefix_brute_force  # noqa: E402

segment = st.sampled_from(["a", "b", "/", "%C3%A9", "ab", "-"])
url = st.lists(segment, max_size=3).map(lambda parts: "/" + "".join(parts))


def _problem(data, ordered):
    changed = data.draw(st.sets(st.sampled_from(ordered)), label="changed")
    model = CostModel(
        free_paths=data.draw(st.integers(0, 5), label="free"),
        miss_cost=data.draw(st.sampled_from([0.0, 0.000005, 0.001, 0.004, 0.02]), label="miss"),
        distributions=data.draw(st.integers(1, 2), label="k"),
        free_price=data.draw(st.sampled_from([0.0, 0.0005, 0.005]), label="lambda"),
    )
    return Problem(frozenset(ordered), frozenset(changed), model,
                   max_wildcards=data.draw(st.integers(0, 3), label="W"),
                   max_paths=data.draw(st.integers(0, 7), label="M"))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(url, min_size=1, max_size=7), st.data())
def test_the_formulation_has_the_minimizers_optimum(universe, data):
    problem = _problem(data, sorted(universe))
    f = exact_anchor.formulate(problem)
    found = exact_anchor.brute_force(f)
    want = prefix_brute_force(problem)
    try:
        sol = minimize(problem)
    except InvalidationError:
        assert found is None and want is None
        return
    assert found is not None and sol.exact
    assert found[0] == pytest.approx(sol.cost_usd, abs=1e-12)
    assert found[0] == pytest.approx(want[0], abs=1e-9)
    # the plan the formulation names costs what it says
    assert exact_anchor.Formulation.cost(f, found[1]) == found[0]


def _highspy():
    module = exact_anchor.highspy_module(install=False)
    if module is None:
        pytest.skip("highspy is not installed (the bench installs it on first use)")
    return module


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sets(url, min_size=1, max_size=7), st.data())
def test_the_mip_finds_the_optimum_on_tiny_inputs(universe, data):
    highspy = _highspy()
    problem = _problem(data, sorted(universe))
    found = exact_anchor.brute_force(exact_anchor.formulate(problem))
    if found is None:
        with pytest.raises(RuntimeError):
            exact_anchor.solve(problem, highspy)
        return
    opt = exact_anchor.solve(problem, highspy)
    assert opt.proven and opt.cost_usd == pytest.approx(found[0], abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_the_mip_matches_the_minimizer_where_it_proves_its_plan(seed):
    highspy = _highspy()
    rng = random.Random(seed)
    universe = sorted({f"/s{rng.randrange(4)}/t{rng.randrange(6)}/p{rng.randrange(30)}/"
                       for _ in range(500)} | {f"/a/{i}.css" for i in range(40)})
    changed = rng.sample(universe, rng.randrange(20, 300))
    problem = Problem(frozenset(universe), frozenset(changed),
                      CostModel(free_paths=rng.choice([0, 10, 50, 1000])),
                      max_wildcards=rng.choice([2, 5, 15]))
    sol = minimize(problem)
    opt = exact_anchor.solve(problem, highspy)
    assert opt.proven and sol.exact
    assert opt.cost_usd == pytest.approx(sol.cost_usd, abs=1e-12)
