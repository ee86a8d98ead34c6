"""The README's benchmark table, made from the benchmarks' own JSON lines.

Every benchmark under ``tests/bench/`` prints one JSON line (``bench_month.py`` one per month
and one for its timing). ``docs/bench/results.jsonl`` keeps the last recorded run of each,
one line per benchmark: its name, the command, the date, and the JSON lines it printed.

    .venv/bin/python tests/bench/bench_upload.py | .venv/bin/python scripts/bench_table.py --add upload
    .venv/bin/python scripts/bench_table.py            # rewrite the README's table
    .venv/bin/python scripts/bench_table.py --check    # exit 1 when the README is stale

``--add NAME`` reads a benchmark's output on stdin (passing it through, so the table is still
seen), keeps its JSON lines in place of NAME's earlier run, and rewrites the table between
the README's two marker lines. ``tests/test_docs.py`` runs ``--check``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import sys
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "docs" / "bench" / "results.jsonl"
README = ROOT / "README.md"
BEGIN = "<!-- begin generated: scripts/bench_table.py -->"
END = "<!-- end generated -->"
COMMANDS = {
    "plan": "tests/bench/bench_plan.py",
    "takeover": "tests/bench/bench_takeover.py",
    "upload": "tests/bench/bench_upload.py",
    "minimizer": "tests/bench/bench_minimizer.py",
    "month": "tests/bench/bench_month.py --months 2 --seed 1",
    "pool": "tests/bench/bench_pool.py",
    "fence": "tests/bench/bench_fence.py",
    "groups": "tests/bench/bench_groups.py",
    "million": "tests/bench/bench_million.py",
}
Row = tuple[str, str, str, str, str]  # benchmark, planner, anchor, ratio, goal


def _s(x: float | None) -> str:
    return "" if x is None else f"{x:.2f} s"


def _x(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}x"


def plan_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    return [(f"`plan`, {d['files']:,} files, nothing changed", _s(d["planner_median_s"]),
             f"xxh128sum {_s(d['xxh128sum_median_s'])}", _x(d["ratio_median"]), "<= 1.3x")]


def takeover_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    return [(f"first `plan` of a bucket filled by another tool, {d['files']:,} files",
             _s(d["planner_median_s"]), f"ListObjects + md5sum {_s(d['anchor_median_s'])}",
             _x(d["ratio_median"]), "")]


def upload_rows(lines: list[dict]) -> list[Row]:
    from planner.apply import WORKERS

    d = lines[-1]
    med = d["median_s"]
    mine = med.get(f"planner deploy --workers {WORKERS}")
    same = med.get(f"planner deploy --workers {WORKERS}, no change")
    files = f"{d['files']:,} small files, {d['latency_s'] * 1000:.0f} ms a request"
    rows: list[Row] = []
    if mine is not None and "s5cmd cp" in med:
        rows.append((f"first `deploy`, {files}", _s(mine), f"s5cmd cp {_s(med['s5cmd cp'])}",
                     _x(mine / med["s5cmd cp"]), "<= 1.5x"))
    if mine is not None and "hugo deploy" in med:
        rows.append((f"first `deploy`, {files}", _s(mine), f"hugo deploy {_s(med['hugo deploy'])}",
                     _x(mine / med["hugo deploy"]), "< 1x"))
    if same is not None and "hugo deploy, no change" in med:
        rows.append((f"`deploy` with nothing changed, {d['files']:,} files", _s(same),
                     f"hugo deploy {_s(med['hugo deploy, no change'])}",
                     _x(same / med["hugo deploy, no change"]), "< 1x"))
    return rows


def minimizer_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    gap = d.get("largest_gap_pct")
    anchor = d.get("anchor") or "no exact optimum run"
    changed = d["changed"]
    if not isinstance(changed, int):  # one count per pattern, or the list of counts asked for
        changed = max(changed.values() if isinstance(changed, dict) else changed)
    small = [c for c in d.get("cases", ()) if c.get("changed", changed) < 3000]
    exact = f"; proven exact in {sum(bool(c.get('exact')) for c in small)} of {len(small)} " \
            "cases under 3,000 changed" if small else ""
    return [(f"minimizer, {d['urls']:,} URLs, {changed:,} changed, slowest case",
             _s(d["slowest_median_s"]),
             anchor + ("" if gap is None else f": largest gap {gap:.2f} %") + exact, "",
             "<= 2 s, <= 0.5 % above the optimum, exact under 3,000 changed")]


def month_rows(lines: list[dict]) -> list[Row]:
    months = [ln for ln in lines if "policies" in ln]
    timing = next((ln for ln in lines if "timing" in ln), None)
    ratios = [ln["policies"]["price"]["ratio"] for ln in months
              if ln["policies"].get("price", {}).get("ratio") is not None]
    pays = sum(1 for ln in months if ln["policies"].get("price", {}).get(
        "pays_where_hindsight_pays_none"))
    rows: list[Row] = []
    if ratios:
        rows.append((f"a month's bill, default pace, {len(months)} simulated months",
                     f"worst {max(ratios):.2f}x, {pays} months paying needlessly",
                     "hindsight optimum (DP)", _x(max(ratios)), "<= 1.25x, never pays needlessly"))
    if timing and timing["seconds"].get("price") is not None:
        t = timing["timing"]
        rows.append((f"one deploy's planning, {t['urls']:,} URLs, {t['changed_urls']:,} changed",
                     _s(timing["seconds"]["price"]), "", "", f"< {t['goal_s']:g} s"))
    return rows


def pool_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    runs = d["runs"]
    mine = runs.get("standard") or runs.get("executor") or next(iter(runs.values()))
    anchor = runs.get("anchor")
    return [(f"hashing {d['files']:,} files (the scan's pool)", _s(mine["median_s"]),
             "" if anchor is None else f"xxh128sum {_s(anchor['median_s'])}",
             "" if anchor is None else _x(mine["median_s"] / anchor["median_s"]), "")]


def fence_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    med = d["median_s"]
    return [(f"{d['puts']} fenced (query-signed) PutObject on botocore, moto",
             _s(med["fenced (query-signed)"]), f"header-signed {_s(med['header-signed'])}",
             _x(d["ratio_median"]), "")]


def groups_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    worst = max(d["cases"], key=lambda c: c["shared_s"])
    return [(f"planning two URL layouts, {d['keys']:,} keys, {d['changed']:,} changed",
             _s(worst["shared_s"]), f"one layout {_s(worst['one_group_s'])}",
             _x(worst["shared_s"] / worst["one_group_s"]), "")]


def million_rows(lines: list[dict]) -> list[Row]:
    d = lines[-1]
    rows: list[Row] = [
        (f"`plan`, {d['files']:,} files, nothing changed", _s(d["planner_median_s"]),
         f"xxh128sum {_s(d['xxh128sum_median_s'])}", _x(d["ratio_median"]), "<= 1.2x"),
        (f"`plan`, {d['files']:,} files, nothing changed: peak RSS (process tree)",
         f"{d['no_change_peak_mb']:,} MB", "", "", "<= 600 MB"),
    ]
    if "first_deploy_peak_mb" in d:
        rows.append((f"first `deploy`, {d['files']:,} files (local target): peak RSS",
                     f"{d['first_deploy_peak_mb']:,} MB ({d['first_deploy_s']:.0f} s)", "", "",
                     "<= 1 GB"))
    return rows


FORMATS: dict[str, Callable[[list[dict]], list[Row]]] = {
    "plan": plan_rows, "takeover": takeover_rows, "upload": upload_rows,
    "minimizer": minimizer_rows, "month": month_rows, "pool": pool_rows, "fence": fence_rows,
    "groups": groups_rows, "million": million_rows,
}


def read_results(path: Path | None = None) -> dict[str, dict[str, Any]]:
    path = path or RESULTS
    out: dict[str, dict[str, Any]] = {}
    if path.exists():
        for text in path.read_text(encoding="utf-8").splitlines():
            if text.strip():
                record = json.loads(text)
                out[record["bench"]] = record
    return out


def table(results: dict[str, dict[str, Any]]) -> str:
    rows: list[Row] = []
    for name in FORMATS:
        if name in results:
            rows += [(*r[:4], r[4]) for r in FORMATS[name](results[name]["lines"])]
    out = ["| benchmark | planner | anchor | vs anchor | goal |", "| --- | --- | --- | --- | --- |"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    dates = sorted({r["date"] for r in results.values()})
    when = f"{dates[0]} to {dates[-1]}" if len(dates) > 1 else (dates[0] if dates else "never")
    out.append("")
    out.append(f"Medians on 2 vCPUs, recorded {when} in `docs/bench/results.jsonl` (each line: "
               "the command and the JSON lines it printed); how each is run and what it "
               "measures: [benchmarks.md](docs/benchmarks.md).")
    return "\n".join(out)


def render(readme: str, results: dict[str, dict[str, Any]]) -> str:
    head, sep, rest = readme.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{README.name}: the marker lines {BEGIN!r} / {END!r} are missing")
    return f"{head}{BEGIN}\n{table(results)}\n{END}{tail}"


def add(name: str, stream: Any) -> None:
    if name not in FORMATS:
        raise SystemExit(f"--add {name}: not one of {', '.join(FORMATS)}")
    lines = []
    for text in stream:
        sys.stdout.write(text)
        text = text.strip()
        if text.startswith("{"):
            try:
                lines.append(json.loads(text))
            except json.JSONDecodeError:
                continue
    if not lines:
        raise SystemExit(f"--add {name}: no JSON line on stdin")
    FORMATS[name](lines)  # refuse what the table cannot show before anything is written
    results = read_results()
    results[name] = {"bench": name, "command": COMMANDS[name],
                     "date": _dt.date.today().isoformat(), "lines": lines}
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("".join(json.dumps(results[k]) + "\n" for k in FORMATS if k in results),
                       encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--add", metavar="NAME", help="record a benchmark's output read on stdin")
    ap.add_argument("--check", action="store_true", help="exit 1 when the README is stale")
    args = ap.parse_args()
    if args.add:
        add(args.add, sys.stdin)
    readme = README.read_text(encoding="utf-8")
    fresh = render(readme, read_results())
    if args.check:
        if fresh != readme:
            print("README.md's benchmark table is stale: run scripts/bench_table.py",
                  file=sys.stderr)
            raise SystemExit(1)
        return
    if fresh != readme:
        README.write_text(fresh, encoding="utf-8")


if __name__ == "__main__":
    main()
