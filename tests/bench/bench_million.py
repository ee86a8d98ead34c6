"""Benchmark: a million-file site (issue 15): the first deploy, the first plan, and the plan
with nothing changed, against ``find | xargs xxh128sum`` over the same tree.

Usage::

    python tests/bench/bench_million.py [--files 1000000] [--dir PATH] [--repeat 3]
        [--reuse-target]

What it does
------------
1. Generates (once, in ``--dir``, default ``.bench/`` which git ignores) a site of
   ``--files`` small pages, every page its own folder (``vV/sSS/pPPP/index.html``: ten
   versions of a hundred sections of a thousand pages, about 80 bytes each, as in a
   documentation archive that keeps every version).
2. The first deploy into a new local target folder: ``planner deploy SITE --target TARGET
   --format json``, with its wall time and the peak RSS of its whole process tree (the sum
   of every process's resident set, sampled every 20 ms: forked helpers share pages with
   their parent, which this counts twice, so it is an upper bound). With
   ``--reuse-target``, a target that already holds this site's manifest is kept.
3. The first plan (no manifest: a fresh target name), the same two figures and the size of
   its JSON.
4. Warms the page cache (one untimed run of each), then ``--repeat`` rounds, alternating
   which goes first, wall clock, no sampling:
   (a) ``planner plan SITE --target TARGET --format json``, nothing changed (checked: every
       file unchanged, nothing to upload or delete);
   (b) ``find SITE -type f -print0 | xargs -0 xxh128sum > /dev/null``.
   Then one more plan with the RSS sampling on, for its peak.
5. Prints a table and one JSON line (the last line): medians, the ratio, the peaks, and
   the issue's goals (ratio <= 1.2, no-change peak <= 600 MB, first deploy <= 1 GB).

Needs ``xxh128sum`` (apt-get install xxhash). The planner runs keep their bytecode, as an
installed tool has it.
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
from bench_plan import (  # noqa: E402 - runners shared with the 20,000-file benchmark
    REPO,
    _cpu_model,
    _fail,
    _timed,
    check_no_change,
    planner_cmd,
    run_xxh,
)

GENERATOR_VERSION = 1
MB = 1_000_000


def generate(site: str, n_files: int) -> None:
    """``vV/sSS/pPPP/index.html``, a thousand pages a section, a hundred sections a version."""
    tmp = site + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    for i in range(n_files):
        v, rest = divmod(i, 100_000)
        s, p = divmod(rest, 1000)
        if rest == 0:
            os.mkdir(f"{tmp}/v{v}")
        if p == 0:
            os.mkdir(f"{tmp}/v{v}/s{s:02d}")
        folder = f"{tmp}/v{v}/s{s:02d}/p{p:03d}"
        os.mkdir(folder)
        with open(folder + "/index.html", "w") as f:
            f.write(f"<!doctype html><title>v{v} s{s} p{p}</title><p>page {i:07d} of the site</p>\n")
    os.replace(tmp, site)


def million_site(folder: str, n_files: int) -> str:
    site = os.path.join(os.path.abspath(folder), f"million-{n_files}-v{GENERATOR_VERSION}")
    if not os.path.isdir(site):
        print(f"generating {n_files:,} files in {site} ...", file=sys.stderr)
        t0 = time.perf_counter()
        generate(site, n_files)
        print(f"  done in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    return site


# --- the peak RSS of a process tree ----------------------------------------------------------


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat", encoding="ascii", errors="replace") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            kids.setdefault(ppid, []).append(int(name))
    return kids


def _rss(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def sampled(cmd: list[str]) -> tuple[float, int, subprocess.CompletedProcess]:
    """(wall seconds, peak of the summed RSS of the command's process tree, result); stdout
    is kept (the JSON), stderr too."""
    out = open(os.devnull, "wb")
    t0 = time.perf_counter()
    with subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO) as proc:
        peak = 0
        chunks: list[bytes] = []
        import threading

        reader = threading.Thread(target=lambda: chunks.append(proc.stdout.read()))  # type: ignore[union-attr]
        reader.start()
        while proc.poll() is None:
            kids = _children()
            todo, total = [proc.pid], 0
            while todo:
                pid = todo.pop()
                total += _rss(pid)
                todo.extend(kids.get(pid, ()))
            peak = max(peak, total)
            time.sleep(0.02)
        reader.join()
        err = proc.stderr.read()  # type: ignore[union-attr]
    out.close()
    wall = time.perf_counter() - t0
    return wall, peak, subprocess.CompletedProcess(cmd, proc.returncode, b"".join(chunks), err)


def _checked(what: str, proc: subprocess.CompletedProcess) -> dict:
    if proc.returncode != 0:
        _fail(f"{what} failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return json.loads(proc.stdout)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=1_000_000)
    ap.add_argument("--dir", default=os.path.join(REPO, ".bench"))
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--reuse-target", action="store_true",
                    help="keep a target that already holds this site (skip the first deploy)")
    args = ap.parse_args()
    if args.files < 1 or args.repeat < 1:
        ap.error("--files and --repeat must be positive")
    if shutil.which("xxh128sum") is None:
        _fail("xxh128sum not found: apt-get install xxhash (Debian/Ubuntu)")
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    site = million_site(args.dir, args.files)
    target = site + "-target"
    result: dict[str, object] = {"bench": "million", "files": args.files,
                                 "cpus": os.cpu_count(), "repeat": args.repeat}
    manifest = os.path.join(target, ".planner", "manifest.json.gz")
    if not (args.reuse_target and os.path.exists(manifest)):
        shutil.rmtree(target, ignore_errors=True)
        wall, peak, proc = sampled(planner_cmd("deploy", site, "--target", target,
                                               "--format", "json"))
        doc = _checked("planner deploy", proc)
        if doc["summary"]["added"]["files"] != args.files:
            _fail(f"the first deploy did not add every file: {doc['summary']}")
        result.update(first_deploy_s=round(wall, 2), first_deploy_peak_mb=round(peak / MB))

    fresh = site + "-fresh"  # never deployed to: a first plan
    shutil.rmtree(fresh, ignore_errors=True)
    wall, peak, proc = sampled(planner_cmd("plan", site, "--target", fresh, "--format", "json"))
    _checked("planner plan (first)", proc)
    result.update(first_plan_s=round(wall, 2), first_plan_peak_mb=round(peak / MB),
                  first_plan_json_mb=round(len(proc.stdout) / MB, 1))

    def plan() -> float:
        wall, _, proc = _timed(planner_cmd("plan", site, "--target", target, "--format", "json"),
                               cwd=REPO)
        check_no_change(_checked("planner plan", proc), args.files)
        return wall

    plan()  # warm the page cache, and the bytecode
    run_xxh(site)
    plans: list[float] = []
    anchors: list[float] = []
    for i in range(args.repeat):
        for which in (("plan", "xxh") if i % 2 == 0 else ("xxh", "plan")):
            if which == "plan":
                plans.append(plan())
            else:
                anchors.append(run_xxh(site)[0])
    wall, peak, proc = sampled(planner_cmd("plan", site, "--target", target, "--format", "json"))
    check_no_change(_checked("planner plan", proc), args.files)
    med = statistics.median
    ratio = med(plans) / med(anchors)
    result.update(
        planner_median_s=round(med(plans), 3), planner_runs_s=[round(x, 3) for x in plans],
        xxh128sum_median_s=round(med(anchors), 3), xxh128sum_runs_s=[round(x, 3) for x in anchors],
        ratio_median=round(ratio, 3), no_change_peak_mb=round(peak / MB),
    )
    goals = {"ratio <= 1.2": ratio <= 1.2, "no-change peak <= 600 MB": peak <= 600 * MB}
    if "first_deploy_peak_mb" in result:
        goals["first deploy peak <= 1 GB"] = result["first_deploy_peak_mb"] <= 1000  # type: ignore[operator]
    result["goals_met"] = goals

    print(f"site: {args.files:,} files, every page its own folder ({site})")
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), Python {sys.version.split()[0]}")
    for name, value in result.items():
        if name not in ("bench", "goals_met"):
            print(f"  {name:24} {value}")
    for goal, met in goals.items():
        print(f"  {goal:32} {'met' if met else 'NOT met'}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
