"""diff(old, new): four disjoint sorted groups, header-only changes, first deploys."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Diff, Entry, Manifest, diff
from manifests.columns import KeyList

HA = "a" * 32
HB = "b" * 32
HTML = "text/html; charset=utf-8"
CC = "max-age=60"


def _e(h: str = HA, size: int = 10, ctype: str = HTML, cc: str = CC) -> Entry:
    return Entry(h, size, ctype, cc)


BASE = {"index.html": _e(), "css/site.css": _e(HB, 20, "text/css"), "about.html": _e(HB, 5)}


def _with(**changes: Entry | None) -> Manifest:
    """BASE with entries replaced or removed (None); in names, '__' is '/' and '_' is '.'."""
    entries = dict(BASE)
    for k, v in changes.items():
        key = k.replace("__", "/").replace("_", ".")
        if v is None:
            entries.pop(key, None)
        else:
            entries[key] = v
    return Manifest(entries)


@pytest.mark.parametrize(
    ("old", "new", "expected"),
    [
        pytest.param(
            # First deploy: nothing stored yet, every file of the build is added.
            None,
            Manifest(BASE),
            Diff(("about.html", "css/site.css", "index.html"), (), (), ()),
            id="first-deploy",
        ),
        pytest.param(
            # First deploy of an empty build: nothing at all.
            None,
            Manifest({}),
            Diff((), (), (), ()),
            id="first-deploy-empty",
        ),
        pytest.param(
            # Same build again: everything unchanged.
            Manifest(BASE),
            Manifest(dict(BASE)),
            Diff((), (), (), ("about.html", "css/site.css", "index.html")),
            id="identical",
        ),
        pytest.param(
            # New content (same size, different hash): modified, not header-only.
            Manifest(BASE),
            _with(index_html=_e(HB)),
            Diff((), ("index.html",), (), ("about.html", "css/site.css")),
            id="content-hash-change",
        ),
        pytest.param(
            # Same hash but a different size (cannot happen for real files, but the
            # content is not "the same"): modified, not header-only.
            Manifest(BASE),
            _with(index_html=_e(size=11)),
            Diff((), ("index.html",), (), ("about.html", "css/site.css")),
            id="size-change",
        ),
        pytest.param(
            # Content-Type fixed (text/plain -> text/html): modified and header-only.
            Manifest(BASE),
            _with(index_html=_e(ctype="text/plain")),
            Diff((), ("index.html",), (), ("about.html", "css/site.css"), {"index.html"}),
            id="content-type-change",
        ),
        pytest.param(
            # Cache-Control changed: modified and header-only.
            Manifest(BASE),
            _with(about_html=_e(HB, 5, cc="no-cache")),
            Diff((), ("about.html",), (), ("css/site.css", "index.html"), {"about.html"}),
            id="cache-control-change",
        ),
        pytest.param(
            # Content and headers both changed: modified, not header-only.
            Manifest(BASE),
            _with(index_html=_e(HB, 99, ctype="text/plain", cc="no-store")),
            Diff((), ("index.html",), (), ("about.html", "css/site.css")),
            id="content-and-header-change",
        ),
        pytest.param(
            # A file removed from the build: deleted.
            Manifest(BASE),
            _with(about_html=None),
            Diff((), (), ("about.html",), ("css/site.css", "index.html")),
            id="deletion",
        ),
        pytest.param(
            # Everything removed: all deleted.
            Manifest(BASE),
            Manifest({}),
            Diff((), (), ("about.html", "css/site.css", "index.html"), ()),
            id="delete-everything",
        ),
        pytest.param(
            # A file renamed: the old key deleted, the new one added.
            Manifest(BASE),
            _with(about_html=None, about__index_html=_e(HB, 5)),
            Diff(("about/index.html",), (), ("about.html",), ("css/site.css", "index.html")),
            id="rename",
        ),
        pytest.param(
            # Everything at once, with keys in a non-sorted insertion order.
            Manifest(BASE),
            Manifest(
                {
                    "z.js": _e(),
                    "index.html": _e(HB),
                    "css/site.css": _e(HB, 20, "text/css", "no-cache"),
                    "a.js": _e(),
                }
            ),
            Diff(
                ("a.js", "z.js"),
                ("css/site.css", "index.html"),
                ("about.html",),
                (),
                frozenset({"css/site.css"}),
            ),
            id="mixed",
        ),
    ],
)
def test_diff_case_table(old: Manifest | None, new: Manifest, expected: Diff) -> None:
    assert diff(old, new) == expected


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        (None, Manifest({}), False),  # first deploy of nothing: nothing to do
        (None, Manifest(BASE), True),  # first deploy: uploads
        (Manifest(BASE), Manifest(BASE), False),  # same build
        (Manifest(BASE), _with(index_html=_e(cc="no-cache")), True),  # header-only change
        (Manifest(BASE), _with(index_html=None), True),  # deletion only
    ],
)
def test_changed_is_true_when_anything_is_added_modified_or_deleted(
    old: Manifest | None, new: Manifest, changed: bool
) -> None:
    assert diff(old, new).changed is changed


def test_metadata_alone_is_not_a_change() -> None:
    old = Manifest(BASE, target="t", deploy_id="1", tool_version="0.1")
    new = Manifest(BASE, target="t", deploy_id="2", previous_deploy_id="1", tool_version="0.2")
    d = diff(old, new)
    assert not d.changed and d.unchanged == old.keys


# --- properties ------------------------------------------------------------------------------

# A small key and value space, so that old and new overlap and collide often.
_keys = st.sampled_from(["index.html", "a.html", "a/b.html", "a-b.html", "css/x.css", "Z", "é"])
_entries = st.builds(
    Entry,
    st.sampled_from([HA, HB]),
    st.sampled_from([0, 10]),
    st.sampled_from(["text/html", "text/css"]),
    st.sampled_from(["max-age=60", "no-cache"]),
)
_manifests = st.dictionaries(_keys, _entries, max_size=7).map(Manifest)


@settings(max_examples=300)
@given(old=st.none() | _manifests, new=_manifests)
def test_diff_groups_partition_old_and_new_keys(old: Manifest | None, new: Manifest) -> None:
    d = diff(old, new)
    old_keys = set(old.entries) if old is not None else set()
    new_keys = set(new.entries)
    groups = [d.added, d.modified, d.deleted, d.unchanged]
    for g in groups:
        # Tuples; the unchanged keys of a build equal to its manifest: a KeyList, a sequence
        # equal to their tuple that keeps them one text until asked for.
        assert isinstance(g, tuple) or (g is d.unchanged and isinstance(g, KeyList))
        assert g == tuple(g) and list(g) == sorted(g)
        assert len(set(g)) == len(g)
    union: set[str] = set()
    for g in groups:
        assert union.isdisjoint(g)
        union |= set(g)
    assert union == old_keys | new_keys
    assert set(d.added) == new_keys - old_keys
    assert set(d.deleted) == old_keys - new_keys
    assert d.changed == bool(d.added or d.modified or d.deleted)


@settings(max_examples=300)
@given(old=_manifests, new=_manifests)
def test_diff_modified_and_unchanged_compare_entries(old: Manifest, new: Manifest) -> None:
    d = diff(old, new)
    for k in d.unchanged:
        assert old.entries[k] == new.entries[k]
    for k in d.modified:
        assert old.entries[k] != new.entries[k]
    assert d.header_only <= set(d.modified)
    for k in d.modified:
        same = old.entries[k].same_content(new.entries[k])
        assert (k in d.header_only) == same
        if same:
            assert not old.entries[k].same_headers(new.entries[k])


@settings(max_examples=200)
@given(m=_manifests)
def test_diff_of_a_manifest_with_itself_has_only_unchanged(m: Manifest) -> None:
    d = diff(m, m)
    assert d == Diff((), (), (), m.keys)
    assert not d.changed


@settings(max_examples=200)
@given(m=_manifests)
def test_first_deploy_adds_every_key(m: Manifest) -> None:
    d = diff(None, m)
    assert d == Diff(m.keys, (), (), ())
    assert d.changed == bool(m.entries)


@settings(max_examples=200)
@given(old=_manifests, new=_manifests)
def test_diff_backwards_swaps_added_and_deleted(old: Manifest, new: Manifest) -> None:
    forward, backward = diff(old, new), diff(new, old)
    assert forward.added == backward.deleted
    assert forward.deleted == backward.added
    assert forward.modified == backward.modified
    assert forward.unchanged == backward.unchanged
    assert forward.header_only == backward.header_only


def test_a_build_equal_to_its_manifest_keeps_its_keys_one_text():
    # A plan with nothing to deploy only counts the unchanged keys: they are not split into
    # a list of a million strings.
    old = Manifest.loads(Manifest(BASE).dumps())
    new = Manifest.loads(Manifest(dict(BASE)).dumps())
    d = diff(old, new)
    assert len(d.unchanged) == 3 and new.columns._names is None and old.columns._names is None
    assert d.unchanged == ("about.html", "css/site.css", "index.html")
    assert d == Diff((), (), (), ("about.html", "css/site.css", "index.html"))
