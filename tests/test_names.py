"""File names and special files: what the scan refuses (before anything remote is touched),
what it deploys, and what the manifest loader reads back.

The scan (writer side) refuses a backslash, control characters, U+FFFE/U+FFFF, names that
are not UTF-8, keys over 1,024 bytes with the target's prefix, and anything in the build that
is neither a file nor a folder. The loader (reader side) is more lenient: a backslash key an
earlier version committed is read back, and the next deploy deletes and invalidates it.

Units here; the CLI against moto and on the local backend at the end. The refusals through
``deploy`` with a snapshot of the whole account are rows of test_bad_input.py's REFUSED table.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any, Callable

import pytest
import xxhash
from e2e_helpers import (
    SITE,
    history,
    inv_paths,
    invalidations,
    manifest,
    nested_key,
    one_line_error,
    run,
    run_json,
    site_objects,
    write_site,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import (
    DEFAULT_EXCLUDES,
    Entry,
    LocalStore,
    Manifest,
    S3Store,
    ScanError,
    scan,
)
from manifests.scan import MAX_KEY_BYTES, name_problem, quote_name, walk
from manifests.stores import MANIFEST_NAME, commit_manifest, load_manifest

UTF8_FS = sys.getfilesystemencoding() == "utf-8"
BACKSLASH_KEY = "a\\b.html"  # the file name a\b.html
BACKSLASH_URL = "/a%5Cb.html"
HTML = "text/html; charset=utf-8"


def _headers(key: str) -> tuple[str, str, str]:
    return "t", "c", ""


def _write(root: Path, rel: str, data: bytes = b"<p>x</p>\n") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _raw_file(folder: Path, name: bytes) -> None:
    """A file whose name is these bytes (maybe not UTF-8)."""
    fd = os.open(os.path.join(os.fsencode(folder), name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    """``fn()`` in a thread; fail instead of hanging (opening a FIFO would block forever)."""
    box: dict[str, Any] = {}

    def go() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised below, in the test's thread
            box["error"] = exc

    t = threading.Thread(target=go, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"did not finish within {seconds}s"
    if "error" in box:
        raise box["error"]
    return box["value"]


# --- the rule, name by name ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("a\\b.html", "backslash"),  # a Windows-style separator inside a name
        ("\\", "backslash"),  # a backslash alone
        ("docs\\", "backslash"),  # at the end
        ("a\tb.html", "control character"),  # tab: browsers drop it from URLs
        ("a\nb.html", "control character"),  # line feed: would split a log line
        ("a\rb.html", "control character"),  # CR: read back as LF in S3's XML requests
        ("\x01", "control character"),  # C0 control XML 1.0 cannot hold at all
        ("bell\x07.html", "control character"),  # BEL: rings a terminal showing the plan
        ("esc\x1b[31m.html", "control character"),  # ESC: a terminal escape sequence
        ("del\x7f.html", "control character"),  # DEL
        ("nel\x85.html", "control character"),  # C1 control (NEL), Unicode category Cc too
        ("a\ufffe.html", "U+FFFE or U+FFFF"),  # not a character to XML 1.0
        ("a\uffff.html", "U+FFFE or U+FFFF"),  # nor this one
        ("caf\udce9.html", "not valid UTF-8"),  # os.fsdecode of the Latin-1 byte 0xE9
        ("\udcff\udcfe", "not valid UTF-8"),  # only bytes that are not UTF-8
        ("a\\\udce9", "not valid UTF-8"),  # both: the encoding is named first
    ],
)
def test_name_problem_refuses(name: str, problem: str) -> None:
    assert problem in (name_problem(name) or "")


@pytest.mark.parametrize(
    "name",
    [
        "index.html",  # plain
        "my page.html",  # space: %20 in the invalidation
        "100%.html",  # percent: %25
        "a*b?.html",  # star and question mark: %2A, %3F
        "issue#12.html",  # hash: %23
        "{x}|^~[]`.txt",  # the other RFC 1738 unsafe characters: encoded, not refused
        "café.html",  # non-ASCII letter
        "日本語.html",  # non-Latin script
        "😀.png",  # outside the BMP
        "nb\u00a0sp.html",  # no-break space: not printable to Python, but a valid key
        "zero\u200bwidth.html",  # zero-width space (Cf, not Cc)
        "...",  # three dots: an ordinary name
        ".well-known",  # a leading dot
        "a" * 255,  # NAME_MAX
    ],
)
def test_name_problem_accepts(name: str) -> None:
    assert name_problem(name) is None


@settings(max_examples=500)
@given(st.text(min_size=1, max_size=12))
def test_every_refused_name_is_caught_by_the_walks_quick_test(name: str) -> None:
    # The walk calls name_problem only for names with a backslash or not printable: that
    # shortcut must never let a refused name through.
    if name_problem(name) is not None:
        assert "\\" in name or not name.isprintable()


@pytest.mark.parametrize(
    ("rel", "shown"),
    [
        ("a\\b.html", "'a\\\\b.html'"),  # backslash doubled, as repr() does
        ("a\nb.html", "'a\\nb.html'"),  # no line break in a one-line message
        ("esc\x1b.html", "'esc\\x1b.html'"),  # no escape sequence reaches the terminal
        ("caf\udce9.html", "'caf\\xe9.html'"),  # the byte that is not UTF-8, as a byte
        ("it's.html", "'it\\'s.html'"),  # the quote is escaped, so the name ends where it ends
        ("docs/café menu.html", "'docs/café menu.html'"),  # printable: as it is
    ],
)
def test_quote_name_is_one_printable_utf8_line(rel: str, shown: str) -> None:
    text = quote_name(rel)
    assert text == shown
    assert text.isprintable() and text.encode("utf-8")


# --- the walk: every way of scanning ---------------------------------------------------------


def _walk(root: Path) -> Any:
    return walk(str(root))


def _scan_serial(root: Path) -> Any:
    return scan(str(root), _headers, workers=1)


def _scan_threads(root: Path) -> Any:
    return scan(str(root), _headers, workers=2)


SCANS = [
    pytest.param(_walk, id="walk"),  # the path list (planner paths --universe)
    pytest.param(_scan_serial, id="scan-serial"),  # one worker
    pytest.param(_scan_threads, id="scan-workers"),  # several (threads: pytest runs threads)
]


def _refused(scan_fn: Callable[[Path], Any], root: Path) -> str:
    with pytest.raises(ScanError) as info:
        _within(10, lambda: scan_fn(root))
    message = str(info.value)
    assert "\n" not in message and message.isprintable(), message
    message.encode("utf-8")
    return message


@pytest.mark.parametrize("scan_fn", SCANS)
@pytest.mark.parametrize(
    ("rel", "fragment"),
    [
        # A backslash in a page's name.
        ("a\\b.html", "file 'a\\\\b.html' has a backslash"),
        # In a folder's name: the folder is named, whatever it holds.
        ("docs\\v1/index.html", "folder 'docs\\\\v1' has a backslash"),
        # A tab, deep down: the whole relative path is named.
        ("blog/2024/a\tb.html", "file 'blog/2024/a\\tb.html' has a control character"),
        # A line feed: still one line.
        ("notes\n.txt", "file 'notes\\n.txt' has a control character"),
        # DEL.
        ("x\x7f.css", "file 'x\\x7f.css' has a control character"),
        # U+FFFF.
        ("img/\uffff.png", "file 'img/\\uffff.png' has U+FFFE or U+FFFF"),
    ],
)
def test_odd_name_is_refused_by_every_scan(
    tmp_path: Path, scan_fn: Callable[[Path], Any], rel: str, fragment: str
) -> None:
    _write(tmp_path, "index.html")
    _write(tmp_path, rel)
    message = _refused(scan_fn, tmp_path)
    assert fragment in message, message
    assert message.endswith("rename it, or leave it out with --exclude"), message


@pytest.mark.skipif(not UTF8_FS, reason="needs a UTF-8 file system")
@pytest.mark.parametrize("scan_fn", SCANS)
def test_name_that_is_not_utf8_is_refused_showing_the_byte(
    tmp_path: Path, scan_fn: Callable[[Path], Any]
) -> None:
    _write(tmp_path, "index.html")
    _raw_file(tmp_path, b"caf\xe9.html")  # Latin-1 e-acute
    message = _refused(scan_fn, tmp_path)
    assert "file 'caf\\xe9.html' is not valid UTF-8" in message, message


def test_excluded_odd_names_are_left_out_not_refused(tmp_path: Path) -> None:
    # What the refusal says to do works: --exclude (by name, or by path).
    _write(tmp_path, "index.html")
    _write(tmp_path, "a\\b.html")
    _write(tmp_path, "tmp\x01/x.html")
    os.mkfifo(tmp_path / "pipe")
    excludes = DEFAULT_EXCLUDES + ("a\\b.html", "/tmp\x01", "pipe")
    assert list(scan(str(tmp_path), _headers, excludes=excludes, workers=1)) == ["index.html"]


def test_odd_names_under_default_excludes_are_never_looked_at(tmp_path: Path) -> None:
    # .git is not deployed: whatever it holds cannot stop a deploy.
    _write(tmp_path, "index.html")
    _write(tmp_path, ".git/refs/a\\b")
    os.mkfifo(tmp_path / ".git" / "fsmonitor")
    assert list(scan(str(tmp_path), _headers, workers=1)) == ["index.html"]


# --- keys over S3's 1,024 bytes, counted with the target's prefix ---------------------------


@pytest.mark.parametrize(
    ("size", "prefix", "ok"),
    [
        (MAX_KEY_BYTES, "", True),  # at the limit, no prefix
        (MAX_KEY_BYTES + 1, "", False),  # one byte over
        (MAX_KEY_BYTES - 5, "site/", True),  # at the limit with the prefix
        (MAX_KEY_BYTES - 4, "site/", False),  # over only because of the prefix
        (MAX_KEY_BYTES - 5, "café/", False),  # the prefix counts in UTF-8 bytes (6, not 5)
    ],
)
def test_key_limit_counts_the_target_prefix(
    tmp_path: Path, size: int, prefix: str, ok: bool
) -> None:
    key = nested_key(size)
    _write(tmp_path, key)
    if ok:
        assert list(scan(str(tmp_path), _headers, workers=1, key_prefix=prefix)) == [key]
        return
    with pytest.raises(ScanError) as info:
        scan(str(tmp_path), _headers, workers=1, key_prefix=prefix)
    message = str(info.value)
    total = size + len(prefix.encode())
    assert f"makes a key of {total:,} bytes" in message and "1024-byte key limit" in message
    assert (f"with the prefix {quote_name(prefix)}" in message) == bool(prefix), message


def test_key_limit_counts_utf8_bytes_of_the_key(tmp_path: Path) -> None:
    key = nested_key(1026, "é")  # fewer than 1,024 characters
    assert len(key) < MAX_KEY_BYTES
    _write(tmp_path, key)
    with pytest.raises(ScanError, match="makes a key of 1,026 bytes"):
        scan(str(tmp_path), _headers, workers=1)


# --- special files ---------------------------------------------------------------------------


def _fifo(path: Path) -> None:
    os.mkfifo(path)


def _socket(path: Path) -> None:
    # Bound by a relative name: an absolute tmp_path may exceed sun_path's 108 bytes.
    here = os.getcwd()
    os.chdir(path.parent)
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path.name)
        s.close()  # the socket file stays
    finally:
        os.chdir(here)


def _device(kind: int, major: int, minor: int) -> Callable[[Path], None]:
    def make(path: Path) -> None:
        try:
            os.mknod(path, kind | 0o600, os.makedev(major, minor))
        except PermissionError:
            pytest.skip("cannot make device nodes here (needs CAP_MKNOD)")

    return make


SPECIAL = [
    pytest.param(_fifo, "a FIFO (named pipe)", id="fifo"),
    pytest.param(_socket, "a socket", id="socket"),
    pytest.param(_device(stat.S_IFCHR, 1, 3), "a character device", id="char-device"),  # null
    pytest.param(_device(stat.S_IFBLK, 7, 0), "a block device", id="block-device"),  # loop0
]


@pytest.mark.parametrize("scan_fn", SCANS)
@pytest.mark.parametrize(("make", "kind"), SPECIAL)
def test_special_file_where_a_page_was_is_refused_by_name(
    tmp_path: Path, scan_fn: Callable[[Path], Any], make: Callable[[Path], None], kind: str
) -> None:
    _write(tmp_path, "index.html")
    (tmp_path / "about").mkdir()
    make(tmp_path / "about" / "index.html")
    message = _refused(scan_fn, tmp_path)
    assert message.startswith(f"'about/index.html' is {kind}, not a file"), message
    assert "--exclude" in message


@pytest.mark.parametrize("scan_fn", SCANS)
def test_symlink_to_a_fifo_inside_is_refused_by_name(
    tmp_path: Path, scan_fn: Callable[[Path], Any]
) -> None:
    # Symlinks are followed inside the build as before; what they reach must be a file or a
    # folder, like anything else.
    _write(tmp_path, "index.html")
    os.mkfifo(tmp_path / "pipe.fifo")
    os.symlink("pipe.fifo", tmp_path / "feed.xml")
    message = _refused(scan_fn, tmp_path)
    # The walk order decides which of the two is met first; either is named.
    assert message.startswith(
        ("'feed.xml' is a symlink to a FIFO (named pipe)", "'pipe.fifo' is a FIFO (named pipe)")
    ), message


HELPER_SCAN = """
import json, os, sys
scan_mod = __import__("manifests.scan", fromlist=["scan"])
started = []
class Counted(scan_mod.Helpers):
    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        started.append(self.workers)
scan_mod.Helpers = Counted
scan_mod.PROCESS_MIN_FILES = 10
try:
    scan_mod.scan(sys.argv[1], lambda k: ("t", "c", ""), workers=2)
    error = None
except scan_mod.ScanError as exc:
    error = str(exc)
print(json.dumps({"helpers": sum(started), "error": error}))
"""


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda zz: _write(zz, "a\\b.html"), "file 'zz/a\\\\b.html' has a backslash"),
        (lambda zz: _write(zz, "page\x0b.html"), "file 'zz/page\\x0b.html' has a control"),
        (lambda zz: _fifo(zz / "index.html"), "'zz/index.html' is a FIFO (named pipe)"),
    ],
    ids=["backslash", "control-character", "fifo"],
)
def test_refused_while_forked_helpers_already_hash(
    tmp_path: Path, make: Callable[[Path], None], fragment: str
) -> None:
    # In a fresh interpreter: forking needs a single-threaded process (pytest may not be).
    # The helpers start once the walk has found PROCESS_MIN_FILES (10) files: here after the
    # top folder, so the odd entry, in a folder below, is met while they hash. They are
    # stopped, and the error raised.
    for i in range(120):
        _write(tmp_path, f"f{i}.html" if i < 20 else f"d{i % 4}/f{i}.html")
    (tmp_path / "zz").mkdir()
    make(tmp_path / "zz")
    out = subprocess.run(
        [sys.executable, "-c", HELPER_SCAN, str(tmp_path)],
        capture_output=True, text=True, timeout=60, check=True,
    )
    doc = json.loads(out.stdout)
    assert doc["helpers"] >= 1, doc  # the helper path really ran
    assert doc["error"] is not None and fragment in doc["error"], doc


# --- the loader reads back what an earlier version committed ---------------------------------


def _with_entry(m: Manifest, key: str, data: bytes, etag: str = "") -> Manifest:
    entries = dict(m.entries)
    entries[key] = Entry(xxhash.xxh3_128_hexdigest(data), len(data), HTML,
                         "public, max-age=60, s-maxage=86400")
    etags = dict(m.etags)
    if etag:
        etags[key] = etag
    return m.replace(entries=entries, etags=etags)


def test_manifest_with_a_backslash_key_round_trips() -> None:
    m = _with_entry(Manifest({}, target="s3://b"), BACKSLASH_KEY, b"x")
    back = Manifest.loads(m.dumps())
    assert back == m and back.keys == (BACKSLASH_KEY,)


# --- the CLI against moto --------------------------------------------------------------------


def _covers(paths: list[str], url: str) -> bool:
    return any(p == url or (p.endswith("*") and url.startswith(p[:-1])) for p in paths)


def _as_an_earlier_version(moto: Any, site: Any, data: bytes, key: str = BACKSLASH_KEY) -> None:
    """What an earlier version left after deploying a build with ``a\\b.html``: the object,
    and the manifest (with its ETag) committed through the store API."""
    put = moto.s3.put_object(Bucket=site.bucket, Key=key, Body=data,
                             ContentType=HTML, CacheControl="public, max-age=60, s-maxage=86400")
    store = S3Store(moto.s3, site.bucket)
    m, version = load_manifest(store, site.target())
    commit_manifest(store, _with_entry(m, key, data, put["ETag"].strip('"')), version)


@pytest.mark.parametrize("key, url", [
    (BACKSLASH_KEY, BACKSLASH_URL),
    # A control character: DeleteObjects (XML) cannot carry it, so it is deleted on its own.
    ("a\x01b.html", "/a%01b.html"),
])
def test_target_with_a_key_the_scan_now_refuses_is_verified_planned_and_deployed_again(
    moto: Any, site: Any, tmp_path: Path, key: str, url: str
) -> None:
    public = write_site(tmp_path / "public")
    target = site.target()
    dist = ["--distribution", site.distribution_id]
    run_json(["deploy", str(public), "--target", target, *dist], moto.env, moto.cwd)
    _as_an_earlier_version(moto, site, b"<p>old</p>\n", key)
    assert key in manifest(moto.s3, site.bucket).entries
    before = len(invalidations(moto.cloudfront, site.distribution_id))

    # verify: the target matches its manifest, backslash key included.
    doc = run_json(["verify", "--target", target], moto.env, moto.cwd)
    assert doc["clean"] is True, doc

    # plan, then deploy (the build has no a\b.html): the object goes, its URL is invalidated.
    plan = run_json(["plan", str(public), "--target", target, *dist], moto.env, moto.cwd)
    assert plan["deletes"] == [{"key": key}]
    # One removed page and free paths to spare: its own path, percent-encoded.
    assert plan["invalidation"]["paths"] == [url], plan["invalidation"]
    done = run_json(["deploy", str(public), "--target", target, *dist], moto.env, moto.cwd)
    assert done["invalidation"]["paths"] == plan["invalidation"]["paths"]

    assert sorted(site_objects(moto.s3, site.bucket)) == sorted(SITE)
    if "\x01" not in key:  # (moto's ListObjectVersions fails on a control character)
        assert ("delete", key) in {(kind, k) for kind, k, _ in history(moto.s3, site.bucket)}
    assert key not in manifest(moto.s3, site.bucket).entries
    invs = invalidations(moto.cloudfront, site.distribution_id)
    assert len(invs) == before + 1
    newest = max(invs, key=lambda i: i["CreateTime"])
    assert inv_paths(newest) == [url]

    # And the target is an ordinary one again: nothing left to do.
    again = run_json(["plan", str(public), "--target", target, *dist], moto.env, moto.cwd)
    assert again["deletes"] == [] and again["uploads"] == []


def test_build_with_a_backslash_file_is_refused_and_nothing_is_written(
    moto: Any, site: Any, tmp_path: Path
) -> None:
    # A first deploy: no manifest, no object, no invalidation may appear.
    public = write_site(tmp_path / "public", {**SITE, BACKSLASH_KEY: "<p>x</p>\n"})
    proc = run(["deploy", str(public), "--target", site.target(), "--distribution",
                site.distribution_id], moto.env, moto.cwd)
    line = one_line_error(proc)
    assert proc.returncode == 1
    assert line == ("Error: file 'a\\\\b.html' has a backslash, which browsers turn into '/' in "
                    "URLs; rename it, or leave it out with --exclude"), line
    assert history(moto.s3, site.bucket) == []
    assert invalidations(moto.cloudfront, site.distribution_id) == []


# --- the CLI on the local backend ------------------------------------------------------------


def _local_json(*args: str) -> dict[str, Any]:
    proc = run([*args, "--format", "json"], {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.e2e
def test_local_target_with_a_backslash_key_deploys_again_and_logs_its_invalidation(
    tmp_path: Path,
) -> None:
    public = write_site(tmp_path / "public")
    out = tmp_path / "out"
    _local_json("deploy", str(public), "--target", str(out))
    # An earlier version's deploy of a\b.html: the file, and the manifest through the store.
    (out / BACKSLASH_KEY).write_bytes(b"<p>old</p>\n")
    store = LocalStore(str(out))
    m, version = load_manifest(store, f"file://{out}")
    commit_manifest(store, _with_entry(m, BACKSLASH_KEY, b"<p>old</p>\n"), version)

    doc = _local_json("deploy", str(public), "--target", str(out))

    assert doc["deletes"] == [{"key": BACKSLASH_KEY}]
    assert not (out / BACKSLASH_KEY).exists()
    assert BACKSLASH_KEY not in Manifest.loads(store.read(MANIFEST_NAME)[0]).entries
    logged = [json.loads(line) for line in
              (out / ".planner" / "invalidations.jsonl").read_text().splitlines()]
    assert _covers(logged[-1]["paths"], BACKSLASH_URL), logged[-1]


def _instead_of_a_page(build: Path, make: Callable[[Path], None]) -> None:
    page = build / "about" / "index.html"
    page.unlink()
    make(page)


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (lambda p: _write(p, "a\\b.html"), "file 'a\\\\b.html' has a backslash"),
        (lambda p: _write(p, "docs/line\nbreak.html"), "file 'docs/line\\nbreak.html'"),
        (lambda p: _instead_of_a_page(p, _fifo), "'about/index.html' is a FIFO (named pipe)"),
        (lambda p: _instead_of_a_page(p, _socket), "'about/index.html' is a socket"),
    ],
    ids=["backslash", "line-feed", "fifo-where-a-page-was", "socket-where-a-page-was"],
)
def test_local_deploy_refuses_in_one_line_and_leaves_the_target_alone(
    tmp_path: Path, make: Callable[[Path], None], fragment: str
) -> None:
    public = write_site(tmp_path / "public")
    out = tmp_path / "out"
    _local_json("deploy", str(public), "--target", str(out))
    before = {p: p.read_bytes() for p in out.rglob("*") if p.is_file()}
    make(public)

    proc = run(["deploy", str(public), "--target", str(out)], dict(os.environ))

    assert proc.returncode == 1, proc.stderr
    assert fragment in one_line_error(proc)
    assert {p: p.read_bytes() for p in out.rglob("*") if p.is_file()} == before
    assert (out / "about" / "index.html").read_bytes() == SITE["about/index.html"].encode()
