import pytest
from hypothesis import given
from hypothesis import strategies as st

from planner.urls import encode_path, key_urls, normalise_url_prefix, urls_of


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
