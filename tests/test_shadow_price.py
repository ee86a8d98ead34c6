"""--pace price: each deploy takes the plan whose misses, plus the least cost of the month's
deploys to come with the free paths it leaves, are the lowest (pure), learned from the
ledger's frontiers; and the plan made at the shadow price of that plan."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from manifests.stores import LocalStore
from planner import ledger
from planner.core.pacing import (
    AccountInvalidations,
    Future,
    InvalidationCount,
    PastDeploy,
    lower_hull,
    merged_frontier,
    others_pace,
    point_at,
    price_grid,
    Usage,
    shadow_price,
    usage_from,
)
from planner.plan.compute import Options, TargetState, compute_plan, others_daily
from planner.plan.render import plan_dict, to_text

PRICE = 0.005
GRID = price_grid(PRICE)
NOW = dt.datetime(2026, 12, 5, 12, tzinfo=dt.UTC)  # 26 days left after today


MISS = PRICE / 1000


def deploy_like(*plans: tuple[int, int]) -> tuple[tuple[float, int, int], ...]:
    """A frontier with ``plans`` as (paths, misses), fewest misses first, at the grid's
    prices from 0 (each price after the plans run out takes the last plan)."""
    out = []
    for i, lam in enumerate(GRID):
        p, m = plans[min(i, len(plans) - 1)]
        out.append((lam, p, m))
    return tuple(out)


def test_the_grid_runs_from_nothing_to_the_price():
    assert GRID[0] == 0 and GRID[-1] == PRICE and list(GRID) == sorted(GRID)
    assert GRID[1] == PRICE / 4096


def test_a_small_deploy_with_plenty_left_takes_the_plan_without_misses():
    this = deploy_like((20, 0), (2, 40), (1, 400))
    sp = shadow_price(1000, NOW, (), this, 0, PRICE, MISS)
    assert sp.value == 0.0 and sp.worth == 0.0
    # 20 now, and 20 a day for the 26 days left and the rest of today
    assert sp.why.startswith("no history: a deploy a day like this one, 1.0 a day; 550 paths "
                             "expected by the month's end")


def test_without_history_a_big_deploy_is_priced_as_if_every_day_were_like_it():
    this = deploy_like((100, 0), (25, 50), (5, 250), (1, 2000))
    # 27.5 deploys like this one (it, 26 days, the rest of today): 2,750 paths at 100 each
    plenty = shadow_price(3000, NOW, (), this, 0, PRICE, MISS)
    assert plenty.value == 0.0 and plenty.worth == 0.0
    # from 1,000 they cannot all take 100, and 25 each fit: a free path left is worth what
    # 100 instead of 25 saves a path (50 misses / 75 paths), and this one takes 25
    sp = shadow_price(1000, NOW, (), this, 0, PRICE, MISS)
    assert [p for p in this if p[0] == sp.value][0][1:] == (25, 50)
    assert sp.worth == pytest.approx(MISS * 50 / 75)


def history(n: int, days: int, frontier) -> tuple[PastDeploy, ...]:
    """``n`` deploys over the last ``days`` days (today included), each with ``frontier``."""
    return tuple(
        PastDeploy(NOW - dt.timedelta(days=i % days), frontier[0][1], tuple(frontier))
        for i in range(n)
    )


def test_history_gives_the_rate_and_the_plans_of_the_deploys_to_come():
    # 80 deploys in 10 days: (80 + 1 + 1) / 10.5 = 7.8 a day, 7.8 x 26.5 = 207 to come, each
    # 10 paths without a miss or 2 with 20 misses (2.5 misses a path)
    past = history(80, 10, deploy_like((10, 0), (2, 20)))
    one = deploy_like((1, 0))
    assert "80 deploys of this target in 10 days, 7.8 a day" in \
        shadow_price(3000, NOW, past, one, 0, PRICE, MISS).why
    assert shadow_price(3000, NOW, past, one, 0, PRICE, MISS).worth == 0.0  # 2,070 fit
    tight = shadow_price(1500, NOW, past, one, 0, PRICE, MISS)
    assert tight.worth == pytest.approx(MISS * 2.5)
    # a deploy that saves 3 misses a path takes its paths; one that saves 2 does not
    saves3 = deploy_like((11, 0), (1, 30))
    saves2 = deploy_like((11, 0), (1, 20))
    assert shadow_price(1500, NOW, past, saves3, 0, PRICE, MISS).value == 0.0
    assert shadow_price(1500, NOW, past, saves2, 0, PRICE, MISS).value > 0.0


def test_a_record_without_misses_counts_in_the_rate_only():
    old = history(40, 10, [(0.0, 30), (GRID[3], 10)])  # the first version's records
    assert all(p.options() == () for p in old)
    this = deploy_like((4, 0), (1, 10))
    sp = shadow_price(1000, NOW, old, this, 0, PRICE, MISS)
    # 40 deploys in 10 days: 4 a day, each like this one (the only sample): 4 x 26.5 x 4
    assert "4.0 a day; 428 paths expected" in sp.why and sp.value == 0.0


def test_the_rest_of_the_account_counts_at_its_pace_today_included():
    past = history(5, 5, deploy_like((4, 0), (1, 100)))
    this = deploy_like((4, 0), (1, 100))
    calm = shadow_price(1000, NOW, past, this, 0, PRICE, MISS)
    assert calm.value == 0.0
    # another tool used 800 paths in the 4.5 days of the month so far: 177.8 a day for the
    # 27 days left, today included; nothing fits: a path is worth what a paid one costs
    busy = shadow_price(1000, NOW, past, this, 800, PRICE, MISS)
    assert busy.worth == PRICE and busy.value > 0
    assert "(4,800 by the rest of the account) for 1,000 free" in busy.why


def test_a_burst_of_the_rest_of_the_account_is_not_taken_for_its_pace():
    # 700 paths on the 1st, none since: with the paths per day known, its pace over the
    # last week is nothing; from the month's total alone, it is 156 a day
    past = history(5, 5, deploy_like((4, 0), (1, 100)))
    this = deploy_like((4, 0), (1, 100))
    burst = (700, 0, 0, 0, 0)
    assert others_pace(700, burst, NOW.replace(day=9)) == 0.0
    assert others_pace(700, (), NOW) == pytest.approx(700 / 4.5)
    assert others_pace(700, burst, NOW) == pytest.approx(700 / 4.5)  # still in the week
    known = shadow_price(250, NOW.replace(day=9), past, this, 700, PRICE, MISS, burst)
    assert known.value == 0.0 and "(0 by the rest of the account)" in known.why
    assert shadow_price(250, NOW.replace(day=9), past, this, 700, PRICE, MISS).value > 0


def test_a_burst_is_a_one_off_not_a_pace():
    # 700 paths on the 1st, none since, 300 free left: 700 a day to the month's end would
    # take them all, so the 1st counts as the month's next largest day (none) while it has
    # not come again; without the free paths left, as before, it is a pace within the week
    burst = (700,)
    for day in (1, 2, 5):
        now = NOW.replace(day=day)
        assert others_pace(700, burst, now, 300) == 0.0
        assert others_pace(700, burst, now) == pytest.approx(700 / (day - 0.5))
    past = history(5, 5, deploy_like((4, 0), (1, 100)))
    this = deploy_like((4, 0), (1, 100))
    sp = shadow_price(250, NOW.replace(day=2), past, this, 700, PRICE, MISS, burst)
    assert sp.value == 0.0 and "(0 by the rest of the account)" in sp.why
    # over a steady pace the burst counts as the largest of the other days
    steady = (20, 20, 500, 20, 20)
    assert others_pace(580, steady, NOW, 300) == pytest.approx(100 / 4.5)
    # a day that, repeated, leaves free paths is a pace: 20 a day for 27 days is 540
    assert others_pace(60, (20, 20, 20), NOW.replace(day=3), 600) == pytest.approx(60 / 2.5)


def test_a_burst_that_comes_again_is_a_pace():
    # 300 paths every Monday (the 1st, 8th, 15th of a month starting on a Monday): the
    # first is a one-off until the second comes; then each counts whole in its week
    weekly = tuple(300 if i % 7 == 0 else 0 for i in range(15))
    assert others_pace(300, weekly[:7], NOW.replace(day=7), 400) == 0.0
    assert others_pace(600, weekly[:8], NOW.replace(day=8), 100) == pytest.approx(300 / 6.5)
    assert others_pace(900, weekly, NOW.replace(day=15), 100) == pytest.approx(300 / 6.5)


def test_a_weekly_cycle_is_kept_whole():
    # 50 paths a weekday, none at weekends: any 7 days hold 250, whatever the day of the week
    # (a window of 3 days would read a weekend on a Monday, three weekdays on a Friday); no
    # day is a burst, however few free paths are left
    cycle = tuple(0 if i % 7 in (5, 6) else 50 for i in range(21))
    for d in range(8, 22):
        for free in (900, 100):
            assert others_pace(sum(cycle[:d]), cycle[:d], NOW.replace(day=d), free) == \
                pytest.approx(250 / 6.5)


def test_the_last_day_keeps_only_the_rest_of_the_day():
    last = dt.datetime(2026, 12, 31, 20, tzinfo=dt.UTC)
    this = deploy_like((50, 0), (1, 1000))
    past = tuple(PastDeploy(last - dt.timedelta(days=i + 1), 50, this) for i in range(29))
    # (29 + 1 + 1) / 30.5 = 1.02 a day, half a day to come: 25 paths, and this one's 50
    plenty = shadow_price(80, last, past, this, 0, PRICE, MISS)
    assert plenty.value == 0.0 and plenty.worth == 0.0
    # short for the half deploy to come, this one still takes its 50: what may come is half a
    # deploy, what this one saves is sure
    short = shadow_price(60, last, past, this, 0, PRICE, MISS)
    assert short.value == 0.0 and short.worth > 0
    # 50 would be paid for: one path
    assert shadow_price(40, last, past, this, 0, PRICE, MISS).value > 0


def test_plan_and_deploy_agree_within_a_day():
    past = history(40, 10, deploy_like((30, 0), (10, 40), (2, 200)))
    morning = NOW.replace(hour=0, minute=1)
    night = NOW.replace(hour=23, minute=59)
    this = deploy_like((40, 0), (12, 30), (3, 300))
    for free in (100, 400, 900):
        assert (shadow_price(free, morning, past, this, 100, PRICE, MISS)
                == shadow_price(free, night, past, this, 100, PRICE, MISS))


def test_a_free_path_must_save_a_quarter_of_a_miss_while_the_month_runs():
    # Plenty left for the small deploys seen so far, but they do not show every kind of
    # deploy the month holds: 131 paths more to save 18 misses are not taken; 10 more to
    # save 10 are
    past = history(20, 10, deploy_like((1, 0)))
    sp = shadow_price(1000, NOW, past, deploy_like((135, 0), (4, 18)), 0, PRICE, MISS)
    assert sp.worth == 0.0 and sp.value > 0
    assert shadow_price(1000, NOW, past, deploy_like((20, 0), (10, 10)), 0, PRICE,
                        MISS).value == 0.0


def test_a_tie_takes_the_fewer_paths():
    # No history: the deploys to come are like this one, and when they cannot all take 30
    # paths a free path is worth exactly what this one's 28 more would save a path: a tie
    this = deploy_like((30, 0), (2, 28))
    sp = shadow_price(500, NOW, (), this, 0, PRICE, MISS)
    assert sp.worth == pytest.approx(MISS) and [p for p in this if p[0] == sp.value][0][1] == 2


plans = st.lists(st.tuples(st.integers(1, 60), st.integers(0, 3000)), min_size=1, max_size=6)


@settings(max_examples=300, deadline=None)
@given(samples=st.lists(plans, min_size=1, max_size=8), weight=st.floats(0.1, 20),
       room=st.floats(-200, 3000))
def test_the_future_is_priced_by_the_dual_of_its_knapsack(samples, weight, room):
    """Future.value against the dual written out: the most, over every price at which some
    sample's cheapest plan changes (and 0 and the price), of weight x the sum of each
    sample's cheapest plan at that price, less the price times the room."""
    future = Future.of(samples, weight, PRICE, MISS)
    candidates = {0.0, PRICE}
    for opts in samples:
        for (p1, m1) in opts:
            for (p2, m2) in opts:
                if p1 > p2 and m2 > m1 and MISS * (m2 - m1) / (p1 - p2) <= PRICE:
                    candidates.add(MISS * (m2 - m1) / (p1 - p2))

    def dual(mu: float) -> float:
        return weight * sum(min(MISS * m + mu * p for p, m in opts) for opts in samples) - mu * room

    best = max(dual(mu) for mu in candidates)
    cost, mu = future.value(room)
    assert cost == pytest.approx(best, rel=1e-9, abs=1e-12)
    assert 0 <= mu <= PRICE
    # less room never costs less, and the price of a path never falls as the room shrinks
    cost2, mu2 = future.value(room - 7)
    assert cost2 >= cost - 1e-12 and mu2 >= mu


def test_lower_hull_keeps_the_plans_some_price_makes_cheapest():
    # (5, 50) lies above the line from (1, 100) to (10, 0); (20, 0) is (10, 0) with more paths
    assert lower_hull([(1, 100), (5, 50), (10, 0), (20, 0), (3, 30)]) == [(10, 0), (3, 30), (1, 100)]
    assert lower_hull([(4, 4)]) == [(4, 4)]


def test_point_at_reads_the_dearest_price_not_above():
    frontier = ((0.0, 30, 0), (GRID[3], 10, 5), (GRID[6], 2, 50))
    assert [point_at(frontier, x)[1:] for x in (0.0, GRID[2], GRID[3], GRID[6], PRICE)] == \
        [(30, 0), (30, 0), (10, 5), (2, 50), (2, 50)]
    assert point_at(((0.0, 9), (0.1, 3)), 0.2) == (0.1, 3, 0)  # a first-version record
    assert PastDeploy(NOW, 30, frontier).options() == ((30, 0), (10, 5), (2, 50))


def test_merged_frontier_sums_the_groups_at_each_price():
    a = ((0.0, 10, 0), (GRID[4], 4, 6))
    b = ((0.0, 6, 0), (GRID[2], 3, 9))
    assert merged_frontier([a, b]) == ((0.0, 16, 0), (GRID[2], 13, 9), (GRID[4], 7, 15))


# --- the plan ----------------------------------------------------------------------------------

HTML = "text/html; charset=utf-8"


def entry(h: str) -> Entry:
    return Entry(h.ljust(32, "0"), 10, HTML, "cc")


SITE = {f"docs/v{v}/p{j}/index.html": entry(f"{v}{j}") for v in range(5) for j in range(40)}


def plan_at(changed, past=(), usage=None, **opts):
    new = dict(SITE, **{k: entry("f" + SITE[k].hash[:5]) for k in changed})
    opts.setdefault("now", NOW)
    return compute_plan(
        site="/site", target="s3://b",
        state=TargetState(Manifest(dict(SITE), target="s3://b", deploy_id="prev"), "v", None),
        entries=new, options=Options(distribution_ids=("E1",), **opts),
        tool_version="test", pace_history=past, usage=usage,
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
    assert doc["budget"]["frontier"][0] == {"shadow_price_usd": 0.0, "paths": inv.frontier[0][1],
                                            "misses": 0}
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
    assert all(p.options() == () for p in past)  # they count in the rate only


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


# --- the rest of the account, per day ----------------------------------------------------------


def test_cloudfronts_usage_tells_the_paths_per_day_of_the_month():
    def inv(day: int, paths: int, month: int = 12, done: bool = True) -> InvalidationCount:
        return InvalidationCount("E1", f"I{day}{month}", dt.datetime(2026, month, day, 9,
                                 tzinfo=dt.UTC), paths, 0, done)

    account = AccountInvalidations("2026-12", ("E1",),
                                   (inv(1, 5), inv(3, 7), inv(3, 1), inv(30, 9, 11, False)))
    usage = usage_from(account, ("E1",))
    assert usage.daily == (5, 0, 8) and usage.paths_used == 13  # November's is not this month's


def test_the_others_per_day_are_the_accounts_less_this_targets():
    usage = Usage("2026-12", 900, "cloudfront", daily=(700, 0, 100, 0, 100))
    mine = (PastDeploy(NOW.replace(day=3), 100, ()), PastDeploy(NOW, 40, ()),
            PastDeploy(NOW - dt.timedelta(days=10), 50, ()))  # November's: not this month's
    assert others_daily(usage, mine, NOW) == (700, 0, 0, 0, 60)
    assert others_daily(None, mine, NOW) == ()
    assert others_daily(Usage("2026-12", 900, "tool record"), mine, NOW) == ()


def test_a_plan_reads_the_others_burst_from_cloudfronts_days():
    # 700 paths of another tool on the 1st, none since: on the 9th its pace is nothing
    burst = Usage("2026-12", 700, "cloudfront", daily=(700,))
    ninth = NOW.replace(day=9)
    plan = plan_at(SCATTERED, usage=burst, now=ninth)
    assert "(0 by the rest of the account)" in plan.invalidation.shadow.why
    # --paths-used gives no days: the month's pace so far, 700 in 8.5 days for 23 days left
    plan = plan_at(SCATTERED, now=ninth, paths_used=700)
    assert "(1,894 by the rest of the account)" in plan.invalidation.shadow.why


def test_a_record_of_the_first_frontier_version_reads_without_misses(tmp_path):
    store = LocalStore(str(tmp_path))
    plan = plan_at(SCATTERED, paths_used=0)
    for i, frontier in enumerate([[[0.0, 9], [0.1, 3]], [[0.0, 9, 0], [0.1, 3]]]):
        record = ledger.complete(ledger.draft(plan, NOW - dt.timedelta(hours=i + 1)), {"E1": "I"},
                                 NOW, resumed=False)
        record["frontier"] = frontier
        assert ledger.write(store, record)
    old, mixed = sorted(ledger.pace_history(store, NOW), key=lambda p: p.when, reverse=True)
    assert old.frontier == ((0.0, 9), (0.1, 3)) and old.options() == ()
    assert mixed.frontier == ()  # points of two shapes: not a frontier this tool wrote
