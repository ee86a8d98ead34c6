import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from planner.core.urls import (
    MAX_PATH_CHARS,
    covers,
    encode_path,
    key_urls,
    normalise_url_prefix,
    repair_batch,
    repair_path,
    urls_of,
    valid_path,
)


@pytest.mark.parametrize(
    "key, prefix, expected",
    [
        ("a/b.css", "/", ("/a/b.css",)),  # plain asset: one URL
        ("index.html", "/", ("/", "/index.html")),  # root index: both forms
        ("dir/index.html", "/", ("/dir/", "/dir/index.html")),  # pretty URL: both forms
        ("dir/notindex.html", "/", ("/dir/notindex.html",)),  # only exactly index.html
        ("myindex.html", "/", ("/myindex.html",)),  # suffix is not enough
        ("a.css", "/docs/", ("/docs/a.css",)),  # URL prefix
        ("index.html", "/docs/", ("/docs/", "/docs/index.html")),
        ("caf\u00e9 menu.html", "/", ("/caf%C3%A9%20menu.html",)),  # non-ASCII, space
        ("100%.html", "/", ("/100%25.html",)),  # literal percent sign
        ("a*b.js", "/", ("/a%2Ab.js",)),  # a literal * must not become a wildcard
        ("what?.html", "/", ("/what%3F.html",)),  # '?' would start a query
        ("x#y.html", "/", ("/x%23y.html",)),  # '#' would start a fragment
        ("~user/a{b}.txt", "/", ("/%7Euser/a%7Bb%7D.txt",)),  # RFC 1738 unsafe
        ("a+b=c&d,e;f:g@h!$'().txt", "/", ("/a+b=c&d,e;f:g@h!$'().txt",)),  # left alone
    ],
)
def test_key_urls(key, prefix, expected):
    assert key_urls(key, prefix) == expected


@pytest.mark.parametrize(
    "raw, expected",
    [("/", "/"), ("", "/"), ("docs", "/docs/"), ("/docs/", "/docs/"), ("a/b", "/a/b/")],
)
def test_url_prefix_is_normalised(raw, expected):
    assert normalise_url_prefix(raw) == expected


def test_urls_of_deduplicates_and_sorts():
    assert urls_of(["b.css", "index.html", "a/index.html", "b.css"]) == [
        "/",
        "/a/",
        "/a/index.html",
        "/b.css",
        "/index.html",
    ]


@given(st.text(min_size=1, max_size=40))
def test_encoded_path_is_printable_ascii_without_wildcard_or_unsafe(text):
    encoded = encode_path("/" + text)
    assert encoded.isascii()
    assert "*" not in encoded and "?" not in encoded and " " not in encoded
    assert all(0x21 <= ord(c) < 0x7F for c in encoded)


@given(st.text(min_size=1, max_size=40))
def test_encoding_round_trips_through_percent_decoding(text):
    from urllib.parse import unquote

    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "ignore") or "x"
    assert unquote(encode_path("/" + text), errors="strict") == "/" + text


# --- repairing invalidation batches (a pending record CloudFront refuses for good) ------------

PATH_TEXT = st.text(st.sampled_from("ab/%*? é\\#~1F"), max_size=30)


@pytest.mark.parametrize(
    "path, repaired",
    [
        ("/a b.html", "/a%20b.html"),  # a raw space
        ("a.html", "/a.html"),  # no leading '/'
        ("/js/*.js", "/js/*"),  # '*' inside: a wildcard from there
        ("/ok%20x", "/ok%20x"),  # a valid escape is kept
        ("/p%zz", "/p%25zz"),  # '%' that is not an escape
        ("/é", "/%C3%A9"),  # non-ASCII, as UTF-8
        ("/" + "a" * 5000, "/" + "a" * (MAX_PATH_CHARS - 2) + "*"),  # too long: a wildcard
        ("/" + "é" * 2000, "/" + "%C3%A9" * 666 + "*"),  # never cut inside an escape
    ],
)
def test_repair_path(path, repaired):
    assert repair_path(path) == repaired and valid_path(repaired)


@given(PATH_TEXT)
def test_a_repaired_path_is_valid_and_a_valid_one_is_left_as_it_is(path):
    fixed = repair_path(path)
    assert valid_path(fixed)
    if valid_path(path):
        assert fixed == path


@settings(max_examples=200)
@given(st.lists(PATH_TEXT, max_size=40), st.integers(0, 16), st.integers(0, 40))
def test_a_repaired_batch_is_within_the_limits_and_covers_every_valid_path(paths, wild, files):
    fixed = repair_batch(paths, wild, files)
    wildcards = sum(p.endswith("*") for p in fixed)
    assert fixed == ("/*",) or (wildcards <= wild and len(fixed) - wildcards <= files)
    assert all(valid_path(p) for p in fixed)
    for path in paths:
        if valid_path(path) and not path.endswith("*"):
            assert any(covers(p, path) for p in fixed), (path, fixed)
