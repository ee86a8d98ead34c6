"""Benchmark: ``planner plan`` on an unchanged site against ``xxh128sum`` over the same files.

Usage::

    python tests/bench/bench_plan.py [--files 20000] [--total-mb 1024] [--dir PATH] [--repeat N]

What it does
------------
1. Generates (once, seeded, so always the same bytes) a static site of ``--files`` files
   totalling about ``--total-mb`` MiB into ``--dir`` (default ``.bench/`` at the repository
   root, which git ignores): mostly HTML/CSS/JS/JSON/SVG of a few KB to tens of KB in nested
   folders, images of tens to hundreds of KB, fonts, and a few videos/archives of several
   MB. A site already generated with the same parameters is reused.
2. Deploys it once to a local target folder (``planner deploy SITE --target TARGET --format
   json``) so the target holds a manifest, then checks, without timing it, that
   ``xxh128sum`` gives for every file the very hash the manifest holds: both sides hash the
   same files with the same algorithm (XXH3-128).
3. Warms the page cache (one untimed run of each), then times ``--repeat`` rounds, each
   running, in alternating order, both commands as subprocesses, wall clock:

   (a) ``planner plan SITE --target TARGET --format json``, run as ``sys.executable -m
       planner``: the real CLI, interpreter start-up and imports included. Its JSON output
       is checked on every run: 0 uploads, 0 deletes, every file unchanged. So this is a
       real no-change plan: walk, hash every file, read the previous manifest, diff, render.
   (b) ``find SITE -type f -print0 | xargs -0 xxh128sum > /dev/null`` run by ``sh``:
       ``find`` discovers the files as ``planner`` must; ``xargs`` hands them to
       ``xxh128sum`` in batches of about 1,800 paths (its default 128 KiB command line),
       one process after another while ``find`` is still walking; every file is read and
       hashed. ``xxh128sum`` is single-threaded (``find`` runs beside it); ``planner``
       spreads the hashing over the cores (forked helpers on Linux). That is each tool as
       shipped, run the way a user would run it.

   Reported: median and min of the wall-clock times, the median CPU time (user + system, the
   command and every process it waited for), and the ratio planner/xxh128sum of the median
   wall-clock times (the issue's target: at most 1.3), as a table and as one JSON line
   (the last line). Rounds alternate which command goes first, so a slow spell of the
   machine hits both.

Needs ``xxh128sum`` (Debian/Ubuntu: ``apt-get install xxhash``) and ``find``/``xargs``.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import platform
import random
import resource
import shutil
import statistics
import subprocess
import sys
import time

# The planner runs keep their bytecode, as a tool installed by pip has it (with this
# machine's PYTHONDONTWRITEBYTECODE each start would compile the tool's modules again).
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

SEED = 20_000
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GENERATOR_VERSION = 1  # bump when the generated site changes

# (share of files, extension, min KB, max KB) for the bulk of the site; the sizes are scaled
# afterwards so the total hits --total-mb.
TEXT_KINDS = [
    (0.40, ".html", 4, 60),
    (0.08, ".css", 2, 40),
    (0.14, ".js", 2, 80),
    (0.08, ".json", 1, 30),
    (0.06, ".svg", 1, 12),
    (0.01, ".xml", 2, 40),
    (0.01, ".txt", 1, 4),
]
IMAGE_KINDS = [(".jpg", 60, 600), (".png", 20, 400), (".webp", 30, 300), (".avif", 20, 200)]
BIG_KINDS = [(".mp4", 3000, 9000), (".zip", 2000, 6000), (".pdf", 1000, 4000)]
FONT_KINDS = [(".woff2", 15, 60)]


def _fail(msg: str) -> None:
    print(f"bench_plan: {msg}", file=sys.stderr)
    sys.exit(2)


# --- site generation ---------------------------------------------------------------------


def _plan_layout(n_files: int, total_bytes: int, rng: random.Random) -> list[tuple[str, int]]:
    """(relative path, size) of every file: deterministic for a given seed."""
    n_big = max(1, n_files // 1000)  # 20 files of several MB for 20,000
    n_img = max(1, n_files * 14 // 100)
    n_font = max(1, n_files // 400)
    n_text = max(1, n_files - n_big - n_img - n_font)
    files: list[tuple[str, int, str]] = []  # (path, size, kind)

    sections = ["blog", "docs", "guides", "news", "products", "api", "learn", "community"]
    weights = [s for s, *_ in TEXT_KINDS]
    for i in range(n_text):
        _, ext, lo, hi = rng.choices(TEXT_KINDS, weights=weights)[0]
        size = int(rng.triangular(lo, hi, lo + (hi - lo) / 4) * 1024)
        section = rng.choice(sections)
        if ext == ".html":
            depth = rng.randint(1, 4)
            parts = [section] + [f"{section[:3]}-{rng.randint(0, 40)}" for _ in range(depth - 1)]
            name = "index.html" if rng.random() < 0.6 else f"page-{i}.html"
            path = "/".join(parts + [f"p{i}", name] if name == "index.html" else parts + [name])
        elif ext in (".css", ".js"):
            path = f"assets/{ext[1:]}/{rng.choice(['app', 'vendor', 'chunks', 'pages'])}/" \
                   f"{rng.choice(sections)}-{i:05d}.{rng.getrandbits(32):08x}{ext}"
        elif ext == ".json":
            path = f"api/{section}/{rng.randint(0, 30)}/{i:05d}.json"
        elif ext == ".svg":
            path = f"assets/icons/{rng.choice(['ui', 'brand', 'flags', 'misc'])}/icon-{i:05d}.svg"
        elif ext == ".xml":
            path = f"feeds/{section}/feed-{i}.xml"
        else:
            path = f"{section}/notes/note-{i}.txt"
        files.append((path, size, "text"))
    for i in range(n_img):
        ext, lo, hi = rng.choice(IMAGE_KINDS)
        size = int(rng.triangular(lo, hi, lo + (hi - lo) / 3) * 1024)
        section = rng.choice(sections)
        year, month = rng.randint(2015, 2025), rng.randint(1, 12)
        path = f"images/{section}/{year}/{month:02d}/img-{i:05d}{ext}"
        files.append((path, size, "image"))
    for i in range(n_font):
        ext, lo, hi = rng.choice(FONT_KINDS)
        files.append((f"assets/fonts/font-{i:04d}{ext}", int(rng.uniform(lo, hi) * 1024), "font"))
    for i in range(n_big):
        ext, lo, hi = rng.choice(BIG_KINDS)
        section = rng.choice(sections)
        size = int(rng.uniform(lo, hi) * 1024)
        files.append((f"media/{section}/file-{i:03d}{ext}", size, "big"))

    # Scale images and big files (not pages: they stay "a few KB to tens of KB") to hit the total.
    text_total = sum(s for _, s, k in files if k in ("text", "font"))
    rest_total = sum(s for _, s, k in files if k not in ("text", "font"))
    factor = max(0.05, (total_bytes - text_total) / rest_total) if rest_total else 1.0
    out = [(p, s if k in ("text", "font") else max(1, int(s * factor))) for p, s, k in files]
    out.extend([("index.html", 24_000), ("404.html", 6_000), ("robots.txt", 120),
                ("sitemap.xml", 180_000), ("favicon.ico", 15_000)][: max(0, n_files - len(out))])
    # De-duplicate paths (a collision is possible with random folders), keep the count.
    seen: set[str] = set()
    unique = []
    for p, s in out:
        while p in seen:
            head, dot, ext = p.rpartition(".")
            p = f"{head}-x.{ext}" if dot else p + "-x"
        seen.add(p)
        unique.append((p, s))
    return unique[:n_files] if len(unique) > n_files else unique


_HTML_HEAD = (
    b"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    b"<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
    b"<link rel=\"stylesheet\" href=\"/assets/css/app/main.css\"><title>%d</title></head>\n<body>\n"
)


def _content(path: str, size: int, rng: random.Random) -> bytes:
    ext = os.path.splitext(path)[1]
    if ext in (".html", ".css", ".js", ".json", ".svg", ".xml", ".txt"):
        # Text: a header, then printable pseudo-random text (so every file differs).
        head = _HTML_HEAD % rng.getrandbits(31) if ext == ".html" else b""
        body = rng.randbytes(max(0, (size - len(head)) // 2 + 1)).hex().encode()
        data = head + body
        data = data[: size - 1] + b"\n" if size > 0 else b""
        return data
    return rng.randbytes(size)


def generate(site: str, n_files: int, total_mb: int) -> None:
    rng = random.Random(SEED)
    layout = _plan_layout(n_files, total_mb * 1024 * 1024, rng)
    tmp = site + ".partial"
    shutil.rmtree(tmp, ignore_errors=True)
    made: set[str] = set()
    for rel, size in layout:
        path = os.path.join(tmp, *rel.split("/"))
        folder = os.path.dirname(path)
        if folder not in made:
            os.makedirs(folder, exist_ok=True)
            made.add(folder)
        with open(path, "wb") as f:
            f.write(_content(rel, size, rng))
    os.replace(tmp, site)


def site_stats(site: str) -> tuple[int, int, int]:
    files = size = dirs = 0
    for dirpath, dirnames, filenames in os.walk(site):
        dirs += len(dirnames)
        files += len(filenames)
        size += sum(os.lstat(os.path.join(dirpath, name)).st_size for name in filenames)
    return files, size, dirs


# --- runs ---------------------------------------------------------------------------------


def planner_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "planner", *args]


def _timed(cmd: list[str], **kwargs) -> tuple[float, float, subprocess.CompletedProcess]:
    """(wall seconds, CPU seconds of the command and everything it waited for, result)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, proc


def run_plan(site: str, target: str) -> tuple[float, float, dict]:
    wall, cpu, proc = _timed(planner_cmd("plan", site, "--target", target, "--format", "json"),
                             cwd=REPO)
    if proc.returncode != 0:
        _fail(f"planner plan failed ({proc.returncode}):\n{proc.stderr.decode(errors='replace')}")
    return wall, cpu, json.loads(proc.stdout)


def check_no_change(doc: dict, n_files: int) -> None:
    s = doc["summary"]
    if doc["uploads"] or doc["deletes"] or s["added"]["files"] or s["modified"]["files"] \
            or s["deleted"]["files"] or s["unchanged"]["files"] != n_files:
        _fail(f"plan is not a no-change plan: {json.dumps(s)}, {len(doc['uploads'])} uploads, "
              f"{len(doc['deletes'])} deletes")


def xxh_cmd(site: str) -> list[str]:
    return ["sh", "-c", 'find "$1" -type f -print0 | xargs -0 xxh128sum > /dev/null', "sh", site]


def run_xxh(site: str) -> tuple[float, float]:
    wall, cpu, proc = _timed(xxh_cmd(site))
    if proc.returncode != 0:
        _fail(f"xxh128sum failed ({proc.returncode}): {proc.stderr.decode(errors='replace')}")
    return wall, cpu


def check_same_hashes(site: str, target: str) -> None:
    """xxh128sum's digest of every file equals the manifest's: same files, same algorithm."""
    with open(os.path.join(target, ".planner", "manifest.json.gz"), "rb") as f:
        doc = json.loads(gzip.decompress(f.read()))
    if doc["format_version"] == 1:
        manifest = doc["entries"]
    else:  # format 2: columns (docs/state.md)
        keys = doc["keys"].split("\x00") if doc["keys"] else []
        manifest = {k: [doc["hashes"][32 * i : 32 * i + 32]] for i, k in enumerate(keys)}
    out = subprocess.run(
        ["sh", "-c", 'cd "$1" && find . -type f -print0 | xargs -0 xxh128sum', "sh", site],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, check=True,
    ).stdout.decode()
    theirs = {}
    for line in out.splitlines():
        digest, _, path = line.partition("  ")
        theirs[path[2:] if path.startswith("./") else path] = digest
    ours = {k: v[0] for k, v in manifest.items()}
    if theirs != ours:
        diff = set(theirs.items()) ^ set(ours.items())
        _fail(f"xxh128sum and the manifest disagree on {len(diff)} entries, "
              f"e.g. {sorted(diff)[:3]}")


def deploy(site: str, target: str, n_files: int) -> None:
    """Make ``target`` hold a deploy of ``site``; reuse it when a plan says nothing changed."""
    if os.path.exists(os.path.join(target, ".planner", "manifest.json.gz")):
        _, _, doc = run_plan(site, target)
        s = doc["summary"]
        if not doc["uploads"] and not doc["deletes"] and s["unchanged"]["files"] == n_files:
            return
    shutil.rmtree(target, ignore_errors=True)
    print(f"deploying once to {target} ...", file=sys.stderr)
    proc = subprocess.run(
        planner_cmd("deploy", site, "--target", target, "--format", "json"),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO,
    )
    if proc.returncode != 0:
        _fail(f"planner deploy failed:\n{proc.stderr.decode(errors='replace')}")


def bench_site(folder: str, files: int, total_mb: int, other: str) -> tuple[str, str]:
    """(the generated site, generated once and reused; the path of a second folder named
    ``other`` beside it, for the benchmark's target), both keyed by the generator's
    parameters."""
    tag = hashlib.sha256(json.dumps(
        [GENERATOR_VERSION, SEED, files, total_mb]).encode()).hexdigest()[:10]
    base = os.path.abspath(folder)
    site = os.path.join(base, f"site-{files}-{total_mb}mb-{tag}")
    os.makedirs(base, exist_ok=True)
    if not os.path.isdir(site):
        print(f"generating {files} files, ~{total_mb} MiB in {site} ...", file=sys.stderr)
        t0 = time.perf_counter()
        generate(site, files, total_mb)
        print(f"  done in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return site, os.path.join(base, f"{other}-{files}-{total_mb}mb-{tag}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--files", type=int, default=20_000)
    ap.add_argument("--total-mb", type=int, default=1024)
    ap.add_argument("--dir", default=os.path.join(REPO, ".bench"),
                    help="cache folder for the generated site and the target (default: .bench/)")
    ap.add_argument("--repeat", type=int, default=7, help="timed rounds (default: 7)")
    args = ap.parse_args()
    if args.files < 1 or args.total_mb < 1 or args.repeat < 1:
        ap.error("--files, --total-mb and --repeat must be positive")

    if shutil.which("xxh128sum") is None:
        print("bench_plan: xxh128sum not found. Install it: apt-get install xxhash "
              "(Debian/Ubuntu), brew install xxhash (macOS).", file=sys.stderr)
        sys.exit(2)

    site, target = bench_site(args.dir, args.files, args.total_mb, "target")
    n_files, n_bytes, n_dirs = site_stats(site)

    deploy(site, target, n_files)
    check_same_hashes(site, target)

    # Warm the page cache and check the plan once more, untimed.
    _, _, doc = run_plan(site, target)
    check_no_change(doc, n_files)
    run_xxh(site)

    plan_t: list[float] = []
    plan_cpu: list[float] = []
    xxh_t: list[float] = []
    xxh_cpu: list[float] = []
    for i in range(args.repeat):
        order = ("plan", "xxh") if i % 2 == 0 else ("xxh", "plan")
        for which in order:
            if which == "plan":
                wall, cpu, doc = run_plan(site, target)
                check_no_change(doc, n_files)
                plan_t.append(wall)
                plan_cpu.append(cpu)
            else:
                wall, cpu = run_xxh(site)
                xxh_t.append(wall)
                xxh_cpu.append(cpu)

    med = statistics.median
    p_med, x_med = med(plan_t), med(xxh_t)
    ratio = p_med / x_med
    ver = subprocess.run(["xxh128sum", "--version"], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True).stdout.split(" by ")[0].strip()
    print(f"site: {n_files} files, {n_bytes / 2**20:.0f} MiB, {n_dirs} folders ({site})")
    print(f"machine: {os.cpu_count()} CPUs ({_cpu_model()}), {platform.system()} "
          f"{platform.release()}, Python {platform.python_version()}, {ver}")
    print(f"{args.repeat} rounds, alternating, warm page cache\n")
    print(f"{'':28}{'median':>9}{'min':>9}{'CPU':>9}")
    for label, times, cpu in (("xxh128sum (find | xargs)", xxh_t, xxh_cpu),
                              ("planner plan (no change)", plan_t, plan_cpu)):
        print(f"{label:28}{med(times):>8.3f}s{min(times):>8.3f}s{med(cpu):>8.3f}s")
    print(f"{'ratio planner/xxh128sum':28}{ratio:>9.2f}{min(plan_t) / min(xxh_t):>9.2f}"
          f"{'':9}   (target <= 1.30: {'met' if ratio <= 1.3 else 'NOT met'})")
    print(json.dumps({
        "files": n_files, "bytes": n_bytes, "folders": n_dirs, "repeat": args.repeat,
        "cpus": os.cpu_count(),
        "xxh128sum_median_s": round(x_med, 4), "xxh128sum_min_s": round(min(xxh_t), 4),
        "xxh128sum_cpu_s": round(med(xxh_cpu), 4),
        "planner_median_s": round(p_med, 4), "planner_min_s": round(min(plan_t), 4),
        "planner_cpu_s": round(med(plan_cpu), 4),
        "ratio_median": round(ratio, 3), "target_met": ratio <= 1.3,
    }))


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


if __name__ == "__main__":
    main()
