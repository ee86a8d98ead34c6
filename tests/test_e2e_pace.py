"""--pace price through the real CLI on the local backend: each deploy's ledger record keeps
its frontier, the next plan learns from them, and plan and deploy agree on the price."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-site"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "planner", *args], capture_output=True,
                          text=True, timeout=60)


def plan_json(site: Path, target: Path, *extra: str) -> dict:
    r = run("plan", str(site), "--target", str(target), "-d", "E1", "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def records(target: Path) -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((target / ".planner" / "ledger").rglob("*.json"))]


def test_deploys_record_their_frontier_and_the_next_plan_learns_from_them(tmp_path):
    site, target = tmp_path / "site", tmp_path / "out"
    shutil.copytree(SAMPLE, site)
    assert run("deploy", str(site), "--target", str(target), "-d", "E1", "-q").returncode == 0
    first = plan_json(site, target)  # nothing changed: nothing priced
    assert first["invalidation"]["budget"] is None or first["invalidation"]["paths"] == []

    for i in range(3):
        (site / "about" / "index.html").write_text(f"<h1>About {i}</h1>\n")
        (site / "blog" / "index.html").write_text(f"<h1>Blog {i}</h1>\n")
        planned = plan_json(site, target)
        r = run("deploy", str(site), "--target", str(target), "-d", "E1", "--format", "json")
        assert r.returncode == 0, r.stderr
        done = json.loads(r.stdout)
        # plan and deploy agree: the same price, the same paths
        assert done["invalidation"]["budget"]["shadow_price_usd"] == \
            planned["invalidation"]["budget"]["shadow_price_usd"]
        assert done["invalidation"]["paths"] == planned["invalidation"]["paths"]

    recs = records(target)  # (in file-name order: deploys in the same second by deploy id)
    assert len(recs) == 4
    [first] = [r for r in recs if r["previous_deploy_id"] is None]
    assert first["frontier"] == []  # the first deploy invalidated nothing (all new)
    for rec in (r for r in recs if r is not first):
        assert rec["frontier"] and rec["frontier"][0][0] == 0.0
        assert rec["shadow_price_usd"] == 0.0  # a quiet site: free paths are free

    (site / "css" / "style.css").write_text("body { color: red }\n")
    budget = plan_json(site, target)["invalidation"]["budget"]
    assert budget["pace"] == "price"
    # (in 1 day, or 2 when the test runs across midnight UTC)
    assert re.match(r"4 deploys of this target in (1 day, 4\.0|2 days, 2\.0) a day; ",
                    budget["shadow_price_source"]), budget["shadow_price_source"]
    r = run("plan", str(site), "--target", str(target), "-d", "E1")
    assert "shadow price of a free path: $0.00 (4 deploys of this target in " in r.stdout


def test_the_older_paces_stay(tmp_path):
    site, target = tmp_path / "site", tmp_path / "out"
    shutil.copytree(SAMPLE, site)
    assert run("deploy", str(site), "--target", str(target), "-d", "E1", "-q").returncode == 0
    (site / "about" / "index.html").write_text("<h1>About</h1>\n")
    for pace in ("even", "none"):
        budget = plan_json(site, target, "--pace", pace)["invalidation"]["budget"]
        assert budget["pace"] == pace and budget["shadow_price_usd"] is None
    r = run("plan", str(site), "--target", str(target), "--pace", "cheap")
    assert r.returncode == 2 and "'cheap' is not one of 'price', 'even', 'none'" in r.stderr
