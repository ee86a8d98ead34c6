"""The month simulator of tests/bench/bench_month.py (issue 16): its generator, its plumbing
into the real planning code, the deploy frontiers and the hindsight optimum."""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import os
import random
import sys
from types import SimpleNamespace
from typing import NamedTuple

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))

import month_sim as ms  # noqa: E402

UTC = dt.timezone.utc


# --- the bill and the hindsight optimum -------------------------------------------------------


@pytest.mark.parametrize(
    "paths, misses, free, expected",
    [
        (1000, 0, 1000, 0.0),  # every path free, no miss
        (1001, 0, 1000, 0.005),  # one paid path
        (0, 1000, 1000, 0.005),  # a thousand misses cost one path
        (310, 200, 300, 0.05 + 0.001),  # a smaller allowance (the account's other paths)
        (10, 0, 0, 0.05),  # nothing free
    ],
)
def test_the_bill_is_paid_paths_and_misses(paths, misses, free, expected):
    assert ms.bill(paths, misses, free) == pytest.approx(expected)


def brute_month(frontiers, free):
    """The least bill choosing one option per deploy, trying every combination."""
    return min(
        ms.bill(sum(p for p, _ in combo), sum(m for _, m in combo), free)
        for combo in itertools.product(*frontiers)
    )


@pytest.mark.parametrize("seed", range(300))
def test_hindsight_matches_brute_force_on_tiny_months(seed):
    rng = random.Random(seed)
    free = rng.randint(0, 12)  # small, so the cap on the state is crossed
    frontiers = [
        ms.pareto((rng.randint(0, 6), rng.randint(0, 3000)) for _ in range(rng.randint(1, 4)))
        for _ in range(rng.randint(1, 5))
    ]
    best = ms.hindsight(frontiers, free)
    assert best.bill == pytest.approx(brute_month(frontiers, free), abs=1e-12)
    chosen = [f[j] for f, j in zip(frontiers, best.choices)]  # the choices give that bill
    assert (best.paths, best.misses) == (sum(p for p, _ in chosen), sum(m for _, m in chosen))
    assert best.paid == max(0, best.paths - free)


@pytest.mark.parametrize(
    "frontiers, free, paths, misses",
    [
        # Room for both exact plans: no miss.
        ([[(1, 2000), (3, 0)], [(1, 2000), (3, 0)]], 6, 6, 0),
        # Room for one: the free paths go where they save the most misses.
        ([[(1, 500), (3, 0)], [(1, 2000), (3, 0)]], 4, 4, 500),
        # Beyond the allowance a path is worth 1,000 misses: 3 paid paths to save 3,500 misses,
        ([[(1, 3500), (4, 0)]], 1, 4, 0),
        # but not to save 2,500.
        ([[(1, 2500), (4, 0)]], 1, 1, 2500),
    ],
)
def test_hindsight_cases(frontiers, free, paths, misses):
    best = ms.hindsight(frontiers, free)
    assert (best.paths, best.misses) == (paths, misses)


def test_pareto_keeps_the_efficient_points_fewest_paths_first():
    assert ms.pareto([(3, 0), (1, 10), (2, 10), (3, 5), (1, 10), (5, 0)]) == [(1, 10), (3, 0)]


# --- a deploy's frontier --------------------------------------------------------------------------


def every_plan(universe, changed, max_wildcards=2):
    """(paths, misses) of every plan: up to ``max_wildcards`` wildcards on any prefix of a URL,
    exact paths for the changed URLs they leave."""
    prefixes = sorted({u[:n] for u in universe for n in range(1, len(u) + 1)})
    for r in range(max_wildcards + 1):
        for combo in itertools.combinations(prefixes, r):
            covered = {u for u in universe if any(u.startswith(p) for p in combo)}
            yield r + len(changed - covered), len(covered - changed)


@pytest.mark.parametrize("seed", range(40))
def test_frontier_holds_the_best_plan_at_every_price(seed):
    rng = random.Random(seed)
    universe = frozenset(
        "/" + "".join(rng.choice(["a", "b", "a/", "b/"]) for _ in range(rng.randint(1, 3)))
        for _ in range(rng.randint(2, 7))
    )
    changed = frozenset(rng.sample(sorted(universe), rng.randint(1, len(universe))))
    plans = set(every_plan(universe, changed))
    efficient = set(ms.pareto(plans))
    for hull in (False, True):
        front = ms.frontier(universe, changed, hull=hull)
        assert set(front) <= efficient  # each point a Pareto-efficient plan
        for lam in ms.LAMBDAS:  # and the best one at every price of the grid among them
            def cost(pm):
                return lam * pm[0] + ms.MISS_COST * pm[1]
            assert min(map(cost, front)) == pytest.approx(min(map(cost, plans)), abs=1e-12)


def test_frontier_of_a_deploy_that_changes_nothing():
    assert ms.frontier(frozenset({"/a"}), frozenset()) == [(0, 0)]


# --- months of deploys ----------------------------------------------------------------------------


@pytest.mark.parametrize("site", sorted(ms.SITES))
def test_a_seed_gives_the_same_months(site):
    a = ms.generate(site, 7, months=2, scale=0.25)
    assert a == ms.generate(site, 7, months=2, scale=0.25)
    assert a != ms.generate(site, 8, months=2, scale=0.25)


@pytest.mark.parametrize("site", sorted(ms.SITES))
def test_deploys_follow_one_another(site):
    months = ms.generate(site, 3, months=2, scale=0.25)
    deploys = [d for m in months for d in m.deploys]
    for d in deploys:
        assert d.before >= set(d.changed) | set(d.deleted)
        assert d.before.isdisjoint(d.added)
    for a, b in zip(deploys, deploys[1:]):
        assert b.before == a.after  # each deploy starts from the site the last one left
        assert a.when < b.when
    for m in months:
        assert {d.when.strftime("%Y-%m") for d in m.deploys} == {m.month}


def test_the_sites_deploy_at_their_rates():
    docs, release, blog = (ms.generate(s, 1)[0] for s in ("docs", "release", "blog"))
    assert len(docs.deploys) == 120  # four a day in June
    assert sorted({d.kind for d in docs.deploys}) == ["delete", "fix", "layout", "new page",
                                                    "tag rename"]
    assert 1800 <= sum(k.endswith(".html") for k in docs.deploys[0].before) <= 2800
    storms = [d for d in release.deploys if d.kind == "storm"]
    assert len(storms) == 15 and min(len(d.changed) for d in storms) >= 100
    assert len({d.when.day for d in storms}) == 3
    assert len(blog.deploys) == 30 and blog.other_paths == 700
    assert all(sum(k.startswith("posts/") for k in d.added) == 2 for d in blog.deploys)


# --- the real planning code -----------------------------------------------------------------------


@pytest.mark.parametrize("site", sorted(ms.SITES))
def test_the_plan_invalidates_what_the_simulator_says(site):
    month = ms.generate(site, 2, scale=0.25)[0]
    kinds = {}
    for d in month.deploys:
        kinds.setdefault(d.kind, d)
    for d in kinds.values():
        inv = ms.plan_deploy(d, "none", 0).invalidations[0]
        universe, changed = ms.problem_of(d)
        assert inv.changed == changed, d.kind
        assert inv.site_urls == len(universe), d.kind
        star = next(a.solution for a in inv.alternatives if a.name == "/*")
        assert star.collateral_urls == len(universe) - len(changed)  # what "/*" is scored


def fake_plans(monkeypatch, answers):
    """plan_deploy replaced: records (deploy, pace, paths used, history), answers
    ``answers(i)`` = (paths, misses)."""
    calls = []
    daily_seen = fake_plans.daily = []

    def plan_deploy(d, pace, used, history=(), daily=None):
        paths, misses = answers(len(calls))
        calls.append((d, pace, used, tuple(history)))
        daily_seen.append(tuple(daily or ()))
        inv = SimpleNamespace(paths=("/p",) * paths,
                              solution=SimpleNamespace(collateral_urls=misses),
                              frontier=((0.001, paths),))
        return SimpleNamespace(invalidations=(inv,))

    monkeypatch.setattr(ms, "plan_deploy", plan_deploy)
    return calls


def tiny_month(days=40, other=0):
    start = dt.datetime(2025, 6, 1, 9, tzinfo=UTC)
    site = frozenset({"index.html", "a.css"})
    deploys = tuple(ms.Deploy(start + dt.timedelta(days=i), site, ("a.css",))
                    for i in range(days))
    return ms.Month("tiny", "2025-06", 0, deploys, other)


def test_each_deploy_is_planned_with_the_paths_used_so_far(monkeypatch):
    calls = fake_plans(monkeypatch, lambda i: (i + 1, 10 * i))
    month = tiny_month(4, other=700)
    out = ms.run_policy(dataclasses.replace(month, other_upfront=True), "even")
    assert [used for _, _, used, _ in calls] == [700, 701, 703, 706]  # others' paths first
    assert [pace for _, pace, _, _ in calls] == ["even"] * 4
    assert (out.paths, out.misses, out.free) == (10, 60, 300)
    # by default the others spend theirs evenly over June's 30 days: by day i at 09:00,
    # 700 x (i + 0.375) / 30, with this site's 1, 2, 3 paths on top
    calls.clear()
    ms.run_policy(month, "even")
    assert [used for _, _, used, _ in calls] == [9, 32 + 1, 55 + 3, 79 + 6]
    # and per day of the month, as CloudFront's usage tells it: the others' and this site's
    assert [sum(d) for d in fake_plans.daily[-4:]] == [9, 32 + 1, 55 + 3, 79 + 6]
    assert fake_plans.daily[-1] == (23 + 1, 24 + 2, 23 + 3, 9)  # 23, 47, 70 by each midnight


def test_always_star_is_one_path_and_every_other_url_missed():
    d = ms.Deploy(dt.datetime(2025, 6, 1, tzinfo=UTC),
                  frozenset({"index.html", "a/index.html", "b.css"}), ("b.css",))
    quiet = ms.Deploy(d.when, d.before, ())
    out = ms.run_policy(ms.Month("t", "2025-06", 0, (d, quiet)), "/*")
    assert out.per_deploy == [(1, 4), (0, 0)]  # 5 URLs, 1 changed; nothing to invalidate


def test_the_price_policy_is_handed_the_last_31_days(monkeypatch):
    class PastDeploy(NamedTuple):
        when: dt.datetime
        submitted: int
        frontier: tuple

    monkeypatch.setattr(ms, "price_available", lambda: None)
    monkeypatch.setattr(ms, "pacing", SimpleNamespace(PastDeploy=PastDeploy))
    calls = fake_plans(monkeypatch, lambda i: (1, 0))
    month = tiny_month(40)
    earlier = [PastDeploy(month.deploys[0].when - dt.timedelta(days=d), 5, ((0.001, 5),))
               for d in (40, 2)]
    out = ms.run_policy(month, "price", history=earlier)
    histories = [h for _, _, _, h in calls]
    assert histories[0] == (earlier[1],)  # 40 days ago is out of the window
    assert [p.when for p in histories[35]][0] == month.deploys[4].when  # 31 days back
    assert len(histories[35]) == 31
    assert out.history[2:] == [PastDeploy(d.when, 1, ((0.001, 1),)) for d in month.deploys]


def test_the_price_policy_skips_itself_without_the_price_pace():
    reason = ms.price_available()
    if reason is None:
        pytest.skip("the planning code has the price pace")
    out = ms.run_policy(tiny_month(2), "price")
    assert out.skipped == reason and out.per_deploy == []
