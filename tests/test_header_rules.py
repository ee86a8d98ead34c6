"""Header rules ([[headers]] in the configuration file) and fingerprinted files: the pure
pieces (``is_fingerprinted``, ``headers_for``, ``config.header_rules``) as case tables and
properties, then the real CLI in a subprocess on the local backend (headers read back from the
committed manifest) and against the moto server (headers read back with head_object)."""

from __future__ import annotations

import gzip
import json
import os
import re
from pathlib import Path

import pytest
from e2e_helpers import one_line_error, put_counts, run, run_json, write_site
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from planner.cli import config
from planner.cli.config import ConfigError
from planner.core.headers import (
    CONTENT_TYPES,
    DEFAULT_CACHE_CONTROL,
    DEFAULT_CONTENT_TYPE,
    IMMUTABLE_CACHE_CONTROL,
    HeaderRule,
    content_type,
    headers_for,
    is_fingerprinted,
)

HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
JS = "text/javascript; charset=utf-8"
TXT = "text/plain; charset=utf-8"
IMM = IMMUTABLE_CACHE_CONTROL
DEF = DEFAULT_CACHE_CONTROL


# --- is_fingerprinted ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key, expected",
    [
        # webpack: name.HASH.ext
        ("app.3f9a8b7c.js", True),
        # webpack chunk with a longer hash, in a folder
        ("static/js/main.0a1b2c3d4e5f6a7b.chunk.js", True),
        # name-HASH.ext (Vite / Parcel with hex hashes)
        ("main-3f9a8b7c12.css", True),
        # the hash is the whole name (file-loader [hash].[ext])
        ("0a1b2c3d4e5f.woff2", True),
        # in nested folders: only the file name counts
        ("assets/fonts/0a1b2c3d4e5f.woff2", True),
        # Hugo: name.min.<sha256>.css
        ("css/style.min.5d4c3b2a1f0e9d8c7b6a5f4e3d2c1b0a.css", True),
        # name_HASH.ext (underscore is a separator too)
        ("img/logo_3f9a8b7c.png", True),
        # exactly 8 hex digits is enough
        ("a.1234abcd.js", True),
        # upper-case hex is still a hash (the name is compared case-insensitively)
        ("APP.3F9A8B7C.JS", True),
        # an image is not a page, even an XML one
        ("icons.3f9a8b7c.svg", True),
        # a source map of a hashed bundle is hashed too
        ("app.3f9a8b7c.js.map", True),
        # the hash is followed by another part, not the extension
        ("vendor-3f9a8b7c-legacy.js", True),
        # --- not fingerprinted ---
        # a plain asset
        ("css/site.css", False),
        # a date: all digits
        ("posts/20240101.png", False),
        ("report-20240101.pdf", False),
        # a numeric id: all digits
        ("12345678.png", False),
        # all letters: a word, not a hash
        ("deadbeef.js", False),
        ("cafebabe-facade.css", False),
        # 7 hex digits: too short
        ("app.3f9a8b7.js", False),
        # a hash inside a longer word (no separator before it)
        ("app3f9a8b7c.js", False),
        # a hash inside a longer word (no separator after it)
        ("app.3f9a8b7cz.js", False),
        # hex digits then non-hex letters in the same part
        ("x-3f9a8b7cq1.js", False),
        # Vite's base64-ish hashes (A-Z, g-z) are not hex
        ("index-BhG5s2x9.js", False),
        ("assets/index-D4xYz9Qp.css", False),
        # a hash as the last part with no extension after it has no separator after it
        ("app.3f9a8b7c", False),
        # a hash in a folder name does not make the file fingerprinted
        ("3f9a8b7c12/app.js", False),
        # pages keep their URL: never fingerprinted, whatever their name
        ("a1b2c3d4.html", False),
        ("blog/post-3f9a8b7c12.html", False),
        ("sitemap.3f9a8b7c.xml", False),
        ("feed.3f9a8b7c.rss", False),
        ("A1B2C3D4.HTML", False),
    ],
)
def test_is_fingerprinted(key, expected):
    assert is_fingerprinted(key) is expected


# --- headers_for with rules ------------------------------------------------------------------

R_HTML = HeaderRule("*.html", cache_control="no-cache")
R_ROBOTS = HeaderRule("/robots.txt", cache_control="max-age=3600")
R_ASSETS = HeaderRule("assets/**", cache_control="public, max-age=600")
R_FONTS = HeaderRule("fonts/", content_type="font/x-custom")  # content type only
R_AASA = HeaderRule("/.well-known/apple-app-site-association", content_type="application/json")
R_ALL_TYPE = HeaderRule("*", content_type="application/x-everything")
R_NOT_HTML = HeaderRule("!*.html", cache_control="negated")
R_BLOG = HeaderRule("blog/*.html", cache_control="blog-cc", content_type="text/x-blog")


@pytest.mark.parametrize(
    "rules, key, expected",
    [
        # no rules: the extension's type and the default (or immutable) cache-control
        ((), "index.html", (HTML, DEF)),
        ((), "js/app.3f9a8b7c.js", (JS, IMM)),
        # *.html matches at any depth; a rule with only cache-control keeps the extension type
        ((R_HTML,), "index.html", (HTML, "no-cache")),
        ((R_HTML,), "a/b/c/page.html", (HTML, "no-cache")),
        # ...and only .html: other keys get the defaults
        ((R_HTML,), "page.htm", (HTML, DEF)),
        ((R_HTML,), "css/site.css", (CSS, DEF)),
        # patterns are case-sensitive, as git's on Linux (the type table is not)
        ((R_HTML,), "INDEX.HTML", (HTML, DEF)),
        # a leading slash anchors the pattern at the root
        ((R_ROBOTS,), "robots.txt", (TXT, "max-age=3600")),
        ((R_ROBOTS,), "sub/robots.txt", (TXT, DEF)),
        # a/** is everything below a, at the root only
        ((R_ASSETS,), "assets/a.js", (JS, "public, max-age=600")),
        ((R_ASSETS,), "assets/x/y/z.png", ("image/png", "public, max-age=600")),
        ((R_ASSETS,), "sub/assets/a.js", (JS, DEF)),
        ((R_ASSETS,), "assets.js", (JS, DEF)),
        # a rule's cache-control beats the immutable default of a fingerprinted file
        ((R_ASSETS,), "assets/app.3f9a8b7c.js", (JS, "public, max-age=600")),
        # a directory pattern (trailing slash, no other slash) matches below that folder at
        # any depth; a rule with only content-type keeps the default cache-control...
        ((R_FONTS,), "fonts/a.woff2", ("font/x-custom", DEF)),
        ((R_FONTS,), "theme/fonts/a.woff2", ("font/x-custom", DEF)),
        # ...which is the immutable one for a fingerprinted file
        ((R_FONTS,), "fonts/0a1b2c3d4e5f.woff2", ("font/x-custom", IMM)),
        # ...but not a file named like the folder
        ((R_FONTS,), "fonts", (DEFAULT_CONTENT_TYPE, DEF)),
        ((R_FONTS,), "fonts.css", (CSS, DEF)),
        # a file without an extension gets its type from a rule
        ((R_AASA,), ".well-known/apple-app-site-association", ("application/json", DEF)),
        ((R_AASA,), "x/.well-known/apple-app-site-association", (DEFAULT_CONTENT_TYPE, DEF)),
        # a rule setting both headers
        ((R_BLOG,), "blog/post.html", ("text/x-blog", "blog-cc")),
        ((R_BLOG,), "blog/2024/post.html", (HTML, DEF)),  # * does not cross a slash
        # first match wins: *.html before * ...
        ((R_HTML, R_ALL_TYPE), "index.html", (HTML, "no-cache")),
        ((R_HTML, R_ALL_TYPE), "css/site.css", ("application/x-everything", DEF)),
        # ... and * before *.html: the html rule is never reached (no merging of rules)
        ((R_ALL_TYPE, R_HTML), "index.html", ("application/x-everything", DEF)),
        # the first matching rule wins even when a later one is more specific
        ((R_HTML, R_BLOG), "blog/post.html", (HTML, "no-cache")),
        ((R_BLOG, R_HTML), "blog/post.html", ("text/x-blog", "blog-cc")),
        ((R_BLOG, R_HTML), "about.html", (HTML, "no-cache")),
        # '!' negates: a single-line spec of only a negation includes nothing, so such a rule
        # matches no key at all (neither html nor anything else) - it is not "all but *.html"
        ((R_NOT_HTML,), "index.html", (HTML, DEF)),
        ((R_NOT_HTML,), "css/site.css", (CSS, DEF)),
        ((R_NOT_HTML,), "js/app.3f9a8b7c.js", (JS, IMM)),
    ],
)
def test_headers_for_rules(rules, key, expected):
    # (content type, cache control); none of these rules sets a content encoding
    assert headers_for(DEF, rules)(key) == (*expected, "")


def test_headers_for_rules_fall_back_to_the_given_cache_control():
    headers = headers_for("no-store", (R_HTML,))
    assert headers("index.html") == (HTML, "no-cache", "")
    assert headers("css/site.css") == (CSS, "no-store", "")
    assert headers("css/main-3f9a8b7c12.css") == (CSS, IMM, "")


# --- properties: no rules --------------------------------------------------------------------

_PART = st.one_of(
    st.text(alphabet="0123456789abcdef", min_size=1, max_size=14),
    st.text(alphabet="0123456789abcdefABCDEFxyzgG", min_size=1, max_size=12),
    st.sampled_from(["app", "main", "index", "chunk", "min", "20240101", "12345678", "deadbeef"]),
)
_EXT = st.sampled_from(sorted(CONTENT_TYPES) + [".unknown", "", ".HTML", ".Js", ".XML"])


@st.composite
def keys(draw) -> str:
    folders = draw(st.lists(st.sampled_from(["a", "assets", "3f9a8b7c12", "x.y"]), max_size=2))
    parts = draw(st.lists(_PART, min_size=1, max_size=4))
    seps = draw(st.lists(st.sampled_from("._-"), min_size=len(parts) - 1,
                         max_size=len(parts) - 1))
    name = parts[0] + "".join(s + p for s, p in zip(seps, parts[1:])) + draw(_EXT)
    return "/".join([*folders, name])


def _oracle_fingerprinted(key: str) -> bool:
    """The rule in words: some part of the file name (split at . _ -) other than the last one
    is 8+ hex digits with a letter and a digit; and the file is no page."""
    name = key.rsplit("/", 1)[-1].lower()
    parts = re.split(r"[._-]", name)[:-1]  # a hash must be followed by a separator
    hashed = any(
        len(p) >= 8
        and all(c in "0123456789abcdef" for c in p)
        and any(c.isdigit() for c in p)
        and any(c in "abcdef" for c in p)
        for p in parts
    )
    ext = os.path.splitext(key)[1].lower()
    page = ext in (".html", ".htm", ".xhtml", ".xml", ".rss", ".atom")
    return hashed and not page


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(key=keys(), cc=st.sampled_from([DEF, "no-cache", "public, max-age=5"]))
def test_without_rules_headers_are_the_extension_table_and_immutable_or_default(key, cc):
    ext = os.path.splitext(key)[1].lower()
    expected_type = CONTENT_TYPES.get(ext, DEFAULT_CONTENT_TYPE)
    fingerprinted = _oracle_fingerprinted(key)
    assert is_fingerprinted(key) is fingerprinted
    expected = (expected_type, IMM if fingerprinted else cc, "")
    assert headers_for(cc)(key) == expected
    assert headers_for(cc, ())(key) == expected
    assert content_type(key) == expected_type
    # A rule matching nothing changes nothing.
    assert headers_for(cc, (HeaderRule("/no/such/file", cache_control="x"),))(key) == expected


# --- config.header_rules -----------------------------------------------------------------------


def load_toml(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "planner.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(str(path))


TOP = """
[[headers]]
pattern = "*.html"
cache-control = "no-cache"

[[headers]]
pattern = "fonts/"
content_type = "font/x-custom"
"""
TOP_RULES = (HeaderRule("*.html", "no-cache", None), HeaderRule("fonts/", None, "font/x-custom"))


@pytest.mark.parametrize(
    "text, target, expected",
    [
        # no [[headers]] at all
        ("", None, ()),
        ("[targets.prod]\ntarget = 's3://b'\n", "prod", ()),
        # the top level's rules, in order (keys with _ or -)
        (TOP, None, TOP_RULES),
        # a target without its own list: the top level's
        (TOP + "\n[targets.prod]\ntarget = 's3://b'\n", "prod", TOP_RULES),
        # a target name with no table (a path or URI as --target): the top level's
        (TOP, "./out", TOP_RULES),
        # a target's own list replaces the top level's (no merging)
        (
            TOP
            + "\n[targets.prod]\ntarget = 's3://b'\n[[targets.prod.headers]]\n"
            + "pattern = 'assets/**'\ncache_control = 'immutable-ish'\n",
            "prod",
            (HeaderRule("assets/**", "immutable-ish", None),),
        ),
        # ... and another target still gets the top level's
        (
            TOP
            + "\n[targets.prod]\ntarget = 's3://b'\n[[targets.prod.headers]]\n"
            + "pattern = 'assets/**'\ncache_control = 'x'\n"
            + "[targets.stage]\ntarget = 's3://c'\n",
            "stage",
            TOP_RULES,
        ),
        # an empty list in a target turns the top level's rules off for it
        (TOP + "\n[targets.prod]\ntarget = 's3://b'\nheaders = []\n", "prod", ()),
        # both headers in one rule; inline tables are tables too
        (
            'headers = [{pattern = "/robots.txt", cache-control = "a", content-type = "b"}]\n',
            None,
            (HeaderRule("/robots.txt", "a", "b"),),
        ),
    ],
)
def test_config_header_rules(tmp_path, text, target, expected):
    assert config.header_rules(load_toml(tmp_path, text), target) == expected


def test_config_header_rules_of_no_file():
    assert config.header_rules(config.Config(), None) == ()


def _bad(id_: str, text: str, message: str, target: str | None = None):
    return pytest.param(text, target, message, id=id_)


@pytest.mark.parametrize(
    "text, target, message",
    [
        # bad shapes
        _bad("string", 'headers = "*.html"\n', r"\[\[headers\]\]: expected an array of tables"),
        _bad("list-of-strings", 'headers = ["*.html"]\n', r"expected an array of tables"),
        _bad("one-table", '[headers]\npattern = "*.html"\ncache-control = "x"\n',
             r"expected an array of tables"),
        _bad("number", "headers = 3\n", r"expected an array of tables"),
        # an unknown key, named, with the closest valid one
        _bad("cache_contol", '[[headers]]\npattern = "*.html"\ncache_contol = "x"\n',
             r"unknown key 'cache-contol'; did you mean 'cache-control'\?"),
        _bad("content-typ", '[[headers]]\npattern = "*.html"\ncontent-typ = "x"\n',
             r"unknown key 'content-typ'; did you mean 'content-type'\?"),
        _bad("patern", '[[headers]]\npatern = "*.html"\ncache-control = "x"\n',
             r"unknown key 'patern'; did you mean 'pattern'\?"),
        # ... and without a hint when nothing is close
        _bad("expires", '[[headers]]\npattern = "*.html"\nexpires = "x"\n',
             r"unknown key 'expires'$"),
        # a missing, empty or non-text pattern
        _bad("no-pattern", '[[headers]]\ncache-control = "x"\n', r"every rule needs a pattern"),
        _bad("empty-pattern", '[[headers]]\npattern = ""\ncache-control = "x"\n',
             r"every rule needs a pattern"),
        _bad("number-pattern", '[[headers]]\npattern = 3\ncache-control = "x"\n',
             r"every rule needs a pattern"),
        # non-text headers
        _bad("number-cc", '[[headers]]\npattern = "*.html"\ncache-control = 60\n', r"are text"),
        _bad("list-ct", '[[headers]]\npattern = "*.html"\ncontent-type = ["a"]\n', r"are text"),
        # a rule that sets no header
        _bad("no-header", '[[headers]]\npattern = "*.html"\n', r"rule '\*\.html' sets no header"),
        # the second rule is bad: still an error
        _bad("second-rule",
             '[[headers]]\npattern = "*.html"\ncache-control = "x"\n[[headers]]\npattern = "*.css"\n',
             r"rule '\*\.css' sets no header"),
        # an error in a target's own list names that list
        _bad("target-list",
             "[targets.prod]\ntarget = 's3://b'\n[[targets.prod.headers]]\npattern = '*.css'\n",
             r"\[\[targets\.prod\.headers\]\]: rule '\*\.css' sets no header", "prod"),
        # PRODUCT BUG: an empty header value sets no header either; it is accepted and then
        # silently ignored (`rule.cache_control or default`)
        _bad("empty-cc", '[[headers]]\npattern = "*.html"\ncache-control = ""\n',
             r"cache-control|no header"),
        # PRODUCT BUG: a header value that is no valid HTTP header value (a line break) is
        # accepted; on S3 the deploy then fails half-way, after the assets are uploaded
        _bad("newline-cc", '[[headers]]\npattern = "*.html"\ncache-control = "a\\nb"\n',
             r"cache-control"),
        _bad("cr-ct", '[[headers]]\npattern = "*.html"\ncontent-type = "text/html\\r"\n',
             r"content-type"),
        # PRODUCT BUG: a pattern pathspec cannot compile is accepted here, and the scan
        # crashes on it with a traceback (exit 1)
        _bad("bang-only", '[[headers]]\npattern = "!"\ncache-control = "x"\n', r"pattern"),
        _bad("trailing-backslash", '[[headers]]\npattern = "docs\\\\"\ncache-control = "x"\n',
             r"pattern"),
    ],
)
def test_config_header_rules_errors(tmp_path, text, target, message):
    cfg = load_toml(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        config.header_rules(cfg, target)
    assert info.value.exit_code == 2
    text_of = str(info.value)
    assert text_of.startswith(str(tmp_path / "planner.toml")), text_of
    assert "\n" not in text_of
    assert re.search(message, text_of), text_of


def test_a_bad_rule_of_another_target_does_not_matter(tmp_path):
    cfg = load_toml(
        tmp_path,
        TOP + "\n[targets.stage]\ntarget = 's3://c'\n[[targets.stage.headers]]\npattern = 'x'\n",
    )
    assert config.header_rules(cfg, None) == TOP_RULES
    with pytest.raises(ConfigError):
        config.header_rules(cfg, "stage")


# --- the CLI on the local backend ---------------------------------------------------------------

SITE = {
    "index.html": "<!doctype html><h1>Home</h1>\n",
    "about/index.html": "<!doctype html><h1>About</h1>\n",
    "robots.txt": "User-agent: *\n",
    "sub/robots.txt": "not the robots file\n",
    "assets/app.3f9a8b7c.js": "console.log(1);\n",
    "css/main-3f9a8b7c12.css": "body{}\n",
    "fonts/0a1b2c3d4e5f.woff2": "wOF2",
    ".well-known/apple-app-site-association": '{"applinks": {}}\n',
    "img/logo.svg": "<svg/>\n",
    "js/app.js": "console.log(2);\n",
}

RULES = """
[[headers]]
pattern = "*.html"
cache-control = "public, max-age=0, must-revalidate"

[[headers]]
pattern = "/robots.txt"
cache-control = "public, max-age=3600"

[[headers]]
pattern = "assets/**"
cache-control = "public, max-age=600"

[[headers]]
pattern = "fonts/"
content-type = "font/x-custom"

[[headers]]
pattern = "/.well-known/apple-app-site-association"
content-type = "application/json"
"""

EXPECTED = {
    "index.html": (HTML, "public, max-age=0, must-revalidate"),
    "about/index.html": (HTML, "public, max-age=0, must-revalidate"),
    "robots.txt": (TXT, "public, max-age=3600"),
    "sub/robots.txt": (TXT, DEF),  # /robots.txt is anchored
    "assets/app.3f9a8b7c.js": (JS, "public, max-age=600"),  # the rule beats immutable
    "css/main-3f9a8b7c12.css": (CSS, IMM),  # no rule: fingerprinted
    "fonts/0a1b2c3d4e5f.woff2": ("font/x-custom", IMM),  # type only: keeps immutable
    ".well-known/apple-app-site-association": ("application/json", DEF),
    "img/logo.svg": ("image/svg+xml", DEF),
    "js/app.js": (JS, DEF),
}


class Local:
    """A build folder, a target folder and a working directory holding planner.toml."""

    def __init__(self, tmp_path: Path):
        self.public = write_site(tmp_path / "public", SITE)
        self.out = tmp_path / "out"
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.env = {
            k: v for k, v in os.environ.items() if not k.upper().startswith(("PLANNER_", "AWS_"))
        }
        self.env["PYTHONDONTWRITEBYTECODE"] = "1"

    def configure(self, text: str) -> None:
        (self.cwd / "planner.toml").write_text(text, encoding="utf-8")

    def run(self, *args: str):
        return run(list(args), self.env, str(self.cwd))

    def ok(self, *args: str):
        proc = self.run(*args)
        assert proc.returncode == 0, f"stdout: {proc.stdout}\nstderr: {proc.stderr}"
        return proc

    def json(self, *args: str) -> dict:
        return run_json(list(args), self.env, str(self.cwd))

    def headers(self) -> dict[str, tuple[str, str]]:
        """key -> (Content-Type, Cache-Control) of the committed manifest."""
        with gzip.open(self.out / ".planner" / "manifest.json.gz") as f:
            doc = json.load(f)
        keys = doc["keys"].split("\x00") if doc["keys"] else []  # format 2: columns
        rows = doc["headers"]
        return {k: (rows[h][0], rows[h][1]) for k, h in zip(keys, doc["header_of"])}

    def invalidation_log(self) -> list[dict]:
        path = self.out / ".planner" / "invalidations.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture
def local(tmp_path) -> Local:
    return Local(tmp_path)


@pytest.mark.e2e
def test_cli_deploy_applies_the_rules(local):
    local.configure(RULES)
    doc = local.json("deploy", str(local.public), "--target", str(local.out))
    assert doc["result"]["uploaded"] == len(SITE)
    assert local.headers() == EXPECTED
    # 3 new fingerprinted files, whatever their Cache-Control (a rule may set it)
    assert doc["fingerprinted_new"] == 3
    assert doc["invalidation"]["paths"] == []


@pytest.mark.e2e
def test_cli_a_rule_change_reuploads_and_invalidates_only_files_whose_headers_change(local):
    local.configure(RULES)
    local.ok("deploy", str(local.public), "--target", str(local.out))
    assert local.invalidation_log() == []

    # *.html and assets/** change their cache-control; the others stay.
    local.configure(
        RULES.replace("public, max-age=0, must-revalidate", "no-cache").replace(
            "public, max-age=600", "public, max-age=900"
        )
    )
    plan = local.json("plan", str(local.public), "--target", str(local.out))
    assert plan["uploads"] == [
        # assets first, then pages; a fingerprinted file whose headers change is re-uploaded
        {"key": "assets/app.3f9a8b7c.js", "reason": "headers", "size": 16, "in_place": False},
        {"key": "about/index.html", "reason": "headers", "size": 30, "in_place": False},
        {"key": "index.html", "reason": "headers", "size": 29, "in_place": False},
    ]
    assert plan["summary"]["modified"]["files"] == 3
    assert plan["summary"]["unchanged"]["files"] == len(SITE) - 3
    assert plan["fingerprinted_new"] == 0
    # invalidated as modified: / and /index.html, /about/ and /about/index.html, the asset
    assert plan["invalidation"]["changed_urls"] == 5
    assert sum(c["changed"] for c in plan["invalidation"]["coverage"]) == 5

    doc = local.json("deploy", str(local.public), "--target", str(local.out))
    assert doc["result"]["uploaded"] == 3
    expected = dict(EXPECTED)
    expected["index.html"] = expected["about/index.html"] = (HTML, "no-cache")
    expected["assets/app.3f9a8b7c.js"] = (JS, "public, max-age=900")
    assert local.headers() == expected
    (record,) = local.invalidation_log()
    assert record["paths"] == doc["invalidation"]["paths"] == plan["invalidation"]["paths"]
    assert record["paths"]  # something is invalidated

    # Done: planning again finds nothing.
    again = local.json("plan", str(local.public), "--target", str(local.out))
    assert again["uploads"] == [] and again["invalidation"]["paths"] == []


@pytest.mark.e2e
def test_cli_removing_the_rules_restores_the_defaults(local):
    local.configure(RULES)
    local.ok("deploy", str(local.public), "--target", str(local.out))
    local.configure("")
    plan = local.json("plan", str(local.public), "--target", str(local.out))
    changed = {k for k, v in EXPECTED.items() if v != (content_type(k), IMM if is_fingerprinted(k) else DEF)}
    assert {u["key"] for u in plan["uploads"]} == changed
    assert {u["reason"] for u in plan["uploads"]} == {"headers"}
    local.ok("deploy", str(local.public), "--target", str(local.out))
    assert local.headers() == {k: headers_for()(k)[:2] for k in SITE}


@pytest.mark.e2e
@pytest.mark.parametrize("flag", [(), ("--invalidate-added",)])
def test_cli_new_fingerprinted_file_is_immutable_and_never_invalidated(local, flag):
    local.configure(RULES)
    local.ok("deploy", str(local.public), "--target", str(local.out))
    write_site(local.public, {"js/vendor.1a2b3c4d.js": "v;\n", "js/extra.js": "e;\n"})

    plan = local.json("plan", str(local.public), "--target", str(local.out), *flag)
    assert sorted((u["key"], u["reason"]) for u in plan["uploads"]) == [
        ("js/extra.js", "new"),
        ("js/vendor.1a2b3c4d.js", "new"),
    ]
    assert plan["fingerprinted_new"] == 1
    # only the non-fingerprinted new file, and only with --invalidate-added
    assert plan["invalidation"]["changed_urls"] == (1 if flag else 0)
    if flag:  # the text plan says so too
        text = local.ok("plan", str(local.public), "--target", str(local.out), *flag).stdout
        assert (
            "1 new fingerprinted file (a content hash in the name: never requested before) needs no "
            "invalidation" in text
        )

    doc = local.json("deploy", str(local.public), "--target", str(local.out), *flag)
    assert doc["fingerprinted_new"] == 1
    headers = local.headers()
    assert headers["js/vendor.1a2b3c4d.js"] == (JS, IMM)
    assert headers["js/extra.js"] == (JS, DEF)
    log = local.invalidation_log()
    if flag:
        (record,) = log
        assert record["paths"] in (["/js/extra.js"], ["/js/*"])
    else:
        assert log == []


@pytest.mark.e2e
def test_cli_only_fingerprinted_new_files_with_invalidate_added_invalidate_nothing(local):
    local.ok("deploy", str(local.public), "--target", str(local.out))
    write_site(local.public, {"js/chunk-9f8e7d6c5b.js": "c;\n", "img/hero.0a1b2c3d.png": "p"})
    text = local.ok(
        "plan", str(local.public), "--target", str(local.out), "--invalidate-added"
    ).stdout
    assert "2 new fingerprinted files" in text and "need no invalidation" in text
    assert "nothing to invalidate" in text
    doc = local.json("deploy", str(local.public), "--target", str(local.out), "--invalidate-added")
    assert doc["fingerprinted_new"] == 2 and doc["invalidation"]["paths"] == []
    assert local.invalidation_log() == []
    headers = local.headers()
    assert headers["js/chunk-9f8e7d6c5b.js"][1] == headers["img/hero.0a1b2c3d.png"][1] == IMM
    # the next plan does not mention them any more
    again = local.ok("plan", str(local.public), "--target", str(local.out)).stdout
    assert "new fingerprinted" not in again


@pytest.mark.e2e
def test_cli_named_target_rules_replace_the_top_level(local, tmp_path):
    stage = tmp_path / "stage"
    local.configure(
        RULES
        + f"\n[targets.prod]\ntarget = {json.dumps(str(local.out))}\n"
        + f"\n[targets.stage]\ntarget = {json.dumps(str(stage))}\n"
        + "[[targets.stage.headers]]\npattern = '*'\ncache-control = 'no-store'\n"
    )
    local.ok("deploy", str(local.public), "--target", "prod")
    assert local.headers() == EXPECTED  # prod has no list: the top level's
    local.ok("deploy", str(local.public), "--target", "stage")
    local.out = stage
    assert local.headers() == {k: (content_type(k), "no-store") for k in SITE}


@pytest.mark.e2e
def test_cli_saved_plan_keeps_its_rules(local, tmp_path):
    local.configure(RULES)
    saved = tmp_path / "plan.json"
    local.ok("plan", str(local.public), "--target", str(local.out), "--out", str(saved))
    (local.cwd / "planner.toml").unlink()  # the deploy reads the rules from the saved plan
    local.ok("deploy", "--plan", str(saved))
    assert local.headers() == EXPECTED


@pytest.mark.e2e
@pytest.mark.parametrize(
    "command, rules, message",
    [
        pytest.param("plan", '[[headers]]\npattern = "*.html"\ncache_contol = "x"\n',
                     "unknown key 'cache-contol'; did you mean 'cache-control'?",
                     id="plan-unknown-key"),
        pytest.param("deploy", '[[headers]]\ncache-control = "x"\n',
                     "every rule needs a pattern", id="deploy-no-pattern"),
        pytest.param("deploy", '[[headers]]\npattern = "*.html"\n', "sets no header",
                     id="deploy-no-header"),
        pytest.param("plan", '[[headers]]\npattern = "*.html"\n', "sets no header",
                     id="plan-no-header"),
        pytest.param("deploy", 'headers = "*.html"\n', "expected an array of tables",
                     id="deploy-bad-shape"),
        # PRODUCT BUG: pathspec rejects this pattern; a traceback (exit 1), not a one-line error
        pytest.param("plan", '[[headers]]\npattern = "!"\ncache-control = "x"\n', "pattern",
                     id="plan-bad-pattern"),
        pytest.param("deploy", '[[headers]]\npattern = "!"\ncache-control = "x"\n', "pattern",
                     id="deploy-bad-pattern"),
        # PRODUCT BUG: not a valid header value; accepted (on S3 the deploy fails half-way)
        pytest.param("deploy", '[[headers]]\npattern = "*.html"\ncache-control = "a\\nb"\n',
                     "cache-control", id="deploy-newline-in-value"),
    ],
)
def test_cli_bad_rule_exits_2_with_one_line_error(local, command, rules, message):
    local.configure(rules)
    proc = local.run(command, str(local.public), "--target", str(local.out))
    line = one_line_error(proc)
    assert proc.returncode == 2, proc.stderr
    assert message in line
    assert "planner.toml" in line
    assert not local.out.exists()  # nothing written


# --- against the moto server (S3 + CloudFront) -------------------------------------------------


def test_s3_objects_get_the_rules_headers(moto, site, tmp_path):
    public = write_site(tmp_path / "public", SITE)
    Path(moto.cwd, "planner.toml").write_text(RULES, encoding="utf-8")
    args = ["deploy", str(public), "--target", site.target(), "--distribution",
            site.distribution_id]
    doc = run_json(args, moto.env, moto.cwd)
    assert doc["result"]["uploaded"] == len(SITE)
    for key, (ctype, cc) in EXPECTED.items():
        head = moto.s3.head_object(Bucket=site.bucket, Key=key)
        assert (head["ContentType"], head["CacheControl"]) == (ctype, cc), key

    # a rule change: only the html pages are written again, and invalidated
    Path(moto.cwd, "planner.toml").write_text(
        RULES.replace("public, max-age=0, must-revalidate", "no-cache"), encoding="utf-8"
    )
    before = put_counts(moto.s3, site.bucket)
    doc = run_json(args, moto.env, moto.cwd)
    after = put_counts(moto.s3, site.bucket)
    rewritten = {k for k in after if after[k] != before.get(k) and not k.startswith(".planner/")}
    assert rewritten == {"index.html", "about/index.html"}
    assert [u["reason"] for u in doc["uploads"]] == ["headers", "headers"]
    head = moto.s3.head_object(Bucket=site.bucket, Key="index.html")
    assert (head["ContentType"], head["CacheControl"]) == (HTML, "no-cache")
    (inv,) = doc["result"]["invalidations"]
    assert doc["invalidation"]["changed_urls"] == 4
