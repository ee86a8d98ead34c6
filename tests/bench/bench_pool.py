"""Benchmark: the scan's hashing pool (``ProcessPoolExecutor``, fork context, chunked) at a
few chunk sizes, with ``xxh128sum`` as the anchor.

Usage::

    python tests/bench/bench_pool.py [--files 20000] [--total-mb 1024] [--dir PATH]
                                     [--repeat N] [--chunks 64,256]

The site is bench_plan.py's (generated once, seeded, in ``.bench/``); for 100,000 files use
``--files 100000 --total-mb 5120`` (the same mix of files, five times as many). Each run is a
fresh interpreter that scans the site the way ``planner plan`` does (``manifests.scan.scan``:
the walk, hashing while the walk goes on, the entries in key order; trivial headers) with
the default number of workers, and reports the scan's own time. Commands, in a rotating
order each round (a slow spell of a shared machine hits every one), after one untimed warm-up
run of each (warm page cache):

(a) ``pool-N``: the scan as shipped, with ``manifests.pool.CHUNK_FILES`` set to N.
(b) the anchor: ``find . -type f -print0 | xargs -0 xxh128sum > /dev/null`` run by ``sh``
    in the site.

Each command runs under GNU ``/usr/bin/time -f %M``: peak RSS is that of the largest single
process of the run (the parent, a worker, or ``xxh128sum``), not their sum. Reported per
command: median and min wall clock of the whole process, median scan time inside it (the
pool's part, without interpreter start-up and imports), median CPU (user + system of the
process and its children), and the peak RSS; then one JSON line. Every run's entries are
checked against the first run (same keys, hashes and sizes).

The comparison with the hand-written pool this one replaced (docs/hashing-pool.md) was run
by this script as of commit 566c14c, which times both (``hand`` and ``exec-N``).

Needs ``xxh128sum`` (apt-get install xxhash) and GNU time (apt-get install time).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_plan import REPO, _cpu_model, _fail, bench_site, site_stats  # noqa: E402

sys.path.insert(0, REPO)

ANCHOR = 'cd "$1" && find . -type f -print0 | xargs -0 xxh128sum > /dev/null'


def run_one(pool: str, site: str) -> None:
    """In a fresh interpreter: scan ``site`` with chunks of ``pool`` files (``pool-N``),
    print the time and a digest of the entries."""
    import manifests.pool
    import manifests.scan  # noqa: F401 - loads the module, which the package hides

    manifests.pool.CHUNK_FILES = int(pool.split("-")[1])
    scan_mod = sys.modules["manifests.scan"]  # the package exports a function of that name
    t0 = time.perf_counter()
    entries = scan_mod.scan(site, lambda key: ("t", "c", ""))
    seconds = time.perf_counter() - t0
    digest = hashlib.sha256()
    for key, e in entries.items():
        digest.update(f"{key}\0{e.hash}\0{e.size}\n".encode("utf-8", "surrogateescape"))
    print(json.dumps({"scan_s": seconds, "files": len(entries), "digest": digest.hexdigest()}))


# --- the runs --------------------------------------------------------------------------------


def _timed(cmd: list[str]) -> tuple[float, float, int, str]:
    """(wall seconds, CPU seconds, peak RSS in KiB of its largest process, stdout)."""
    with tempfile.NamedTemporaryFile("r") as rss:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        proc = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name, *cmd],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO)
        wall = time.perf_counter() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            _fail(f"{cmd} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
        peak = int(rss.read().split()[-1])
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, peak, proc.stdout.decode()


def run(which: str, site: str) -> dict:
    if which == "anchor":
        wall, cpu, peak, _ = _timed(["sh", "-c", ANCHOR, "sh", site])
        return {"wall": wall, "cpu": cpu, "rss": peak}
    wall, cpu, peak, out = _timed([sys.executable, os.path.abspath(__file__), "--one", which,
                                   site])
    return {"wall": wall, "cpu": cpu, "rss": peak, **json.loads(out)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--total-mb", type=int, default=1024)
    ap.add_argument("--dir", default=os.path.join(REPO, ".bench"))
    ap.add_argument("--repeat", type=int, default=7)
    ap.add_argument("--chunks", default="64,256", help="files per task of the pool's runs")
    ap.add_argument("--one", nargs=2, metavar=("POOL", "SITE"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        run_one(*args.one)
        return
    for tool in ("xxh128sum", "/usr/bin/time"):
        if shutil.which(tool) is None:
            _fail(f"{tool} not found (apt-get install xxhash time)")

    site, _ = bench_site(args.dir, args.files, args.total_mb, "unused")
    n_files, n_bytes, n_dirs = site_stats(site)
    commands = [*[f"pool-{int(c)}" for c in args.chunks.split(",")], "anchor"]
    first = run(commands[0], site)  # warm-up, and the entries every other run must give
    for which in commands[1:]:
        got = run(which, site)
        if which != "anchor" and (got["files"], got["digest"]) != (n_files, first["digest"]):
            _fail(f"{which} scanned other entries than {commands[0]}: {got} against {first}")
    runs: dict[str, list[dict]] = {c: [] for c in commands}
    for i in range(args.repeat):
        for which in commands[i % len(commands):] + commands[: i % len(commands)]:
            got = run(which, site)
            if which != "anchor" and got["digest"] != first["digest"]:
                _fail(f"{which} scanned other entries than {commands[0]} in round {i}")
            runs[which].append(got)
            time.sleep(0.2)

    med = statistics.median
    print(f"site: {n_files} files, {n_bytes / 2**20:.0f} MiB, {n_dirs} folders ({site})")
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {sys.version.split()[0]}; "
          f"{args.repeat} rounds, rotating order, warm page cache\n")
    print(f"{'':10}{'median':>9}{'min':>9}{'scan':>9}{'CPU':>9}{'peak RSS':>11}")
    table = {}
    for which, rs in runs.items():
        row = {"median_s": med(r["wall"] for r in rs), "min_s": min(r["wall"] for r in rs),
               "scan_median_s": med(r["scan_s"] for r in rs) if which != "anchor" else None,
               "cpu_median_s": med(r["cpu"] for r in rs),
               "peak_rss_mib": max(r["rss"] for r in rs) / 1024}
        table[which] = {k: (round(v, 4) if v is not None else None) for k, v in row.items()}
        scan_s = f"{row['scan_median_s']:>8.3f}s" if row["scan_median_s"] is not None else " " * 9
        print(f"{which:10}{row['median_s']:>8.3f}s{row['min_s']:>8.3f}s{scan_s}"
              f"{row['cpu_median_s']:>8.3f}s{row['peak_rss_mib']:>7.0f} MiB")
    print(json.dumps({"files": n_files, "bytes": n_bytes, "repeat": args.repeat,
                      "cpus": os.cpu_count(), "runs": table}))


if __name__ == "__main__":
    main()
