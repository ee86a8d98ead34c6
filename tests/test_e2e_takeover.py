"""End to end, the first contact with a site that is already there: ``python -m planner``
against a moto server (through the logging proxy of fault_proxy.py, which tells a PUT that
sends bytes from a CopyObject that sends none), then the bucket, the manifest and the
invalidations checked with boto3.

- a bucket filled by plain ``put_object`` calls (no Cache-Control, S3's default type), and
  one filled with the headers the tool would write, each with an orphan: the first deploy of
  a changed build leaves bucket == build, sends only the bytes that differ, invalidates every
  changed, fixed and orphaned URL (and no new one), deletes the orphan;
- a lost manifest behaves the same, and says so;
- an object written in parts (a multipart ETag) is adopted without its bytes;
- a same-size edit behind the tool's back is found by ``verify`` (ETag), a header edit by
  ``verify --deep``, and both are repaired;
- ``--state`` keeps every state object out of the site bucket; ``move-state`` moves it there;
- the state under a served prefix is warned about; a distribution is named by its domain.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from e2e_helpers import (
    MANIFEST,
    SITE,
    body,
    create_distribution,
    inv_paths,
    invalidations,
    manifest,
    objects,
    run,
    run_json,
    site_objects,
    write_site,
)
from fault_proxy import FaultProxy

from planner.core.headers import headers_for
from planner.core.places import SITE_MARK, mark_document

pytestmark = pytest.mark.e2e

HEADERS = headers_for()  # key -> (Content-Type, Cache-Control, Content-Encoding) by default

# The site as another tool deployed it, and the build that takes it over: one page edited
# (another size), one stylesheet edited to the same size (only the ETag tells), one new
# page, and one page the build no longer has (the orphan).
OLD = dict(SITE, **{"old/page.html": "<p>gone</p>\n"})
CSS_V2 = SITE["css/site.css"].replace("#222", "#333")
assert len(CSS_V2) == len(SITE["css/site.css"]) and CSS_V2 != SITE["css/site.css"]
NEW = dict(SITE, **{"about/index.html": "<!doctype html><h1>About us, and more</h1>\n",
                    "css/site.css": CSS_V2, "new.html": "<p>new</p>\n"})
EQUAL = {k for k in SITE if OLD[k] == NEW[k]}
SENT = {"about/index.html", "css/site.css", "new.html"}


def fill(s3: Any, bucket: str, files: dict[str, str], tool_headers: bool, prefix: str = "") -> None:
    """What `aws s3 cp --recursive` (or the tool's own headers, ``tool_headers``) leaves."""
    for key, text in files.items():
        extra = {}
        if tool_headers:
            ctype, cc, _ = HEADERS(key)
            extra = {"ContentType": ctype, "CacheControl": cc}
        s3.put_object(Bucket=bucket, Key=prefix + key, Body=text.encode(), **extra)


def bytes_sent(proxy: FaultProxy, mark: int) -> set[str]:
    """Keys whose bytes went up: PUTs with a body (a copy has none: x-amz-copy-source)."""
    return {e.key for e in proxy.requests(mark, method="PUT")
            if e.is_put_object and "x-amz-copy-source" not in e.headers
            and not e.key.startswith(".planner/")}


def copies(proxy: FaultProxy, mark: int) -> set[str]:
    return {e.key for e in proxy.requests(mark, method="PUT") if "x-amz-copy-source" in e.headers}


def covered(paths: list[str], url: str) -> bool:
    return any(p == url or (p.endswith("*") and url.startswith(p[:-1])) for p in paths)


def check_bucket_is_the_build(moto, site, build: dict[str, str], prefix: str = "") -> None:
    """Bucket == build, byte for byte, every object with the tool's headers, and the manifest
    records every object with the ETag the bucket lists for it."""
    s3 = moto.s3
    held = site_objects(s3, site.bucket, prefix)
    assert set(held) == set(build)
    for key, text in build.items():
        assert body(s3, site.bucket, prefix + key) == text.encode(), key
        head = s3.head_object(Bucket=site.bucket, Key=prefix + key)
        ctype, cc, _ = HEADERS(key)
        assert (head["ContentType"], head.get("CacheControl")) == (ctype, cc), key
    m = manifest(s3, site.bucket, prefix)
    assert set(m.entries) == set(build)
    assert dict(m.etags) == {k: held[k]["ETag"].strip('"') for k in build}


@pytest.mark.parametrize("tool_headers", [False, True], ids=["plain-put-object", "tool-headers"])
def test_first_deploy_into_a_filled_bucket_adopts_equal_objects_and_invalidates_what_changed(
    moto, site, tmp_path, tool_headers
):
    fill(moto.s3, site.bucket, OLD, tool_headers)
    public = write_site(tmp_path / "public", NEW)
    with FaultProxy(moto.endpoint) as proxy:
        env = proxy.env(moto.env)
        plan = run_json(["plan", str(public), "-t", site.target(), "-d", site.distribution_id],
                        env, moto.cwd)
        takeover = plan["takeover"]
        assert takeover == {
            "reason": "no manifest yet: taking over what the target holds",
            "found": len(OLD), "adopted": 0 if not tool_headers else len(EQUAL),
            "fixed_in_place": len(EQUAL) if not tool_headers else 0,
            "replaced": 2, "orphaned": 1, "new": 1,
        }
        mark = len(proxy.log)
        # --pace none: free paths are free, so no wildcard trades them for a needless miss
        # and the paths below are exactly what the takeover must invalidate
        proc = run(["deploy", str(public), "-t", site.target(), "-d", site.distribution_id,
                    "--pace", "none"], env, moto.cwd)
        assert proc.returncode == 0, proc.stderr
        assert "takeover: 7 objects found" in proc.stdout
        # Only the bytes that differ went up; equal ones were at most copied onto themselves.
        assert bytes_sent(proxy, mark) == SENT
        assert copies(proxy, mark) == (set() if tool_headers else EQUAL)
    check_bucket_is_the_build(moto, site, NEW)
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    paths = inv_paths(inv)
    must = ["/about/", "/about/index.html", "/css/site.css", "/old/page.html"]
    if not tool_headers:  # fixed headers: the CDN cached them with the old ones
        must += ["/", "/index.html", "/js/app.js", "/img/logo.svg", "/docs/caf%C3%A9%20menu.html"]
    assert all(covered(paths, url) for url in must), paths
    assert not covered(paths, "/new.html"), paths  # never cached
    # Taken over: the next deploy of the same build has nothing to do.
    again = run(["deploy", str(public), "-t", site.target(), "-d", site.distribution_id],
                moto.env, moto.cwd)
    assert again.returncode == 0 and "Nothing to deploy" in again.stdout, again.stdout


def test_a_lost_manifest_is_a_takeover_that_says_so(moto, site, tmp_path):
    public = write_site(tmp_path / "public", OLD)
    args = ["deploy", str(public), "-t", site.target(), "-d", site.distribution_id]
    assert run(args, moto.env, moto.cwd).returncode == 0
    moto.s3.delete_object(Bucket=site.bucket, Key=MANIFEST)  # a lifecycle rule, a person
    write_site(public, NEW)
    (public / "old" / "page.html").unlink()
    with FaultProxy(moto.endpoint) as proxy:
        proc = run(args, proxy.env(moto.env), moto.cwd)
        assert proc.returncode == 0, proc.stderr
        assert "the manifest is missing although the ledger records 1 earlier deploy:" in proc.stdout
        assert "previous none (first deploy)" not in proc.stdout
        assert bytes_sent(proxy, 0) == SENT and copies(proxy, 0) == set()
    check_bucket_is_the_build(moto, site, NEW)
    newest = max(invalidations(moto.cloudfront, site.distribution_id),
                 key=lambda i: i["CreateTime"])
    paths = inv_paths(newest)
    assert all(covered(paths, u) for u in ["/about/", "/css/site.css", "/old/page.html"]), paths


def test_a_multipart_object_with_the_builds_bytes_is_adopted_without_sending_them(
    moto, site, tmp_path
):
    from boto3.s3.transfer import TransferConfig

    big = bytes(range(256)) * (11 * 4096)  # 11 MiB, below the tool's own multipart threshold
    other = bytearray(big)
    other[-1] ^= 1  # the same size, one bit off
    for key, data in (("media/a.bin", big), ("media/b.bin", bytes(other))):
        moto.s3.upload_fileobj(io.BytesIO(data), site.bucket, key, Config=TransferConfig(
            multipart_threshold=5 << 20, multipart_chunksize=5 << 20))
    assert moto.s3.head_object(Bucket=site.bucket, Key="media/a.bin")["ETag"].endswith('-3"')
    public = write_site(tmp_path / "public", SITE)
    (public / "media").mkdir()
    (public / "media" / "a.bin").write_bytes(big)
    (public / "media" / "b.bin").write_bytes(big)
    with FaultProxy(moto.endpoint) as proxy:
        doc = run_json(["deploy", str(public), "-t", site.target()], proxy.env(moto.env),
                       moto.cwd)
        assert doc["takeover"]["fixed_in_place"] == 1  # a.bin: S3's default type, fixed
        assert doc["takeover"]["replaced"] == 1  # b.bin: not proven equal
        sent = bytes_sent(proxy, 0)
        assert "media/a.bin" not in sent and "media/b.bin" in sent
        # HeadObject with PartNumber=1 read the part size of the multipart objects.
        assert any(e.key == "media/a.bin" and e.query.get("partNumber") == ["1"]
                   for e in proxy.requests(method="HEAD"))
    assert body(moto.s3, site.bucket, "media/b.bin") == big


def test_verify_finds_a_same_size_edit_and_a_header_edit_and_repairs_both(moto, site, tmp_path):
    public = write_site(tmp_path / "public", SITE)
    target = ["-t", site.target()]
    assert run(["deploy", str(public), *target], moto.env, moto.cwd).returncode == 0
    assert run(["verify", *target], moto.env, moto.cwd).returncode == 0
    # Behind the tool's back: the same size, other bytes; and other headers, same bytes.
    moto.s3.put_object(Bucket=site.bucket, Key="css/site.css", Body=CSS_V2.encode(),
                       ContentType="text/css; charset=utf-8",
                       CacheControl=HEADERS("css/site.css")[1])
    moto.s3.copy_object(Bucket=site.bucket, Key="js/app.js", MetadataDirective="REPLACE",
                        CopySource={"Bucket": site.bucket, "Key": "js/app.js"},
                        ContentType="text/plain", CacheControl="no-store")
    shallow = run(["verify", *target, "--format", "json"], moto.env, moto.cwd)
    assert shallow.returncode == 5
    problems = {d["key"]: d["problem"] for d in json.loads(shallow.stdout)["drift"]}
    assert problems == {"css/site.css": "etag"}  # headers are not read without --deep
    deep = run(["verify", *target, "--deep", "--format", "json"], moto.env, moto.cwd)
    assert deep.returncode == 5
    drift = {d["key"]: d for d in json.loads(deep.stdout)["drift"]}
    assert {k: d["problem"] for k, d in drift.items()} == {"css/site.css": "etag",
                                                          "js/app.js": "headers"}
    assert "Content-Type 'text/plain', not 'text/javascript; charset=utf-8'" in \
        drift["js/app.js"]["detail"]
    fixed = run(["verify", *target, "--deep", "--repair", str(public)], moto.env, moto.cwd)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert body(moto.s3, site.bucket, "css/site.css") == SITE["css/site.css"].encode()
    clean = run(["verify", *target, "--deep"], moto.env, moto.cwd)
    assert clean.returncode == 0, clean.stdout
    check_bucket_is_the_build(moto, site, SITE)


def test_state_apart_keeps_every_state_object_out_of_the_site_bucket(moto, site, tmp_path):
    moto.s3.create_bucket(Bucket="planner-ops")
    public = write_site(tmp_path / "public", SITE)
    state = ["--state", "s3://planner-ops/planner/www"]
    args = ["-t", site.target(), "-d", site.distribution_id, *state]
    proc = run(["deploy", str(public), *args], moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stderr
    assert "warning:" not in proc.stdout  # nothing exposed: the state is not in the site
    # Not a single state object: only the marker that says the state is kept elsewhere (so
    # that other targets see this one), with nothing of the site or the state place in it.
    assert set(objects(moto.s3, site.bucket)) == set(SITE) | {SITE_MARK}
    assert json.loads(body(moto.s3, site.bucket, SITE_MARK)) == json.loads(
        mark_document("target"))
    ops = objects(moto.s3, "planner-ops")
    assert "planner/www/manifest.json.gz" in ops
    assert any(k.startswith("planner/www/ledger/") for k in ops)
    # Read back: nothing to do, a clean verify, a report of the deploy.
    again = run_json(["plan", str(public), *args], moto.env, moto.cwd)
    assert again["uploads"] == [] and again["manifest"]["previous_deploy_id"]
    assert run(["verify", "-t", site.target(), *state], moto.env, moto.cwd).returncode == 0
    report = run_json(["report", "-t", site.target(), *state], moto.env, moto.cwd)
    assert report["tool"]["deploys"] == 1


def test_move_state_moves_the_state_out_of_a_served_site_and_the_warning_goes(
    moto, site, tmp_path
):
    moto.s3.create_bucket(Bucket="planner-ops")
    public = write_site(tmp_path / "public", SITE)
    args = ["-t", site.target(), "-d", site.distribution_id]
    first = run(["deploy", str(public), *args], moto.env, moto.cwd)
    assert first.returncode == 0, first.stderr
    # The distribution serves the bucket root, state included: warned, with the URL.
    domain = moto.cloudfront.get_distribution(Id=site.distribution_id)["Distribution"]["DomainName"]
    assert f"warning: https://{domain}/.planner/manifest.json.gz serves" in first.stdout
    before = manifest(moto.s3, site.bucket)
    moved = run(["move-state", "-t", site.target(), "--state", "s3://planner-ops/www"],
                moto.env, moto.cwd)
    assert moved.returncode == 0, moved.stderr
    assert set(objects(moto.s3, site.bucket)) == set(SITE) | {SITE_MARK}
    from manifests import Manifest

    after = Manifest.loads(body(moto.s3, "planner-ops", "www/manifest.json.gz"))
    assert after == before
    plan = run_json(["plan", str(public), *args, "--state", "s3://planner-ops/www"],
                    moto.env, moto.cwd)
    assert plan["uploads"] == [] and plan["warnings"] == []
    # Run again: nothing left to move, nothing written.
    again = run(["move-state", "-t", site.target(), "--state", "s3://planner-ops/www"],
                moto.env, moto.cwd)
    assert again.returncode == 1 and "nothing to move" in again.stderr


def test_a_distribution_named_by_its_domain_or_alias_resolves_to_its_id(moto, site, tmp_path):
    dist = create_distribution(moto.cloudfront, site.bucket, aliases=("docs.example.com",))
    domain = moto.cloudfront.get_distribution(Id=dist)["Distribution"]["DomainName"]
    public = write_site(tmp_path / "public", SITE)
    assert run(["deploy", str(public), "-t", site.target()], moto.env, moto.cwd).returncode == 0
    write_site(public, {"css/site.css": CSS_V2})
    for name in ("docs.example.com", domain, "DOCS.example.com"):
        doc = run_json(["plan", str(public), "-t", site.target(), "-d", name], moto.env, moto.cwd)
        assert doc["invalidation"]["distribution_ids"] == [dist]
        assert doc["distributions"] == [{"id": dist, "domain": domain,
                                         "aliases": ["docs.example.com"]}]
    text = run(["plan", str(public), "-t", site.target(), "-d", "docs.example.com"],
               moto.env, moto.cwd).stdout
    assert f"on {dist} ({domain}, docs.example.com)" in text


def test_verify_leaves_a_nested_target_alone_even_with_delete_extra(moto, site, tmp_path):
    """A target made by an older version inside this one (its own .planner/): never this
    one's extras, never deleted by `verify --repair --delete-extra`."""
    public = write_site(tmp_path / "public", SITE)
    assert run(["deploy", str(public), "-t", site.target()], moto.env, moto.cwd).returncode == 0
    nested = {"guide/.planner/manifest.json.gz": b"theirs", "guide/v2/index.html": b"<p>theirs",
              "docs/.planner/manifest.json.gz": b"theirs too"}
    for key, data in nested.items():
        moto.s3.put_object(Bucket=site.bucket, Key=key, Body=data)
    moto.s3.put_object(Bucket=site.bucket, Key="stray.html", Body=b"ours to delete")
    doc = json.loads(run(["verify", "-t", site.target(), "--format", "json"], moto.env,
                         moto.cwd).stdout)
    assert doc["nested_targets"] == ["docs/", "guide/"]
    # docs/ holds a page of this target too: its folder is the other's now, so the page is
    # reported missing here, and never written there by a repair.
    assert [(d["key"], d["problem"]) for d in doc["drift"]] == [
        ("docs/café menu.html", "missing"), ("stray.html", "extra")]
    proc = run(["verify", "-t", site.target(), "--repair", str(public), "--delete-extra"],
               moto.env, moto.cwd)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "guide/ holds another target (its own state folder): left out" in proc.stdout
    assert "left: under docs/, another target's folder" in proc.stdout
    held = objects(moto.s3, site.bucket)
    assert "stray.html" not in held
    assert all(body(moto.s3, site.bucket, k) == v for k, v in nested.items())
