"""Benchmark: the first ``planner plan`` against a target another tool filled (a takeover),
against the same work done by ``xxh128sum`` and ``md5sum``.

Usage::

    python tests/bench/bench_takeover.py [--files 20000] [--total-mb 1024] [--dir PATH] [--repeat N]

The site is bench_plan.py's (generated once, seeded, in ``.bench/``). The target is a copy of
it made with ``cp -r`` (what rsync or ``aws s3 sync`` would leave, on the local backend), with
no manifest: every plan is a takeover. The plan writes nothing, so every round is the same
takeover. Timed, alternating, wall clock and CPU of each command and everything it waited for:

(a) ``planner plan SITE --target TARGET --format json``: walk and hash the build (xxh3), list
    the target (the local backend's ETag is the MD5 of each file: it reads all of them, where
    S3's listing gives ETags for free), recompute the ETag of every build file whose size
    matches (MD5, the file read again and checked against its xxh3), diff, render. Checked on
    every run: every file adopted, nothing uploaded.
(b) the anchor, the same three passes by the standard tools, one after another:
    ``find SITE | xargs xxh128sum``, ``find TARGET | xargs md5sum``, ``find SITE | xargs
    md5sum``.

Needs ``xxh128sum`` (apt-get install xxhash) and ``md5sum``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_plan import (  # noqa: E402 - the site generator and runners of the plan benchmark
    REPO,
    _cpu_model,
    _fail,
    _timed,
    bench_site,
    planner_cmd,
    site_stats,
)

ANCHOR = (
    'find "$1" -type f -print0 | xargs -0 xxh128sum > /dev/null && '
    'find "$2" -type f -print0 | xargs -0 md5sum > /dev/null && '
    'find "$1" -type f -print0 | xargs -0 md5sum > /dev/null'
)


def run_plan(site: str, target: str, n_files: int) -> tuple[float, float]:
    wall, cpu, proc = _timed(planner_cmd("plan", site, "--target", target, "--format", "json"),
                             cwd=REPO)
    if proc.returncode != 0:
        _fail(f"planner plan failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    doc = json.loads(proc.stdout)
    t = doc["takeover"]
    if doc["uploads"] or doc["deletes"] or t is None or t["adopted"] != n_files:
        _fail(f"not a takeover adopting every file: {json.dumps(t)}, "
              f"{len(doc['uploads'])} uploads, {len(doc['deletes'])} deletes")
    return wall, cpu


def run_anchor(site: str, target: str) -> tuple[float, float]:
    wall, cpu, proc = _timed(["sh", "-c", ANCHOR, "sh", site, target])
    if proc.returncode != 0:
        _fail(f"anchor failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--total-mb", type=int, default=1024)
    ap.add_argument("--dir", default=os.path.join(REPO, ".bench"))
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    for tool in ("xxh128sum", "md5sum"):
        if shutil.which(tool) is None:
            _fail(f"{tool} not found (apt-get install xxhash coreutils)")

    site, target = bench_site(args.dir, args.files, args.total_mb, "takeover")
    if not os.path.isdir(target):
        subprocess.run(["cp", "-r", site, target + ".partial"], check=True)
        os.replace(target + ".partial", target)
    n_files, n_bytes, n_dirs = site_stats(site)

    run_plan(site, target, n_files)  # warm the page cache, check once
    run_anchor(site, target)
    times: dict[str, list[tuple[float, float]]] = {"plan": [], "anchor": []}
    for i in range(args.repeat):
        for which in (("plan", "anchor") if i % 2 == 0 else ("anchor", "plan")):
            times[which].append(run_plan(site, target, n_files) if which == "plan"
                                else run_anchor(site, target))
            time.sleep(0.2)

    med = statistics.median
    rows = {k: (med(w for w, _ in v), min(w for w, _ in v), med(c for _, c in v))
            for k, v in times.items()}
    print(f"site: {n_files} files, {n_bytes / 2**20:.0f} MiB, {n_dirs} folders; target: a cp -r "
          "copy, no manifest")
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}); {args.repeat} rounds, alternating, "
          "warm page cache\n")
    print(f"{'':44}{'median':>9}{'min':>9}{'CPU':>9}")
    for label, key in (("xxh128sum build + md5sum target + md5sum build", "anchor"),
                       ("planner plan (takeover, all adopted)", "plan")):
        m, lo, cpu = rows[key]
        print(f"{label:44}{m:>8.3f}s{lo:>8.3f}s{cpu:>8.3f}s")
    ratio = rows["plan"][0] / rows["anchor"][0]
    print(f"{'ratio planner/anchor':44}{ratio:>9.2f}{rows['plan'][1] / rows['anchor'][1]:>9.2f}")
    print(json.dumps({"files": n_files, "bytes": n_bytes, "repeat": args.repeat,
                      "anchor_median_s": round(rows["anchor"][0], 4),
                      "planner_median_s": round(rows["plan"][0], 4),
                      "planner_cpu_s": round(rows["plan"][2], 4),
                      "anchor_cpu_s": round(rows["anchor"][2], 4),
                      "ratio_median": round(ratio, 3)}))


if __name__ == "__main__":
    main()
