"""The pending record against a moto server: a batch CloudFront refuses for good is replaced
by a valid one for the same URLs instead of blocking every later deploy; a malformed record
names its place and the commands that clear it."""

from __future__ import annotations

import json
import re

import pytest
from e2e_helpers import (
    SITE,
    history,
    inv_paths,
    invalidations,
    manifest,
    objects,
    one_line_error,
    run,
    site_objects,
    write_site,
)
from fault_proxy import Error, FaultProxy, Rule

from planner.plan.journal import Journal

PENDING = ".planner/pending.json"
INVALIDATION = r"^/20\d\d-\d\d-\d\d/distribution/[^/]+/invalidation$"
V2 = {**SITE, "css/site.css": "body { color: #000; }\n"}


def deploy(root, site, env, cwd, *extra):
    return run(["deploy", str(root), "--target", site.target(), "--distribution",
                site.distribution_id, *extra], env, cwd)


# CloudFront's answers to a CreateInvalidation that no retry changes (apply.REFUSED_FOR_GOOD):
# a path it refuses, a batch too large, the deploy's CallerReference already used for other
# paths (a pending record edited by hand).
REFUSALS = [
    Error(400, "InvalidArgument", "Your request contains one or more invalid invalidation "
          "paths.", service="cloudfront"),
    Error(413, "BatchTooLarge", "Invalidation batch specified is too large.",
          service="cloudfront"),
    Error(409, "InvalidationBatchAlreadyExists", "The CallerReference you attempted to use "
          "is already used by another invalidation batch.", service="cloudfront"),
]


@pytest.mark.parametrize("refused", REFUSALS, ids=lambda e: e.code)
def test_a_batch_cloudfront_refuses_for_good_is_replaced_and_the_next_deploys_go_on(
    moto, site, tmp_path, refused
):
    v1, v2 = write_site(tmp_path / "v1"), write_site(tmp_path / "v2", V2)
    assert deploy(v1, site, moto.env, moto.cwd).returncode == 0
    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(refused, method="POST", path=INVALIDATION, times=1))
        done = deploy(v2, site, proxy.env(moto.env), moto.cwd)
        sent = [e.invalidation_batch() for e in proxy.invalidation_requests()]

    assert done.returncode == 0, done.stderr
    assert f"cannot be accepted ({refused.code}): replaced by 1 valid path covering" in done.stderr
    (first, ref1), (second, ref2) = sent
    assert first == ["/css/site.css"] and second == ["/*"]  # the tool's own: only "/*" is left
    assert ref2.startswith(ref1 + "-"), (ref1, ref2)
    assert ["/*"] in [inv_paths(i) for i in invalidations(moto.cloudfront, site.distribution_id)]
    assert site_objects(moto.s3, site.bucket).keys() == V2.keys()
    assert PENDING not in objects(moto.s3, site.bucket)
    # The next deploy, of a new build, is not held up.
    v3 = write_site(tmp_path / "v3", {**V2, "js/app.js": "console.log(3);\n"})
    again = deploy(v3, site, moto.env, moto.cwd, "--format", "json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["result"]["resumed"] is None


def test_a_hand_edited_pending_record_is_repaired_before_it_is_submitted(moto, site, tmp_path):
    v1 = write_site(tmp_path / "v1")
    assert deploy(v1, site, moto.env, moto.cwd).returncode == 0
    deployed = manifest(moto.s3, site.bucket)
    # A committed deploy's record, its paths edited by hand: a raw space and accent, a '*'
    # inside a path. moto takes any path; CloudFront would refuse these for good.
    edited = Journal(deployed.deploy_id, None, (), (), ("/docs/café menu.html", "/js/*.js"),
                     (site.distribution_id,), f"planner-{deployed.deploy_id}")
    moto.s3.put_object(Bucket=site.bucket, Key=PENDING, Body=edited.dumps())
    before = len(invalidations(moto.cloudfront, site.distribution_id))

    done = deploy(v1, site, moto.env, moto.cwd)

    assert done.returncode == 0, done.stderr
    assert "cannot be accepted (invalid paths" in done.stderr
    made = invalidations(moto.cloudfront, site.distribution_id)
    assert len(made) == before + 1
    new = next(i for i in made if i["InvalidationBatch"]["CallerReference"] != edited.caller_reference)
    assert inv_paths(new) == ["/docs/caf%C3%A9%20menu.html", "/js/*"]
    assert re.fullmatch(rf"{edited.caller_reference}-[0-9a-f]{{10}}",
                        new["InvalidationBatch"]["CallerReference"])
    assert PENDING not in objects(moto.s3, site.bucket)


def test_a_malformed_pending_record_names_its_place_and_the_commands_that_clear_it(
    moto, site, tmp_path
):
    v1 = write_site(tmp_path / "v1")
    assert deploy(v1, site, moto.env, moto.cwd).returncode == 0
    moto.s3.put_object(Bucket=site.bucket, Key=PENDING, Body=b'{"deploy_id": "x", "touched": 3')
    before = history(moto.s3, site.bucket)

    planned = run(["plan", str(v1), "--target", site.target()], moto.env, moto.cwd)
    deployed = deploy(v1, site, moto.env, moto.cwd)

    for proc in (planned, deployed):
        line = one_line_error(proc)
        assert f"the pending record s3://{site.bucket}/.planner/pending.json is malformed" in line
        assert (f"`planner unlock --target s3://{site.bucket} --pending-record`, then run "
                f"`planner verify --target s3://{site.bucket} --repair BUILD`") in line
    assert history(moto.s3, site.bucket) == before

    cleared = run(["unlock", "--target", site.target(), "--pending-record"], moto.env, moto.cwd)
    assert cleared.returncode == 0, cleared.stderr
    assert f"removed the pending record of s3://{site.bucket}" in cleared.stdout
    repaired = run(["verify", "--target", site.target(), "--repair", str(v1), "-d",
                    site.distribution_id], moto.env, moto.cwd)
    assert repaired.returncode == 0, repaired.stdout + repaired.stderr
    assert deploy(v1, site, moto.env, moto.cwd).returncode == 0
    again = run(["unlock", "--target", site.target(), "--pending-record"], moto.env, moto.cwd)
    assert "has no pending record" in again.stdout


def test_a_pending_record_of_the_wrong_shape_is_malformed_not_a_traceback():
    good = json.loads(Journal("d", None, ("a",), (), ("/a",), ("E1",), "planner-d").dumps())
    for field, value in (("touched", "abc"), ("paths", [1]), ("deploy_id", 5),
                         ("caller_reference", ""), ("replaced", "E1")):
        bad = json.dumps(good | {field: value}).encode()
        try:
            Journal.loads(bad, "s3://b/.planner/pending.json", "s3://b")
        except Exception as exc:  # noqa: BLE001 - the type is checked below
            assert type(exc).__name__ == "CorruptManifest", exc
            assert f"{field}" in str(exc) and "s3://b/.planner/pending.json" in str(exc)
        else:
            raise AssertionError(f"{field}={value!r} was accepted")
