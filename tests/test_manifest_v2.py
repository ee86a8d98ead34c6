"""Manifest format 2 (columns): what is written, and the reader's refusal of bad input.

Format 2 is ``{"keys": "<the sorted keys joined by NUL>", "hashes": "<32 hex each, one after
another>" (or a list when some hash is not 32 wide), "sizes": [...], "headers": [[type, cache,
encoding], ...], "header_of": [row per key], "etags": "<optional: one ETag per key, "" where
unknown, joined by NUL>"}``. The number of keys is ``len(sizes)``; whether the keys are sorted
and unique is checked when they are first split into a list, not on load. Format 1 (an object
per entry) is still read; its checks are tested in test_model.py and test_content_encoding.py."""

from __future__ import annotations

import gzip
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import FORMAT_VERSION, CorruptManifest, Entry, Manifest, diff
from manifests.model import Etags

from test_model import _key_ok, _tricky_key  # noqa: E402 - the same tricky keys as format 1's test

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
        "keys": "a.html\x00b/c.css",
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


def _nul(*parts: str) -> str:
    return "\x00".join(parts)


def test_format_2_is_what_is_written() -> None:
    assert FORMAT_VERSION == 2
    m = Manifest(VALID, target="t", deploy_id="d", tool_version="0.1.0")
    doc = json.loads(gzip.decompress(m.dumps()))
    assert doc == _v2_doc()
    assert doc["keys"] == "a.html\x00b/c.css" and "etags" not in doc
    # ETags, when some are known: one text, one per key in the keys' order, "" where unknown.
    tagged = json.loads(m.replace(etags={"b/c.css": "e2"}).to_json_bytes())
    assert tagged == _v2_doc(etags="\x00e2")
    both = json.loads(m.replace(etags={"a.html": "e1", "b/c.css": "e2"}).to_json_bytes())
    assert both["etags"] == _nul("e1", "e2")


def test_the_valid_document_loads() -> None:
    """The document the refusals below start from is accepted as it is."""
    m = Manifest.loads(_gz_json(_v2_doc()))
    assert m.entries == VALID and m.format_version == 2
    assert (m.target, m.deploy_id, m.previous_deploy_id, m.tool_version) == ("t", "d", None, "0.1.0")
    assert m.etags == {} and not m.etags
    assert Manifest.loads(_gz_json(_v2_doc(etags="e1\x00"))).etags == {"a.html": "e1"}
    assert Manifest.loads(_gz_json(_v2_doc(etags="\x00e2"))).etags == {"b/c.css": "e2"}
    none_known = Manifest.loads(_gz_json(_v2_doc(etags="\x00"))).etags
    assert none_known == {} and not none_known
    assert Manifest.loads(_gz_json(_v2_doc(comment="by hand"))).entries == VALID  # ignored


def test_an_empty_site_loads() -> None:
    doc = _v2_doc(keys="", hashes="", sizes=[], headers=[], header_of=[])
    m = Manifest.loads(_gz_json(doc))
    assert len(m.entries) == 0 and m.keys == () and list(m.entries) == [] and m.total_size == 0
    assert "a.html" not in m.entries and m.etags == {}
    written = json.loads(gzip.decompress(Manifest({}).dumps()))
    assert written["keys"] == "" and written["sizes"] == [] and "etags" not in written
    assert Manifest.loads(_gz_json(dict(doc, etags=""))).etags == {}  # no key, no ETag
    with pytest.raises(CorruptManifest, match="'etags' is not one ETag per key joined by NUL"):
        Manifest.loads(_gz_json(dict(doc, etags="x")))
    with pytest.raises(CorruptManifest, match="'keys' is not 0 keys joined by NUL"):
        Manifest.loads(_gz_json(dict(doc, keys="a.html")))


def test_hashes_not_all_32_wide_are_written_and_read_as_a_list() -> None:
    # A takeover's kept object has an unknown hash ("").
    entries = dict(VALID, **{"old.html": Entry("", 5, HTML, "")})
    m = Manifest(entries)
    doc = json.loads(m.to_json_bytes())
    assert doc["keys"] == _nul("a.html", "b/c.css", "old.html")
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
    assert json.loads(gzip.decompress(old.dumps())) == _v2_doc()  # keys as one text
    assert old.content_digest_input() == new.content_digest_input()
    # Format 1's list of ETags (one per entry, in key order) is rewritten as one text.
    old_tagged = Manifest.loads(_gz_json(dict(v1, etags=["", "e2"])))
    assert old_tagged.etags == {"b/c.css": "e2"}
    assert json.loads(old_tagged.to_json_bytes()) == _v2_doc(etags="\x00e2")
    assert old_tagged.dumps() == Manifest.loads(_gz_json(_v2_doc(etags="\x00e2"))).dumps()


# --- the reader refuses bad columns ----------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        # keys: not a text (the list format 2 once had is refused too)
        ({"keys": ["a.html", "b/c.css"]}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": None}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": 5}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": {"a.html": 0, "b/c.css": 1}}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": _MISSING}, r"malformed \(KeyError: 'keys'\)"),
        # keys: not as many as sizes
        ({"keys": "a.html"}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": ""}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": "a.html\x00b/c.css\x00d.html"}, "'keys' is not 2 keys joined by NUL"),
        ({"keys": "a.html\x00b/c.css\x00"}, "'keys' is not 2 keys joined by NUL"),
        ({"sizes": [1]}, "'keys' is not 1 keys joined by NUL"),
        ({"sizes": [1, 2, 3]}, "'keys' is not 3 keys joined by NUL"),
        ({"sizes": []}, "'keys' is not 0 keys joined by NUL"),
        # keys: one of a bad form, named
        ({"keys": "../x\x00b/c.css"}, r"key '\.\./x' escapes"),
        ({"keys": "a.html\x00b/../../c"}, r"key 'b/\.\./\.\./c' escapes"),
        ({"keys": "/a.html\x00b/c.css"}, "'/a.html' is not a relative POSIX path"),
        ({"keys": ".planner/x\x00b/c.css"}, r"'\.planner/x' is inside the tool's state folder"),
        ({"keys": "\x00b/c.css"}, "key '' is empty"),
        ({"keys": "a.html\x00"}, "key '' is empty"),
        ({"keys": "a.html\x00caf\udce9.css"}, "not valid UTF-8"),
        # hashes
        ({"hashes": H1}, "'hashes' is not 2 hashes of 32"),
        ({"hashes": H1 + H2 + "0"}, "'hashes' is not 2 hashes of 32"),
        ({"hashes": H1 + H2[:-1]}, "'hashes' is not 2 hashes of 32"),
        ({"hashes": [H1]}, "'hashes' is not one hash per key"),
        ({"hashes": [H1, H2, H1]}, "'hashes' is not one hash per key"),
        ({"hashes": [H1, 5]}, "'hashes' is not one hash per key"),
        ({"hashes": 5}, "'hashes' is not one hash per key"),
        ({"hashes": None}, "'hashes' is not one hash per key"),
        # sizes (their number is the number of keys: too few or too many is under keys)
        ({"sizes": [1, "2"]}, "'sizes' is not a list of whole numbers"),
        ({"sizes": [1, 2.0]}, "'sizes' is not a list of whole numbers"),
        ({"sizes": [1, True]}, "'sizes' is not a list of whole numbers"),
        ({"sizes": [1, None]}, "'sizes' is not a list of whole numbers"),
        ({"sizes": "12"}, "'sizes' is not a list of whole numbers"),
        ({"sizes": None}, "'sizes' is not a list of whole numbers"),
        ({"sizes": _MISSING}, r"malformed \(KeyError: 'sizes'\)"),
        ({"sizes": [1, 2**63]}, "'sizes' has a size too large"),
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
        # etags: not as many as keys
        ({"etags": "x"}, "'etags' is not one ETag per key joined by NUL"),
        ({"etags": ""}, "'etags' is not one ETag per key joined by NUL"),
        ({"etags": "x\x00y\x00z"}, "'etags' is not one ETag per key joined by NUL"),
        ({"etags": "\x00\x00"}, "'etags' is not one ETag per key joined by NUL"),
        # etags: not a text (format 1's list is refused in format 2)
        ({"etags": ["x", "y"]}, "'etags' is not one ETag per key joined by NUL"),
        ({"etags": ["", ""]}, "'etags' is not one ETag per key joined by NUL"),
        ({"etags": {"a.html": "x"}}, "'etags' is not one ETag per key joined by NUL"),
        ({"etags": 5}, "'etags' is not one ETag per key joined by NUL"),
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
        ("caf\udce9.html", "not valid UTF-8"),  # a lone surrogate (\udce9 in the JSON)
        (".planner", "state folder"),
        (".planner/manifest.json.gz", "state folder"),
        ("", "empty"),
    ],
)
def test_loads_refuses_unsafe_keys_in_columns_and_names_them(key: str, message: str) -> None:
    # (A key holding a NUL cannot be written in the text of keys: its NUL reads as one more
    # key, and the count no longer matches the sizes; see the bad-column cases above.)
    for keys in (sorted([key, "zz.html"]), [key]):  # also as the first, last and only key
        n = len(keys)
        doc = _v2_doc(keys=_nul(*keys), hashes=H1 * n, sizes=[1] * n, header_of=[0] * n)
        if keys == [""]:  # "" is the text of no key at all: one key short of the sizes
            with pytest.raises(CorruptManifest, match="'keys' is not 1 keys joined by NUL"):
                Manifest.loads(_gz_json(doc))
            continue
        with pytest.raises(CorruptManifest, match=message) as info:
            Manifest.loads(_gz_json(doc))
        assert repr(key) in str(info.value)


# --- keys out of order: loaded, refused when first split ---------------------------------------


def _unsplit(m: Manifest) -> bool:
    """Whether ``m``'s keys are still only the one text they were read as."""
    return m.columns._names is None


_SPLITS = {
    "list(entries)": lambda m: list(m.entries),
    "keys": lambda m: m.keys,
    "entries[key]": lambda m: m.entries["a.html"],
    "key in entries": lambda m: "a.html" in m.entries,
    "missing key in entries": lambda m: "zz.html" in m.entries,
    "items": lambda m: list(m.entries.items()),
    "dict(entries)": lambda m: dict(m.entries),
    "etags": lambda m: dict(m.etags),
    "diff(loaded, other)": lambda m: diff(m, Manifest({"x.html": Entry(H1, 9, HTML, "")})),
    "diff(loaded, same rows sorted)": lambda m: diff(m, Manifest(VALID)),
    "diff(other, loaded)": lambda m: diff(Manifest({"x.html": Entry(H1, 9, HTML, "")}), m),
    "diff(None, loaded)": lambda m: diff(None, m),
}


@pytest.mark.parametrize("keys", ["b/c.css\x00a.html", "a.html\x00a.html", "b/c.css\x00b/c.css"])
@pytest.mark.parametrize("split", list(_SPLITS), ids=list(_SPLITS))
def test_keys_out_of_order_load_and_are_refused_when_first_split(keys: str, split: str) -> None:
    m = Manifest.loads(_gz_json(_v2_doc(keys=keys, etags="e1\x00e2")))
    assert len(m.entries) == 2 and m.total_size == 3 and m.etags  # all without splitting
    assert _unsplit(m)
    with pytest.raises(CorruptManifest, match="manifest keys are not sorted, or repeat"):
        _SPLITS[split](m)
    with pytest.raises(CorruptManifest, match="manifest keys are not sorted, or repeat"):
        _SPLITS[split](m)  # and every time after, not only the first


def test_keys_in_order_split_without_complaint() -> None:
    """The same splits of the valid document do not raise (the refusal above is the order's)."""
    for split in _SPLITS.values():
        m = Manifest.loads(_gz_json(_v2_doc(etags="e1\x00e2")))
        assert _unsplit(m)
        split(m)
        assert not _unsplit(m)  # each of them does split the keys (and so checks their order)
    m = Manifest.loads(_gz_json(_v2_doc()))
    assert list(m.entries) == ["a.html", "b/c.css"] and m.keys == ("a.html", "b/c.css")
    assert m.entries["b/c.css"] == VALID["b/c.css"] and "zz.html" not in m.entries
    assert diff(m, Manifest(VALID)).unchanged == ("a.html", "b/c.css")


# --- reading and writing again: the texts are reused as read ---------------------------------


def _tagged(n: int) -> Manifest:
    entries = {f"p{i:04d}/index.html": Entry(H1 if i % 3 else H2, i, HTML, "max-age=60")
               for i in range(n)}
    etags = {k: f"etag-{i}" for i, k in enumerate(sorted(entries)) if i % 4 != 1}
    return Manifest(entries, target="t", deploy_id="d", tool_version="0.1.0", etags=etags)


@pytest.mark.parametrize("n", [1, 2, 7, 500])
def test_a_format_2_manifest_read_and_dumped_again_gives_the_same_bytes(n: int) -> None:
    data = _tagged(n).dumps()
    back = Manifest.loads(data)
    assert isinstance(back.etags, Etags)
    assert back.dumps() == data
    assert back.to_json_bytes() == gzip.decompress(data)
    # The keys' and the ETags' texts were written as read: neither was split on the way.
    assert _unsplit(back) and back.etags._map is None
    # Dumped again once split (the ETags written from the mapping), still the same bytes.
    assert dict(back.etags) and list(back.entries)
    assert back.replace(etags=dict(back.etags)).dumps() == data


def test_the_etags_read_lazily_are_the_known_etags_of_the_keys() -> None:
    m = _tagged(9)
    known = dict(m.etags)
    assert len(known) == 7 and set(known) < set(m.entries)
    back = Manifest.loads(m.dumps())
    lazy = back.etags
    assert isinstance(lazy, Etags) and lazy._map is None
    assert bool(lazy) is True and lazy._map is None  # known to be non-empty without reading
    assert lazy == known and dict(lazy) == known and len(lazy) == len(known)
    assert list(lazy) == sorted(known)  # in key order
    for key in m.entries:
        assert lazy.get(key) == known.get(key) and (key in lazy) == (key in known)
    assert "p0001/index.html" not in lazy  # an unknown ETag ("") is no ETag
    assert lazy["p0000/index.html"] == "etag-0" and lazy["p0008/index.html"] == "etag-8"
    with pytest.raises(KeyError):
        lazy["p0001/index.html"]
    with pytest.raises(KeyError):
        lazy["not/a/key.html"]
    # Every ETag unknown: an empty mapping, false, and not written.
    blank = Manifest.loads(_gz_json(_v2_doc(etags="\x00")))
    assert isinstance(blank.etags, Etags) and blank.etags == {} and not blank.etags
    assert "etags" not in json.loads(blank.to_json_bytes())
    assert blank.dumps() == Manifest.loads(_gz_json(_v2_doc())).dumps()


# --- property: loads accepts a set of keys exactly when each key is valid ---------------------

@settings(max_examples=300)
@given(keys=st.lists(_tricky_key, min_size=1, max_size=4, unique=True))
def test_columns_accept_a_set_of_keys_exactly_when_each_key_is_valid(keys: list[str]) -> None:
    keys = sorted(keys)
    n = len(keys)
    doc = _v2_doc(keys=_nul(*keys), hashes=H1 * n, sizes=[1] * n, header_of=[0] * n)
    if all(_key_ok(k) for k in keys):  # (a valid key holds no NUL: the text splits back)
        m = Manifest.loads(_gz_json(doc))
        assert list(m.entries) == keys and m.keys == tuple(keys)
    else:
        with pytest.raises(CorruptManifest):
            Manifest.loads(_gz_json(doc))


@settings(max_examples=200)
@given(keys=st.lists(st.sampled_from(["a", "b.html", "c/d", "c/d.css", "é", "z"]),
                     min_size=1, max_size=5))
def test_valid_keys_in_any_order_load_and_split_exactly_when_sorted_and_unique(
    keys: list[str]
) -> None:
    n = len(keys)
    doc = _v2_doc(keys=_nul(*keys), hashes=H1 * n, sizes=[1] * n, header_of=[0] * n)
    m = Manifest.loads(_gz_json(doc))  # loads, whatever the order
    assert len(m.entries) == n
    if keys == sorted(set(keys)):
        assert list(m.entries) == keys
    else:
        with pytest.raises(CorruptManifest, match="keys are not sorted, or repeat"):
            list(m.entries)


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
