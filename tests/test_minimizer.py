import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.cost import CostModel
from planner.errors import InvalidationError
from planner.minimizer import Problem, covers, evaluate, minimize

urls = st.lists(st.from_regex(r"/[a-c]{1,3}(/[a-c]{1,3})?", fullmatch=True), min_size=1, max_size=30)


@given(urls, st.data())
def test_plan_covers_every_changed_url(universe, data):
    changed = data.draw(st.sets(st.sampled_from(universe)))
    sol = minimize(Problem(frozenset(universe), frozenset(changed), max_paths=5))
    assert all(any(covers(p, u) for p in sol.paths) for u in changed)
    assert sol.changed_urls == len(changed)
    if len(changed) <= 5:
        assert sorted(sol.paths) == sorted(changed)  # exact paths: no needless misses
        assert sol.collateral_urls == 0
    else:
        assert sol.paths == ("/*",)
        assert sol.collateral_urls == len(set(universe) - changed)


def test_nothing_changed_means_no_paths():
    sol = minimize(Problem(frozenset({"/a"}), frozenset()))
    assert sol.paths == () and sol.cost_usd == 0 and sol.paid_paths == 0


def test_more_than_3000_paths_fall_back_to_star():
    changed = frozenset(f"/p{i}.html" for i in range(3001))
    sol = minimize(Problem(changed | {"/keep.css"}, changed))
    assert sol.paths == ("/*",)
    assert sol.collateral_urls == 1


def test_no_wildcard_left_and_too_many_paths_is_an_error():
    changed = frozenset(f"/p{i}" for i in range(4))
    with pytest.raises(InvalidationError, match="no wildcard"):
        minimize(Problem(changed, changed, max_paths=3, max_wildcards=0))


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


@pytest.mark.parametrize(
    "free, n, dists, paid",
    [
        (1000, 10, 1, 0),  # well within the allowance
        (5, 10, 1, 5),  # 5 free, 5 paid
        (0, 3, 1, 3),  # allowance used up
        (15, 10, 2, 5),  # each distribution's paths count against the account
    ],
)
def test_paid_paths(free, n, dists, paid):
    model = CostModel(free_paths=free, distributions=dists)
    assert model.paid_paths(n) == paid
    assert model.cost(n, 0) == pytest.approx(0.005 * paid)


def test_needless_misses_cost_a_thousandth_of_a_path_by_default():
    model = CostModel(free_paths=0)
    assert model.cost(1, 1000) == pytest.approx(0.005 + 0.005)


def test_evaluate_counts_collateral_of_wildcards():
    problem = Problem(frozenset({"/a/1", "/a/2", "/b"}), frozenset({"/a/1"}))
    sol = evaluate(problem, ("/a/*",))
    assert sol.collateral_urls == 1
