"""Benchmark: planning the invalidations of two distributions that serve the target under
different URLs (one from the bucket's root, one with an origin path), against one.

Usage::

    python tests/bench/bench_groups.py [--keys 100000] [--changed 10000] [--seed 1]

What it does: a seeded site of ``--keys`` keys in 300 folders, ``--changed`` of them
changed, mapped to URLs two ways: ``/KEY`` by one distribution, and ``/site/KEY`` by the other,
either for every key (``same``) or for the first half of the folders only (``half``: its
origin path serves part of the target). For 1,000 and 5,000 free paths
(pace none), it times ``planner.plan.compute.plan_invalidations`` for one group, for two groups with
the allowance split in the order given only, and for two groups as the tool plans them (the
order given, then each group with the whole allowance and with none when a later group pays
or misses), and prints each one's total cost: what sharing the allowance costs in time, and
what it saves in dollars. The cyclic garbage collector is off, as ``planner plan`` runs.
"""

from __future__ import annotations

import argparse
import json
import gc
import random
import time

import planner.plan.compute as plan_module
from planner.plan.compute import Options, UrlGroup, plan_invalidations


def site(keys: int, changed: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    every = [f"d{i % 300}/s{i % 17}/page{i}.html" for i in range(keys)]
    return every, rng.sample(every, changed)


def timed(groups, changed, every, options) -> tuple[float, float]:
    start = time.perf_counter()
    invs = plan_invalidations(groups, changed, lambda: every, options, None, "bench")
    return time.perf_counter() - start, sum(i.solution.cost_usd for i in invs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--keys", type=int, default=100_000)
    ap.add_argument("--changed", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    every, changed = site(args.keys, args.changed, args.seed)
    root = UrlGroup(("EROOT",), lambda k: ("/" + k,))
    layouts = {
        "same": UrlGroup(("ESITE",), lambda k: ("/site/" + k,)),
        "half": UrlGroup(("ESITE",),
                         lambda k: ("/site/" + k,) if int(k.split("/")[0][1:]) < 150 else ()),
    }
    gc.disable()
    print(f"{args.keys} keys, {args.changed} changed")
    print(f"{'layout':>6} {'free':>6} {'one group':>16} {'two, in order':>20} {'two, shared':>20}")
    rows = []
    for layout, free in [(name, free) for name in layouts for free in (1000, 5000)]:
        sub = layouts[layout]
        options = Options(distribution_ids=("EROOT", "ESITE"), paths_used=0,
                          free_paths_per_month=free, pace="none")
        one = timed((root,), changed, every, options)
        searched = plan_module.MAX_GROUPS_SEARCHED
        plan_module.MAX_GROUPS_SEARCHED = 1  # the order given only
        try:
            in_order = timed((root, sub), changed, every, options)
        finally:
            plan_module.MAX_GROUPS_SEARCHED = searched
        shared = timed((root, sub), changed, every, options)
        print(f"{layout:>6} {free:>6} " + " ".join(f"{t:6.2f}s ${c:8.4f}".rjust(20 if i else 16)
                                       for i, (t, c) in enumerate((one, in_order, shared))))
        rows.append({"layout": layout, "free_paths": free,
                     **{f"{name}_s": round(t, 4) for name, (t, _) in
                        (("one_group", one), ("in_order", in_order), ("shared", shared))},
                     **{f"{name}_usd": round(c, 6) for name, (_, c) in
                        (("one_group", one), ("in_order", in_order), ("shared", shared))}})
    print(json.dumps({"keys": args.keys, "changed": args.changed, "seed": args.seed,
                      "cases": rows}))


if __name__ == "__main__":
    main()
