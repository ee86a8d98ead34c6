"""--pace price: the shadow price of a free path, chosen so that the paths expected until the
month's end fit in the free paths left (pure), learned from the ledger's frontiers, and the
plan made at it."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from manifests.stores import LocalStore
from planner import ledger
from planner.core.pacing import PastDeploy, merged_frontier, price_grid, shadow_price
from planner.plan.compute import Options, TargetState, compute_plan
from planner.plan.render import plan_dict, to_text

PRICE = 0.005
GRID = price_grid(PRICE)
NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)  # 26 days left after today


def paths_falling(at_zero: int, halving: int = 2):
    """A deploy whose paths fall as the price rises: ``at_zero`` at a price of 0, divided by
    ``halving`` at each step of the grid."""
    def paths(lam: float) -> int:
        steps = GRID.index(lam)
        return max(1, at_zero // halving**steps)
    return paths


def test_the_grid_runs_from_nothing_to_the_price():
    assert GRID[0] == 0 and GRID[-1] == PRICE and list(GRID) == sorted(GRID)
    assert GRID[1] == PRICE / 4096


def test_a_small_deploy_with_plenty_left_spends_freely():
    sp = shadow_price(1000, NOW, (), lambda lam: 2, 0, GRID)
    assert sp.value == 0.0
    # 2 now, and 2 a day for the 26 days left and the rest of today
    assert sp.why.startswith("no history: a deploy a day like this one, 1.0 a day; 55 paths "
                             "expected by the month's end")


def test_without_history_a_big_deploy_is_priced_as_if_every_day_were_like_it():
    this = paths_falling(400)  # 400, 200, 100, 50, 25, ...
    sp = shadow_price(1000, NOW, (), this, 0, GRID)
    # 27.5 deploys (this one, 26 days and the rest of today) must fit in 1,000: 36 paths each
    # at most -> 25 (step 4)
    assert sp.value == GRID[4]
    assert this(sp.value) * 27.5 <= 1000 < this(GRID[3]) * 27.5


def history(n: int, days: int, frontier) -> tuple[PastDeploy, ...]:
    """``n`` deploys over the last ``days`` days (today included), each with ``frontier``."""
    return tuple(
        PastDeploy(NOW - dt.timedelta(days=i % days), frontier[0][1], tuple(frontier))
        for i in range(n)
    )


def test_history_gives_the_rate_and_the_paths_at_each_price():
    # 40 deploys in 10 days (4 a day), each 30 paths at 0, 10 at GRID[3], 2 at GRID[6]
    past = history(40, 10, [(0.0, 30), (GRID[3], 10), (GRID[6], 2)])
    sp = shadow_price(1000, NOW, past, lambda lam: 1, 0, GRID)
    # expected: 1 + 4 x 26.5 x paths(lam) <= 1000 -> paths <= 9.4: 10 is too many, 2 fits
    # (GRID[6]); but between the two, 93 % of the deploys to come could take 10 (1,000 - 213
    # of 1,061 - 213): this one takes the lower price (the mix, MIX_SHARE)
    assert sp.value == GRID[5]
    assert "40 deploys of this target in 10 days, 4.0 a day" in sp.why
    tighter = shadow_price(900, NOW, past, lambda lam: 1, 0, GRID)  # 81 %: not this one
    assert tighter.value == GRID[6]


def test_the_rest_of_the_account_counts_at_its_pace():
    past = history(5, 5, [(0.0, 4)])
    calm = shadow_price(1000, NOW, past, lambda lam: 4, 0, GRID)
    assert calm.value == 0.0
    # another tool used 800 paths in the 4.5 days of the month so far, for 26.5 more
    busy = shadow_price(200, NOW, past, paths_falling(4), 800, GRID)
    assert busy.value == GRID[-1]  # nothing fits: a free path costs what a paid one does
    assert "(4,711 by the rest of the account) for 200 free" in busy.why


def test_the_last_day_keeps_only_the_rest_of_the_day():
    last = dt.datetime(2026, 12, 31, 20, tzinfo=dt.UTC)
    past = history(100, 30, [(0.0, 50)])  # 16 in the window: 0.53 a day, 50 paths each
    # this deploy's 50, and half a day of 0.53 deploys a day: 63 paths
    assert shadow_price(70, last, past, lambda lam: 50, 0, GRID).value == 0.0
    assert shadow_price(60, last, past, paths_falling(50), 0, GRID).value > 0


def test_plan_and_deploy_agree_within_a_day():
    past = history(40, 10, [(0.0, 30), (GRID[3], 10), (GRID[6], 2)])
    morning = NOW.replace(hour=0, minute=1)
    night = NOW.replace(hour=23, minute=59)
    this = paths_falling(40)
    assert (shadow_price(1000, morning, past, this, 100, GRID)
            == shadow_price(1000, night, past, this, 100, GRID))


@settings(max_examples=300, deadline=None)
@given(
    free=st.integers(0, 1500),
    at_zero=st.integers(1, 3000),
    halving=st.integers(1, 4),
    n=st.integers(0, 30),
    days=st.integers(1, 30),
    other=st.integers(0, 2000),
    day=st.integers(1, 31),
)
def test_bisection_finds_the_lowest_price_that_fits(free, at_zero, halving, n, days, other, day):
    now = NOW.replace(day=day)
    this = paths_falling(at_zero, halving)
    past = history(n, days, [(lam, this(lam)) for lam in GRID[::3]])
    past = tuple(PastDeploy(h.when.replace(day=max(1, min(day, h.when.day))), h.submitted,
                            h.frontier) for h in past if h.when <= now)
    sp = shadow_price(free, now, past, this, other, GRID)

    today, days_left, elapsed = now.date(), 31 - day + 0.5, day - 0.5  # December: 31 days
    recent = [h for h in past if 0 <= (today - h.when.date()).days < 30]

    def need(lam: float) -> float:  # the expectation written out, each price tried in turn
        if recent:
            span = (today - min(h.when.date() for h in recent)).days + 1
            n = len(recent) / span * days_left
            each = [h.paths_at(lam) for h in recent]
            mean = sum(each) / len(each)
            sd = (sum((x - mean) ** 2 for x in each) / len(each)) ** 0.5
            future = n * mean + sd * n ** 0.5
        else:
            future = days_left * this(lam)
        return this(lam) + future + other / elapsed * days_left

    def fits(lam: float) -> bool:
        return need(lam) <= free

    first = next((i for i, lam in enumerate(GRID) if fits(lam)), len(GRID) - 1)
    if first > 0 and fits(GRID[first]) and need(GRID[first - 1]) > need(GRID[first]) and (
            (free - need(GRID[first])) / (need(GRID[first - 1]) - need(GRID[first])) >= 0.9):
        first -= 1  # the mix: nearly every deploy to come could take the lower price
    assert sp.value == GRID[first]


def test_paths_at_reads_the_dearest_price_not_above():
    p = PastDeploy(NOW, 30, ((0.0, 30), (GRID[3], 10), (GRID[6], 2)))
    assert [p.paths_at(x) for x in (0.0, GRID[2], GRID[3], GRID[5], GRID[6], PRICE)] == \
        [30, 30, 10, 10, 2, 2]
    assert PastDeploy(NOW, 7, ()).paths_at(PRICE) == 7  # no frontier: what it submitted


def test_merged_frontier_sums_the_groups_at_each_price():
    a = ((0.0, 10), (GRID[4], 4))
    b = ((0.0, 6), (GRID[2], 3))
    assert merged_frontier([a, b]) == ((0.0, 16), (GRID[2], 13), (GRID[4], 7))


# --- the plan ----------------------------------------------------------------------------------

HTML = "text/html; charset=utf-8"


def entry(h: str) -> Entry:
    return Entry(h.ljust(32, "0"), 10, HTML, "cc")


SITE = {f"docs/v{v}/p{j}/index.html": entry(f"{v}{j}") for v in range(5) for j in range(40)}


def plan_at(changed, past=(), **opts):
    new = dict(SITE, **{k: entry("f" + SITE[k].hash[:5]) for k in changed})
    return compute_plan(
        site="/site", target="s3://b",
        state=TargetState(Manifest(dict(SITE), target="s3://b", deploy_id="prev"), "v", None),
        entries=new, options=Options(now=NOW, distribution_ids=("E1",), **opts),
        tool_version="test", pace_history=past,
    )


# every page of one version: 40 pages, 80 URLs; "/docs/v1/*" covers them with no miss
ONE_VERSION = [f"docs/v1/p{j}/index.html" for j in range(40)]
# scattered pages in every version: a wildcard per version hits 35 pages it need not
SCATTERED = [f"docs/v{v}/p{j}/index.html" for v in range(5) for j in (1, 7, 13)]


def test_pace_price_is_the_default_and_says_where_its_price_came_from():
    plan = plan_at(SCATTERED, paths_used=0)
    inv = plan.invalidation
    assert inv.budget.pace == "price" and inv.shadow is not None
    assert inv.frontier and inv.frontier[0][0] == 0.0
    text = to_text(plan)
    assert "shadow price of a free path: " in text and "no history" in text
    doc = plan_dict(plan)["invalidation"]
    assert doc["budget"]["shadow_price_usd"] == inv.shadow.value
    assert doc["budget"]["frontier"][0] == {"shadow_price_usd": 0.0, "paths": inv.frontier[0][1]}
    sol = inv.solution
    assert sol.cost_usd == pytest.approx(sol.charge_usd + sol.miss_cost_usd + sol.shadow_usd)


def test_a_busy_history_makes_a_free_path_dear_enough_to_take_misses():
    cheap = plan_at(SCATTERED, paths_used=0)
    assert cheap.invalidation.shadow.value == 0.0  # no history, a month of such deploys fits
    assert cheap.invalidation.solution.collateral_urls == 0  # a free path is free: no miss
    # 8 deploys a day, each wanting 30 paths: the month cannot afford them
    past = history(80, 10, [(0.0, 30), (GRID[6], 15), (GRID[9], 5), (GRID[12], 1)])
    dear = plan_at(SCATTERED, past, paths_used=0)
    assert dear.invalidation.shadow.value > cheap.invalidation.shadow.value
    assert len(dear.invalidation.paths) < len(cheap.invalidation.paths)
    assert dear.invalidation.solution.collateral_urls > cheap.invalidation.solution.collateral_urls
    assert dear.invalidation.solution.paid_paths == 0  # free paths left: nothing billed


def test_paths_used_by_this_target_are_not_counted_twice():
    # The month's 300 paths so far are this target's own: its history already expects them.
    past = history(10, 4, [(0.0, 30)])
    mine = plan_at(ONE_VERSION, past, paths_used=300)
    assert "(0 by the rest of the account)" in mine.invalidation.shadow.why


def test_even_and_none_keep_their_rules():
    for pace in ("even", "none"):
        plan = plan_at(SCATTERED, paths_used=0, pace=pace)
        assert plan.invalidation.shadow is None and plan.invalidation.frontier == ()


# --- the ledger keeps the frontier; the history reads it --------------------------------------


def test_the_ledger_records_the_frontier_and_the_history_reads_it(tmp_path):
    store = LocalStore(str(tmp_path))
    plan = plan_at(SCATTERED, paths_used=0)
    record = ledger.complete(ledger.draft(plan, NOW - dt.timedelta(days=1)), {"E1": "I1"},
                             NOW - dt.timedelta(days=1), resumed=False)
    assert record["frontier"] == [list(p) for p in plan.invalidation.frontier]
    assert record["shadow_price_usd"] == plan.invalidation.shadow.value
    assert ledger.write(store, record)
    [past] = ledger.pace_history(store, NOW)
    assert past.frontier == plan.invalidation.frontier
    assert past.submitted == len(plan.invalidation.paths)


def test_a_record_without_or_with_a_bad_frontier_counts_what_it_submitted(tmp_path):
    store = LocalStore(str(tmp_path))
    plan = plan_at(SCATTERED, paths_used=0)
    for i, frontier in enumerate([None, "junk", [[0.1, 5], [0.0, 9]], [[-1, 3]]]):
        record = ledger.complete(ledger.draft(plan, NOW - dt.timedelta(hours=i + 1)), {"E1": "I"},
                                 NOW, resumed=False)
        if frontier is None:
            record.pop("frontier")
        else:
            record["frontier"] = frontier
        assert ledger.write(store, record)
    past = ledger.pace_history(store, NOW)
    assert len(past) == 4 and all(p.frontier == () for p in past)
    assert all(p.paths_at(PRICE) == p.submitted for p in past)


def test_history_leaves_out_old_deploys_and_reads_last_month_early_in_a_month(tmp_path):
    store = LocalStore(str(tmp_path))
    plan = plan_at(SCATTERED, paths_used=0)
    now = dt.datetime(2026, 12, 3, tzinfo=dt.UTC)
    for days in (1, 10, 29, 31, 45):
        when = now - dt.timedelta(days=days)
        rec = ledger.complete(ledger.draft(plan, when), {"E1": "I"}, when, resumed=False)
        assert ledger.write(store, rec)
    past = ledger.pace_history(store, now)
    assert sorted((now - p.when).days for p in past) == [1, 10, 29]
    json.dumps([p.frontier for p in past])
