import pytest

from planner.core.headers import (
    DEFAULT_CACHE_CONTROL,
    content_type,
    headers_for,
    is_page,
)


@pytest.mark.parametrize(
    "key, expected",
    [
        ("index.html", "text/html; charset=utf-8"),
        ("a/b.HTM", "text/html; charset=utf-8"),  # extension is case-insensitive
        ("style.css", "text/css; charset=utf-8"),
        ("app.js", "text/javascript; charset=utf-8"),
        ("mod.mjs", "text/javascript; charset=utf-8"),
        ("data.json", "application/json"),
        ("logo.svg", "image/svg+xml"),
        ("wasm/app.wasm", "application/wasm"),
        ("site.webmanifest", "application/manifest+json"),
        ("sitemap.xml", "application/xml"),
        ("fonts/x.woff2", "font/woff2"),
        ("fonts/x.woff", "font/woff"),
        ("fonts/x.ttf", "font/ttf"),
        ("img/a.png", "image/png"),
        ("img/a.jpeg", "image/jpeg"),
        ("img/a.webp", "image/webp"),
        ("img/a.avif", "image/avif"),
        ("favicon.ico", "image/x-icon"),
        ("CNAME", "application/octet-stream"),  # no extension: sane default
        ("archive.unknownext", "application/octet-stream"),
    ],
)
def test_content_type_by_extension(key, expected):
    assert content_type(key) == expected


def test_headers_for_uses_the_given_cache_control():
    assert headers_for("no-cache")("a.css") == ("text/css; charset=utf-8", "no-cache", "")
    assert headers_for()("a.css")[1] == DEFAULT_CACHE_CONTROL


@pytest.mark.parametrize(
    "ctype, page",
    [
        ("text/html; charset=utf-8", True),
        ("application/xml", True),
        ("application/rss+xml", True),
        ("text/css; charset=utf-8", False),
        ("image/svg+xml", False),  # an image, even though it is XML
        ("application/json", False),
    ],
)
def test_pages_are_html_and_xml(ctype, page):
    assert is_page(ctype) is page
