"""Taking over a target that something else deployed: the listing
(planner.core.adopt.split_listing), sorting the target's objects against the build
(planner.core.adopt.takeover) and the first plan made from it (planner.plan.compute.compute_plan). Pure:
these tests hand them listings, proofs and headers directly; test_e2e_takeover.py drives the
CLI against a moto server."""

from __future__ import annotations

import hashlib

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from planner.core.adopt import (
    Head,
    Listing,
    Stored,
    candidates,
    split_listing,
    takeover,
)
from planner.plan.compute import Options, TargetState, compute_plan

HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
CC = "public, max-age=60, s-maxage=86400"
TARGET = "s3://bucket"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- the listing -----------------------------------------------------------------------------


def test_listing_leaves_out_the_tools_own_state_and_every_nested_target():
    raw = {
        "index.html": Stored(1, "a"),
        ".planner/manifest.json.gz": Stored(9, "m"),  # this target's state
        ".planner/ledger/2026-12/x.json": Stored(9, "l"),
        "docs/.planner/manifest.json.gz": Stored(9, "n"),  # another target's state...
        "docs/index.html": Stored(2, "d"),  # ...and its site
        "docs/api/.planner/lock.json": Stored(1, "x"),  # inside the nested one: covered
        "docsx/page.html": Stored(3, "e"),  # a sibling with a longer name: ours
        "blog/.planner-old/a.html": Stored(4, "f"),  # not a state folder
    }
    listing = split_listing(raw)
    assert listing.nested == ("docs/",)
    assert set(listing.objects) == {"index.html", "docsx/page.html", "blog/.planner-old/a.html"}


# --- sorting the target's objects against the build -----------------------------------------


def entry(data: bytes, ctype: str = HTML, cc: str = CC, enc: str = "") -> Entry:
    return Entry(xxhash.xxh3_128_hexdigest(data), len(data), ctype, cc, enc)


BUILD = {
    "index.html": entry(b"<h1>home</h1>"),
    "about/index.html": entry(b"<h1>about v2</h1>"),
    "css/site.css": entry(b"body{}", CSS),
    "new.html": entry(b"<p>new</p>"),
}
REMOTE = Listing({
    "index.html": Stored(len(b"<h1>home</h1>"), md5(b"<h1>home</h1>")),
    "about/index.html": Stored(len(b"<h1>about v1</h1>"), md5(b"<h1>about v1</h1>")),  # same size as v2
    "css/site.css": Stored(6, md5(b"body{}")),
    "old/page.html": Stored(5, md5(b"<p/>.")),
})


def test_candidates_need_an_md5_etag_and_the_same_size_unless_compressed():
    build = dict(BUILD, **{"css/site.css": entry(b"body{}", CSS, enc="gzip")})
    objects = dict(REMOTE.objects, **{"index.html": Stored(len(b"<h1>home</h1>"), "kms-opaque-etag")})
    objects["new.html"] = Stored(999, md5(b"x"))  # another size: cannot be the same bytes
    assert candidates(build, objects) == ["about/index.html", "css/site.css"]


def test_takeover_sorts_every_object_and_every_build_file_once():
    heads = {
        "index.html": Head(HTML, CC, ""),  # as the rules say
        "css/site.css": Head("binary/octet-stream", "", ""),  # as `aws s3 cp` left it, say
    }
    t = takeover(BUILD, REMOTE, {"index.html", "css/site.css"}, heads, "no manifest yet", TARGET)
    assert t.adopted == ("index.html",)
    assert t.in_place == ("css/site.css",)
    assert t.replaced == ("about/index.html",)  # same size, other bytes: not proven
    assert t.orphaned == ("old/page.html",)
    assert t.new == ("new.html",)
    assert t.found == 4
    # The remote as a manifest: proven objects have the build's hash and their own headers,
    # the others an unknown hash; the listing's ETags are kept.
    assert t.remote.entries["css/site.css"] == Entry(BUILD["css/site.css"].hash, 6,
                                                     "binary/octet-stream", "", "")
    assert t.remote.entries["about/index.html"].hash == ""
    assert t.remote.etags["index.html"] == md5(b"<h1>home</h1>")


def test_a_proven_object_whose_head_is_gone_is_replaced():
    t = takeover(BUILD, REMOTE, {"index.html"}, {}, "r", TARGET)  # deleted meanwhile
    assert "index.html" in t.replaced and not t.adopted


def test_without_headers_a_proven_object_is_adopted_as_is():
    """A local folder has no headers: proven equal is adopted."""
    t = takeover(BUILD, REMOTE, {"index.html", "css/site.css"}, None, "r", TARGET)
    assert t.adopted == ("css/site.css", "index.html") and t.in_place == ()


def test_identity_content_encoding_is_no_encoding():
    t = takeover(BUILD, REMOTE, {"index.html"}, {"index.html": Head(HTML, CC, "identity")}, "r")
    assert t.adopted == ("index.html",)


def test_an_object_too_large_to_copy_gets_its_headers_by_a_new_upload():
    big = 6 * 1000**3
    build = {"v.mp4": Entry("a" * 32, big, "video/mp4", CC)}
    remote = Listing({"v.mp4": Stored(big, "b" * 32 + "-600")})
    t = takeover(build, remote, {"v.mp4"}, {"v.mp4": Head("binary/octet-stream", "", "")}, "r")
    assert t.replaced == ("v.mp4",) and t.in_place == ()


# --- the first plan from a takeover ------------------------------------------------------------


def plan_of(t, build=BUILD, **opts):
    return compute_plan(
        site="/site", target=TARGET, state=TargetState(takeover=t),
        entries=dict(build), options=Options(**opts), tool_version="test",
    )


def test_takeover_plan_uploads_what_differs_fixes_headers_in_place_and_invalidates_what_was_served():
    heads = {"index.html": Head(HTML, CC, ""), "css/site.css": Head("binary/octet-stream", "", "")}
    t = takeover(BUILD, REMOTE, {"index.html", "css/site.css"}, heads, "no manifest yet", TARGET)
    p = plan_of(t)
    ups = {u.key: (u.reason, u.in_place) for u in p.uploads}
    assert ups == {
        "about/index.html": ("changed", False),
        "css/site.css": ("headers", True),
        "new.html": ("new", False),
    }
    assert p.upload_bytes == BUILD["about/index.html"].size + BUILD["new.html"].size
    assert p.deletes == ("old/page.html",)
    # Changed, fixed and orphaned URLs were served before: invalidated. new.html never was.
    urls = set(p.invalidation.changed)
    assert urls == {"/about/", "/about/index.html", "/css/site.css", "/old/page.html"}
    assert p.previous_deploy_id is None and p.takeover is t
    # The first manifest records every object: the build's, with the ETags of those adopted.
    committed = p.committed_manifest({"about/index.html": "e1", "css/site.css": "e2",
                                      "new.html": ""})
    assert set(committed.entries) == set(BUILD)
    assert committed.etags == {"index.html": md5(b"<h1>home</h1>"), "about/index.html": "e1",
                               "css/site.css": "e2"}


def test_takeover_orphans_obey_max_deletes_and_no_delete():
    from planner.errors import TooManyDeletes

    t = takeover(BUILD, REMOTE, set(), None, "r", TARGET)
    with pytest.raises(TooManyDeletes):
        plan_of(t, max_deletes=0)
    kept = plan_of(t, max_deletes=0, delete=False)
    assert kept.deletes == () and kept.kept == ("old/page.html",)
    # Kept, it stays in the manifest (so verify and the next deploy know it), with what is
    # known of it: its size and ETag, an unknown hash.
    assert kept.manifest.entries["old/page.html"].hash == ""
    assert kept.committed_manifest({}).etags["old/page.html"] == md5(b"<p/>.")
    # A kept object stays as it was served: nothing to invalidate.
    assert "/old/page.html" not in kept.invalidation.changed


KEYS = st.sampled_from(["a.html", "b/index.html", "c.css", "d/e.js", "f.png", "g/h/i.html"])


@settings(max_examples=300, deadline=None)
@given(
    build=st.dictionaries(KEYS, st.binary(min_size=1, max_size=3), min_size=1),
    remote=st.dictionaries(KEYS, st.binary(min_size=1, max_size=3)),
    wrong_headers=st.sets(KEYS),
    kms=st.sets(KEYS),
)
def test_takeover_property_every_served_change_is_invalidated_and_no_equal_byte_is_sent(
    build, remote, wrong_headers, kms
):
    """Whatever the target holds: every build file is new, adopted, fixed or replaced, once;
    bytes are sent only for files the target lacks or holds otherwise; every URL whose
    content (or headers) changes and every orphan's URL is invalidated, and no new file's."""
    entries = {k: entry(v) for k, v in build.items()}
    objects = {k: Stored(len(v), "opaque" if k in kms else md5(v)) for k, v in remote.items()}
    listing = Listing(objects)
    proven = {k for k in candidates(entries, objects)
              if k in build and objects[k].etag == md5(build[k])}
    heads = {k: Head("binary/octet-stream" if k in wrong_headers else HTML, CC, "")
             for k in remote}
    t = takeover(entries, listing, proven, heads, "r", TARGET)
    groups = [set(t.adopted), set(t.in_place), set(t.replaced), set(t.new)]
    assert set().union(*groups) == set(build) and sum(map(len, groups)) == len(build)
    assert set(t.orphaned) == set(remote) - set(build)
    p = plan_of(t, build=entries, max_deletes=100)
    sent = {u.key for u in p.uploads if not u.in_place}
    equal = {k for k in build if remote.get(k) == build[k] and k not in kms}
    assert sent == set(build) - equal - (set(t.in_place)), (sent, equal)
    assert not sent & equal
    assert set(p.deletes) == set(t.orphaned)
    must = (set(t.replaced) | set(t.in_place) | set(t.orphaned))
    from planner.core.urls import urls_of

    assert set(p.invalidation.changed) == set(urls_of(must))
    assert not set(p.invalidation.changed) & (set(urls_of(t.new)) - set(urls_of(must)))
    manifest = p.committed_manifest({k: "new-etag" for k in sent | set(t.in_place)})
    assert set(manifest.entries) == set(build)
    assert set(manifest.etags) == set(build)  # written now, or adopted with the listing's
    for key in t.adopted:
        assert manifest.etags[key] == objects[key].etag


def test_manifest_etags_round_trip_and_stay_out_of_the_deploy_id():
    entries = {"a.html": entry(b"a"), "b.css": entry(b"b", CSS)}
    plain = Manifest(entries, target=TARGET, deploy_id="d1")
    tagged = plain.replace(etags={"a.html": "abc", "b.css": "def-2"})
    assert Manifest.loads(tagged.dumps()).etags == {"a.html": "abc", "b.css": "def-2"}
    assert Manifest.loads(plain.dumps()).etags == {}
    assert tagged.content_digest_input() == plain.content_digest_input()
    # Without ETags, a manifest has the bytes it had before they existed.
    assert b"etags" not in plain.to_json_bytes()


def test_manifest_etags_are_one_per_entry_in_order_and_bad_ones_refused():
    import gzip
    import json

    from manifests import CorruptManifest

    m = Manifest({"b.html": entry(b"b"), "a.html": entry(b"a")}).replace(etags={"b.html": "bb"})
    doc = json.loads(m.to_json_bytes())
    # Format 2: one text each, the keys and their ETags ("" where unknown) joined by NUL.
    assert doc["keys"].split("\x00") == ["a.html", "b.html"]
    assert doc["etags"] == "\x00bb" and doc["etags"].split("\x00") == ["", "bb"]
    assert Manifest.loads(gzip.compress(json.dumps(doc).encode())).etags == {"b.html": "bb"}
    for bad in ({"a.html": "x"}, ["", "bb"], "x", "x\x00y\x00z", "", 5):
        doc["etags"] = bad
        with pytest.raises(CorruptManifest, match="'etags' is not one ETag per key joined by NUL"):
            Manifest.loads(gzip.compress(json.dumps(doc).encode()))
    # Format 1 still has a list of ETags, one per entry in key order.
    v1 = {k: v for k, v in doc.items() if k not in ("keys", "hashes", "sizes", "headers",
                                                    "header_of", "etags")}
    v1["format_version"] = 1
    v1["entries"] = {k: [e.hash, e.size, e.content_type, e.cache_control]
                     for k, e in m.entries.items()}
    v1["etags"] = ["", "bb"]
    assert Manifest.loads(gzip.compress(json.dumps(v1).encode())).etags == {"b.html": "bb"}
    for bad in ({"a.html": "x"}, ["x"], ["x", "y", "z"], ["x", 5], "\x00bb"):
        v1["etags"] = bad
        with pytest.raises(CorruptManifest, match="'etags' is not a list of text, one per entry"):
            Manifest.loads(gzip.compress(json.dumps(v1).encode()))
