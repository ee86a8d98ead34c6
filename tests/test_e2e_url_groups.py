"""End to end: several ``--distribution``s that serve the deploy target under different URLs
(another origin path, other behaviors). The real CLI runs in a subprocess against the moto
server; the invalidations are then read from CloudFront with boto3, per distribution.

The distributions are grouped by how they serve the target, and each group gets its own
invalidation: its own changed URLs and paths, submitted only to its own distributions. The
layouts used here, for the target s3://BUCKET/site/ and its key site/js/app.js:

- ROOT: the ``site`` fixture's distribution, serving the bucket from its root: /site/js/app.js;
- SITE: origin path "/site": /js/app.js;
- BLOG: origin path "/blog": the target is not served there at all.
"""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    SITE,
    body,
    create_distribution,
    history,
    inv_paths,
    invalidations,
    manifest,
    objects,
    one_line_error,
    run,
    run_json,
    site_objects,
    write_site,
)
from fault_proxy import FaultProxy, kill_run

pytestmark = pytest.mark.e2e

PREFIX = "site/"
# js/app.js and img/logo.svg, as each layout serves them
ROOT_PATHS = ["/site/img/logo.svg", "/site/js/app.js"]
SITE_PATHS = ["/img/logo.svg", "/js/app.js"]
INVALIDATION = r"^/20\d\d-\d\d-\d\d/distribution/[^/]+/invalidation$"


@pytest.fixture
def public(tmp_path: Path) -> Path:
    """The build folder, holding SITE."""
    return write_site(tmp_path / "public")


def planner(moto, *args: str) -> subprocess.CompletedProcess:
    return run(list(args), moto.env, moto.cwd)


def args_for(command: str, public: Path, site, dists: list[str], *extra: str,
             prefix: str = PREFIX) -> list[str]:
    """``COMMAND PUBLIC --target s3://bucket/prefix -d D1 -d D2 ... EXTRA...``"""
    out = [command, str(public), "--target", site.target(prefix)]
    for dist in dists:
        out += ["--distribution", dist]
    return [*out, *extra]


def deploy(moto, public: Path, site, dists: list[str], *extra: str, prefix: str = PREFIX) -> dict:
    """A deploy that must succeed and leave no pending record; its JSON document."""
    doc = run_json(args_for("deploy", public, site, dists, *extra, prefix=prefix),
                   moto.env, moto.cwd)
    assert sorted(site_objects(moto.s3, site.bucket, prefix)) == sorted(SITE)
    assert manifest(moto.s3, site.bucket, prefix).deploy_id == doc["manifest"]["deploy_id"]
    assert "pending.json" not in objects(moto.s3, site.bucket, prefix + ".planner/")
    return doc


def change_js_and_logo(public: Path) -> None:
    (public / "js" / "app.js").write_text("console.log('v2');\n", encoding="utf-8")
    (public / "img" / "logo.svg").write_text("<svg/>\n", encoding="utf-8")


def groups(doc: dict) -> list[tuple[list[str], list[str]]]:
    """(distribution ids, paths) of each group of the plan's JSON, in order."""
    return [(g["distribution_ids"], g["paths"]) for g in doc["invalidations"]]


def paths_on(moto, dist: str) -> list[list[str]]:
    """The paths of every invalidation CloudFront holds for ``dist``."""
    return sorted(inv_paths(i) for i in invalidations(moto.cloudfront, dist))


def ledger_records(moto, site, prefix: str = PREFIX) -> dict[str, dict]:
    folder = prefix + ".planner/ledger/"
    return {k: json.loads(body(moto.s3, site.bucket, folder + k))
            for k in objects(moto.s3, site.bucket, folder)}


def snapshot(moto, site, dists: list[str]) -> tuple[list, list]:
    """Everything a run could change: the bucket's full history and every invalidation."""
    return history(moto.s3, site.bucket), [invalidations(moto.cloudfront, d) for d in dists]


# --- deploys ---------------------------------------------------------------------------------


def test_two_layouts_get_one_invalidation_each_with_their_own_urls(moto, site, public):
    root, other = site.distribution_id, create_distribution(moto.cloudfront, site.bucket, "/site")
    deploy(moto, public, site, [root, other])
    before = ledger_records(moto, site)
    change_js_and_logo(public)

    doc = deploy(moto, public, site, [root, other])

    assert groups(doc) == [([root], ROOT_PATHS), ([other], SITE_PATHS)]
    assert doc["invalidation"] == doc["invalidations"][0]
    first, second = doc["invalidations"]
    assert first["changed_urls"] == second["changed_urls"] == 2
    # One free allowance for the deploy: the second group gets what the first left.
    assert second["free_paths"] == first["free_paths"] - len(ROOT_PATHS)
    # Each distribution got its own group's paths, and only those.
    assert paths_on(moto, root) == [ROOT_PATHS]
    assert paths_on(moto, other) == [SITE_PATHS]
    (inv_root,) = invalidations(moto.cloudfront, root)
    (inv_other,) = invalidations(moto.cloudfront, other)
    assert doc["result"]["invalidations"] == [
        {"distribution_id": root, "id": inv_root["Id"]},
        {"distribution_id": other, "id": inv_other["Id"]},
    ]
    reference = f"planner-{doc['manifest']['deploy_id']}"
    for inv in (inv_root, inv_other):
        assert inv["InvalidationBatch"]["CallerReference"] == reference

    # The ledger record sums over both distributions.
    new = {k: v for k, v in ledger_records(moto, site).items() if k not in before}
    (record,) = new.values()
    assert record["deploy_id"] == doc["manifest"]["deploy_id"]
    assert record["distribution_ids"] == [root, other]
    assert record["paths"] == len(ROOT_PATHS) + len(SITE_PATHS)
    assert record["changed_urls"] == 4
    assert record["invalidation_ids"] == {root: inv_root["Id"], other: inv_other["Id"]}
    assert record["paid_paths"] == 0 and record["dollars"] == 0
    assert record["alternatives"]["exact_paths"]["paths"] == 4
    assert record["alternatives"]["wildcard_all"]["paths"] == 2  # "/*" on each


def test_the_table_output_shows_each_groups_invalidation_and_both_ids(moto, site, public):
    root, other = site.distribution_id, create_distribution(moto.cloudfront, site.bucket, "/site")
    deploy(moto, public, site, [root, other])
    change_js_and_logo(public)

    plan = planner(moto, *args_for("plan", public, site, [root, other]))
    proc = planner(moto, *args_for("deploy", public, site, [root, other], "--format", "table"))

    assert plan.returncode == 0, plan.stderr
    assert proc.returncode == 0, proc.stderr
    for out in (plan.stdout, proc.stdout):
        assert "under 2 different URL layouts" in out
        assert f"Invalidation on {root}" in out and f"Invalidation on {other}" in out
        assert f"2 paths (0 wildcards) for 2 changed URLs, 0 needless misses, on {root}" in out
        assert f"2 paths (0 wildcards) for 2 changed URLs, 0 needless misses, on {other}" in out
        for path in ROOT_PATHS + SITE_PATHS:
            assert path in out, path
    assert paths_on(moto, root) == [ROOT_PATHS]
    assert paths_on(moto, other) == [SITE_PATHS]
    (inv_root,) = invalidations(moto.cloudfront, root)
    (inv_other,) = invalidations(moto.cloudfront, other)
    summary = proc.stdout.strip().splitlines()[-1]
    assert (f"invalidated 4 paths ({root}:{inv_root['Id']}, {other}:{inv_other['Id']}; "
            "AWS charge $0.00, miss estimate $0.00)") in summary


def test_distributions_that_serve_alike_share_one_group_whatever_their_order(
    moto, site, public
):
    root = site.distribution_id
    alike = [create_distribution(moto.cloudfront, site.bucket, "/site") for _ in range(2)]
    # The root one between the two alike: grouped by layout, not by position.
    dists = [alike[0], root, alike[1]]
    deploy(moto, public, site, dists)
    change_js_and_logo(public)

    doc = deploy(moto, public, site, dists)

    assert groups(doc) == [(alike, SITE_PATHS), ([root], ROOT_PATHS)]
    assert paths_on(moto, alike[0]) == paths_on(moto, alike[1]) == [SITE_PATHS]
    assert paths_on(moto, root) == [ROOT_PATHS]
    first, second = doc["invalidations"]
    # The first group's paths are billed on each of its two distributions.
    assert second["free_paths"] == first["free_paths"] - 2 * len(SITE_PATHS)


def test_a_distribution_that_serves_none_of_the_changed_keys_gets_no_invalidation(
    moto, site, public
):
    # BLOG serves only site/docs/ of the bucket (a part of the target, site/); the changes
    # are elsewhere. (A distribution serving nothing of the target at all is refused:
    # test_bad_input.py.)
    root, blog = site.distribution_id, create_distribution(moto.cloudfront, site.bucket,
                                                           "/site/docs")
    deploy(moto, public, site, [blog, root])
    change_js_and_logo(public)

    doc = deploy(moto, public, site, [blog, root])

    assert groups(doc) == [([blog], []), ([root], ROOT_PATHS)]
    assert doc["invalidations"][0]["changed_urls"] == 0
    assert invalidations(moto.cloudfront, blog) == []
    assert paths_on(moto, root) == [ROOT_PATHS]
    assert [i["distribution_id"] for i in doc["result"]["invalidations"]] == [root]


def test_a_behavior_routing_js_elsewhere_keeps_js_off_that_distribution(moto, site, public):
    # On API, /js/* goes to another origin: the bucket's js/app.js is not served there.
    api = create_distribution(moto.cloudfront, site.bucket, behaviors=(("js/*", "other"),))
    plain = site.distribution_id
    deploy(moto, public, site, [api, plain], prefix="")
    change_js_and_logo(public)

    doc = deploy(moto, public, site, [api, plain], prefix="")

    assert groups(doc) == [([api], ["/img/logo.svg"]), ([plain], SITE_PATHS)]
    assert paths_on(moto, api) == [["/img/logo.svg"]]
    assert paths_on(moto, plain) == [SITE_PATHS]


# --- saved plans -----------------------------------------------------------------------------


def test_a_saved_plan_applies_each_groups_saved_paths(moto, site, public):
    root, other = site.distribution_id, create_distribution(moto.cloudfront, site.bucket, "/site")
    deploy(moto, public, site, [root, other])
    change_js_and_logo(public)
    # No free paths: each group pays for one wildcard rather than two exact paths (a deploy
    # without the plan would send the exact ones).
    plan = planner(moto, *args_for("plan", public, site, [root, other], "--out", "plan.json",
                                   "--free-paths-per-month", "0"))
    assert plan.returncode == 0, plan.stderr
    saved = json.loads(Path(moto.cwd, "plan.json").read_text(encoding="utf-8"))
    assert groups(saved["plan"]) == [([root], ["/site/*"]), ([other], ["/*"])]

    proc = planner(moto, "deploy", "--plan", "plan.json", "--format", "json")

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert groups(doc) == groups(saved["plan"])
    assert paths_on(moto, root) == [["/site/*"]]
    assert paths_on(moto, other) == [["/*"]]
    assert manifest(moto.s3, site.bucket, PREFIX).deploy_id == saved["deploy_id"]
    assert "pending.json" not in objects(moto.s3, site.bucket, PREFIX + ".planner/")


def _set_origin_path(cloudfront: Any, dist: str, origin_path: str) -> None:
    current = cloudfront.get_distribution_config(Id=dist)
    config = current["DistributionConfig"]
    for origin in config["Origins"]["Items"]:
        origin["OriginPath"] = origin_path
    cloudfront.update_distribution(Id=dist, DistributionConfig=config, IfMatch=current["ETag"])


@pytest.mark.parametrize(
    ("origin_path", "now", "error"),
    [
        # OTHER now serves the bucket from its root too: one layout, where the plan has two.
        ("", lambda root, other: [([root, other], ROOT_PATHS)],
         lambda other: "serve the target differently since the plan was made"),
        # Same grouping, other URLs: OTHER serves site/js/ as its root, so the saved
        # /js/app.js would leave the new URL /app.js cached.
        ("/site/js", lambda root, other: [([root], ROOT_PATHS), ([other], ["/app.js"])],
         lambda other: f"the saved paths no longer invalidate /app.js on {other}"),
    ],
    ids=["grouped-otherwise", "other-urls"],
)
def test_a_saved_plan_is_refused_once_a_distributions_origin_changed(
    moto, site, public, origin_path, now, error
):
    root, other = site.distribution_id, create_distribution(moto.cloudfront, site.bucket, "/site")
    deploy(moto, public, site, [root, other])
    change_js_and_logo(public)
    plan = planner(moto, *args_for("plan", public, site, [root, other], "--out", "plan.json"))
    assert plan.returncode == 0, plan.stderr
    _set_origin_path(moto.cloudfront, other, origin_path)
    check = run_json(args_for("plan", public, site, [root, other]), moto.env, moto.cwd)
    assert groups(check) == now(root, other)
    before = snapshot(moto, site, [root, other])

    proc = planner(moto, "deploy", "--plan", "plan.json")

    assert proc.returncode == 1
    assert error(other) in one_line_error(proc)
    assert snapshot(moto, site, [root, other]) == before


# --- an interrupted deploy -------------------------------------------------------------------


def test_a_deploy_killed_after_its_commit_is_finished_per_group_by_the_rerun(
    moto, site, public
):
    root, other = site.distribution_id, create_distribution(moto.cloudfront, site.bucket, "/site")
    deploy(moto, public, site, [root, other])
    change_js_and_logo(public)
    args = args_for("deploy", public, site, [root, other], "--format", "json")

    with FaultProxy(moto.endpoint) as proxy:
        # Killed at its first CreateInvalidation: the manifest is committed, nothing invalidated.
        code, fired, _ = kill_run(args, proxy.env(moto.env), moto.cwd, proxy,
                                  method="POST", path=INVALIDATION, times=1)
    assert fired is not None and code == -signal.SIGKILL
    assert invalidations(moto.cloudfront, root) == invalidations(moto.cloudfront, other) == []
    committed = manifest(moto.s3, site.bucket, PREFIX).deploy_id
    pending = json.loads(body(moto.s3, site.bucket, PREFIX + ".planner/pending.json"))
    assert pending["deploy_id"] == committed
    assert pending["per_distribution"] == [[root, ROOT_PATHS], [other, SITE_PATHS]]

    doc = deploy(moto, public, site, [root, other])

    assert doc["uploads"] == []  # the build is deployed: only the invalidations were left
    assert doc["result"]["resumed"] == committed
    assert doc["result"]["paths"] == 4  # what the finished deploy submitted, not this plan's 0
    assert doc["resume"]["invalidations"] == [
        {"distribution_id": root, "paths": ROOT_PATHS},
        {"distribution_id": other, "paths": SITE_PATHS},
    ]
    assert paths_on(moto, root) == [ROOT_PATHS]
    assert paths_on(moto, other) == [SITE_PATHS]
    for dist in (root, other):
        (inv,) = invalidations(moto.cloudfront, dist)
        assert inv["InvalidationBatch"]["CallerReference"] == f"planner-{committed}"
    (record,) = [r for r in ledger_records(moto, site).values() if r["deploy_id"] == committed]
    assert record["paths"] == 4 and record["resumed"] is True


# --- verify --repair -------------------------------------------------------------------------


def test_repair_invalidates_the_repaired_key_under_each_layouts_url(moto, site, public):
    root, other = site.distribution_id, create_distribution(moto.cloudfront, site.bucket, "/site")
    deploy(moto, public, site, [root, other])
    moto.s3.delete_object(Bucket=site.bucket, Key=PREFIX + "js/app.js")

    proc = planner(moto, "verify", "--target", site.target(PREFIX), "--repair", str(public),
                   "-d", root, "-d", other, "--format", "json")

    assert proc.returncode == 0, proc.stderr  # all the drift it found is repaired
    doc = json.loads(proc.stdout)
    assert [(d["key"], d["problem"]) for d in doc["drift"]] == [("js/app.js", "missing")]
    assert doc["repaired"] == ["js/app.js"] and doc["clean"] is True
    assert body(moto.s3, site.bucket, PREFIX + "js/app.js") == (public / "js/app.js").read_bytes()
    assert paths_on(moto, root) == [["/site/js/app.js"]]
    assert paths_on(moto, other) == [["/js/app.js"]]
    (inv_root,) = invalidations(moto.cloudfront, root)
    (inv_other,) = invalidations(moto.cloudfront, other)
    assert doc["invalidation"] == {
        "paths": ["/js/app.js", "/site/js/app.js"],
        "distribution_ids": [root, other],
        "ids": {root: inv_root["Id"], other: inv_other["Id"]},
        "invalidations": [
            {"paths": ["/site/js/app.js"], "distribution_ids": [root]},
            {"paths": ["/js/app.js"], "distribution_ids": [other]},
        ],
    }
    assert "pending.json" not in objects(moto.s3, site.bucket, PREFIX + ".planner/")
    (record,) = [r for r in ledger_records(moto, site).values() if r["kind"] == "repair"]
    assert record["paths"] == 2
    assert record["invalidation_ids"] == {root: inv_root["Id"], other: inv_other["Id"]}
