"""End to end (moto server, ``python -m planner`` in a subprocess): the two figures apart
(what AWS bills for this deploy's paths, given the month's usage read from CloudFront, and
the cost model's estimate of the needless misses) in the plan's JSON and table, the ledger and
the report; ``--max-cost`` refusing with nothing written; ``paths`` reading the month's usage;
counts with the right plural.

Invalidations made with boto3 directly stand for other tools spending the month's free paths.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from e2e_helpers import (
    history,
    invalidations,
    objects,
    one_line_error,
    run,
    run_json,
    write_site,
)
from test_e2e_budget import (
    FILES,
    MISS,
    args,
    deploy,
    edit,
    other_tool,
    plan,
    section_keys,
)

from manifests.model import STATE_DIR
from manifests.stores import MANIFEST_NAME

pytestmark = pytest.mark.e2e


@pytest.fixture
def public(tmp_path: Path) -> Path:
    return write_site(tmp_path / "public", FILES)


def test_within_the_free_tier_aws_charges_nothing_and_misses_stand_apart(moto, site, public):
    deploy(moto, public, site)
    edit(public, ["about/index.html", "css/site.css"])
    doc = plan(moto, public, site)
    inv = doc["invalidation"]
    assert (inv["paid_paths"], inv["charge_usd"], inv["free_paths_used"]) == (0, 0.0, 2)
    alts = {a["name"]: a for a in inv["alternatives"]}
    star = alts["/*"]
    # The case: "/*" was shown at $0.0004 while AWS bills nothing for it.
    assert (star["paid_paths"], star["charge_usd"]) == (0, 0.0)
    assert star["miss_cost_usd"] == pytest.approx(star["collateral_urls"] * MISS)
    assert star["cost_usd"] == pytest.approx(star["charge_usd"] + star["miss_cost_usd"])
    assert doc["cost"] == {"paths": 2, "paid_paths": 0, "charge_usd": 0.0, "collateral_urls": 0,
                           "miss_cost_usd": 0.0, "cost_usd": 0.0}
    text = run(args("plan", public, site), moto.env, moto.cwd).stdout
    assert "AWS charge: $0.00 (0 paid paths)" in text
    assert "miss estimate: $0.00 for 0 needless misses (cost model, --miss-cost)" in text
    assert re.search(r"^/\*\s+1\s+\S+\s+0\s+\$0\.00\s+\$0\.0\d+$", text, re.M), text


def test_one_paid_path_is_billed_at_the_price_and_recorded_so(moto, site, public):
    deploy(moto, public, site)
    other_tool(moto.cloudfront, site.distribution_id, 1000)  # the month's free paths, spent
    edit(public, ["css/site.css"])

    doc = deploy(moto, public, site)
    inv = doc["invalidation"]
    assert inv["paths"] == ["/css/site.css"]
    assert (inv["paid_paths"], inv["charge_usd"], inv["miss_cost_usd"]) == (1, 0.005, 0.0)
    assert inv["cost_usd"] == 0.005  # the plan said $0.0054 before the figures were apart
    # The ledger keeps both, and the report sums them.
    report = run_json(["report", "--target", site.target()], moto.env, moto.cwd)
    tool = report["tool"]
    assert (tool["paid_paths"], tool["charge_usd"], tool["miss_cost_usd"]) == (1, 0.005, 0.0)
    assert report["account"]["charge_usd"] == 0.005
    star = tool["alternatives"]["wildcard_all"]
    assert star["miss_cost_usd"] == pytest.approx(star["needless_misses"] * MISS)
    text = run(["report", "--target", site.target()], moto.env, moto.cwd).stdout
    assert "AWS charge: $0.005 (1 paid path)" in text
    assert re.search(r"^miss estimate\s+\$0\.00\s+\$0\.00\s+\$0\.0\d+", text, re.M), text


def test_over_max_cost_a_deploy_is_refused_and_writes_nothing(moto, site, public):
    deploy(moto, public, site)
    other_tool(moto.cloudfront, site.distribution_id, 1000)
    pages = section_keys(3, 17, 25) + ["about/index.html"]
    edit(public, pages)
    before = (history(moto.s3, site.bucket), objects(moto.s3, site.bucket))
    invs = len(invalidations(moto.cloudfront, site.distribution_id))

    dear = ("--miss-cost", "0.001")  # a needless miss dear enough that pages get wildcards
    proc = run(args("deploy", public, site, *dear, "--max-cost", "0.01"), moto.env, moto.cwd)
    assert proc.returncode == 6
    line = one_line_error(proc)
    assert line.startswith("Error: this deploy would be charged $0.02 by AWS (4 paid paths), "
                           "above --max-cost $0.01; nothing was written. Within it: ")
    assert (history(moto.s3, site.bucket), objects(moto.s3, site.bucket)) == before
    assert len(invalidations(moto.cloudfront, site.distribution_id)) == invs
    # plan refuses alike, and writes no saved plan
    saved = Path(moto.cwd) / "plan.json"
    proc = run(args("plan", public, site, *dear, "--max-cost", "0.01", "--out", str(saved)),
               moto.env, moto.cwd)
    assert proc.returncode == 6 and not saved.exists()
    # Within the cap, the deploy goes ahead.
    doc = deploy(moto, public, site, *dear, "--max-cost", "0.02")
    assert doc["cost"]["charge_usd"] == 0.02


def test_a_saved_plan_keeps_its_cap_and_a_lower_one_given_to_deploy_holds(moto, site, public):
    deploy(moto, public, site)
    other_tool(moto.cloudfront, site.distribution_id, 1000)
    edit(public, ["css/site.css"])
    saved = Path(moto.cwd) / "plan.json"
    proc = run(args("plan", public, site, "--max-cost", "0.005", "--out", str(saved)),
               moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(saved.read_text())["options"]["max_cost"] == 0.005
    proc = run(["deploy", "--plan", str(saved), "--max-cost", "0"], moto.env, moto.cwd)
    assert proc.returncode == 6, proc.stderr
    assert "above --max-cost $0.00" in one_line_error(proc)
    doc = run_json(["deploy", "--plan", str(saved)], moto.env, moto.cwd)
    assert doc["result"]["paths"] == 1


def test_without_a_distribution_nothing_is_charged_and_no_cap_refuses(moto, site, public):
    """An S3 target with no --distribution: the plan lists the paths but submits none, so
    AWS bills nothing whatever the month's usage, and --max-cost 0 refuses neither the plan
    nor the deploy."""
    deploy(moto, public, site, dists=())
    edit(public, ["about/index.html", "css/site.css"])
    spent = ("--paths-used", "1000", "--max-cost", "0")  # no free path left; no dollar allowed
    doc = plan(moto, public, site, *spent, dists=())
    inv = doc["invalidation"]
    assert inv["distribution_ids"] == [] and inv["paths"], inv
    assert (inv["paid_paths"], inv["charge_usd"], inv["free_paths_used"]) == (0, 0.0, 0)
    assert all(a["charge_usd"] == 0.0 for a in inv["alternatives"]), inv["alternatives"]
    assert (doc["cost"]["paths"], doc["cost"]["charge_usd"]) == (0, 0.0)
    text = run(args("plan", public, site, *spent, dists=()), moto.env, moto.cwd)
    assert text.returncode == 0, text.stderr
    assert "no distribution given (not submitted)" in text.stdout
    assert "AWS charge: $0.00 (0 paid paths)" in text.stdout
    before = len(invalidations(moto.cloudfront, site.distribution_id))
    done = deploy(moto, public, site, *spent, dists=())
    assert done["result"]["paths"] == 0 and not done["result"]["invalidations"]
    assert len(invalidations(moto.cloudfront, site.distribution_id)) == before


@pytest.mark.parametrize("value", ["-1", "abc", "nan"])
def test_a_bad_max_cost_is_refused_as_usage(moto, site, public, value):
    proc = run(args("plan", public, site, "--max-cost", value), moto.env, moto.cwd)
    assert proc.returncode == 2
    assert "--max-cost" in proc.stderr and "Traceback" not in proc.stderr


def test_paths_reads_the_months_usage_when_asked(moto, site, public, tmp_path):
    other_tool(moto.cloudfront, site.distribution_id, 300)
    changed = tmp_path / "changed.txt"
    changed.write_text("css/site.css\n")
    base = ["paths", "-u", str(public), "-c", str(changed)]
    doc = run_json(base, moto.env, moto.cwd)
    assert (doc["free_paths"], doc["usage_source"]) == (1000, None)  # not asked: 1,000
    doc = run_json([*base, "--distribution", site.distribution_id], moto.env, moto.cwd)
    assert (doc["free_paths"], doc["usage_source"]) == (700, "cloudfront")
    doc = run_json([*base, "--target", site.target()], moto.env, moto.cwd)
    assert doc["free_paths"] == 700
    # a flag still wins
    doc = run_json([*base, "--target", site.target(), "--free", "5"], moto.env, moto.cwd)
    assert doc["free_paths"] == 5
    # and the state (count cache) of the target is not written by `paths`
    assert not any(k.startswith(f"{STATE_DIR}/") and k != f"{STATE_DIR}/{MANIFEST_NAME}"
                   for k in objects(moto.s3, site.bucket) if "count" in k)


ONE_OF_MANY = re.compile(
    r"\b1 (paths|files|wildcards|assets|pages|objects|keys|URLs|misses|deletes|distributions|"
    r"days|deploys|invalidations|changed URLs|needless misses|paid paths|new files)\b"
)


def test_one_of_a_thing_is_never_plural(moto, site, tmp_path):
    public = write_site(tmp_path / "one", {"index.html": "<h1>a</h1>\n", "a.css": "a{}\n"})
    run(args("deploy", public, site), moto.env, moto.cwd)
    (public / "a.css").write_text("b{}\n")
    outputs = []
    for command in (["plan"], ["deploy", "-v"]):
        proc = run(args(command[0], public, site, *command[1:]), moto.env, moto.cwd)
        assert proc.returncode == 0, proc.stderr
        outputs += [proc.stdout, proc.stderr]
    proc = run(["report", "--target", site.target()], moto.env, moto.cwd)
    outputs += [proc.stdout]
    text = "\n".join(outputs)
    assert "1 path (" in text or "1 path" in text
    assert not ONE_OF_MANY.search(text), ONE_OF_MANY.search(text).group(0)
