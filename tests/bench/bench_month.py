"""Benchmark: months of deploys planned by the tool under each pacing policy, scored by the
month's bill against the hindsight optimum (issue 16).

Usage::

    .venv/bin/python tests/bench/bench_month.py [--quick] [--seed 1] [--months 1]
        [--sites docs,release,blog] [--policies none,even,/*,price] [--timing-repeat 3]
        [--no-timing] [--hull]

What it does (the pieces are in ``tests/bench/month_sim.py``)
------------------------------------------------------------
1. Generates, seeded, ``--months`` consecutive months of deploys of each site:

   - ``docs``: a busy documentation site (~2,000 pages in three versions), four deploys a
     day: fixes to a few pages (often backported to the older versions), new and deleted
     pages (the section's navigation changes), three tag renames and two layout changes
     (every page) a month;
   - ``release``: a product site (~1,200 pages), two small deploys a day and three storm days
     of five deploys changing hundreds of pages across the site;
   - ``blog``: one new post a day (the post added; the home page and its pagination, the
     post's tag pages and feeds, the previous post and a few related ones changed), on an
     account whose other distributions use 700 of the month's 1,000 free paths, evenly over
     the month (``--others-upfront``: all before its first deploy).

2. Plans every deploy with the real planning code (``planner.plan.compute.compute_plan``,
   one distribution, the deploy's time as the clock, the account's paths so far this month,
   in all and per day, as CloudFront's usage) under each policy: ``--pace none``, ``--pace even``, ``--pace price`` (the
   shadow price of issue 16, handed the target's deploys of the last 31 days; skipped, saying
   so, while the planning code has none), and always ``/*`` (not planned: one path, every
   cached URL but the changed ones a needless miss).
3. Scores the month: bill = $0.005 x max(0, paths - free paths) + $0.000005 x needless misses.
4. The hindsight optimum: each deploy's options (paths, misses) from the minimizer at a grid
   of prices per path (``--hull``: every vertex of its convex frontier, slower), then the
   cheapest month choosing one option per deploy (a dynamic programme over the paths used
   so far).
5. Times the planning of one deploy at 100,000 URLs with 10,000 changed, per policy (median
   of ``--timing-repeat``, the cyclic garbage collector off as ``planner plan`` runs).

Prints one JSON line per month, one JSON line for the timing, then a summary table (each
policy's bill, paid paths and ratio to the hindsight optimum; ``!`` where a policy paid for
paths in a month where the optimum paid none) and the goals of issue 16 for the default
policy. ``--quick``: sites at a quarter of their size, one timing run at 20,000 URLs.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import gc
import json
import os
import random
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tabulate import tabulate  # noqa: E402

import month_sim as ms  # noqa: E402
from planner.plan.compute import Options  # noqa: E402

GOAL_RATIO = 1.25
GOAL_SECONDS = 2.0


def ratio(policy: float, best: float) -> float | None:
    """policy / best; 1.0 when both are nothing; None (unbounded) when only the optimum is."""
    if best > 0:
        return policy / best
    return 1.0 if policy <= 0 else None


def run_month(month: ms.Month, policies: list[str], history: list,
              hull: bool = False) -> tuple[dict, list]:
    """One month: every policy and the hindsight optimum, as the JSON line's dict; and the
    price policy's history to hand the next month."""
    started = time.perf_counter()
    problems = [ms.problem_of(d) for d in month.deploys]
    frontiers = [ms.frontier(u, c, hull=hull) for u, c in problems]
    frontier_s = time.perf_counter() - started
    t = time.perf_counter()
    best = ms.hindsight(frontiers, ms.free_paths(month))
    dp_s = time.perf_counter() - t
    line: dict = {
        "site": month.site, "month": month.month, "seed": month.seed,
        "deploys": len(month.deploys),
        "site_urls": len(problems[0][0]) if problems else 0,
        "changed_urls": sum(len(c) for _, c in problems),
        "other_paths": month.other_paths,
        "hindsight": {"options": "hull" if hull else "grid", "bill_usd": round(best.bill, 6),
                      "paid_paths": best.paid, "paths": best.paths, "misses": best.misses},
        "policies": {},
        "seconds": {"frontiers": round(frontier_s, 2), "hindsight": round(dp_s, 3)},
    }
    next_history = history
    for policy in policies:
        t = time.perf_counter()
        out = ms.run_policy(month, policy, problems, history if policy == "price" else ())
        line["seconds"][policy] = round(time.perf_counter() - t, 2)
        if out.skipped:
            line["policies"][policy] = {"skipped": out.skipped}
            continue
        if policy == "price":
            next_history = out.history
        r = ratio(out.bill, best.bill)
        line["policies"][policy] = {
            "bill_usd": round(out.bill, 6), "paid_paths": out.paid, "paths": out.paths,
            "misses": out.misses, "ratio": None if r is None else round(r, 3),
            "pays_where_hindsight_pays_none": out.paid > 0 and best.paid == 0,
        }
    line["seconds"]["total"] = round(time.perf_counter() - started, 2)
    return line, next_history


def big_deploy(urls: int, changed_urls: int, seed: int) -> ms.Deploy:
    """A deploy of a site of ``urls`` URLs (pages, two URLs each, in 14 sections of groups)
    changing ``changed_urls`` of them: two whole groups, the rest scattered."""
    rng = random.Random(seed)
    pages = [f"s{s}/g{g}/{rng.choice(ms.WORDS)}-{i}/index.html"
             for i, (s, g) in enumerate((i % 14, i % 97) for i in range(urls // 2))]
    pages.sort()
    by_group: dict[str, list[str]] = {}
    for p in pages:
        by_group.setdefault(p.rsplit("/", 2)[0], []).append(p)
    want = changed_urls // 2
    chosen: set[str] = set()
    for g in sorted(by_group)[:2]:
        chosen.update(by_group[g][: want - len(chosen)])
    rest = [p for p in pages if p not in chosen]
    chosen.update(rng.sample(rest, want - len(chosen)))
    when = dt.datetime(2025, 6, 15, 12, tzinfo=dt.timezone.utc)
    return ms.Deploy(when, frozenset(pages), tuple(sorted(chosen)), kind="timing")


def timing(policies: list[str], urls: int, changed: int, repeat: int, history: list) -> dict:
    d = big_deploy(urls, changed, 100_000)
    universe, must = ms.problem_of(d)
    out: dict = {"timing": {"urls": len(universe), "changed_urls": len(must), "repeat": repeat,
                            "paths_used": 400, "goal_s": GOAL_SECONDS}, "seconds": {}}
    gc.disable()
    try:
        for policy in policies:
            if policy == "/*":
                out["seconds"][policy] = None  # nothing to plan
                continue
            if policy == "price" and ms.price_available():
                out["seconds"][policy] = None
                continue
            recent = [p for p in history if d.when - p.when <= dt.timedelta(days=31)]
            times = []
            for _ in range(repeat):
                t = time.perf_counter()
                plan = ms.plan_deploy(d, policy, 400, recent)
                times.append(time.perf_counter() - t)
                gc.collect()
            inv = plan.invalidations[0]
            out["seconds"][policy] = round(statistics.median(times), 3)
            out.setdefault("plans", {})[policy] = {"paths": len(inv.paths),
                                                   "misses": inv.solution.collateral_urls,
                                                   "exact": inv.solution.exact}
    finally:
        gc.enable()
    return out


def cell(p: dict) -> str:
    if "skipped" in p:
        return "skipped"
    r = "unbounded" if p["ratio"] is None else f"{p['ratio']:.2f}x"
    flag = " !" if p["pays_where_hindsight_pays_none"] else ""
    return f"${p['bill_usd']:.4f} ({p['paid_paths']} paid) = {r}{flag}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true",
                    help="sites at a quarter of their size; one timing run at 20,000 URLs")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--months", type=int, default=1, help="consecutive months per site")
    ap.add_argument("--sites", default=",".join(ms.SITES))
    ap.add_argument("--policies", default=",".join(ms.POLICIES))
    ap.add_argument("--timing-repeat", type=int, default=3)
    ap.add_argument("--others-upfront", action="store_true",
                    help="the account's other paths all spent before the first deploy "
                         "(default: evenly over the month)")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--hull", action="store_true",
                    help="hindsight over every vertex of each deploy's frontier (slower) "
                         "instead of the plans at a grid of prices")
    args = ap.parse_args()
    policies = [p for p in args.policies.split(",") if p]
    sites = [s for s in args.sites.split(",") if s]
    for name, known in (("policy", ms.POLICIES), ("site", ms.SITES)):
        bad = [x for x in (policies if name == "policy" else sites) if x not in known]
        if bad:
            ap.error(f"unknown {name} {', '.join(bad)} (known: {', '.join(known)})")
    scale = 0.25 if args.quick else 1.0
    default = Options().pace

    lines = []
    started = time.perf_counter()
    history: list = []
    for site in sites:
        history = []  # a new target: the price pace starts from its prior
        for month in ms.generate(site, args.seed, args.months, scale):
            if args.others_upfront:
                month = dataclasses.replace(month, other_upfront=True)
            print(f"{site} {month.month}: {len(month.deploys)} deploys...", file=sys.stderr)
            line, history = run_month(month, policies, history, args.hull)
            print(json.dumps(line), flush=True)
            lines.append(line)
    simulated = time.perf_counter() - started

    timed = None
    if not args.no_timing:
        urls, changed = (20_000, 2_000) if args.quick else (100_000, 10_000)
        repeat = 1 if args.quick else args.timing_repeat
        print(f"timing one deploy at {urls:,} URLs...", file=sys.stderr)
        timed = timing(policies, urls, changed, repeat, history)
        print(json.dumps(timed), flush=True)

    headers = ["month", "deploys", *policies, "hindsight"]
    rows = [[f"{ln['site']} {ln['month']}", ln["deploys"],
             *(cell(ln["policies"][p]) for p in policies),
             f"${ln['hindsight']['bill_usd']:.4f} ({ln['hindsight']['paid_paths']} paid)"]
            for ln in lines]
    print()
    print(tabulate(rows, headers=headers, disable_numparse=True))
    print(f"\nsimulated in {simulated:.1f} s ({sum(ln['deploys'] for ln in lines)} deploys, "
          f"{len(policies)} policies, seed {args.seed})")
    if default in policies:
        mine = [ln["policies"][default] for ln in lines if "skipped" not in ln["policies"][default]]
        worst = [p["ratio"] for p in mine]
        worst_s = ("unbounded" if None in worst else f"{max(worst):.2f}x") if worst else "n/a"
        within = bool(worst) and None not in worst and max(worst) <= GOAL_RATIO
        never = not any(p["pays_where_hindsight_pays_none"] for p in mine)
        print(f"goals for the default policy ({default}): within {GOAL_RATIO}x of hindsight "
              f"every month: {'yes' if within else 'no'} (worst {worst_s}); never pays where "
              f"hindsight pays none: {'yes' if never else 'no'}", end="")
        if timed and timed["seconds"].get(default) is not None:
            s = timed["seconds"][default]
            print(f"; planning {s:.2f} s at {timed['timing']['urls']:,} URLs "
                  f"(goal < {GOAL_SECONDS:.0f} s): {'yes' if s < GOAL_SECONDS else 'no'}")
        else:
            print()


if __name__ == "__main__":
    main()
