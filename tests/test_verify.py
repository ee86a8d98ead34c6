"""``planner verify``: the pure drift comparison and repair plan (case tables and a property),
then the CLI in a subprocess against the moto server (S3 + CloudFront) and on a local folder.

The site bucket of the ``site`` fixture is versioned, so "nothing written" is checked on the
bucket's full history.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest
import xxhash
from e2e_helpers import (
    SITE,
    body,
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
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from planner.core.adopt import Head, Stored
from planner.core.drift import Drift, compare
from planner.plan.compute import Upload
from planner.verify import DRIFT_EXIT, repair_plan

HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
CC = "public, max-age=60"
H1, H2, H3 = "1" * 32, "2" * 32, "3" * 32


def _e(h: str = H1, size: int = 10, ctype: str = HTML, cc: str = CC) -> Entry:
    return Entry(h, size, ctype, cc)


# --- compare: case table ---------------------------------------------------------------------

M3 = Manifest({"index.html": _e(size=10), "css/a.css": _e(H2, 20, CSS), "b/c.html": _e(size=0)})


@pytest.mark.parametrize(
    ("entries", "listing", "expected"),
    [
        pytest.param(
            # Nothing deployed, nothing held: no drift.
            {}, {}, [],
            id="empty",
        ),
        pytest.param(
            # The target holds exactly the manifest's keys and sizes (a 0-byte file included:
            # size 0 is "present", not "missing").
            M3.entries, {"index.html": 10, "css/a.css": 20, "b/c.html": 0}, [],
            id="clean-with-empty-file",
        ),
        pytest.param(
            # One key gone from the target.
            M3.entries, {"index.html": 10, "b/c.html": 0},
            [Drift("css/a.css", "missing", 20, None)],
            id="missing",
        ),
        pytest.param(
            # Same key, another size (larger, and a 0-byte object where bytes were expected).
            M3.entries, {"index.html": 11, "css/a.css": 0, "b/c.html": 0},
            [Drift("css/a.css", "size", 20, 0), Drift("index.html", "size", 10, 11)],
            id="size",
        ),
        pytest.param(
            # A key the manifest does not have (even a 0-byte one).
            M3.entries, {"index.html": 10, "css/a.css": 20, "b/c.html": 0, "zz.txt": 0},
            [Drift("zz.txt", "extra", None, 0)],
            id="extra",
        ),
        pytest.param(
            # Nothing deployed, but the target holds files: all extra, sorted by key.
            {}, {"z": 1, "a/b": 2},
            [Drift("a/b", "extra", None, 2), Drift("z", "extra", None, 1)],
            id="all-extra",
        ),
        pytest.param(
            # The target is empty: every manifest key is missing, sorted by key.
            M3.entries, {},
            [Drift("b/c.html", "missing", 0, None), Drift("css/a.css", "missing", 20, None),
             Drift("index.html", "missing", 10, None)],
            id="all-missing",
        ),
        pytest.param(
            # All three kinds at once come out in one list sorted by key, not grouped by kind.
            M3.entries, {"a.txt": 3, "css/a.css": 21, "index.html": 10},
            [Drift("a.txt", "extra", None, 3), Drift("b/c.html", "missing", 0, None),
             Drift("css/a.css", "size", 20, 21)],
            id="mixed-sorted",
        ),
    ],
)
def test_compare(entries, listing, expected):
    assert compare(Manifest(entries), sized(listing)) == expected


def sized(listing: dict[str, int]) -> dict[str, Stored]:
    """A listing of sizes only (a store that gives no ETags)."""
    return {k: Stored(v, "") for k, v in listing.items()}


ETAGS = {"index.html": "a" * 32, "css/a.css": "b" * 32 + "-2"}


@pytest.mark.parametrize(
    ("listing", "heads", "expected"),
    [
        pytest.param(
            # The ETags written: clean.
            {"index.html": Stored(10, "a" * 32), "css/a.css": Stored(20, "b" * 32 + "-2"),
             "b/c.html": Stored(0, "c" * 32)},  # no ETag recorded for b/c.html: any will do
            None, [],
            id="etags-as-written",
        ),
        pytest.param(
            # The same size, another ETag: an edit behind the tool's back.
            {"index.html": Stored(10, "f" * 32), "css/a.css": Stored(20, "b" * 32 + "-2"),
             "b/c.html": Stored(0, "")},
            None, [Drift("index.html", "etag", 10, 10, f"ETag {'f' * 32}, not {'a' * 32} as written")],
            id="same-size-other-etag",
        ),
        pytest.param(
            # Another size: reported as that, not twice.
            {"index.html": Stored(11, "f" * 32), "css/a.css": Stored(20, "b" * 32 + "-2"),
             "b/c.html": Stored(0, "")},
            None, [Drift("index.html", "size", 10, 11)],
            id="size-before-etag",
        ),
        pytest.param(
            # --deep: headers read; one object's Cache-Control differs; "identity" is none.
            {"index.html": Stored(10, "a" * 32), "css/a.css": Stored(20, "b" * 32 + "-2"),
             "b/c.html": Stored(0, "")},
            {"index.html": Head(HTML, "no-store", "identity"), "css/a.css": Head(CSS, CC, ""),
             "b/c.html": Head(HTML, CC, "")},
            [Drift("index.html", "headers", 10, 10, "Cache-Control 'no-store', not "
                   f"'{CC}'")],
            id="deep-headers",
        ),
    ],
)
def test_compare_etags_and_headers(listing, heads, expected):
    assert compare(M3.replace(etags=ETAGS), listing, heads) == expected


# --- repair_plan: case table -----------------------------------------------------------------

RM = Manifest({
    "index.html": _e(H1, 10, HTML, "cc-page"),
    "css/a.css": _e(H2, 20, CSS, "cc-asset"),
    "about/index.html": _e(H3, 30, HTML, "cc-page"),
})


DIFFERS = "the build's file differs from the deployed one (deploy it)"


def _up(key: str, reason: str) -> Upload:
    e = RM.entries[key]
    return Upload(key, reason, e.size, e.hash, e.content_type, e.cache_control)


@pytest.mark.parametrize(
    ("drift", "build", "delete_extra", "expected"),
    [
        pytest.param(
            # No drift: nothing to do, whatever the build holds.
            [], dict(RM.entries), True, ([], [], []),
            id="no-drift",
        ),
        pytest.param(
            # Missing, and the build has the very file the manifest records: re-uploaded, with
            # the drift's problem as the reason.
            [Drift("css/a.css", "missing", 20, None)], {"css/a.css": RM.entries["css/a.css"]},
            False, ([_up("css/a.css", "missing")], [], []),
            id="missing-repaired",
        ),
        pytest.param(
            # Wrong size on the target, identical file in the build: re-uploaded.
            [Drift("index.html", "size", 10, 3)], {"index.html": RM.entries["index.html"]},
            False, ([_up("index.html", "size")], [], []),
            id="size-repaired",
        ),
        pytest.param(
            # The build's file has the same content but other headers (another --cache-control,
            # another type): the upload carries the manifest's headers, not the build's.
            [Drift("css/a.css", "missing", 20, None)],
            {"css/a.css": _e(H2, 20, "text/plain", "no-store")},
            False, ([_up("css/a.css", "missing")], [], []),
            id="manifest-headers-win",
        ),
        pytest.param(
            # The build no longer has the file: refused, with why.
            [Drift("css/a.css", "missing", 20, None)], {}, False,
            ([], [], [("css/a.css", "not in the build folder")]),
            id="not-in-build",
        ),
        pytest.param(
            # The build's file has other content (another hash): repairing would deploy
            # something the manifest does not record; refused.
            [Drift("index.html", "size", 10, 3)], {"index.html": _e(H2, 10, HTML, "cc-page")},
            False,
            ([], [], [("index.html", DIFFERS)]),
            id="other-hash-refused",
        ),
        pytest.param(
            # Same hash recorded but another size: still not the manifest's file; refused.
            [Drift("index.html", "missing", 10, None)], {"index.html": _e(H1, 11, HTML, "cc-page")},
            False,
            ([], [], [("index.html", DIFFERS)]),
            id="other-size-refused",
        ),
        pytest.param(
            # An extra object without --delete-extra: left, with why.
            [Drift("old.html", "extra", None, 5)], {}, False,
            ([], [], [("old.html", "not in the manifest (--delete-extra removes it)")]),
            id="extra-kept",
        ),
        pytest.param(
            # An extra object with --delete-extra: deleted (even if the build has a file of
            # that name: the manifest, not the build, decides).
            [Drift("old.html", "extra", None, 5)], {"old.html": _e()}, True,
            ([], ["old.html"], []),
            id="extra-deleted",
        ),
        pytest.param(
            # Several repairs: assets before pages (a page must not point at an asset not yet
            # there), then by key; refusals and deletes in drift order.
            [Drift("about/index.html", "missing", 30, None), Drift("css/a.css", "size", 20, 1),
             Drift("gone.js", "extra", None, 1), Drift("index.html", "missing", 10, None),
             Drift("x.html", "extra", None, 2)],
            {"about/index.html": RM.entries["about/index.html"],
             "css/a.css": RM.entries["css/a.css"]},
            True,
            ([_up("css/a.css", "size"), _up("about/index.html", "missing")],
             ["gone.js", "x.html"],
             [("index.html", "not in the build folder")]),
            id="mixed-ordered",
        ),
    ],
)
def test_repair_plan(drift, build, delete_extra, expected):
    uploads, deletes, refused = repair_plan(RM, drift, build, delete_extra)
    assert (uploads, deletes, refused) == expected


# --- compare: property -----------------------------------------------------------------------

_segment = st.text(alphabet="abcdefgh-_.é ", min_size=1, max_size=6).filter(
    lambda s: s not in (".", "..")
)
_key = st.lists(_segment, min_size=1, max_size=3).map("/".join)
_entry = st.builds(
    Entry,
    st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    st.integers(min_value=0, max_value=10**9),
    st.sampled_from([HTML, CSS, "image/png"]),
    st.just(CC),
)


@settings(max_examples=200, deadline=None)
@given(
    entries=st.dictionaries(_key, _entry, max_size=25),
    data=st.data(),
)
def test_compare_finds_exactly_the_keys_removed_resized_or_added(entries, data):
    m = Manifest(entries)
    listing = {k: e.size for k, e in m.entries.items()}
    assert compare(m, sized(listing)) == []

    keys = sorted(entries)
    removed = data.draw(st.sets(st.sampled_from(keys)) if keys else st.just(set()), "removed")
    rest = [k for k in keys if k not in removed]
    resized = data.draw(st.sets(st.sampled_from(rest)) if rest else st.just(set()), "resized")
    added = data.draw(
        st.dictionaries(_key.filter(lambda k: k not in entries),
                        st.integers(min_value=0, max_value=10**9), max_size=5),
        "added",
    )
    expected = []
    for k in removed:
        del listing[k]
        expected.append(Drift(k, "missing", entries[k].size, None))
    for k in resized:
        delta = data.draw(st.integers(min_value=1, max_value=10**6), f"delta {k}")
        new = entries[k].size + delta if entries[k].size < delta else entries[k].size - delta
        listing[k] = new
        expected.append(Drift(k, "size", entries[k].size, new))
    for k, size in added.items():
        listing[k] = size
        expected.append(Drift(k, "extra", None, size))

    assert compare(m, sized(listing)) == sorted(expected, key=lambda d: d.key)


# --- end to end against moto -----------------------------------------------------------------

OTHER_CSS = "body { color: red; font-weight: bold; }\n"  # another size than SITE's css


@pytest.fixture
def public(tmp_path: Path) -> Path:
    return write_site(tmp_path / "public")


def planner(moto, *args: str):
    return run(list(args), moto.env, moto.cwd)


def deploy(moto, public: Path, site, prefix: str = "") -> dict:
    doc = run_json(["deploy", str(public), "--target", site.target(prefix),
                    "-d", site.distribution_id], moto.env, moto.cwd)
    assert sorted(site_objects(moto.s3, site.bucket, prefix)) == sorted(SITE)
    return doc


def verify(moto, site, *extra: str, prefix: str = "", fmt: str = "json"):
    return planner(moto, "verify", "--target", site.target(prefix), "--format", fmt, *extra)


def verify_json(moto, site, *extra: str, prefix: str = "", code: int) -> dict[str, Any]:
    proc = verify(moto, site, *extra, prefix=prefix)
    assert proc.returncode == code, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return json.loads(proc.stdout)


def make_drift(moto, site, prefix: str = "") -> None:
    """about/index.html deleted, css/site.css overwritten with another size, one extra object,
    something under the state folder; with a prefix, objects outside it too."""
    s3, b = moto.s3, site.bucket
    s3.delete_object(Bucket=b, Key=prefix + "about/index.html")
    s3.put_object(Bucket=b, Key=prefix + "css/site.css", Body=OTHER_CSS.encode(),
                  ContentType="text/plain")
    s3.put_object(Bucket=b, Key=prefix + "extra/stray.html", Body=b"stray!")
    s3.put_object(Bucket=b, Key=prefix + ".planner/notes.txt", Body=b"not the site")
    if prefix:
        s3.put_object(Bucket=b, Key="other/keep.txt", Body=b"someone else's")
        s3.put_object(Bucket=b, Key="index.html", Body=b"root site")
        s3.put_object(Bucket=b, Key=prefix.rstrip("/") + "-sibling/x.txt", Body=b"not ours")


EXPECTED_DRIFT = [
    {"key": "about/index.html", "problem": "missing",
     "manifest_size": len(SITE["about/index.html"]), "target_size": None, "detail": ""},
    {"key": "css/site.css", "problem": "size",
     "manifest_size": len(SITE["css/site.css"]), "target_size": len(OTHER_CSS), "detail": ""},
    {"key": "extra/stray.html", "problem": "extra", "manifest_size": None, "target_size": 6,
     "detail": ""},
]


def covered(url: str, paths: list[str]) -> bool:
    return any(url == p or (p.endswith("*") and url.startswith(p[:-1])) for p in paths)


def ledger_records(moto, site, prefix: str = "") -> dict[str, dict]:
    out = {}
    for key in objects(moto.s3, site.bucket, prefix + ".planner/ledger/"):
        out[key] = json.loads(body(moto.s3, site.bucket, prefix + ".planner/ledger/" + key))
    return out


def assert_manifest_matches_bucket(moto, site, prefix: str = "") -> None:
    m = manifest(moto.s3, site.bucket, prefix)
    objs = site_objects(moto.s3, site.bucket, prefix)
    for key, entry in m.entries.items():
        obj = moto.s3.get_object(Bucket=site.bucket, Key=prefix + key)
        data = obj["Body"].read()
        assert (len(data), xxhash.xxh3_128_hexdigest(data)) == (entry.size, entry.hash), key
        assert obj["ContentType"] == entry.content_type, key
        assert obj["CacheControl"] == entry.cache_control, key
        assert objs[key]["Size"] == entry.size


def test_verify_after_a_deploy_finds_no_drift(moto, site, public):
    deploy(moto, public, site)
    before = history(moto.s3, site.bucket)

    table = verify(moto, site, fmt="table")
    doc = verify_json(moto, site, code=0)

    assert table.returncode == 0, table.stderr
    assert table.stderr == ""
    assert "no drift" in table.stdout
    assert f"{len(SITE)} keys in the manifest" in table.stdout
    assert doc["drift"] == [] and doc["clean"] is True
    assert doc["checked"] == len(SITE)
    assert doc["deploy_id"] == manifest(moto.s3, site.bucket).deploy_id
    assert doc["invalidation"] is None
    assert history(moto.s3, site.bucket) == before  # verify writes nothing


# The root-target case of the report is covered by the repair tests below (its JSON drift, and
# the table of --delete-extra); here a prefix target, whose neighbours must not be reported.
def test_verify_reports_missing_size_and_extra_but_never_state_or_other_prefixes(
    moto, site, public
):
    prefix = "site/"
    deploy(moto, public, site, prefix)
    make_drift(moto, site, prefix)
    before = history(moto.s3, site.bucket)

    table = verify(moto, site, prefix=prefix, fmt="table")
    doc = verify_json(moto, site, prefix=prefix, code=DRIFT_EXIT)

    assert table.returncode == DRIFT_EXIT, table.stderr
    rows = [line.split() for line in table.stdout.splitlines()]
    assert ["about/index.html", "missing", str(len(SITE["about/index.html"])), "-"] in rows
    assert ["css/site.css", "size", str(len(SITE["css/site.css"])), str(len(OTHER_CSS))] in rows
    assert ["extra/stray.html", "extra", "-", "6"] in rows
    assert "drift: 1 missing, 1 size mismatch, 1 extra" in table.stdout
    for never in ("notes.txt", ".planner", "other/keep.txt", "sibling", "root site"):
        assert never not in table.stdout, never

    assert set(doc) == {"target", "deploy_id", "checked", "drift", "repaired", "deleted",
                        "not_repairable", "invalidation", "clean", "deep", "nested_targets"}
    assert doc["target"] == site.target(prefix)
    assert doc["deploy_id"] == manifest(moto.s3, site.bucket, prefix).deploy_id
    assert doc["checked"] == len(SITE)
    assert doc["drift"] == EXPECTED_DRIFT
    assert doc["repaired"] == doc["deleted"] == doc["not_repairable"] == []
    assert doc["invalidation"] is None
    assert doc["clean"] is False
    assert history(moto.s3, site.bucket) == before  # verify alone writes nothing
    assert invalidations(moto.cloudfront, site.distribution_id) == []


@pytest.mark.parametrize("prefix", ["", "site/"])
def test_repair_reuploads_missing_and_resized_objects_and_leaves_the_extra(
    moto, site, public, prefix
):
    deploy(moto, public, site, prefix)
    committed = body(moto.s3, site.bucket, prefix + ".planner/manifest.json.gz")
    records_before = ledger_records(moto, site, prefix)
    make_drift(moto, site, prefix)

    doc = verify_json(moto, site, "--repair", str(public), "-d", site.distribution_id,
                      prefix=prefix, code=DRIFT_EXIT)

    # The bucket again holds the build's bytes with the manifest's headers; the manifest
    # itself was not rewritten.
    assert body(moto.s3, site.bucket, prefix + ".planner/manifest.json.gz") == committed
    for key in ("about/index.html", "css/site.css"):
        assert body(moto.s3, site.bucket, prefix + key) == (public / key).read_bytes()
    assert_manifest_matches_bucket(moto, site, prefix)
    # The extra is left and reported with why; nothing outside the prefix was touched.
    assert body(moto.s3, site.bucket, prefix + "extra/stray.html") == b"stray!"
    assert body(moto.s3, site.bucket, prefix + ".planner/notes.txt") == b"not the site"
    if prefix:
        assert body(moto.s3, site.bucket, "index.html") == b"root site"
    assert doc["drift"] == EXPECTED_DRIFT
    assert sorted(doc["repaired"]) == ["about/index.html", "css/site.css"]
    assert doc["deleted"] == []
    assert doc["not_repairable"] == [
        {"key": "extra/stray.html", "why": "not in the manifest (--delete-extra removes it)"}
    ]
    assert doc["clean"] is False

    # One invalidation covering every URL of what was repaired.
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    paths = inv_paths(inv)
    # The fixture's distribution serves the bucket from its root: a prefix is part of the URLs.
    base = "/" + prefix
    for url in ("about/", "about/index.html", "css/site.css"):
        assert covered(base + url, paths), (base + url, paths)
    assert not covered(base + "js/app.js", paths) and not covered(base, paths)
    assert doc["invalidation"] == {
        "paths": paths, "distribution_ids": [site.distribution_id],
        "ids": {site.distribution_id: inv["Id"]},
        "invalidations": [{"paths": paths, "distribution_ids": [site.distribution_id]}],
    }

    # A repair record in the ledger, no pending record, no lock left.
    state = objects(moto.s3, site.bucket, prefix + ".planner/")
    assert "pending.json" not in state and "lock.json" not in state
    new = {k: v for k, v in ledger_records(moto, site, prefix).items() if k not in records_before}
    (name,) = new
    record = new[name]
    month = record["started_at"][:7]
    assert re.fullmatch(r"\d{4}-\d\d/\d{8}T\d{6}Z-[0-9a-f]+-repair-[0-9a-f]{16}\.json", name), name
    assert name.startswith(f"{month}/") and f"-{doc['deploy_id']}-repair-" in name
    assert name.endswith(f"-repair-{record['repair_id']}.json")
    assert record["kind"] == "repair"
    assert record["deploy_id"] == doc["deploy_id"]
    assert record["uploads"]["files"] == 2
    assert record["uploads"]["bytes"] == len(SITE["about/index.html"]) + len(SITE["css/site.css"])
    assert record["deletes"] == 0
    assert record["invalidation_ids"] == {site.distribution_id: inv["Id"]}

    # Verify again: only the extra is left.
    again = verify_json(moto, site, prefix=prefix, code=DRIFT_EXIT)
    assert [d["key"] for d in again["drift"]] == ["extra/stray.html"]


def test_repair_with_delete_extra_leaves_the_target_clean(moto, site, public):
    deploy(moto, public, site)
    make_drift(moto, site)

    proc = verify(moto, site, "--repair", str(public), "--delete-extra", "-d",
                  site.distribution_id, fmt="table")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    rows = [line.split() for line in proc.stdout.splitlines()]
    assert ["extra/stray.html", "extra", "-", "6", "deleted"] in rows
    assert ["about/index.html", "missing", str(len(SITE["about/index.html"])), "-",
            "re-uploaded"] in rows
    assert "repaired 3" in proc.stdout
    assert sorted(site_objects(moto.s3, site.bucket)) == sorted(SITE)
    assert_manifest_matches_bucket(moto, site)
    assert body(moto.s3, site.bucket, ".planner/notes.txt") == b"not the site"  # state untouched
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    for url in ("/about/", "/about/index.html", "/css/site.css", "/extra/stray.html"):
        assert covered(url, inv_paths(inv)), url
    assert f"{site.distribution_id}:{inv['Id']}" in proc.stdout

    second = verify(moto, site, fmt="table")
    assert second.returncode == 0 and "no drift" in second.stdout


def test_repair_refuses_a_build_file_that_differs_from_the_manifest(moto, site, public):
    deploy(moto, public, site)
    moto.s3.put_object(Bucket=site.bucket, Key="css/site.css", Body=OTHER_CSS.encode())
    moto.s3.delete_object(Bucket=site.bucket, Key="js/app.js")
    (public / "css" / "site.css").write_text("body { color: green; }\n", encoding="utf-8")
    (public / "js" / "app.js").unlink()

    doc = verify_json(moto, site, "--repair", str(public), "-d", site.distribution_id,
                      code=DRIFT_EXIT)

    assert doc["repaired"] == [] and doc["clean"] is False
    assert doc["not_repairable"] == [
        {"key": "css/site.css",
         "why": "the build's file differs from the deployed one (deploy it)"},
        {"key": "js/app.js", "why": "not in the build folder"},
    ]
    assert body(moto.s3, site.bucket, "css/site.css") == OTHER_CSS.encode()  # untouched
    assert "js/app.js" not in site_objects(moto.s3, site.bucket)
    assert invalidations(moto.cloudfront, site.distribution_id) == []
    assert doc["invalidation"] is None

    table = verify(moto, site, "--repair", str(public), fmt="table")
    assert table.returncode == DRIFT_EXIT
    assert "left: the build's file differs from the deployed one" in table.stdout


@pytest.mark.parametrize("repair", [False, True])
def test_verify_on_a_target_never_deployed_is_a_one_line_error(moto, site, public, repair):
    moto.s3.put_object(Bucket=site.bucket, Key="index.html", Body=b"hand-made")
    before = history(moto.s3, site.bucket)
    extra = ("--repair", str(public)) if repair else ()

    proc = planner(moto, "verify", "--target", site.target(), *extra)

    line = one_line_error(proc)
    assert proc.returncode != DRIFT_EXIT
    assert "no manifest" in line and site.target() in line
    assert proc.stdout == ""
    if not repair:
        assert history(moto.s3, site.bucket) == before


def test_verify_repair_is_refused_while_a_pending_record_exists(moto, site, public):
    from planner.plan.journal import Journal

    deploy(moto, public, site)
    m = manifest(moto.s3, site.bucket)
    journal = Journal(m.deploy_id, m.previous_deploy_id, ("index.html",), (), ("/",),
                      (site.distribution_id,), "planner-interrupted")
    moto.s3.put_object(Bucket=site.bucket, Key=".planner/pending.json", Body=journal.dumps())
    moto.s3.delete_object(Bucket=site.bucket, Key="about/index.html")
    before = history(moto.s3, site.bucket)

    proc = planner(moto, "verify", "--target", site.target(), "--repair", str(public),
                   "-d", site.distribution_id)

    line = one_line_error(proc)
    assert "pending" in line and "deploy" in line
    assert "about/index.html" not in site_objects(moto.s3, site.bucket)
    assert invalidations(moto.cloudfront, site.distribution_id) == []
    assert history(moto.s3, site.bucket) == before  # nothing written, not even the lock


# --- the local backend -----------------------------------------------------------------------


def _local_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("AWS_", "PLANNER_", "BOTO_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


@pytest.mark.e2e
def test_local_folder_drift_is_reported_and_repaired(tmp_path, public):
    env = _local_env()
    out = tmp_path / "out"
    r = run(["deploy", str(public), "--target", str(out)], env)
    assert r.returncode == 0, r.stderr
    (out / "about" / "index.html").unlink()
    (out / "css" / "site.css").write_text(OTHER_CSS, encoding="utf-8")
    write_site(out, {"extra/stray.html": "stray!", ".planner/notes.txt": "not the site"})

    found = run(["verify", "--target", str(out), "--format", "json"], env)
    assert found.returncode == DRIFT_EXIT, found.stderr
    doc = json.loads(found.stdout)
    assert doc["drift"] == EXPECTED_DRIFT
    assert doc["target"] == "file://" + str(out)

    fixed = run(["verify", "--target", str(out), "--repair", str(public), "--delete-extra",
                 "--format", "json"], env)

    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    doc = json.loads(fixed.stdout)
    assert sorted(doc["repaired"]) == ["about/index.html", "css/site.css"]
    assert doc["deleted"] == ["extra/stray.html"] and doc["clean"] is True
    held = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.relative_to(out).parts[0] != ".planner"}
    assert held == {k: v.encode() for k, v in SITE.items()}
    assert not (out / "extra").exists()  # the emptied folder went with the delete
    assert (out / ".planner" / "notes.txt").read_text() == "not the site"
    assert not (out / ".planner" / "pending.json").exists()
    assert not (out / ".planner" / "lock.json").exists()
    log = [json.loads(line) for line in
           (out / ".planner" / "invalidations.jsonl").read_text().splitlines()]
    (entry,) = log
    assert entry["distribution_id"] == "local"
    for url in ("/about/", "/about/index.html", "/css/site.css", "/extra/stray.html"):
        assert covered(url, entry["paths"]), url
    assert doc["invalidation"]["ids"] == {"local": entry["id"]}
    records = sorted((out / ".planner" / "ledger").rglob("*-repair-*.json"))
    assert len(records) == 1
    assert json.loads(records[0].read_text())["kind"] == "repair"

    again = run(["verify", "--target", str(out)], env)
    assert again.returncode == 0 and "no drift" in again.stdout



@pytest.mark.e2e
def test_a_second_repair_of_the_same_drift_invalidates_again(tmp_path, public):
    # The drift comes back after a completed repair (someone deletes the page again, and the
    # CDN may have cached the 404 meanwhile): the second repair must make a new invalidation,
    # not be answered with the first one because it sent the same CallerReference.
    env = _local_env()
    out = tmp_path / "out"
    assert run(["deploy", str(public), "--target", str(out)], env).returncode == 0
    ids = []
    for n in range(2):
        if n:  # ledger records are named by the second a repair started: not the same one
            time.sleep(1.01 - time.time() % 1)
        (out / "about" / "index.html").unlink()
        r = run(["verify", "--target", str(out), "--repair", str(public), "--format", "json"], env)
        assert r.returncode == 0, r.stdout + r.stderr
        ids.append(json.loads(r.stdout)["invalidation"]["ids"]["local"])
    log = (out / ".planner" / "invalidations.jsonl").read_text().splitlines()
    assert len(log) == 2 and ids[0] != ids[1], (ids, log)
    # and each repair has its own ledger record
    assert len(sorted((out / ".planner" / "ledger").rglob("*-repair-*.json"))) == 2

