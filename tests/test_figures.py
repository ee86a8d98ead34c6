"""The two figures (what AWS bills, the miss estimate) and the --max-cost guard, on the pure
core: the cost model, the minimizer's solutions, the plan's computation.

End to end (moto server, the real CLI): ``test_e2e_figures.py``.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from planner.core.cost import CostModel, Figures, billable
from planner.core.minimizer import Problem, evaluate, minimize
from planner.core.urls import covers
from planner.core.words import Doc, money, plural
from planner.errors import OverCostCap
from planner.plan.compute import (
    Options,
    TargetState,
    compute_plan,
    fewest_misses_within,
)

PRICE = 0.005
MISS = PRICE / 1000


# --- the cost model's two figures --------------------------------------------------------------


def test_within_the_free_tier_aws_charges_nothing_while_misses_are_an_estimate():
    model = CostModel(free_paths=1000, free_left=1000)
    f = model.figures(1, 80)  # "/*" emptying 80 cached URLs
    assert f == Figures(paid_paths=0, charge_usd=0.0, miss_cost_usd=80 * MISS,
                        free_paths_used=1, paced_paths=0)
    assert model.cost(1, 80) == pytest.approx(f.charge_usd + f.miss_cost_usd)


def test_one_paid_path_is_charged_exactly_the_price():
    """The issue's case: the plan said $0.0054 while AWS bills $0.005."""
    model = CostModel(free_paths=0, free_left=0)
    f = model.figures(1, 80)
    assert (f.paid_paths, f.charge_usd) == (1, 0.005)
    assert f.miss_cost_usd == pytest.approx(0.0004)
    assert model.cost(1, 80) == pytest.approx(0.0054)  # the objective: their sum


def test_paths_the_pace_holds_back_are_free_on_the_bill_but_priced_by_the_objective():
    # 500 free paths left in the account, 50 of them allowed to this deploy
    model = CostModel(free_paths=50, free_left=500)
    f = model.figures(60, 0)
    assert (f.paid_paths, f.charge_usd, f.free_paths_used, f.paced_paths) == (0, 0.0, 60, 10)
    assert model.cost(60, 0) == pytest.approx(10 * PRICE)


@settings(max_examples=300, deadline=None)
@given(
    free_left=st.integers(0, 3000),
    held=st.integers(0, 3000),
    n=st.integers(0, 3000),
    collateral=st.integers(0, 100_000),
    dists=st.integers(1, 4),
    price=st.sampled_from([0.0, 0.005, 0.01]),
)
def test_figures_add_up(free_left, held, n, collateral, dists, price):
    """paid + free = submitted; the charge is the price of what AWS bills; the objective is
    charge + miss estimate + the price of the paths the pace holds back."""
    allowance = max(0, free_left - held)
    model = CostModel(free_paths=allowance, price=price, distributions=dists, free_left=free_left)
    f = model.figures(n, collateral)
    assert f.paid_paths + f.free_paths_used == n * dists
    assert f.paid_paths == billable(0, n * dists, free_left)
    assert f.charge_usd == pytest.approx(f.paid_paths * price)
    assert f.miss_cost_usd == pytest.approx(model.miss * collateral * dists)
    assert model.cost(n, collateral) == pytest.approx(
        f.charge_usd + f.miss_cost_usd + f.paced_paths * price
    )


def test_the_minimizers_solutions_carry_both_figures():
    universe = frozenset(f"/a/{i}.html" for i in range(30)) | {"/b.css"}
    changed = frozenset(f"/a/{i}.html" for i in range(20))
    model = CostModel(free_paths=0, free_left=0)
    sol = minimize(Problem(universe, changed, model))
    assert sol.paths == ("/a/*",)  # 10 needless misses beat 19 more paid paths
    assert (sol.paid_paths, sol.charge_usd) == (1, 0.005)
    assert sol.miss_cost_usd == pytest.approx(10 * MISS)
    star = evaluate(Problem(universe, changed, model), ("/*",))
    assert (star.charge_usd, star.miss_cost_usd) == (0.005, pytest.approx(11 * MISS))


# --- words -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "amount, text",
    [(0, "$0.00"), (0.005, "$0.005"), (0.0054, "$0.0054"), (0.0004, "$0.0004"),
     (0.00001, "<$0.0001"), (0.01, "$0.01"), (1234.5, "$1,234.50")],
)
def test_money_reads_as_a_bill(amount, text):
    assert money(amount) == text


@pytest.mark.parametrize(
    "n, text", [(0, "0 paths"), (1, "1 path"), (2, "2 paths"), (1200, "1,200 paths")]
)
def test_plural(n, text):
    assert plural(n, "path") == text
    assert plural(1, "needless miss", "needless misses") == "1 needless miss"


def test_doc_escapes_markdown_in_lines_and_cells():
    doc = Doc("markdown")
    doc.line("/blog/* and a_b")
    doc.table([["a|b", "/x/*"]], ["key", "path"])
    text = doc.text()
    assert "- /blog/\\* and a\\_b" in text
    assert "a\\|b" in text and "/x/\\*" in text


# --- --max-cost ------------------------------------------------------------------------------

TARGET = "s3://bucket"
HTML = "text/html; charset=utf-8"
NOW = dt.datetime(2026, 12, 5, tzinfo=dt.UTC)


def entry(h: str) -> Entry:
    return Entry(h.ljust(32, "0"), 10, HTML, "cc")


SITE = {f"s{i}/p{j}/index.html": entry(f"{i}{j}") for i in range(4) for j in range(6)}


def plan_with(changed: list[str], **opts):
    new = dict(SITE, **{k: entry("f" + SITE[k].hash[:5]) for k in changed})
    opts.setdefault("distribution_ids", ("E1",))
    opts.setdefault("pace", "none")
    opts.setdefault("miss_cost", 0.001)  # a needless miss dear enough that pages get wildcards
    return compute_plan(
        site="/site", target=TARGET,
        state=TargetState(Manifest(dict(SITE), target=TARGET, deploy_id="prev"), "v", None),
        entries=new, options=Options(now=NOW, **opts), tool_version="test",
    )


SCATTERED = ["s0/p0/index.html", "s1/p1/index.html", "s2/p2/index.html", "s3/p3/index.html"]


def charged(plan) -> tuple[float, int]:
    sol = plan.invalidation.solution
    return sol.charge_usd, sol.paid_paths


def test_a_plan_within_the_cap_is_not_refused():
    free = plan_with(SCATTERED, paths_used=1000)
    assert free.invalidation.paths == tuple(f"/{k[:-len('index.html')]}*" for k in SCATTERED)
    assert charged(free) == (0.02, 4)  # one wildcard a page (its two URLs), all paid
    plan = plan_with(SCATTERED, paths_used=1000, max_cost=0.02)
    assert plan.invalidation.paths == free.invalidation.paths


def test_over_the_cap_is_refused_saying_what_fits():
    with pytest.raises(OverCostCap) as caught:
        plan_with(SCATTERED, paths_used=1000, max_cost=0.01)
    message = str(caught.value)
    assert "\n" not in message and caught.value.exit_code == 6
    assert message.startswith("this deploy would be charged $0.02 by AWS (4 paid paths), above "
                              "--max-cost $0.01; nothing was written. Within it: ")
    # Two paths cannot cover four sections without "/s*" (every page of them: 40 misses).
    assert message.endswith("Within it: 1 path (1 wildcard), charged $0.005, 40 needless misses "
                            "(estimated $0.04). Raise --max-cost, or deploy when the month's "
                            "free paths allow")


def test_free_paths_left_count_toward_what_fits():
    # 3 free paths, 4 pages: one paid path over a cap of $0; within it, "/s*" is free
    with pytest.raises(OverCostCap, match=r"charged \$0.005 by AWS \(1 paid path\).*Within "
                                          r"it: 1 path \(1 wildcard\), charged \$0.00, 40 "):
        plan_with(SCATTERED, paths_used=997, max_cost=0)


def test_nothing_fits_a_zero_cap_once_the_free_paths_are_gone():
    with pytest.raises(OverCostCap, match="No invalidation of these changes fits within it"):
        plan_with(SCATTERED, paths_used=1000, max_cost=0)


def test_the_cap_counts_every_distribution():
    with pytest.raises(OverCostCap, match=r"charged \$0.04 by AWS \(8 paid paths\)"):
        plan_with(SCATTERED, paths_used=1000, max_cost=0.03, distribution_ids=("E1", "E2"))


def test_no_change_no_charge_whatever_the_cap():
    plan = plan_with([], paths_used=1000, max_cost=0)
    assert not plan.has_work


def test_no_distribution_submits_nothing_so_nothing_is_charged_or_refused():
    """An S3 target planned without --distribution: its paths are listed, but nothing is
    submitted, so AWS bills nothing and no URL is missed; no cap refuses it, not even 0."""
    from planner.plan.render import plan_dict, to_text, totals

    dear = plan_with(SCATTERED, paths_used=1000)  # on E1: 4 paid paths, refused by a cap of 0
    assert charged(dear) == (0.02, 4)
    plan = plan_with(SCATTERED, paths_used=1000, max_cost=0, distribution_ids=())
    inv = plan.invalidation
    assert inv.paths == dear.invalidation.paths and inv.distribution_ids == ()
    sol = inv.solution
    assert (sol.charge_usd, sol.paid_paths, sol.free_paths_used) == (0.0, 0, 0)
    assert (sol.miss_cost_usd, sol.cost_usd) == (0.0, 0.0)
    for alt in inv.alternatives:
        assert alt.solution is not None and alt.solution.charge_usd == 0.0, alt
        assert alt.solution.paid_paths == 0 and alt.solution.cost_usd == 0.0, alt
    assert totals(plan) == {"paths": 0, "paid_paths": 0, "charge_usd": 0.0,
                            "collateral_urls": 0, "miss_cost_usd": 0.0, "cost_usd": 0.0}
    doc = plan_dict(plan)
    assert doc["invalidation"]["charge_usd"] == 0.0 and doc["cost"]["charge_usd"] == 0.0
    text = to_text(plan)
    assert "on no distribution given (not submitted)" in text
    assert "AWS charge: $0.00 (0 paid paths)" in text


urls = st.lists(
    st.sampled_from([f"/{a}/{b}/{c}" for a in "xyz" for b in "pq" for c in "123"]),
    min_size=1, max_size=18, unique=True,
)


@settings(max_examples=120, deadline=None)
@given(universe=urls, data=st.data(), free_left=st.integers(0, 6),
       cap=st.sampled_from([0.0, 0.005, 0.01, 0.02, 0.05]), dists=st.integers(1, 2))
def test_what_fits_covers_every_change_within_the_cap(universe, data, free_left, cap, dists):
    changed = data.draw(st.lists(st.sampled_from(universe), min_size=1, unique=True))
    model = CostModel(free_paths=free_left, free_left=free_left, distributions=dists)
    problem = Problem(frozenset(universe), frozenset(changed), model)
    fits = fewest_misses_within(problem, cap)
    allowed = (free_left + round(cap / PRICE)) // dists
    if allowed < 1:
        assert fits is None
        return
    assert fits is not None
    assert fits.charge_usd <= cap + 1e-12
    assert len(fits.paths) <= allowed
    assert all(any(covers(p, u) for p in fits.paths) for u in changed)
    # no plan of at most that many paths misses less (checked against the exact search on
    # a model where every path beyond them is dearer than all misses together)
    unconstrained = minimize(problem)
    if len(unconstrained.paths) <= allowed:
        assert fits.collateral_urls <= unconstrained.collateral_urls
