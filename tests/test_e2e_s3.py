"""End to end: ``python -m planner`` in a subprocess against a moto server (S3 + CloudFront)
on 127.0.0.1, then the bucket, the committed manifest and the invalidations checked with boto3.

The site bucket is versioned, so every PUT and every delete leaves a row in its history:
"uploads exactly this file" and "writes nothing" are checked on that history, not on
timestamps. Every successful deploy is followed by a check that the manifest in the bucket
describes exactly the site objects there (keys, sizes, xxh3 hashes of the bodies, headers).
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import xxhash
from e2e_helpers import (
    MANIFEST,
    SITE,
    body,
    create_distribution,
    history,
    inv_paths,
    invalidations,
    manifest,
    objects,
    one_line_error,
    put_counts,
    run,
    run_json,
    site_objects,
    touch_all,
    write_site,
)

pytestmark = pytest.mark.e2e

DEFAULT_CACHE_CONTROL = "public, max-age=60, s-maxage=86400"
CAFE = "docs/café menu.html"
CAFE_URL = "/docs/caf%C3%A9%20menu.html"
PUBLIC_GRANTEES = (
    "http://acs.amazonaws.com/groups/global/AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers",
)


@pytest.fixture
def public(tmp_path: Path) -> Path:
    """The build folder, holding SITE."""
    return write_site(tmp_path / "public")


def cli_args(command: str, root: Path, site, *extra: str, prefix: str = "", dist: bool = True):
    """``COMMAND ROOT --target s3://bucket[/prefix] [--distribution ID] EXTRA...``"""
    args = [command, str(root), "--target", site.target(prefix)]
    if dist:
        args += ["--distribution", site.distribution_id]
    return [*args, *extra]


def planner(moto, *args: str) -> subprocess.CompletedProcess:
    return run(list(args), moto.env, moto.cwd)


def check_manifest_matches_bucket(moto, bucket: str, prefix: str = ""):
    """The committed manifest lists exactly the site objects under ``prefix``, with their sizes,
    the xxh3-128 of their bodies and the headers they are served with. Returns it."""
    m = manifest(moto.s3, bucket, prefix)
    assert m is not None, "no manifest committed"
    assert m.target == (f"s3://{bucket}/{prefix}".rstrip("/"))
    objs = site_objects(moto.s3, bucket, prefix)
    assert sorted(m.entries) == sorted(objs)
    for key, entry in m.entries.items():
        obj = moto.s3.get_object(Bucket=bucket, Key=prefix + key)
        data = obj["Body"].read()
        assert entry.size == objs[key]["Size"] == len(data), key
        assert entry.hash == xxhash.xxh3_128_hexdigest(data), key
        assert obj["ContentType"] == entry.content_type, key
        assert obj["CacheControl"] == entry.cache_control, key
    return m


def deploy(moto, root: Path, site, *extra: str, prefix: str = "", dist: bool = True) -> dict:
    """A deploy that must succeed; checks the manifest against the bucket afterwards."""
    args = cli_args("deploy", root, site, *extra, prefix=prefix, dist=dist)
    doc = run_json(args, moto.env, moto.cwd)
    assert "result" in doc
    check_manifest_matches_bucket(moto, site.bucket, prefix)
    assert "pending.json" not in {k.rsplit("/", 1)[-1] for k in objects(moto.s3, site.bucket)}
    return doc


def upload_keys(doc: dict[str, Any]) -> list[str]:
    return sorted(u["key"] for u in doc["uploads"])


def snapshot(moto, site) -> tuple[list, list]:
    """Everything a run could change: the bucket's full history and the invalidations."""
    return history(moto.s3, site.bucket), invalidations(moto.cloudfront, site.distribution_id)


# --- deploys ---------------------------------------------------------------------------------


def test_first_deploy_uploads_every_file_with_its_headers_and_invalidates_nothing(
    moto, site, public
):
    doc = deploy(moto, public, site)

    objs = site_objects(moto.s3, site.bucket)
    assert sorted(objs) == sorted(SITE)
    assert upload_keys(doc) == sorted(SITE)
    assert {u["reason"] for u in doc["uploads"]} == {"new"}
    expected_types = {
        "index.html": "text/html; charset=utf-8",
        "about/index.html": "text/html; charset=utf-8",
        CAFE: "text/html; charset=utf-8",
        "css/site.css": "text/css; charset=utf-8",
        "js/app.js": "text/javascript; charset=utf-8",
        "img/logo.svg": "image/svg+xml",
    }
    for key, text in SITE.items():
        obj = moto.s3.get_object(Bucket=site.bucket, Key=key)
        assert obj["Body"].read() == text.encode("utf-8"), key
        assert obj["ContentType"] == expected_types[key], key
        assert obj["CacheControl"] == DEFAULT_CACHE_CONTROL, key
    # New files were never cached: nothing to invalidate, nothing submitted.
    assert doc["invalidation"]["paths"] == []
    assert doc["result"]["invalidations"] == []
    assert invalidations(moto.cloudfront, site.distribution_id) == []
    m = manifest(moto.s3, site.bucket)
    assert m.previous_deploy_id is None and m.deploy_id == doc["manifest"]["deploy_id"]


def test_editing_one_page_uploads_only_it_and_invalidates_both_of_its_urls(moto, site, public):
    first = deploy(moto, public, site)
    before = site_objects(moto.s3, site.bucket)
    time.sleep(1.01 - time.time() % 1)  # LastModified has one-second resolution: next second
    (public / "about" / "index.html").write_text("<h1>About us, edited</h1>\n", encoding="utf-8")

    doc = deploy(moto, public, site)

    assert doc["uploads"] == [
        {"key": "about/index.html", "reason": "changed", "size": len("<h1>About us, edited</h1>\n"), "in_place": False}
    ]
    assert doc["deletes"] == []
    assert body(moto.s3, site.bucket, "about/index.html") == b"<h1>About us, edited</h1>\n"
    after = site_objects(moto.s3, site.bucket)
    for key in SITE:
        if key != "about/index.html":
            assert after[key]["LastModified"] == before[key]["LastModified"], key
            assert after[key]["ETag"] == before[key]["ETag"], key
    assert after["about/index.html"]["LastModified"] > before["about/index.html"]["LastModified"]
    # Exactly one more PUT, of the edited file (state objects aside).
    counts = {k: n for k, n in put_counts(moto.s3, site.bucket).items()
              if not k.startswith(".planner/")}
    assert counts == {key: (2 if key == "about/index.html" else 1) for key in SITE}

    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == ["/about/*"]  # both forms of the page, nothing else
    reference = inv["InvalidationBatch"]["CallerReference"]
    assert reference.startswith("planner-")
    assert reference == doc["invalidation"]["caller_reference"]
    assert doc["result"]["invalidations"] == [
        {"distribution_id": site.distribution_id, "id": inv["Id"]}
    ]
    assert doc["manifest"]["previous_deploy_id"] == first["manifest"]["deploy_id"]


def test_editing_the_home_page_invalidates_root_and_index(moto, site, public):
    deploy(moto, public, site)
    (public / "index.html").write_text("<h1>New home</h1>\n", encoding="utf-8")

    doc = deploy(moto, public, site)

    assert upload_keys(doc) == ["index.html"]
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == ["/", "/index.html"]


def test_rebuild_with_same_content_and_new_mtimes_changes_nothing(moto, site, public):
    deploy(moto, public, site)
    before = snapshot(moto, site)
    shutil.rmtree(public)
    write_site(public)  # a fresh build: same bytes, new files
    touch_all(public, time.time() + 3600)

    doc = deploy(moto, public, site)

    assert doc["uploads"] == [] and doc["deletes"] == []
    assert doc["invalidation"]["paths"] == []
    assert doc["result"] == {
        "uploaded": 0, "uploaded_bytes": 0, "fixed_in_place": 0, "deleted": 0,
        "invalidations": [], "paths": 0, "resumed": None, "wait": None,
    }
    assert snapshot(moto, site) == before  # not even a state object was written


def test_removed_files_are_deleted_from_the_bucket_and_invalidated(moto, site, public):
    deploy(moto, public, site)
    (public / "css" / "site.css").unlink()
    (public / "about" / "index.html").unlink()

    doc = deploy(moto, public, site)

    assert doc["uploads"] == []
    assert doc["deletes"] == [{"key": "about/index.html"}, {"key": "css/site.css"}]
    assert doc["result"]["deleted"] == 2
    assert sorted(site_objects(moto.s3, site.bucket)) == sorted(
        set(SITE) - {"css/site.css", "about/index.html"}
    )
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == ["/about/*", "/css/site.css"]


def test_prefix_target_writes_under_the_prefix_and_invalidates_urls_without_it(moto, site, public):
    # A distribution whose origin path is the target's prefix serves site/a.css at /a.css.
    site = dataclasses.replace(
        site, distribution_id=create_distribution(moto.cloudfront, site.bucket, "/site")
    )
    # Objects of someone else in the same bucket: never touched, never in the manifest.
    moto.s3.put_object(Bucket=site.bucket, Key="index.html", Body=b"root site")
    moto.s3.put_object(Bucket=site.bucket, Key="other/keep.txt", Body=b"keep")

    first = deploy(moto, public, site, prefix="site/")

    state = sorted(objects(moto.s3, site.bucket, "site/.planner/"))
    assert [k for k in state if not k.startswith("ledger/")] == ["manifest.json.gz"]
    assert len(state) == 2  # and the deploy's ledger record
    assert sorted(site_objects(moto.s3, site.bucket, "site/")) == sorted(SITE)
    assert upload_keys(first) == sorted(SITE)
    assert manifest(moto.s3, site.bucket) is None  # no state at the bucket root
    assert first["target"] == f"s3://{site.bucket}/site"

    (public / "js" / "app.js").write_text("console.log('v2');\n", encoding="utf-8")
    (public / "img" / "logo.svg").unlink()
    doc = deploy(moto, public, site, prefix="site/")

    assert upload_keys(doc) == ["js/app.js"]
    assert doc["deletes"] == [{"key": "img/logo.svg"}]
    assert body(moto.s3, site.bucket, "site/js/app.js") == b"console.log('v2');\n"
    assert "site/img/logo.svg" not in objects(moto.s3, site.bucket)
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == ["/img/logo.svg", "/js/app.js"]
    assert body(moto.s3, site.bucket, "index.html") == b"root site"
    assert body(moto.s3, site.bucket, "other/keep.txt") == b"keep"


@pytest.mark.parametrize(
    ("flag", "expected"),
    [
        # Default: new URLs were never cached, so they cost nothing to leave alone.
        ((), ["/about/*"]),
        # --invalidate-added: new files too (they may have been requested, and 404s cached).
        (
            ("--invalidate-added",),
            ["/about/*", "/blog/*", "/js/new.js"],
        ),
    ],
)
def test_new_files_are_invalidated_only_with_invalidate_added(moto, site, public, flag, expected):
    deploy(moto, public, site)
    write_site(public, {"blog/index.html": "<h1>Blog</h1>\n", "js/new.js": "1;\n",
                        "about/index.html": "<h1>About v2</h1>\n"})

    doc = deploy(moto, public, site, *flag)

    assert upload_keys(doc) == ["about/index.html", "blog/index.html", "js/new.js"]
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == expected == doc["invalidation"]["paths"]


def test_each_distribution_gets_its_own_invalidation(moto, site, public):
    other = create_distribution(moto.cloudfront, site.bucket)
    deploy(moto, public, site)
    (public / "css" / "site.css").write_text("body { color: red; }\n", encoding="utf-8")

    doc = deploy(moto, public, site, "--distribution", other)

    assert doc["invalidation"]["distribution_ids"] == [site.distribution_id, other]
    ids = {d["distribution_id"]: d["id"] for d in doc["result"]["invalidations"]}
    for dist in (site.distribution_id, other):
        (inv,) = invalidations(moto.cloudfront, dist)
        assert inv["Id"] == ids[dist]
        assert inv_paths(inv) == ["/css/site.css"]
        reference = inv["InvalidationBatch"]["CallerReference"]
        assert reference == doc["invalidation"]["caller_reference"]


def test_a_distribution_given_twice_gets_one_invalidation(moto, site, public):
    deploy(moto, public, site)
    (public / "css" / "site.css").write_text("body { color: red; }\n", encoding="utf-8")

    deploy(moto, public, site, "--distribution", site.distribution_id)

    assert len(invalidations(moto.cloudfront, site.distribution_id)) == 1


def test_changed_cache_control_reuploads_with_the_new_header_and_invalidates(moto, site, public):
    deploy(moto, public, site)

    doc = deploy(moto, public, site, "--cache-control", "public, max-age=5")

    assert upload_keys(doc) == sorted(SITE)
    assert {u["reason"] for u in doc["uploads"]} == {"headers"}
    for key in SITE:
        head = moto.s3.head_object(Bucket=site.bucket, Key=key)
        assert head["CacheControl"] == "public, max-age=5", key
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    # every URL changed (two index pages have two URLs each): one wildcard, no needless miss
    assert doc["invalidation"]["changed_urls"] == len(SITE) + 2
    assert doc["invalidation"]["collateral_urls"] == 0
    assert inv_paths(inv) == ["/*"]


def test_name_with_space_and_non_ascii_is_percent_encoded_in_the_invalidation(moto, site, public):
    deploy(moto, public, site)
    assert body(moto.s3, site.bucket, CAFE) == SITE[CAFE].encode("utf-8")  # key kept as is
    (public / "docs" / "café menu.html").write_text("<h1>Nouveau menu</h1>\n", encoding="utf-8")

    doc = deploy(moto, public, site)

    assert upload_keys(doc) == [CAFE]
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == [CAFE_URL]


# --- writing nothing -------------------------------------------------------------------------


def test_plan_writes_nothing_on_a_first_deploy(moto, site, public):
    before = snapshot(moto, site)

    doc = run_json(cli_args("plan", public, site), moto.env, moto.cwd)

    assert upload_keys(doc) == sorted(SITE)
    assert "result" not in doc
    assert snapshot(moto, site) == before == ([], [])
    assert manifest(moto.s3, site.bucket) is None


def test_plan_writes_nothing_and_shows_exactly_what_deploy_then_does(moto, site, public):
    deploy(moto, public, site)
    (public / "about" / "index.html").write_text("<h1>About v2</h1>\n", encoding="utf-8")
    (public / "js" / "app.js").unlink()
    write_site(public, {"blog/index.html": "<h1>Blog</h1>\n"})
    before = snapshot(moto, site)
    counts_before = put_counts(moto.s3, site.bucket)

    planned = run_json(cli_args("plan", public, site), moto.env, moto.cwd)

    assert snapshot(moto, site) == before
    assert upload_keys(planned) == ["about/index.html", "blog/index.html"]
    assert planned["deletes"] == [{"key": "js/app.js"}]
    assert planned["invalidation"]["paths"] == ["/about/*", "/js/app.js"]

    done = deploy(moto, public, site)

    result = done.pop("result")
    assert done == planned  # the very same plan, ids and CallerReference included
    counts = put_counts(moto.s3, site.bucket)
    uploaded = sorted(k for k, n in counts.items()
                      if n > counts_before.get(k, 0) and not k.startswith(".planner/"))
    assert uploaded == upload_keys(planned)
    deleted = sorted(set(SITE) - set(site_objects(moto.s3, site.bucket)))
    assert deleted == [d["key"] for d in planned["deletes"]] and result["deleted"] == 1
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == planned["invalidation"]["paths"]
    reference = inv["InvalidationBatch"]["CallerReference"]
    assert reference == planned["invalidation"]["caller_reference"]


@pytest.mark.parametrize("fmt", ["json", "table"])
def test_deploy_dry_run_writes_nothing(moto, site, public, fmt):
    first = planner(moto, *cli_args("deploy", public, site, "--dry-run", "--format", fmt))
    assert first.returncode == 0, first.stderr
    assert snapshot(moto, site) == ([], [])

    deploy(moto, public, site)
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")
    (public / "img" / "logo.svg").unlink()
    before = snapshot(moto, site)
    version = moto.s3.head_object(Bucket=site.bucket, Key=MANIFEST)["ETag"]

    proc = planner(moto, *cli_args("deploy", public, site, "--dry-run", "--format", fmt))

    assert proc.returncode == 0, proc.stderr
    assert "index.html" in proc.stdout and "img/logo.svg" in proc.stdout  # the plan is shown
    assert snapshot(moto, site) == before
    assert moto.s3.head_object(Bucket=site.bucket, Key=MANIFEST)["ETag"] == version


# --- refusals --------------------------------------------------------------------------------


def test_too_many_deletes_refuses_the_whole_deploy(moto, site, public):
    deploy(moto, public, site)
    (public / "css" / "site.css").unlink()
    (public / "js" / "app.js").unlink()
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")  # an upload too
    before = snapshot(moto, site)
    committed = body(moto.s3, site.bucket, MANIFEST)

    proc = planner(moto, *cli_args("deploy", public, site, "--max-deletes", "1"))

    line = one_line_error(proc)
    assert "--max-deletes" in line and "2" in line
    assert snapshot(moto, site) == before  # nothing uploaded, deleted or invalidated
    assert body(moto.s3, site.bucket, MANIFEST) == committed

    # At the limit it goes through.
    doc = deploy(moto, public, site, "--max-deletes", "2")
    assert doc["result"]["deleted"] == 2


def test_no_delete_keeps_the_removed_object_and_the_manifest_still_matches(moto, site, public):
    deploy(moto, public, site)
    (public / "img" / "logo.svg").unlink()
    (public / "css" / "site.css").write_text("body { color: blue; }\n", encoding="utf-8")

    doc = deploy(moto, public, site, "--no-delete")

    assert doc["deletes"] == [] and doc["kept"] == [{"key": "img/logo.svg"}]
    assert doc["result"]["deleted"] == 0
    assert body(moto.s3, site.bucket, "img/logo.svg") == SITE["img/logo.svg"].encode()
    assert "img/logo.svg" in manifest(moto.s3, site.bucket).entries
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == ["/css/site.css"]  # the kept file is still served: no invalidation

    # Without --no-delete, the next deploy removes it.
    later = deploy(moto, public, site)
    assert later["deletes"] == [{"key": "img/logo.svg"}]
    assert "img/logo.svg" not in site_objects(moto.s3, site.bucket)


@pytest.mark.parametrize("command", ["plan", "deploy"])
def test_missing_bucket_fails_with_a_one_line_nosuchbucket_error(moto, site, public, command):
    proc = planner(moto, command, str(public), "--target", "s3://no-such-bucket-here",
                   "--distribution", site.distribution_id)

    assert "NoSuchBucket" in one_line_error(proc)
    assert [b["Name"] for b in moto.s3.list_buckets()["Buckets"]] == [site.bucket]
    assert invalidations(moto.cloudfront, site.distribution_id) == []


@pytest.mark.parametrize(
    "leftover",
    [
        {},  # nothing at all
        {".DS_Store": "junk", ".git/HEAD": "ref: main"},  # only files excluded by default
    ],
)
def test_empty_build_folder_is_refused_and_nothing_is_deleted(
    moto, site, public, tmp_path, leftover
):
    deploy(moto, public, site)
    before = snapshot(moto, site)
    empty = tmp_path / "empty-build"
    empty.mkdir()
    write_site(empty, leftover)

    proc = planner(moto, *cli_args("deploy", empty, site))

    assert "no files to deploy" in one_line_error(proc)
    assert snapshot(moto, site) == before
    assert sorted(site_objects(moto.s3, site.bucket)) == sorted(SITE)


# --- state objects ---------------------------------------------------------------------------


def test_state_objects_never_get_a_public_acl(moto, site, public):
    # Site files public (--acl public-read); every version of every state object the deploys
    # wrote (the pending record and the lock included: they are deleted at the end of a
    # deploy, but the versioned bucket keeps what was written) private.
    deploy(moto, public, site, "--acl", "public-read")
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")
    (public / "js" / "app.js").unlink()
    deploy(moto, public, site, "--acl", "public-read")

    for key in site_objects(moto.s3, site.bucket):
        acl = moto.s3.get_object_acl(Bucket=site.bucket, Key=key)
        assert [g["Permission"] for g in acl["Grants"]
                if g["Grantee"].get("URI") in PUBLIC_GRANTEES] == ["READ"], key
    written = [(key, vid) for kind, key, vid in history(moto.s3, site.bucket)
               if kind == "version" and key.startswith(".planner/")]
    # the manifest, the pending record, the lock, the cache of invalidation path counts, and
    # one ledger record per deploy
    names = sorted({key for key, _ in written})
    assert [k for k in names if not k.startswith(".planner/ledger/")] == [
        ".planner/invalidation-counts.json", ".planner/lock.json", MANIFEST,
        ".planner/pending.json",
    ]
    assert len(names) == 6
    assert len(written) >= 8  # two deploys: each a lock, a pending record, a manifest, a record
    for key, vid in written:
        acl = moto.s3.get_object_acl(Bucket=site.bucket, Key=key, VersionId=vid)
        assert [g for g in acl["Grants"] if g["Grantee"].get("URI") in PUBLIC_GRANTEES] == [], key
        assert [(g["Grantee"].get("ID"), g["Permission"]) for g in acl["Grants"]] == [
            (acl["Owner"]["ID"], "FULL_CONTROL")
        ], key


def test_a_mistyped_distribution_does_not_block_later_deploys(moto, site, public):
    deploy(moto, public, site)
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")
    before = history(moto.s3, site.bucket)
    typo = cli_args("deploy", public, site, "--distribution", "ENOSUCHDIST", dist=False)
    failed = planner(moto, *typo)
    assert "NoSuchDistribution" in one_line_error(failed)
    assert history(moto.s3, site.bucket) == before  # refused before the first write

    retry = planner(moto, *cli_args("deploy", public, site, "--format", "json"))

    assert retry.returncode == 0, retry.stderr
    check_manifest_matches_bucket(moto, site.bucket)
    assert [inv_paths(i) for i in invalidations(moto.cloudfront, site.distribution_id)] == [
        ["/", "/index.html"]
    ]


def test_plan_reads_the_monthly_usage_but_writes_not_even_its_cache(moto, site, public):
    deploy(moto, public, site)
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")
    deploy(moto, public, site)  # one invalidation, completed at once in moto
    (public / "index.html").write_text("<h1>v3</h1>\n", encoding="utf-8")
    moto.s3.delete_object(Bucket=site.bucket, Key=".planner/invalidation-counts.json")
    before = snapshot(moto, site)
    for args in (cli_args("plan", public, site), cli_args("deploy", public, site, "--dry-run")):
        doc = run_json([*args, "--format", "json"], moto.env, moto.cwd)
        assert doc["invalidation"]["budget"]["source"] == "cloudfront"
        assert doc["invalidation"]["budget"]["paths_used"] == 2  # '/' and '/index.html'
    assert snapshot(moto, site) == before


# --- URLs from the distribution's config ------------------------------------------------------


def _change_js_and_logo(moto, public, site, *extra: str, prefix: str = "site/") -> dict:
    deploy(moto, public, site, *extra, prefix=prefix)
    (public / "js" / "app.js").write_text("console.log('v2');\n", encoding="utf-8")
    (public / "img" / "logo.svg").write_text("<svg/>\n", encoding="utf-8")
    return deploy(moto, public, site, *extra, prefix=prefix)


def test_without_an_origin_path_the_prefix_is_part_of_the_urls(moto, site, public):
    # The fixture's distribution serves the bucket from its root: site/js/app.js is
    # /site/js/app.js there.
    doc = _change_js_and_logo(moto, public, site)
    assert doc["invalidation"]["paths"] == ["/site/img/logo.svg", "/site/js/app.js"]
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == ["/site/img/logo.svg", "/site/js/app.js"]


def test_a_key_routed_to_another_origin_is_not_invalidated_there(moto, site, public):
    # /js/* goes to an API origin on this distribution: the bucket's js/app.js is not served.
    dist = create_distribution(moto.cloudfront, site.bucket, behaviors=(("js/*", "other"),))
    site = dataclasses.replace(site, distribution_id=dist)
    doc = _change_js_and_logo(moto, public, site, prefix="")
    assert doc["invalidation"]["paths"] == ["/img/logo.svg"]
    (inv,) = invalidations(moto.cloudfront, dist)
    assert inv_paths(inv) == ["/img/logo.svg"]


def test_a_distribution_serving_only_another_prefix_is_refused(moto, site, public):
    # The distribution serves only blog/ of the bucket; this target is site/: a mistyped id,
    # which would invalidate nothing the target serves. Refused before anything is written.
    dist = create_distribution(moto.cloudfront, site.bucket, "/blog")
    proc = run(cli_args("deploy", public, dataclasses.replace(site, distribution_id=dist),
                        prefix="site"), moto.env, moto.cwd)
    line = one_line_error(proc)
    assert f"distribution {dist}" in line and "does not serve s3://planner-e2e-site/site" in line
    assert "origin paths lie outside the target's prefix" in line and "--url-prefix" in line
    assert objects(moto.s3, site.bucket) == {}
    assert invalidations(moto.cloudfront, dist) == []
    # --url-prefix says where the target is served: then it goes.
    doc = _change_js_and_logo(moto, public, dataclasses.replace(site, distribution_id=dist),
                              "--url-prefix", "/site")
    assert doc["invalidation"]["paths"] == ["/site/img/logo.svg", "/site/js/app.js"]


def test_url_prefix_overrides_the_distributions_mapping(moto, site, public):
    doc = _change_js_and_logo(moto, public, site, "--url-prefix", "/")
    assert doc["invalidation"]["paths"] == ["/img/logo.svg", "/js/app.js"]
