"""End to end: ``planner deploy --wait`` in a subprocess against the moto server, directly
(moto answers GetInvalidation with a completed status at once: ``Completed`` in 5.2.6,
``COMPLETED`` in others, which the proxy plays too) and through ``FaultProxy`` rewriting
GetInvalidation's answers the way AWS spells them: ``InProgress`` for the first polls, then
``Completed`` (a strict fake: moto never says either), or ``InProgress`` for ever (the
timeout: exit 7, the deploy complete, nothing pending).

Every deploy here is a first deploy with ``--invalidate-added``: the distributions have no
earlier invalidation, so planning never calls GetInvalidation and every GetInvalidation the
proxy sees is the wait's.
"""

from __future__ import annotations

import json
import re

import pytest
from e2e_helpers import (
    SITE,
    body,
    create_distribution,
    invalidations,
    manifest,
    objects,
    one_line_error,
    run,
    write_site,
)
from fault_proxy import (
    CF_THROTTLING,
    GET_INVALIDATION,
    INVALIDATION_PATH,
    Error,
    FaultProxy,
    Rule,
    cf_invalidation_status,
)

pytestmark = pytest.mark.e2e

PENDING = ".planner/pending.json"
LOCK = ".planner/lock.json"
LEDGER = ".planner/ledger/"


def deploy_args(build, site, dists, *extra: str) -> list[str]:
    out = ["deploy", str(build), "--target", site.target(), "--invalidate-added"]
    for dist in dists:
        out += ["--distribution", dist]
    return [*out, *extra]


def two_distributions(moto, site) -> list[str]:
    return [site.distribution_id, create_distribution(moto.cloudfront, site.bucket)]


def made(moto, dists) -> dict[str, str]:
    """distribution -> the id of its one invalidation, as CloudFront holds it."""
    out = {}
    for dist in dists:
        (inv,) = invalidations(moto.cloudfront, dist)
        out[dist] = inv["Id"]
    return out


def state(moto, site) -> set[str]:
    return {k for k in objects(moto.s3, site.bucket) if k.startswith(".planner/")}


@pytest.mark.parametrize("spelling", [
    None,  # moto as it is: moto 5.2.6 says "Completed" in GetInvalidation
    "COMPLETED",  # what other moto versions say (see /work/shared/CLOUDFRONT.md), via the proxy
])
def test_wait_against_moto_completes_at_once(moto, site, tmp_path, spelling):
    dists = two_distributions(moto, site)
    build = write_site(tmp_path / "public")
    with FaultProxy(moto.endpoint) as proxy:
        if spelling:
            proxy.add(Rule(cf_invalidation_status(spelling), method="GET", path=GET_INVALIDATION))
        env = proxy.env(moto.env) if spelling else moto.env

        proc = run(deploy_args(build, site, dists, "--wait", "--format", "json"), env, moto.cwd)

    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""  # --format json: no waiting lines
    ids = made(moto, dists)
    wait = json.loads(proc.stdout)["result"]["wait"]
    assert wait["completed"] is True
    assert [(i["distribution_id"], i["id"], i["completed"]) for i in wait["invalidations"]] == [
        (d, ids[d], True) for d in dists
    ]
    statuses = {i["status"] for i in wait["invalidations"]}
    if spelling:
        assert statuses == {spelling}
    else:
        assert {s.lower() for s in statuses} == {"completed"}, statuses


def test_wait_keeps_polling_while_cloudfront_says_in_progress_then_exits_0(moto, site, tmp_path):
    """AWS's spelling through a strict proxy: the first three GetInvalidation answers are
    ``InProgress`` (both at once, then one of two), then ``Completed``."""
    dists = two_distributions(moto, site)
    build = write_site(tmp_path / "public")
    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(cf_invalidation_status("InProgress"), method="GET", path=GET_INVALIDATION,
                       times=3))
        proxy.add(Rule(cf_invalidation_status("Completed"), method="GET", path=GET_INVALIDATION))

        proc = run(deploy_args(build, site, dists, "--wait"), proxy.env(moto.env), moto.cwd)

        log = proxy.since()
    assert proc.returncode == 0, proc.stderr
    ids = made(moto, dists)
    first, second = ids[dists[0]], ids[dists[1]]
    got = [(e.path.rsplit("/", 1)[1], e.action) for e in log if re.search(GET_INVALIDATION, e.path)]
    # polled at once (both InProgress), after 5 s (the first still InProgress, the second
    # Completed), after 10 s more (the first Completed): a completed one is not asked again
    assert [i for i, _ in got] == [first, second, first, second, first], got
    assert all(e.status == 200 for e in log if re.search(GET_INVALIDATION, e.path))
    # every poll came after both invalidations were created, and after the pending record
    # was removed (the deploy was over)
    creates = [e.number for e in log if INVALIDATION_PATH.match(e.raw_path) and e.method == "POST"]
    removed = [e.number for e in log if e.method == "DELETE" and e.key == PENDING]
    first_poll = min(e.number for e in log if re.search(GET_INVALIDATION, e.path))
    assert len(creates) == 2 and max(creates) < first_poll and removed and removed[-1] < first_poll
    waiting = [line for line in proc.stderr.splitlines() if "CloudFront" in line]
    assert [re.sub(r"\(\d+ s\)", "(N s)", line) for line in waiting] == [
        "waiting for CloudFront: 0 of 2 invalidations completed (N s)",
        "waiting for CloudFront: 1 of 2 invalidations completed (N s)",
        "CloudFront completed 2 invalidations (N s)",
    ]
    assert re.search(r"CloudFront completed the invalidations in 1[5-9] s\.$", proc.stdout.strip())
    assert not {PENDING, LOCK} & state(moto, site)


def test_wait_past_the_timeout_exits_7_with_the_deploy_complete_and_nothing_pending(
    moto, site, tmp_path
):
    build = write_site(tmp_path / "public")
    dists = [site.distribution_id]
    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(cf_invalidation_status("InProgress"), method="GET", path=GET_INVALIDATION))
        env = proxy.env(moto.env)

        proc = run(deploy_args(build, site, dists, "--wait", "--wait-timeout", "1", "--format",
                               "json"), env, moto.cwd)

        assert proc.returncode == 7, (proc.stdout, proc.stderr)
        line = one_line_error(proc)
        ids = made(moto, dists)
        inv = ids[site.distribution_id]
        assert line == (
            "Error: the deploy is complete (site, manifest and ledger written; invalidations "
            f"submitted: {site.distribution_id}:{inv}), but CloudFront had not finished "
            "invalidating after 1 s (--wait-timeout): 0 of 1 completed; still "
            f"{site.distribution_id}:{inv} InProgress"
        )
        doc = json.loads(proc.stdout)
        assert doc["result"]["wait"] == {
            "completed": False,
            "seconds": doc["result"]["wait"]["seconds"],
            "invalidations": [{"distribution_id": site.distribution_id, "id": inv,
                               "status": "InProgress", "completed": False}],
        }
        assert 1 <= doc["result"]["wait"]["seconds"] < 5
        # Everything but CloudFront's own work is done: site, manifest, ledger; no pending
        # record, no lock.
        m = manifest(moto.s3, site.bucket)
        assert m is not None and m.deploy_id == doc["manifest"]["deploy_id"]
        for key, text in SITE.items():
            assert body(moto.s3, site.bucket, key) == text.encode()
        left = state(moto, site)
        assert PENDING not in left and LOCK not in left
        assert any(k.startswith(LEDGER) and m.deploy_id in k for k in left), left

        # A rerun has nothing to deploy and submits nothing.
        mark = proxy.mark()
        rerun = run(deploy_args(build, site, dists), env, moto.cwd)
        assert rerun.returncode == 0, rerun.stderr
        assert rerun.stdout.strip().endswith(f"Nothing to deploy: {len(SITE)} files unchanged.")
        assert proxy.invalidation_requests(mark) == []
    assert len(invalidations(moto.cloudfront, site.distribution_id)) == 1


def test_throttled_polls_are_asked_again(moto, site, tmp_path):
    build = write_site(tmp_path / "public")
    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(CF_THROTTLING, method="GET", path=GET_INVALIDATION, times=1))
        proxy.add(Rule(cf_invalidation_status("Completed"), method="GET", path=GET_INVALIDATION))

        # --max-attempts 1: botocore does not retry, so the wait sees the throttling itself
        proc = run(deploy_args(build, site, [site.distribution_id], "--wait", "--max-attempts",
                               "1", "--format", "json"), proxy.env(moto.env), moto.cwd)

        statuses = [e.status for e in proxy.requests(method="GET", path=GET_INVALIDATION)]
    assert proc.returncode == 0, proc.stderr
    assert statuses == [400, 200]
    assert json.loads(proc.stdout)["result"]["wait"]["invalidations"][0]["status"] == "Completed"


def test_access_denied_while_waiting_fails_saying_the_deploy_is_complete(moto, site, tmp_path):
    build = write_site(tmp_path / "public")
    denied = Error(403, "AccessDenied", "User is not authorized to perform: "
                   "cloudfront:GetInvalidation", service="cloudfront")
    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(denied, method="GET", path=GET_INVALIDATION))

        proc = run(deploy_args(build, site, [site.distribution_id], "--wait", "--format", "json"),
                   proxy.env(moto.env), moto.cwd)

    line = one_line_error(proc)
    assert proc.returncode == 1
    inv = made(moto, [site.distribution_id])[site.distribution_id]
    assert line.startswith(f"Error: the deploy is complete (invalidations submitted: "
                           f"{site.distribution_id}:{inv}), but waiting for them failed: "
                           f"GetInvalidation {inv} on {site.distribution_id}: AccessDenied")
    assert not {PENDING, LOCK} & state(moto, site)
