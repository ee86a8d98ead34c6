"""Pre-compressed files: header rules with ``content-encoding = "gzip" | "br"``.

The manifest records the encoding (an optional fifth element of an entry) beside the hash and
size of the built file; uploads send the compressed bytes of exactly the bytes hashed, with
Content-Encoding; verify checks encoded objects for presence only, and repair re-uploads them
compressed. The pure pieces first, then the CLI on the local backend, then against moto."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import brotli
import pytest
import xxhash
from e2e_helpers import (
    one_line_error,
    put_counts,
    run,
    run_json,
    site_objects,
    write_site,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import FORMAT_VERSION, CorruptManifest, Entry, Manifest, diff
from manifests.model import _fast_entries, _new_entry
from planner.cli import config
from planner.cli.config import ConfigError
from planner.core.drift import Drift, compare
from planner.core.headers import (
    DEFAULT_CACHE_CONTROL,
    IMMUTABLE_CACHE_CONTROL,
    HeaderRule,
    compress,
    headers_for,
)
from planner.plan.compute import Options, deploy_id_for
from planner.verify import DRIFT_EXIT

H1 = "0123456789abcdef0123456789abcdef"
H2 = "fedcba9876543210fedcba9876543210"
HTML = "text/html; charset=utf-8"
CSS = "text/css; charset=utf-8"
JS = "text/javascript; charset=utf-8"
DEF = DEFAULT_CACHE_CONTROL
IMM = IMMUTABLE_CACHE_CONTROL


def _decode(data: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(data)
    if encoding == "br":
        return brotli.decompress(data)
    assert encoding == ""
    return data


# --- the manifest ----------------------------------------------------------------------------


def _gz_json(doc: Any) -> bytes:
    return gzip.compress(json.dumps(doc).encode())


def _v1_doc(entries: dict[str, Any]) -> dict[str, Any]:
    """A manifest of format 1, where an entry is [hash, size, type, cache(, encoding)]: no
    longer written, still read (manifests written before format 2 exist)."""
    return {
        "format_version": 1,
        "tool_version": "0.1.0",
        "target": "t",
        "deploy_id": "d",
        "previous_deploy_id": None,
        "entries": entries,
    }


def _plain() -> dict[str, Entry]:
    return {
        "index.html": Entry(H1, 120, HTML, "max-age=60"),
        "css/site.css": Entry(H2, 3400, CSS, "no-cache"),
    }


def _encoded() -> dict[str, Entry]:
    return {
        "index.html": Entry(H1, 120, HTML, "max-age=60"),
        "css/site.css": Entry(H2, 3400, CSS, "no-cache", "gzip"),
        "js/app.js": Entry(H1, 77, JS, "no-cache", "br"),
    }


def test_entry_without_encoding_is_the_four_field_entry():
    e = Entry(H1, 1, HTML, "cc")
    assert e.content_encoding == ""
    assert e == Entry(H1, 1, HTML, "cc", "")
    assert _new_entry(H1, 1, HTML, "cc") == e
    assert _new_entry(H1, 1, HTML, "cc", "br") == Entry(H1, 1, HTML, "cc", "br")


def test_an_encoding_change_is_a_header_change():
    before, after = Entry(H1, 1, CSS, "cc"), Entry(H1, 1, CSS, "cc", "gzip")
    assert before != after and after != Entry(H1, 1, CSS, "cc", "br")
    assert before.same_content(after)
    assert not before.same_headers(after)
    d = diff(Manifest({"a.css": before, "b.css": before}), Manifest({"a.css": after, "b.css": before}))
    assert d.modified == ("a.css",) and d.header_only == {"a.css"} and d.unchanged == ("b.css",)


def _rows(m: Manifest) -> list[list[Any]]:
    """The deploy-id input of ``m``, parsed: one [key, hash, size, type, cache(, enc)] row per key."""
    return json.loads(m.content_digest_input())


def test_round_trip_with_encodings_writes_them_in_the_header_rows():
    m = Manifest(_encoded(), target="t", deploy_id="d", tool_version="0.1.0")
    doc = json.loads(gzip.decompress(m.dumps()))
    assert doc["keys"] == "css/site.css\x00index.html\x00js/app.js"
    assert doc["hashes"] == H2 + H1 + H1 and doc["sizes"] == [3400, 120, 77]
    assert doc["headers"] == [
        [CSS, "no-cache", "gzip"],
        [HTML, "max-age=60", ""],
        [JS, "no-cache", "br"],
    ]
    assert doc["header_of"] == [0, 1, 2]
    # The deploy id's input keeps format 1's rows: a fifth element only when set.
    assert _rows(m) == [
        ["css/site.css", H2, 3400, CSS, "no-cache", "gzip"],
        ["index.html", H1, 120, HTML, "max-age=60"],
        ["js/app.js", H1, 77, JS, "no-cache", "br"],
    ]
    back = Manifest.loads(m.dumps())
    assert back == m and back.dumps() == m.dumps()
    assert {k: e.content_encoding for k, e in back.entries.items()} == {
        "css/site.css": "gzip", "index.html": "", "js/app.js": "br"
    }


def test_a_site_without_encodings_keeps_its_deploy_id_input_and_its_old_manifest_reads():
    # The deploy id of a site without encodings is the one the tool made before encodings
    # (and before format 2) existed: its input is byte for byte format 1's entry rows (this
    # id was computed by that version).
    m = Manifest(_plain(), target="file:///srv/site", deploy_id="abc", tool_version="0.1.0")
    assert m.content_digest_input() == (
        b'[["css/site.css","fedcba9876543210fedcba9876543210",3400,"text/css; charset=utf-8",'
        b'"no-cache"],["index.html","0123456789abcdef0123456789abcdef",120,'
        b'"text/html; charset=utf-8","max-age=60"]]'
    )
    assert deploy_id_for("prev", "file:///srv/site", m) == "a8e19bb3502ab97606a4"
    # The manifest that version wrote (format 1, these bytes) reads as the same manifest...
    v1 = (
        b'{"format_version":1,"tool_version":"0.1.0","target":"file:///srv/site",'
        b'"deploy_id":"abc","previous_deploy_id":null,"entries":{"css/site.css":'
        b'["fedcba9876543210fedcba9876543210",3400,"text/css; charset=utf-8","no-cache"],'
        b'"index.html":["0123456789abcdef0123456789abcdef",120,"text/html; charset=utf-8",'
        b'"max-age=60"]}}'
    )
    old = Manifest.loads(gzip.compress(v1))
    assert old.format_version == 1
    assert old.replace(format_version=FORMAT_VERSION) == m
    assert old.entries == _plain() and old.content_digest_input() == m.content_digest_input()
    assert deploy_id_for("prev", "file:///srv/site", old) == "a8e19bb3502ab97606a4"
    # ...and is written again as format 2, as a new one is.
    assert old.dumps() == m.dumps()
    assert json.loads(old.to_json_bytes())["format_version"] == FORMAT_VERSION == 2


def test_an_encoding_changes_the_deploy_id():
    plain = Manifest(_plain())
    entries = dict(_plain())
    entries["css/site.css"] = Entry(H2, 3400, CSS, "no-cache", "gzip")
    ids = {deploy_id_for(None, "t", Manifest(e)) for e in (_plain(), entries)}
    assert len(ids) == 2
    assert b'"gzip"' in Manifest(entries).content_digest_input()
    assert b"gzip" not in plain.content_digest_input()


def test_old_four_element_manifests_load_unchanged_through_the_fast_path():
    raw = {"index.html": [H1, 10, HTML, "max-age=60"], "a.css": [H2, 3, CSS, "x"]}
    fast = _fast_entries(raw)
    assert fast == {"index.html": Entry(H1, 10, HTML, "max-age=60"), "a.css": Entry(H2, 3, CSS, "x")}
    m = Manifest.loads(_gz_json(_v1_doc(raw)))
    assert dict(m.entries) == fast
    assert all(e.content_encoding == "" for e in m.entries.values())


def test_five_element_entries_fall_back_to_the_careful_loop():
    raw = {"index.html": [H1, 10, HTML, "cc"], "a.css": [H2, 3, CSS, "x", "br"]}
    assert _fast_entries(raw) is None
    m = Manifest.loads(_gz_json(_v1_doc(raw)))
    assert m.entries["a.css"] == Entry(H2, 3, CSS, "x", "br")
    assert m.entries["index.html"] == Entry(H1, 10, HTML, "cc")


def test_an_empty_fifth_element_means_no_encoding():
    m = Manifest.loads(_gz_json(_v1_doc({"a.css": [H2, 3, CSS, "x", ""]})))
    assert m.entries["a.css"] == Entry(H2, 3, CSS, "x")
    assert json.loads(gzip.decompress(m.dumps()))["headers"] == [[CSS, "x", ""]]
    assert _rows(m) == [["a.css", H2, 3, CSS, "x"]]  # no fifth element in the deploy id's input


@pytest.mark.parametrize(
    "value, message",
    [
        ([H1, 3, CSS, "x", "deflate"], "unknown content encoding 'deflate'"),
        ([H1, 3, CSS, "x", "GZIP"], "unknown content encoding 'GZIP'"),
        ([H1, 3, CSS, "x", "identity"], "unknown content encoding 'identity'"),
        ([H1, 3, CSS, "x", 1], "unknown content encoding 1"),
        ([H1, 3, CSS, "x", None], "unknown content encoding None"),
        ([H1, 3, CSS, "x", ["gzip"]], "unknown content encoding"),
        ([H1, 3, CSS, "x", "gzip", "extra"], "malformed"),
        ([H1, 3, CSS], "malformed"),
        ([], "malformed"),
        ({"hash": H1}, "malformed"),
        ("abcd", "malformed"),
        ([H1, "3", CSS, "x", "gzip"], "malformed"),
        ([H1, 3, CSS, None, "br"], "malformed"),
    ],
)
def test_bad_entries_and_encodings_are_refused(value, message):
    with pytest.raises(CorruptManifest, match=message):
        Manifest.loads(_gz_json(_v1_doc({"index.html": [H1, 1, HTML, "cc"], "a.css": value})))


_hash = st.text("0123456789abcdef", min_size=32, max_size=32)
_text = st.text(st.characters(blacklist_categories=("Cs",)), max_size=12)
_entry = st.builds(Entry, _hash, st.integers(0, 2**53), _text, _text, st.sampled_from(["", "gzip", "br"]))
_key = st.text("abcxyz/._-", min_size=1, max_size=12).filter(
    lambda k: all(p not in ("", ".", "..") for p in k.split("/")) and not k.startswith(".planner")
)


@settings(max_examples=150)
@given(entries=st.dictionaries(_key, _entry, max_size=10))
def test_any_manifest_with_encodings_round_trips_byte_for_byte(entries):
    m = Manifest(entries, "t", "d", None, "v")
    back = Manifest.loads(m.dumps())
    assert back == m and back.dumps() == m.dumps()
    doc = json.loads(m.to_json_bytes())
    keys = doc["keys"].split("\x00") if doc["keys"] else []
    assert keys == sorted(entries)
    for i, key in enumerate(keys):
        e = entries[key]
        assert doc["headers"][doc["header_of"][i]] == [
            e.content_type, e.cache_control, e.content_encoding
        ]
    # distinct header rows, numbered by first use in key order
    assert len({tuple(r) for r in doc["headers"]}) == len(doc["headers"])
    assert list(dict.fromkeys(doc["header_of"])) == list(range(len(doc["headers"])))
    # the deploy id's input: a fifth element only when set
    for key, *row in _rows(m):
        e = entries[key]
        assert len(row) == (5 if e.content_encoding else 4)
        assert row[4:] == ([e.content_encoding] if e.content_encoding else [])


# --- headers_for and compress ----------------------------------------------------------------

R_CSS_GZ = HeaderRule("*.css", content_encoding="gzip")
R_JS_BR = HeaderRule("js/**", cache_control="no-cache", content_encoding="br")
R_MIN_NONE = HeaderRule("*.min.css", content_encoding="")  # "identity": stored as built
R_HTML_CC = HeaderRule("*.html", cache_control="no-store")


@pytest.mark.parametrize(
    "rules, key, expected",
    [
        # no rules: no encoding
        ((), "css/site.css", (CSS, DEF, "")),
        # a rule with only content-encoding keeps the type and the cache-control defaults...
        ((R_CSS_GZ,), "css/site.css", (CSS, DEF, "gzip")),
        # ...including the immutable one of a fingerprinted file
        ((R_CSS_GZ,), "css/main-3f9a8b7c12.css", (CSS, IMM, "gzip")),
        ((R_CSS_GZ,), "index.html", (HTML, DEF, "")),
        # a rule setting cache-control and content-encoding
        ((R_JS_BR,), "js/app.js", (JS, "no-cache", "br")),
        ((R_JS_BR,), "lib/js/app.js", (JS, DEF, "")),
        # first match wins: an "identity" rule before a broader gzip rule keeps those as built
        ((R_MIN_NONE, R_CSS_GZ), "css/site.min.css", (CSS, DEF, "")),
        ((R_MIN_NONE, R_CSS_GZ), "css/site.css", (CSS, DEF, "gzip")),
        # ... and a gzip rule before it wins over it
        ((R_CSS_GZ, R_MIN_NONE), "css/site.min.css", (CSS, DEF, "gzip")),
        # a rule without content-encoding matched first: no encoding (rules do not merge)
        ((R_HTML_CC, HeaderRule("*", content_encoding="gzip")), "index.html", (HTML, "no-store", "")),
        ((R_HTML_CC, HeaderRule("*", content_encoding="gzip")), "a.css", (CSS, DEF, "gzip")),
    ],
)
def test_headers_for_with_encoding_rules(rules, key, expected):
    assert headers_for(DEF, rules)(key) == expected


def test_without_rules_headers_for_is_the_plain_default():
    # The default path (no rules) has no rule loop, and remembers headers by file name: the
    # same name in any folder (even one that looks like a fingerprint or has an extension)
    # gets what content_type and is_fingerprinted give for the whole key.
    from planner.core.headers import IMMUTABLE_CACHE_CONTROL, content_type, is_fingerprinted

    h = headers_for(DEF)
    assert h("index.html") == (HTML, DEF, "")
    keys = ["index.html", "a1b2c3d4e5/index.html", "x.css/index.html", "app.3f9a8b7c.js",
            "v1/app.3f9a8b7c.js", "deadbeef12/app.js", "a/.htaccess", ".htaccess", "b/README",
            "app.3f9a8b7c.js/index.html", "img/logo.PNG", "img/x/logo.PNG"]
    for key in keys * 2:  # the second time from what was remembered
        want_cc = IMMUTABLE_CACHE_CONTROL if is_fingerprinted(key) else DEF
        assert h(key) == (content_type(key), want_cc, ""), key


DATA = (b"body { font-family: sans-serif; color: #222; }\n" * 40) + bytes(range(256))


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compress_round_trips_and_is_deterministic(encoding):
    packed = compress(DATA, encoding)
    assert _decode(packed, encoding) == DATA
    assert len(packed) < len(DATA)
    assert compress(DATA, encoding) == packed


def test_gzip_has_no_time_and_no_name_and_level_9():
    packed = compress(DATA, "gzip")
    assert packed[:3] == b"\x1f\x8b\x08"
    assert packed[3] & 0x08 == 0  # FLG.FNAME: no file name
    assert packed[4:8] == b"\x00\x00\x00\x00"  # MTIME 0
    assert packed[8] == 2  # XFL 2: maximum compression
    assert packed == gzip.compress(DATA, compresslevel=9, mtime=0)


def test_brotli_is_the_default_quality_11():
    assert compress(DATA, "br") == brotli.compress(DATA, quality=11)


def test_compress_without_encoding_is_the_data_and_refuses_others():
    assert compress(DATA, "") is DATA
    with pytest.raises(ValueError, match="deflate"):
        compress(DATA, "deflate")


def test_brotli_is_imported_only_when_a_br_file_is_compressed():
    code = (
        "import sys\n"
        "import planner.apply, planner.verify, planner.cli\n"
        "from planner.core.headers import compress, headers_for\n"
        "compress(b'x' * 100, 'gzip')\n"
        "assert 'brotli' not in sys.modules, 'imported early'\n"
        "compress(b'x' * 100, 'br')\n"
        "assert 'brotli' in sys.modules\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_forked_hashing_helpers_record_the_encoding(tmp_path):
    # The scanner's other path (helper processes, for big sites) unpacks headers too.
    for i in range(60):
        (tmp_path / f"f{i:02}.css").write_text(f"a{{}}{i}\n")
        (tmp_path / f"f{i:02}.html").write_text(f"<p>{i}\n")
    code = f"""
import json, sys
import manifests.scan
from planner.core.headers import HeaderRule, headers_for
scan_mod = sys.modules["manifests.scan"]  # the package exports a function of that name
scan_mod.PROCESS_MIN_FILES = 10
h = headers_for("cc", (HeaderRule("*.css", content_encoding="br"),))
forks = []
real_fork = scan_mod.os.fork
def counting_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
scan_mod.os.fork = counting_fork
entries = scan_mod.scan({str(tmp_path)!r}, h, workers=2)
print(json.dumps({{"forks": len(forks),
                  "encodings": {{k: e.content_encoding for k, e in entries.items()}}}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    assert doc["forks"] >= 1  # the helper path really ran
    got = doc["encodings"]
    assert len(got) == 120
    assert all(v == ("br" if k.endswith(".css") else "") for k, v in got.items())


# --- the configuration file ------------------------------------------------------------------


def load_toml(tmp_path: Path, text: str) -> config.Config:
    path = tmp_path / "planner.toml"
    path.write_text(text, encoding="utf-8")
    return config.load(str(path))


@pytest.mark.parametrize(
    "text, expected",
    [
        ('[[headers]]\npattern = "*.css"\ncontent-encoding = "gzip"\n',
         (HeaderRule("*.css", None, None, "gzip"),)),
        ('[[headers]]\npattern = "*.js"\ncontent_encoding = "br"\ncache-control = "x"\n',
         (HeaderRule("*.js", "x", None, "br"),)),
        # identity and "" both mean stored as built (a rule that sets it still counts)
        ('[[headers]]\npattern = "*.min.css"\ncontent-encoding = "identity"\n',
         (HeaderRule("*.min.css", None, None, ""),)),
        ('[[headers]]\npattern = "*.min.css"\ncontent-encoding = ""\n',
         (HeaderRule("*.min.css", None, None, ""),)),
        # without the key: None (the default, no encoding)
        ('[[headers]]\npattern = "*.html"\ncache-control = "x"\n',
         (HeaderRule("*.html", "x", None, None),)),
        # a named target's own list
        ('[targets.prod]\ntarget = "s3://b"\n[[targets.prod.headers]]\npattern = "*.svg"\n'
         'content-encoding = "gzip"\ncontent-type = "image/svg+xml"\n',
         (HeaderRule("*.svg", None, "image/svg+xml", "gzip"),)),
    ],
)
def test_config_content_encoding(tmp_path, text, expected):
    target = "prod" if "targets.prod" in text else None
    assert config.header_rules(load_toml(tmp_path, text), target) == expected


@pytest.mark.parametrize(
    "value, message",
    [
        ('"deflate"', "content-encoding 'deflate' is not one of"),
        ('"GZIP"', "content-encoding 'GZIP' is not one of"),
        ('"gzip, br"', "content-encoding 'gzip, br' is not one of"),
        ('"zstd"', "content-encoding 'zstd' is not one of"),
        ('" gzip"', "content-encoding ' gzip' is not one of"),
        ("1", "are text"),
        ('["gzip"]', "are text"),
        ("true", "are text"),
    ],
)
def test_config_refuses_other_encodings(tmp_path, value, message):
    cfg = load_toml(tmp_path, f'[[headers]]\npattern = "*.css"\ncontent-encoding = {value}\n')
    with pytest.raises(ConfigError, match=message):
        config.header_rules(cfg)


def test_config_misspelled_content_encoding_is_named_with_a_hint(tmp_path):
    cfg = load_toml(tmp_path, '[[headers]]\npattern = "*.css"\ncontent-encodng = "gzip"\n')
    with pytest.raises(ConfigError, match="unknown key 'content-encodng'; did you mean 'content-encoding'"):
        config.header_rules(cfg)


# --- verify: encoded objects are checked for presence only ------------------------------------


def test_compare_ignores_the_size_of_encoded_objects_only():
    from planner.core.adopt import Stored

    m = Manifest(_encoded())

    def sized(listing):
        return {k: Stored(v, "") for k, v in listing.items()}

    listing = {"index.html": 120, "css/site.css": 900, "js/app.js": 41}
    assert compare(m, sized(listing)) == []
    assert compare(m, sized(dict(listing, **{"index.html": 119}))) == [
        Drift("index.html", "size", 120, 119)
    ]
    assert compare(m, sized({"index.html": 120, "js/app.js": 41})) == [
        Drift("css/site.css", "missing", 3400, None)
    ]
    # With the ETag recorded when it was written, an encoded object's content is checked.
    tagged = m.replace(etags={"css/site.css": "a" * 32})
    found = compare(tagged, dict(sized(listing), **{"css/site.css": Stored(900, "b" * 32)}))
    assert [(d.key, d.problem) for d in found] == [("css/site.css", "etag")]


# --- the CLI on the local backend ------------------------------------------------------------

BIG_CSS = "".join(f".c{i} {{ margin: {i % 7}px; padding: {i % 5}px; }}\n" for i in range(4000))
FILES = {
    "index.html": "<!doctype html><h1>Home</h1><link rel=stylesheet href=/css/site.css>\n",
    "about/index.html": "<!doctype html><h1>About us</h1>\n",
    "css/site.css": BIG_CSS,
    "css/site.min.css": "a{b:c}\n",
    "js/app.js": "console.log('hello, compressed world');\n" * 20,
    "img/logo.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n',
}
RULES = """
[[headers]]
pattern = "*.min.css"
content-encoding = "identity"

[[headers]]
pattern = "*.css"
content-encoding = "gzip"

[[headers]]
pattern = "js/**"
cache-control = "public, max-age=600"
content-encoding = "br"
"""
ENCODINGS = {"css/site.css": "gzip", "js/app.js": "br"}  # every other file: none


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.upper().startswith(("AWS_", "PLANNER_", "BOTO_"))}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


class Local:
    def __init__(self, tmp_path: Path) -> None:
        self.public = write_site(tmp_path / "public", FILES)
        self.out = tmp_path / "out"
        self.cwd = tmp_path / "cwd"
        self.cwd.mkdir()
        self.env = _env()

    def configure(self, text: str) -> None:
        (self.cwd / "planner.toml").write_text(text, encoding="utf-8")

    def run(self, *args: str) -> subprocess.CompletedProcess:
        return run(list(args), self.env, str(self.cwd))

    def json(self, *args: str) -> dict:
        return run_json(list(args), self.env, str(self.cwd))

    def deploy(self, *extra: str) -> dict:
        return self.json("deploy", str(self.public), "--target", str(self.out), *extra)

    def manifest(self) -> Manifest:
        return Manifest.loads((self.out / ".planner" / "manifest.json.gz").read_bytes())

    def held(self) -> dict[str, bytes]:
        return _held(self.out)

    def invalidation_log(self) -> list[dict]:
        path = self.out / ".planner" / "invalidations.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _held(out: Path) -> dict[str, bytes]:
    """key -> bytes of every site file in a local target."""
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*")
            if p.is_file() and p.relative_to(out).parts[0] != ".planner"}


@pytest.fixture
def local(tmp_path) -> Local:
    return Local(tmp_path)


def _assert_stored_compressed(held: dict[str, bytes], encodings: dict[str, str]) -> None:
    assert sorted(held) == sorted(FILES)
    for key, text in FILES.items():
        enc = encodings.get(key, "")
        assert _decode(held[key], enc) == text.encode(), key
        assert (held[key] == text.encode()) is (enc == ""), key


@pytest.mark.e2e
def test_local_deploy_stores_compressed_files_and_the_manifest_records_the_encoding(local):
    local.configure(RULES)
    doc = local.deploy()
    assert doc["result"]["uploaded"] == len(FILES)
    held = local.held()
    _assert_stored_compressed(held, ENCODINGS)
    assert held["css/site.css"] == compress(BIG_CSS.encode(), "gzip")
    assert held["js/app.js"] == compress(FILES["js/app.js"].encode(), "br")
    m = local.manifest()
    for key, text in FILES.items():
        e = m.entries[key]
        # hash and size of the built file, whatever is stored
        assert (e.hash, e.size) == (xxhash.xxh3_128_hexdigest(text.encode()), len(text.encode()))
        assert e.content_encoding == ENCODINGS.get(key, ""), key
    assert m.entries["js/app.js"].cache_control == "public, max-age=600"
    # the plan counts the build's bytes
    assert doc["summary"]["added"]["bytes"] == sum(len(t.encode()) for t in FILES.values())

    # Same build, same bytes: a second target gets byte-identical objects.
    again = local.json("deploy", str(local.public), "--target", str(local.out) + "-2")
    assert again["result"]["uploaded"] == len(FILES)
    assert _held(Path(str(local.out) + "-2")) == held

    # Nothing changed: nothing to do.
    plan = local.json("plan", str(local.public), "--target", str(local.out))
    assert plan["uploads"] == [] and plan["invalidation"]["paths"] == []


@pytest.mark.e2e
def test_local_rule_change_reuploads_only_the_affected_files(local):
    local.configure(RULES)
    local.deploy()
    assert local.invalidation_log() == []

    # css: gzip -> br; js: unchanged; svg: none -> gzip
    local.configure(
        RULES.replace('content-encoding = "gzip"', 'content-encoding = "br"')
        + '\n[[headers]]\npattern = "*.svg"\ncontent-encoding = "gzip"\n'
    )
    plan = local.json("plan", str(local.public), "--target", str(local.out))
    assert [(u["key"], u["reason"]) for u in plan["uploads"]] == [
        ("css/site.css", "headers"),
        ("img/logo.svg", "headers"),
    ]
    assert plan["summary"]["modified"]["files"] == 2
    assert plan["summary"]["unchanged"]["files"] == len(FILES) - 2
    doc = local.deploy()
    assert doc["result"]["uploaded"] == 2
    _assert_stored_compressed(local.held(), {"css/site.css": "br", "js/app.js": "br",
                                             "img/logo.svg": "gzip"})
    (record,) = local.invalidation_log()  # what may be cached in its old form is invalidated
    assert record["paths"] == doc["invalidation"]["paths"]
    assert doc["invalidation"]["changed_urls"] == 2

    # Rules removed: the encoded files go back to plain, nothing else moves.
    local.configure("")
    plan = local.json("plan", str(local.public), "--target", str(local.out))
    assert sorted(u["key"] for u in plan["uploads"]) == ["css/site.css", "img/logo.svg", "js/app.js"]
    assert {u["reason"] for u in plan["uploads"]} == {"headers"}
    local.deploy()
    _assert_stored_compressed(local.held(), {})
    assert all(e.content_encoding == "" for e in local.manifest().entries.values())


@pytest.mark.e2e
def test_a_content_change_of_an_encoded_file_is_uploaded_compressed(local):
    local.configure(RULES)
    local.deploy()
    (local.public / "css" / "site.css").write_text(BIG_CSS + ".new { x: y }\n")
    doc = local.deploy()
    assert [(u["key"], u["reason"]) for u in doc["uploads"]] == [("css/site.css", "changed")]
    assert gzip.decompress(local.held()["css/site.css"]) == (BIG_CSS + ".new { x: y }\n").encode()


@pytest.mark.e2e
def test_local_verify_checks_presence_and_repair_restores_compressed(local):
    local.configure(RULES)
    local.deploy()
    ok = local.run("verify", "--target", str(local.out), "--format", "json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads(ok.stdout)["drift"] == []

    (local.out / "css" / "site.css").unlink()
    # No size to compare (the manifest holds the build's), but the ETag written tells.
    (local.out / "js" / "app.js").write_bytes(b"truncated")
    found = local.run("verify", "--target", str(local.out), "--format", "json")
    assert found.returncode == DRIFT_EXIT, found.stderr
    drift = json.loads(found.stdout)["drift"]
    assert [(d["key"], d["problem"], d["target_size"]) for d in drift] == [
        ("css/site.css", "missing", None), ("js/app.js", "etag", len(b"truncated"))]
    fixed = local.run("verify", "--target", str(local.out), "--repair", str(local.public),
                      "--format", "json")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert json.loads(fixed.stdout)["repaired"] == ["css/site.css", "js/app.js"]
    assert local.held()["css/site.css"] == compress(BIG_CSS.encode(), "gzip")
    again = local.run("verify", "--target", str(local.out))
    assert again.returncode == 0, again.stdout


@pytest.mark.e2e
def test_bad_encoding_in_the_config_is_a_one_line_error_and_writes_nothing(local):
    local.configure('[[headers]]\npattern = "*.css"\ncontent-encoding = "deflate"\n')
    proc = local.run("deploy", str(local.public), "--target", str(local.out))
    line = one_line_error(proc)
    assert proc.returncode == 2
    assert "'deflate'" in line and "content-encoding" in line and "planner.toml" in line
    assert not local.out.exists()


@pytest.mark.e2e
def test_saved_plan_round_trips_the_encoding_rules(local):
    local.configure(RULES)
    out_file = local.cwd / "plan.json"
    proc = local.run("plan", str(local.public), "--target", str(local.out), "--out", str(out_file))
    assert proc.returncode == 0, proc.stderr
    saved = json.loads(out_file.read_text())
    assert [r["content_encoding"] for r in saved["options"]["header_rules"]] == ["", "gzip", "br"]
    from planner.plan import saved as saved_mod

    loaded = saved_mod.load(out_file.read_bytes(), str(out_file))
    assert loaded.options.header_rules == (
        HeaderRule("*.min.css", None, None, ""),
        HeaderRule("*.css", None, None, "gzip"),
        HeaderRule("js/**", "public, max-age=600", None, "br"),
    )
    # Applied later with the rules gone from the config file: the saved ones are applied.
    local.configure("")
    proc = local.run("deploy", "--plan", str(out_file))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    _assert_stored_compressed(local.held(), ENCODINGS)


def test_saved_plan_of_an_older_version_without_the_field_is_refused():
    """A plan of format 1 (before checksums, and before content_encoding) is not guessed at:
    refused with a line saying to make it again (planner.plan.saved says why)."""
    from planner.plan import saved as saved_mod

    opts = {"header_rules": [{"pattern": "*.html", "cache_control": "x", "content_type": None}]}
    doc = {"format": saved_mod.FORMAT, "version": 1, "site": "s", "target": "t",
           "deploy_id": "d", "previous_version": None, "journal_version": None, "options": opts,
           "uploads": [], "plan": {"deletes": [], "invalidation": {}}}
    with pytest.raises(saved_mod.BadSavedPlan, match="written by an earlier version of planner"):
        saved_mod.load(json.dumps(doc).encode(), "plan.json")


def test_an_encoded_file_above_the_multipart_threshold_is_sent_whole(tmp_path, monkeypatch):
    """Encoded files always take put_bytes (read, hash checked, compressed), whatever their
    size; a file edited since the scan is refused before anything is sent."""
    from planner import apply as apply_mod
    from planner.backends import LocalBackend
    from planner.backends.targets import parse_target
    from planner.plan.build import build_plan

    monkeypatch.setattr(apply_mod, "MULTIPART_THRESHOLD", 10)
    public = write_site(tmp_path / "public", {"big.css": BIG_CSS, "big.txt": BIG_CSS})
    backend = LocalBackend(parse_target(str(tmp_path / "out")))  # type: ignore[arg-type]
    calls: list[tuple[str, str, str]] = []
    real_bytes, real_stream = backend.put_bytes, backend.put_stream

    def put_bytes(key, data, ctype, cc, enc=""):
        calls.append(("bytes", key, enc))
        real_bytes(key, data, ctype, cc, enc)

    def put_stream(key, stream, ctype, cc):
        calls.append(("stream", key, ""))
        real_stream(key, stream, ctype, cc)

    backend.put_bytes, backend.put_stream = put_bytes, put_stream  # type: ignore[method-assign]
    options = Options(header_rules=(HeaderRule("*.css", content_encoding="gzip"),))
    plan = build_plan(str(public), backend, options, "test")
    apply_mod.apply_plan(plan, backend, workers=1)
    assert sorted(calls) == [("bytes", "big.css", "gzip"), ("stream", "big.txt", "")]
    assert gzip.decompress((tmp_path / "out" / "big.css").read_bytes()) == BIG_CSS.encode()

    # edited after the scan: refused, nothing written
    (public / "big.css").write_text("changed " * 10)
    plan2 = build_plan(str(public), backend, options, "test")
    assert [(u.key, u.content_encoding) for u in plan2.uploads] == [("big.css", "gzip")]
    (public / "big.css").write_text("changed again " * 10)
    from manifests import ScanError

    with pytest.raises(ScanError, match="big.css changed since it was scanned"):
        apply_mod._upload_one(plan2, backend, plan2.uploads[0], lambda: None)
    assert gzip.decompress((tmp_path / "out" / "big.css").read_bytes()) == BIG_CSS.encode()


# --- against the moto server (S3 + CloudFront) -------------------------------------------------

BIG_JS = "".join(f"export const v{i} = {i % 13};\n" for i in range(700_000))  # > 16 MiB


@pytest.fixture
def s3_public(tmp_path) -> Path:
    return write_site(tmp_path / "public", FILES)


def _s3_deploy(moto, site, public: Path, *extra: str) -> dict:
    Path(moto.cwd, "planner.toml").write_text(RULES, encoding="utf-8")
    return run_json(["deploy", str(public), "--target", site.target(), "-d",
                     site.distribution_id, *extra], moto.env, moto.cwd)


def _assert_s3_objects(moto, site, encodings: dict[str, str], files: dict[str, str]) -> None:
    for key, text in files.items():
        obj = moto.s3.get_object(Bucket=site.bucket, Key=key)
        enc = encodings.get(key, "")
        assert obj.get("ContentEncoding", "") == enc, key
        assert _decode(obj["Body"].read(), enc) == text.encode(), key


def test_s3_objects_are_stored_compressed_with_content_encoding(moto, site, s3_public):
    doc = _s3_deploy(moto, site, s3_public)
    assert doc["result"]["uploaded"] == len(FILES)
    _assert_s3_objects(moto, site, ENCODINGS, FILES)
    head = moto.s3.head_object(Bucket=site.bucket, Key="css/site.css")
    assert head["ContentEncoding"] == "gzip"
    assert head["ContentType"] == CSS and head["CacheControl"] == DEF
    assert head["ContentLength"] == len(compress(BIG_CSS.encode(), "gzip"))
    head = moto.s3.head_object(Bucket=site.bucket, Key="js/app.js")
    assert (head["ContentEncoding"], head["ContentType"], head["CacheControl"]) == (
        "br", JS, "public, max-age=600"
    )
    assert "ContentEncoding" not in moto.s3.head_object(Bucket=site.bucket, Key="css/site.min.css")
    sizes = {k: v["Size"] for k, v in site_objects(moto.s3, site.bucket).items()}
    assert sizes["css/site.css"] < len(BIG_CSS)

    # deployed again unchanged: nothing written
    before = put_counts(moto.s3, site.bucket)
    doc = _s3_deploy(moto, site, s3_public)
    assert doc["uploads"] == []
    assert put_counts(moto.s3, site.bucket) == before


def test_s3_verify_finds_no_drift_and_repair_restores_an_encoded_object(moto, site, s3_public):
    _s3_deploy(moto, site, s3_public)
    verify = ["verify", "--target", site.target(), "--format", "json"]
    proc = run(verify, moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["drift"] == []

    for key in ("css/site.css", "js/app.js"):
        moto.s3.delete_object(Bucket=site.bucket, Key=key)
    proc = run(verify, moto.env, moto.cwd)
    assert proc.returncode == DRIFT_EXIT
    assert [(d["key"], d["problem"]) for d in json.loads(proc.stdout)["drift"]] == [
        ("css/site.css", "missing"), ("js/app.js", "missing")
    ]
    proc = run([*verify, "--repair", str(s3_public), "-d", site.distribution_id],
               moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(json.loads(proc.stdout)["repaired"]) == ["css/site.css", "js/app.js"]
    _assert_s3_objects(moto, site, ENCODINGS, FILES)
    head = moto.s3.head_object(Bucket=site.bucket, Key="js/app.js")
    assert head["CacheControl"] == "public, max-age=600"
    proc = run(verify, moto.env, moto.cwd)
    assert proc.returncode == 0 and json.loads(proc.stdout)["drift"] == []


def test_s3_big_encoded_file_is_one_put_of_the_compressed_bytes(moto, site, tmp_path):
    files = dict(FILES, **{"js/big.js": BIG_JS})
    public = write_site(tmp_path / "public", files)
    assert len(BIG_JS) > 16 * 1024 * 1024  # above the multipart threshold
    Path(moto.cwd, "planner.toml").write_text(
        RULES.replace('content-encoding = "br"', 'content-encoding = "gzip"'), encoding="utf-8"
    )
    run_json(["deploy", str(public), "--target", site.target(), "-d", site.distribution_id],
             moto.env, moto.cwd)
    head = moto.s3.head_object(Bucket=site.bucket, Key="js/big.js")
    assert head["ContentEncoding"] == "gzip"
    assert "-" not in head["ETag"]  # a single PutObject, not a multipart upload
    body = moto.s3.get_object(Bucket=site.bucket, Key="js/big.js")["Body"].read()
    assert gzip.decompress(body) == BIG_JS.encode()
