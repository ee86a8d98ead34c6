"""Manifest format 2 (columns): what is written, and the reader's refusal of bad input.

Format 2 is ``{"keys": [sorted], "hashes": "<32 hex each, one after another>" (or a list when
some hash is not 32 wide), "sizes": [...], "headers": [[type, cache, encoding], ...],
"header_of": [row per key], "etags": [optional, one per key]}``. Format 1 (an object per
entry) is still read; its checks are tested in test_model.py and test_content_encoding.py."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import FORMAT_VERSION, CorruptManifest, Entry, Manifest
from manifests.model import check_key

H1 = "0123456789abcdef0123456789abcdef"
H2 = "fedcba9876543210fedcba9876543210"
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"

_MISSING = object()  # a field left out of the document


def _gz_json(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def _v2_doc(**changes: Any) -> dict[str, Any]:
    """A valid format 2 document of two entries, with ``changes`` (``_MISSING``: left out)."""
    doc: dict[str, Any] = {
        "format_version": 2,
        "tool_version": "0.1.0",
        "target": "t",
        "deploy_id": "d",
        "previous_deploy_id": None,
        "keys": ["a.html", "b/c.css"],
        "hashes": H1 + H2,
        "sizes": [1, 2],
        "headers": [[HTML, "max-age=60", ""], [CSS, "no-cache", "gzip"]],
        "header_of": [0, 1],
    }
    for name, value in changes.items():
        if value is _MISSING:
            del doc[name]
        else:
            doc[name] = value
    return doc


VALID = {
    "a.html": Entry(H1, 1, HTML, "max-age=60"),
    "b/c.css": Entry(H2, 2, CSS, "no-cache", "gzip"),
}


def test_format_2_is_what_is_written() -> None:
    assert FORMAT_VERSION == 2
    m = Manifest(VALID, target="t", deploy_id="d", tool_version="0.1.0")
    assert json.loads(gzip.decompress(m.dumps())) == _v2_doc()


def test_the_valid_document_loads() -> None:
    """The document the refusals below start from is accepted as it is."""
    m = Manifest.loads(_gz_json(_v2_doc()))
    assert m.entries == VALID and m.format_version == 2
    assert (m.target, m.deploy_id, m.previous_deploy_id, m.tool_version) == ("t", "d", None, "0.1.0")
    assert m.etags == {}
    assert Manifest.loads(_gz_json(_v2_doc(etags=["e1", ""]))).etags == {"a.html": "e1"}
    assert Manifest.loads(_gz_json(_v2_doc(comment="by hand"))).entries == VALID  # ignored


def test_an_empty_site_loads() -> None:
    doc = _v2_doc(keys=[], hashes="", sizes=[], headers=[], header_of=[])
    m = Manifest.loads(_gz_json(doc))
    assert len(m.entries) == 0 and m.keys == () and m.total_size == 0
    assert json.loads(gzip.decompress(Manifest({}).dumps()))["keys"] == []


def test_hashes_not_all_32_wide_are_written_and_read_as_a_list() -> None:
    # A takeover's kept object has an unknown hash ("").
    entries = dict(VALID, **{"old.html": Entry("", 5, HTML, "")})
    m = Manifest(entries)
    doc = json.loads(m.to_json_bytes())
    assert doc["keys"] == ["a.html", "b/c.css", "old.html"]
    assert doc["hashes"] == [H1, H2, ""]
    back = Manifest.loads(m.dumps())
    assert back == m and back.entries["old.html"].hash == "" and back.dumps() == m.dumps()
    # A list of 32-wide hashes (not what is written, but valid) reads as the text would.
    assert Manifest.loads(_gz_json(_v2_doc(hashes=[H1, H2]))).entries == VALID


def test_a_format_1_manifest_reads_as_the_same_manifest_and_is_rewritten_as_format_2() -> None:
    v1 = {k: v for k, v in _v2_doc().items() if k not in ("keys", "hashes", "sizes", "headers",
                                                          "header_of")}
    v1["format_version"] = 1
    v1["entries"] = {"b/c.css": [H2, 2, CSS, "no-cache", "gzip"],
                     "a.html": [H1, 1, HTML, "max-age=60"]}
    old = Manifest.loads(_gz_json(v1))
    assert old.format_version == 1 and old.entries == VALID
    new = Manifest.loads(_gz_json(_v2_doc()))
    assert old.dumps() == new.dumps()
    assert old.content_digest_input() == new.content_digest_input()


# --- the reader refuses bad columns ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # keys
        ({"keys": "a.html"}, "'keys' is not a list of text"),
        ({"keys": None}, "'keys' is not a list of text"),
        ({"keys": {"a.html": 0, "b/c.css": 1}}, "'keys' is not a list of text"),
        ({"keys": ["a.html", 5]}, "'keys' is not a list of text"),
        ({"keys": ["a.html", None]}, "'keys' is not a list of text"),
        ({"keys": _MISSING}, r"malformed \(KeyError: 'keys'\)"),
        ({"keys": ["../x", "b/c.css"]}, r"key '\.\./x' escapes"),
        ({"keys": ["a.html", "b/../../c"]}, r"key 'b/\.\./\.\./c' escapes"),
        ({"keys": ["/a.html", "b/c.css"]}, "'/a.html' is not a relative POSIX path"),
        ({"keys": [".planner/x", "b/c.css"]}, "state folder"),
        ({"keys": ["", "b/c.css"]}, "empty"),
        ({"keys": ["b/c.css", "a.html"]}, "keys are not sorted, or repeat"),
        ({"keys": ["a.html", "a.html"]}, "keys are not sorted, or repeat"),
        # hashes
        ({"hashes": H1}, "'hashes' is not 2 hashes of 32"),
        ({"hashes": H1 + H2 + "0"}, "'hashes' is not 2 hashes of 32"),
        ({"hashes": H1 + H2[:-1]}, "'hashes' is not 2 hashes of 32"),
        ({"hashes": [H1]}, "'hashes' is not one hash per key"),
        ({"hashes": [H1, H2, H1]}, "'hashes' is not one hash per key"),
        ({"hashes": [H1, 5]}, "'hashes' is not one hash per key"),
        ({"hashes": 5}, "'hashes' is not one hash per key"),
        ({"hashes": None}, "'hashes' is not one hash per key"),
        # sizes
        ({"sizes": [1]}, "'sizes' is not one whole number per key"),
        ({"sizes": [1, 2, 3]}, "'sizes' is not one whole number per key"),
        ({"sizes": [1, "2"]}, "'sizes' is not one whole number per key"),
        ({"sizes": [1, 2.0]}, "'sizes' is not one whole number per key"),
        ({"sizes": [1, True]}, "'sizes' is not one whole number per key"),
        ({"sizes": [1, None]}, "'sizes' is not one whole number per key"),
        ({"sizes": "12"}, "'sizes' is not one whole number per key"),
        ({"sizes": [1, -1]}, "'sizes' has a negative size"),
        # headers
        ({"headers": [[HTML, "max-age=60"], [CSS, "no-cache", "gzip"]]},
         r"'headers' is not a list of \[type, cache, encoding\]"),
        ({"headers": [[HTML, "max-age=60", "", ""], [CSS, "no-cache", "gzip"]]},
         r"'headers' is not a list of \[type, cache, encoding\]"),
        ({"headers": [[HTML, None, ""], [CSS, "no-cache", "gzip"]]},
         r"'headers' is not a list of \[type, cache, encoding\]"),
        ({"headers": [[HTML, "max-age=60", None], [CSS, "no-cache", "gzip"]]},
         r"'headers' is not a list of \[type, cache, encoding\]"),
        ({"headers": [HTML, "max-age=60", ""]},
         r"'headers' is not a list of \[type, cache, encoding\]"),
        ({"headers": {"0": [HTML, "max-age=60", ""]}},
         r"'headers' is not a list of \[type, cache, encoding\]"),
        ({"headers": [[HTML, "max-age=60", ""], [CSS, "no-cache", "deflate"]]},
         "unknown content encoding 'deflate'"),
        ({"headers": [[HTML, "max-age=60", "GZIP"], [CSS, "no-cache", "gzip"]]},
         "unknown content encoding 'GZIP'"),
        ({"headers": [[HTML, "max-age=60", "identity"], [CSS, "no-cache", "gzip"]]},
         "unknown content encoding 'identity'"),
        # header_of
        ({"header_of": [0]}, "'header_of' is not one number per key"),
        ({"header_of": [0, 1, 0]}, "'header_of' is not one number per key"),
        ({"header_of": [0, "1"]}, "'header_of' is not one number per key"),
        ({"header_of": [0, 1.0]}, "'header_of' is not one number per key"),
        ({"header_of": [0, True]}, "'header_of' is not one number per key"),
        ({"header_of": 0}, "'header_of' is not one number per key"),
        # (today: "malformed (OverflowError: can't convert negative value to unsigned int)")
        ({"header_of": [0, -1]}, "header_of|negative"),
        ({"header_of": [0, 2]}, "'header_of' points past 'headers'"),
        ({"header_of": [0, 0], "headers": []}, "'header_of' points past 'headers'"),
        # etags
        ({"etags": ["x"]}, "'etags' is not a list of text, one per entry"),
        ({"etags": ["x", "y", "z"]}, "'etags' is not a list of text, one per entry"),
        ({"etags": ["x", 5]}, "'etags' is not a list of text, one per entry"),
        ({"etags": {"a.html": "x"}}, "'etags' is not a list of text, one per entry"),
        ({"etags": "xy"}, "'etags' is not a list of text, one per entry"),
        # metadata
        ({"target": None}, "'target' is not text"),
        ({"deploy_id": 7}, "'deploy_id' is not text"),
        ({"previous_deploy_id": ["d-1"]}, "'previous_deploy_id' is not text"),
    ],
)
def test_loads_refuses_bad_columns_with_a_clear_message(changes: dict, message: str) -> None:
    with pytest.raises(CorruptManifest, match=message):
        Manifest.loads(_gz_json(_v2_doc(**changes)))


@pytest.mark.parametrize(
    ("key", "message"),
    [
        ("../etc/passwd", "escapes"),
        ("a/..", "escapes"),
        ("./index.html", "escapes"),
        ("a//b", "escapes"),
        ("dir/", "escapes"),
        ("/index.html", "not a relative POSIX path"),
        ("a\x00b", "not a relative POSIX path"),
        ("caf\udce9.html", "not valid UTF-8"),  # a lone surrogate (\udce9 in the JSON)
        (".planner", "state folder"),
        (".planner/manifest.json.gz", "state folder"),
        ("", "empty"),
    ],
)
def test_loads_refuses_unsafe_keys_in_columns_and_names_them(key: str, message: str) -> None:
    keys = sorted([key, "zz.html"])
    doc = _v2_doc(keys=keys, hashes=H1 + H2)
    with pytest.raises(CorruptManifest, match=message) as info:
        Manifest.loads(_gz_json(doc))
    assert repr(key) in str(info.value)


# --- property: loads accepts a set of keys exactly when each key is valid ---------------------

_tricky_key = st.lists(
    st.sampled_from(
        ["a", "b.html", "/", ".", "..", "\\", "\x00", ".planner", "é", " ", "%2F", "\udce9", "\n"]
    ),
    min_size=0,
    max_size=6,
).map("".join)


def _key_ok(key: str) -> bool:
    try:
        check_key(key)
    except CorruptManifest:
        return False
    return True


@settings(max_examples=300)
@given(keys=st.lists(_tricky_key, min_size=1, max_size=4, unique=True))
def test_columns_accept_a_set_of_keys_exactly_when_each_key_is_valid(keys: list[str]) -> None:
    keys = sorted(keys)
    n = len(keys)
    doc = _v2_doc(keys=keys, hashes=H1 * n, sizes=[1] * n, header_of=[0] * n)
    if all(_key_ok(k) for k in keys):
        assert list(Manifest.loads(_gz_json(doc)).entries) == keys
    else:
        with pytest.raises(CorruptManifest):
            Manifest.loads(_gz_json(doc))


# --- property: round trip and determinism -----------------------------------------------------

_part = st.text("ab.-é", min_size=1, max_size=3).filter(lambda p: p not in (".", ".."))
_key = st.lists(_part, min_size=1, max_size=3).map("/".join).filter(_key_ok)
_hash = st.text("0123456789abcdef", min_size=32, max_size=32)
_head = st.sampled_from(
    [
        (HTML, "max-age=60", ""),
        (HTML, "max-age=60", "br"),
        (CSS, "no-cache", "gzip"),
        (CSS, "public, max-age=31536000, immutable", "br"),
        ("image/png", "", ""),
        ("", "", "gzip"),
    ]
)
_entry = st.builds(lambda h, s, head: Entry(h, s, *head), _hash, st.integers(0, 2**63 - 1), _head)


def _v1_doc_of(entries: dict[str, Entry]) -> dict[str, Any]:
    rows = {}
    for key, e in entries.items():
        row = [e.hash, e.size, e.content_type, e.cache_control]
        rows[key] = row + [e.content_encoding] if e.content_encoding else row
    return {"format_version": 1, "tool_version": "", "target": "", "deploy_id": "",
            "previous_deploy_id": None, "entries": rows}


@settings(max_examples=200)
@given(entries=st.dictionaries(_key, _entry, max_size=12), data=st.data())
def test_any_entries_round_trip_and_any_insertion_order_gives_the_same_bytes(
    entries: dict[str, Entry], data: st.DataObject
) -> None:
    m = Manifest(entries)
    dumped = m.dumps()
    back = Manifest.loads(dumped)
    assert back.entries == entries
    assert dict(back.entries) == entries
    assert back == m and back.dumps() == dumped
    order = data.draw(st.permutations(list(entries)))
    assert Manifest({k: entries[k] for k in order}).dumps() == dumped
    # The same entries in a format 1 manifest read as the same and are written the same.
    old = Manifest.loads(_gz_json(_v1_doc_of(entries)))
    assert old.entries == entries and old.dumps() == dumped
    assert old.content_digest_input() == m.content_digest_input()
