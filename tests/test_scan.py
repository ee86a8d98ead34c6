"""Scanning a build folder: hashing (xxh3-128, streamed), walking, excludes, symlinks, errors."""

from __future__ import annotations

import os
import random
import stat
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path
from typing import Any, Callable

import pytest
import xxhash
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from manifests import DEFAULT_EXCLUDES, Entry, ScanError, scan
from manifests.scan import CHUNK, MAX_KEY_BYTES, FoundFile, hash_file, hash_files, walk

IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
needs_non_root = pytest.mark.skipif(
    IS_ROOT, reason="running as root: chmod 000 does not stop root from reading"
)


# --- helpers ---------------------------------------------------------------------------------


def _write(root: Path, rel: str, data: bytes = b"x") -> Path:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _keys(root: Path, excludes: Any = DEFAULT_EXCLUDES) -> list[str]:
    return [f.key for f in walk(str(root), excludes)]


def _payload(size: int, seed: int = 0) -> bytes:
    return random.Random(seed).randbytes(size)


def _within(seconds: float, fn: Callable[[], Any]) -> Any:
    """Run ``fn`` in a thread; fail (instead of hanging the suite) if it does not finish."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # re-raised in the test's thread
            box["error"] = exc

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"did not finish within {seconds}s (hang?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def _headers(key: str) -> tuple[str, str, str]:
    return ("text/html" if key.endswith(".html") else "application/octet-stream", "max-age=60", "")


# --- hashing ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "size",
    [
        0,  # empty file: the digest of no bytes
        1,  # a single byte
        1000,  # a small page
        CHUNK - 1,  # one byte short of the buffer: the one-shot path
        CHUNK,  # exactly one buffer: the probe read finds EOF after a full buffer
        CHUNK + 1,  # one byte spills into a second read
        3 * CHUNK + 12345,  # several buffers: streaming update path
    ],
    ids=["empty", "one-byte", "small", "chunk-minus-1", "chunk", "chunk-plus-1", "multi-mib"],
)
def test_hash_file_is_xxh3_128_of_the_bytes_with_size(tmp_path: Path, size: int) -> None:
    data = _payload(size, seed=size)
    path = _write(tmp_path, "f.bin", data)
    digest, got_size = hash_file(str(path))
    assert digest == xxhash.xxh3_128_hexdigest(data)
    assert got_size == size
    assert len(digest) == 32 and digest == digest.lower()


def test_hash_file_reuses_a_caller_buffer_across_files(tmp_path: Path) -> None:
    buf = bytearray(CHUNK)
    big = _payload(2 * CHUNK + 7, seed=1)
    small = b"tiny"
    p_big = _write(tmp_path, "big", big)
    p_small = _write(tmp_path, "small", small)
    # The small file must not pick up stale bytes left in the buffer by the big one.
    assert hash_file(str(p_big), buf) == (xxhash.xxh3_128_hexdigest(big), len(big))
    assert hash_file(str(p_small), buf) == (xxhash.xxh3_128_hexdigest(small), len(small))


def test_hash_file_accepts_a_caller_buffer_smaller_than_chunk(tmp_path: Path) -> None:
    data = _payload(100, seed=2)
    path = _write(tmp_path, "f", data)
    assert hash_file(str(path), bytearray(10)) == (xxhash.xxh3_128_hexdigest(data), 100)


def test_hash_file_streams_large_files_in_constant_memory(tmp_path: Path) -> None:
    size = 16 * CHUNK
    data = _payload(size, seed=3)
    path = _write(tmp_path, "large.bin", data)
    expected = xxhash.xxh3_128_hexdigest(data)
    del data
    tracemalloc.start()
    try:
        digest, got = hash_file(str(path))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (digest, got) == (expected, size)
    # One reusable buffer of CHUNK bytes; reading the whole file would need 16 of them.
    assert peak < 3 * CHUNK, f"peak {peak} bytes while hashing a {size}-byte file"


def test_hash_file_reads_in_buffer_sized_pieces(tmp_path: Path, monkeypatch) -> None:
    size = 4 * CHUNK + 3
    data = _payload(size, seed=4)
    path = _write(tmp_path, "large.bin", data)
    requested: list[int] = []
    real_readv = os.readv

    def spy(fd: int, buffers: Any) -> int:
        requested.append(sum(len(memoryview(b)) for b in buffers))
        return real_readv(fd, buffers)

    monkeypatch.setattr(os, "readv", spy)
    assert hash_file(str(path)) == (xxhash.xxh3_128_hexdigest(data), size)
    assert max(requested) <= CHUNK
    assert len(requested) >= 5  # at least ceil(size / CHUNK) reads


def test_file_that_changes_size_while_hashed_is_refused(tmp_path: Path, monkeypatch) -> None:
    path = _write(tmp_path, "growing.js", b"0123456789")
    real_fstat = os.fstat

    class Lying:
        def __init__(self, st: os.stat_result) -> None:
            self._st = st
            self.st_size = st.st_size - 3  # as if the file grew after fstat

        def __getattr__(self, name: str) -> Any:
            return getattr(self._st, name)

    monkeypatch.setattr(os, "fstat", lambda fd: Lying(real_fstat(fd)))
    with pytest.raises(ScanError, match="changed while it was being hashed"):
        hash_file(str(path))


@pytest.mark.parametrize("workers", [1, 2, 3, 16])
def test_hash_files_gives_the_same_results_in_order_for_any_worker_count(
    tmp_path: Path, workers: int
) -> None:
    sizes = [0, 5, CHUNK, CHUNK + 1, 17, 2 * CHUNK + 9, 1, 300]
    datas = [_payload(s, seed=i) for i, s in enumerate(sizes)]
    files = [
        FoundFile(f"f{i}", str(_write(tmp_path, f"f{i}", d))) for i, d in enumerate(datas)
    ]
    expected = [(xxhash.xxh3_128_hexdigest(d), len(d)) for d in datas]
    assert hash_files(files, workers=workers) == expected
    assert hash_files(files, workers=1) == hash_files(files, workers=2)


def test_hash_files_of_nothing_is_empty() -> None:
    assert hash_files([], workers=4) == []


@pytest.mark.parametrize("workers", [1, 2])
def test_file_vanishing_before_hashing_is_a_scan_error_naming_its_key(
    tmp_path: Path, workers: int
) -> None:
    for i in range(6):
        _write(tmp_path, f"page{i}.html", b"<p>%d</p>" % i)
    files = walk(str(tmp_path))
    os.unlink(tmp_path / "page3.html")
    with pytest.raises(ScanError, match=r"cannot read page3\.html"):
        hash_files(files, workers=workers)


def test_unreadable_file_is_a_scan_error_even_when_permissions_are_bypassed(
    tmp_path: Path, monkeypatch
) -> None:
    # Simulates EACCES, so this runs as root too (root ignores chmod 000).
    _write(tmp_path, "ok.html")
    secret = _write(tmp_path, "secret.html")
    real_open = os.open

    def fake_open(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path) == str(secret):
            raise PermissionError(13, "Permission denied", str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", fake_open)
    with pytest.raises(ScanError, match=r"cannot read secret\.html: Permission denied"):
        scan(str(tmp_path), _headers, workers=1)


@needs_non_root
def test_unreadable_file_is_a_scan_error(tmp_path: Path) -> None:
    _write(tmp_path, "ok.html")
    secret = _write(tmp_path, "secret.html")
    secret.chmod(0)
    try:
        with pytest.raises(ScanError, match=r"secret\.html"):
            scan(str(tmp_path), _headers)
    finally:
        secret.chmod(stat.S_IRUSR | stat.S_IWUSR)


@needs_non_root
def test_unreadable_folder_is_a_scan_error(tmp_path: Path) -> None:
    _write(tmp_path, "locked/page.html")
    locked = tmp_path / "locked"
    locked.chmod(0)
    try:
        with pytest.raises(ScanError, match="cannot read folder"):
            walk(str(tmp_path))
    finally:
        locked.chmod(stat.S_IRWXU)


# --- walking ---------------------------------------------------------------------------------


def test_walk_returns_posix_relative_keys_sorted(tmp_path: Path) -> None:
    for rel in ["b.html", "a/b.html", "a-b.html", "a0", "B.css", "é.txt", "a/z/deep.js", "z"]:
        _write(tmp_path, rel)
    found = walk(str(tmp_path))
    keys = [f.key for f in found]
    assert keys == sorted(keys)
    assert keys == ["B.css", "a-b.html", "a/b.html", "a/z/deep.js", "a0", "b.html", "z", "é.txt"]
    for f in found:
        assert not f.key.startswith(("/", "./")) and "\\" not in f.key
        assert Path(f.path).read_bytes() == b"x"
        assert os.path.samefile(f.path, tmp_path / f.key)


def test_walk_accepts_a_relative_root(tmp_path: Path, monkeypatch) -> None:
    _write(tmp_path, "site/index.html")
    _write(tmp_path, "site/css/a.css")
    monkeypatch.chdir(tmp_path)
    assert _keys(Path("site")) == ["css/a.css", "index.html"]


def test_empty_folder_has_no_files(tmp_path: Path) -> None:
    (tmp_path / "empty-dir").mkdir()
    assert walk(str(tmp_path)) == []


def test_default_excludes_skip_vcs_os_junk_and_the_state_folder(tmp_path: Path) -> None:
    junk = [
        ".git/config",
        ".git/objects/ab/cdef",
        ".hg/store",
        ".svn/entries",
        ".planner/manifest.json.gz",
        ".DS_Store",
        "._index.html",
        "Thumbs.db",
        "desktop.ini",
        "sub/.DS_Store",
        "sub/._photo.jpg",
        "sub/deeper/Thumbs.db",
    ]
    kept = [
        "index.html",
        "sub/page.html",
        ".gitignore",  # only the exact name .git is a VCS folder
        ".well-known/security.txt",  # dot-folders in general are part of a site
        "x._foo",  # '._*' is anchored at the start of a name
        ".DS_Store.html",
        "sub/.plannerish",
    ]
    for rel in junk + kept:
        _write(tmp_path, rel)
    assert _keys(tmp_path) == sorted(kept)


def test_excluded_folders_are_not_entered(tmp_path: Path) -> None:
    _write(tmp_path, "index.html")
    (tmp_path / ".git").mkdir()
    # A broken link inside an excluded folder would be refused if the folder were walked.
    os.symlink("does-not-exist", tmp_path / ".git" / "dangling")
    assert _keys(tmp_path) == ["index.html"]


def test_custom_excludes_by_name_match_at_any_depth(tmp_path: Path) -> None:
    for rel in ["app.js", "app.js.map", "lib/vendor.js.map", "lib/vendor.js", "map.txt"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["*.map"]) == ["app.js", "lib/vendor.js", "map.txt"]


def test_custom_excludes_by_path_glob_match_from_the_top(tmp_path: Path) -> None:
    for rel in ["drafts/a.html", "drafts/deep/b.html", "blog/drafts/c.html", "drafts.html"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["drafts/*"]) == ["blog/drafts/c.html", "drafts.html"]


def test_path_exclude_naming_a_folder_skips_all_of_it(tmp_path: Path) -> None:
    for rel in ["assets/tmp/a.png", "assets/tmp/x/y.png", "assets/keep.png", "tmp/z.png"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["assets/tmp"]) == ["assets/keep.png", "tmp/z.png"]


def test_trailing_slash_exclude_is_a_folder_name_at_any_depth(tmp_path: Path) -> None:
    for rel in ["drafts/a.html", "blog/drafts/b.html", "blog/post.html"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["drafts/"]) == ["blog/post.html"]


def test_leading_slash_anchors_an_exclude_to_the_top(tmp_path: Path) -> None:
    for rel in ["404.html", "blog/404.html", "index.html"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["/404.html"]) == ["blog/404.html", "index.html"]


def test_custom_excludes_replace_the_defaults(tmp_path: Path) -> None:
    # Documented: DEFAULT_EXCLUDES apply "unless the caller passes its own list"; callers
    # that want both pass DEFAULT_EXCLUDES + extra.
    for rel in [".DS_Store", "a.js.map", "a.js"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["*.map"]) == [".DS_Store", "a.js"]
    assert _keys(tmp_path, DEFAULT_EXCLUDES + ("*.map",)) == ["a.js"]
    assert _keys(tmp_path, ()) == [".DS_Store", "a.js", "a.js.map"]


def test_exclude_patterns_are_case_sensitive(tmp_path: Path) -> None:
    for rel in ["a.MAP", "b.map"]:
        _write(tmp_path, rel)
    assert _keys(tmp_path, ["*.map"]) == ["a.MAP"]


def test_fifo_in_the_build_folder_is_refused_by_name_without_blocking(tmp_path: Path) -> None:
    # Skipping it would deploy the build without it: the live page of that name would go.
    # (More special files, names and both ways of scanning: test_names.py.)
    _write(tmp_path, "index.html")
    os.mkfifo(tmp_path / "pipe")
    with pytest.raises(ScanError, match="'pipe' is a FIFO"):
        _within(10, lambda: scan(str(tmp_path), _headers))


# --- symlinks --------------------------------------------------------------------------------


def test_symlink_to_a_file_inside_is_followed(tmp_path: Path) -> None:
    _write(tmp_path, "real.html", b"<h1>real</h1>")
    os.symlink("real.html", tmp_path / "alias.html")
    entries = scan(str(tmp_path), _headers)
    assert list(entries) == ["alias.html", "real.html"]
    assert entries["alias.html"] == entries["real.html"]
    assert entries["alias.html"].hash == xxhash.xxh3_128_hexdigest(b"<h1>real</h1>")


def test_symlink_to_a_folder_inside_is_followed(tmp_path: Path) -> None:
    _write(tmp_path, "v2/docs/index.html", b"docs")
    _write(tmp_path, "v2/docs/guide.html", b"guide")
    os.symlink("v2", tmp_path / "latest")
    assert _keys(tmp_path) == [
        "latest/docs/guide.html",
        "latest/docs/index.html",
        "v2/docs/guide.html",
        "v2/docs/index.html",
    ]


def test_absolute_symlink_to_a_file_inside_is_followed(tmp_path: Path) -> None:
    site = tmp_path / "site"
    real = _write(site, "real.css", b"body{}")
    os.symlink(real, site / "abs.css")
    assert _keys(site) == ["abs.css", "real.css"]


def test_symlink_outside_folder_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write(site, "index.html")
    _write(tmp_path, "secrets/id_rsa", b"PRIVATE")
    os.symlink("../secrets/id_rsa", site / "key.txt")
    with pytest.raises(ScanError, match=r"symlink key\.txt points outside the build folder"):
        scan(str(site), _headers)


def test_symlink_to_a_folder_outside_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write(site, "index.html")
    _write(tmp_path / "home", "notes.txt")
    os.symlink(tmp_path / "home", site / "home")
    with pytest.raises(ScanError, match="points outside"):
        walk(str(site))


def test_symlink_to_a_sibling_folder_sharing_the_name_prefix_is_refused(tmp_path: Path) -> None:
    # /x/site-private starts with the text /x/site but is not inside /x/site.
    site = tmp_path / "site"
    _write(site, "index.html")
    _write(tmp_path, "site-private/db.sqlite")
    os.symlink("../site-private/db.sqlite", site / "db.sqlite")
    with pytest.raises(ScanError, match="points outside"):
        walk(str(site))


def test_nested_symlink_escaping_through_a_followed_folder_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write(site, "real/index.html")
    _write(tmp_path, "outside.txt")
    os.symlink("real", site / "alias")
    os.symlink("../../outside.txt", site / "real" / "up.txt")
    with pytest.raises(ScanError, match="points outside"):
        walk(str(site))


def test_symlink_loop_to_an_ancestor_is_refused_without_hanging(tmp_path: Path) -> None:
    _write(tmp_path, "a/b/page.html")
    os.symlink("../..", tmp_path / "a" / "b" / "up")
    with pytest.raises(ScanError, match=r"symlink loop at a/b/up"):
        _within(10, lambda: walk(str(tmp_path)))


def test_symlink_to_the_root_itself_is_a_loop(tmp_path: Path) -> None:
    _write(tmp_path, "index.html")
    os.symlink(".", tmp_path / "self")
    with pytest.raises(ScanError, match="loop"):
        _within(10, lambda: walk(str(tmp_path)))


def test_mutual_folder_symlinks_are_refused_without_hanging(tmp_path: Path) -> None:
    _write(tmp_path, "a/x.html")
    _write(tmp_path, "b/y.html")
    os.symlink("../b", tmp_path / "a" / "to_b")
    os.symlink("../a", tmp_path / "b" / "to_a")
    with pytest.raises(ScanError, match="loop"):
        _within(10, lambda: walk(str(tmp_path)))


def test_self_referencing_symlink_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "index.html")
    os.symlink("ouroboros", tmp_path / "ouroboros")
    with pytest.raises(ScanError, match="ouroboros"):
        _within(10, lambda: walk(str(tmp_path)))


def test_broken_symlink_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "index.html")
    os.symlink("gone.html", tmp_path / "link.html")
    with pytest.raises(ScanError, match=r"symlink link\.html is broken"):
        walk(str(tmp_path))


def test_broken_symlink_pointing_outside_is_refused(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _write(site, "index.html")
    os.symlink("/nonexistent/planner-test/target", site / "dangling")
    with pytest.raises(ScanError, match="dangling"):
        walk(str(site))


# --- the folder itself and file names --------------------------------------------------------


def test_missing_folder_is_a_scan_error(tmp_path: Path) -> None:
    missing = tmp_path / "public"
    with pytest.raises(ScanError, match=r"build folder .*public does not exist"):
        walk(str(missing))


def test_file_instead_of_a_folder_is_a_scan_error(tmp_path: Path) -> None:
    f = _write(tmp_path, "index.html")
    with pytest.raises(ScanError, match="is not a folder"):
        scan(str(f), _headers)


def test_root_that_is_a_symlink_to_a_folder_is_scanned(tmp_path: Path) -> None:
    _write(tmp_path, "build-123/index.html")
    os.symlink("build-123", tmp_path / "current")
    assert _keys(tmp_path / "current") == ["index.html"]


@pytest.mark.skipif(sys.getfilesystemencoding() != "utf-8", reason="needs a UTF-8 file system")
def test_file_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    _write(tmp_path, "index.html")
    raw = os.path.join(os.fsencode(tmp_path), b"caf\xe9.html")  # Latin-1 e-acute
    fd = os.open(raw, os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    with pytest.raises(ScanError, match="not valid UTF-8") as info:
        walk(str(tmp_path))
    # The message is printable: the bad byte is escaped, not a lone surrogate.
    str(info.value).encode("utf-8")
    assert "caf" in str(info.value)


@pytest.mark.skipif(sys.getfilesystemencoding() != "utf-8", reason="needs a UTF-8 file system")
def test_folder_name_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    raw_dir = os.path.join(os.fsencode(tmp_path), b"\xff\xfe")
    os.mkdir(raw_dir)
    fd = os.open(os.path.join(raw_dir, b"page.html"), os.O_WRONLY | os.O_CREAT, 0o644)
    os.close(fd)
    with pytest.raises(ScanError, match="not valid UTF-8"):
        walk(str(tmp_path))


def _nested_key(total_bytes: int, char: str = "d") -> str:
    """A relative key of exactly ``total_bytes`` UTF-8 bytes: folders of ``char`` short
    enough for the file system (NAME_MAX is 255 bytes), then an ASCII file name."""
    width = len(char.encode())
    parts: list[str] = []
    used = 0
    while total_bytes - used > 250:
        parts.append(char * (200 // width))
        used += (200 // width) * width + 1  # the part and the '/' after it
    parts.append("f" * (total_bytes - used))
    key = "/".join(parts)
    assert len(key.encode()) == total_bytes
    return key


def test_key_of_exactly_1024_bytes_is_accepted(tmp_path: Path) -> None:
    key = _nested_key(MAX_KEY_BYTES)
    _write(tmp_path, key)
    assert _keys(tmp_path) == [key]


def test_key_longer_than_1024_bytes_is_refused(tmp_path: Path) -> None:
    key = _nested_key(MAX_KEY_BYTES + 1)
    _write(tmp_path, key)
    with pytest.raises(ScanError, match="1024-byte key limit"):
        walk(str(tmp_path))


def test_key_limit_counts_utf8_bytes_not_characters(tmp_path: Path) -> None:
    key = _nested_key(1026, char="é")  # 2 bytes per character: ~520 characters
    assert len(key) < MAX_KEY_BYTES
    _write(tmp_path, key)
    with pytest.raises(ScanError, match="1024-byte key limit"):
        walk(str(tmp_path))


# --- scan() ----------------------------------------------------------------------------------


def test_scan_builds_entries_with_the_headers_callback(tmp_path: Path) -> None:
    files = {"index.html": b"<html></html>", "css/site.css": b"body{}", "empty.txt": b""}
    for rel, data in files.items():
        _write(tmp_path, rel, data)
    calls: list[str] = []

    def headers(key: str) -> tuple[str, str, str]:
        calls.append(key)
        return f"type/{key}", f"cc-{len(key)}", "gzip" if key.endswith(".css") else ""

    entries = scan(str(tmp_path), headers, workers=2)
    assert sorted(calls) == sorted(files)  # once per file
    assert list(entries) == sorted(files)
    for rel, data in files.items():
        assert entries[rel] == Entry(
            xxhash.xxh3_128_hexdigest(data), len(data), f"type/{rel}", f"cc-{len(rel)}",
            "gzip" if rel.endswith(".css") else "",
        )


@pytest.mark.parametrize("workers", [1, 3])
def test_scan_of_many_files_agrees_with_walk_and_hash_files(tmp_path: Path, workers: int) -> None:
    # More files than any hashing batch, spread over folders, some larger than CHUNK.
    for i in range(150):
        size = CHUNK + i if i % 50 == 0 else i
        _write(tmp_path, f"d{i % 7}/sub{i % 3}/f{i:03}.bin", _payload(size, seed=i))
    entries = scan(str(tmp_path), _headers, workers=workers)
    found = walk(str(tmp_path))
    assert list(entries) == [f.key for f in found]
    assert len(entries) == 150
    for f, (digest, size) in zip(found, hash_files(found, workers=1)):
        assert entries[f.key] == Entry(digest, size, *_headers(f.key))


def test_scan_applies_excludes(tmp_path: Path) -> None:
    for rel in ["index.html", "index.html.map", ".DS_Store"]:
        _write(tmp_path, rel)
    assert list(scan(str(tmp_path), _headers, excludes=DEFAULT_EXCLUDES + ("*.map",))) == [
        "index.html"
    ]


# --- property: scan finds exactly what was written -------------------------------------------

# Names the scan deploys (test_names.py has those it refuses): no backslash, no control
# character, no U+FFFE or U+FFFF; a no-break space is unusual (not printable) but valid.
_name_chars = st.one_of(
    st.sampled_from(list(" %*#?&+=~!'()[]{};,@$^`-_.éüß漢字😀\u00a0")),
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\\ufffe\uffff"),
)
_names = st.text(_name_chars, min_size=1, max_size=12).filter(lambda s: s not in (".", ".."))
_trees = st.recursive(
    st.binary(max_size=300),
    lambda children: st.dictionaries(_names, children, min_size=1, max_size=4),
    max_leaves=12,
).filter(lambda t: isinstance(t, dict))


def _flatten(tree: dict[str, Any], prefix: str = "") -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for name, value in tree.items():
        if isinstance(value, dict):
            out.update(_flatten(value, f"{prefix}{name}/"))
        else:
            out[f"{prefix}{name}"] = value
    return out


def _materialise(root: str, tree: dict[str, Any]) -> None:
    for name, value in tree.items():
        path = os.path.join(root, name)
        if isinstance(value, dict):
            os.mkdir(path)
            _materialise(path, value)
        else:
            with open(path, "wb") as f:
                f.write(value)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees, workers=st.sampled_from([1, 2]))
def test_scan_finds_exactly_the_files_written(tree: dict[str, Any], workers: int) -> None:
    expected = _flatten(tree)
    with tempfile.TemporaryDirectory() as root:
        _materialise(root, tree)
        entries = scan(root, lambda key: ("t", "c", ""), excludes=(), workers=workers)
    assert list(entries) == sorted(expected)
    for key, data in expected.items():
        assert entries[key] == Entry(xxhash.xxh3_128_hexdigest(data), len(data), "t", "c")


# --- forked hashing helpers (used for sites of PROCESS_MIN_FILES files or more) -------------


def _tree(root, n):
    import random as _random

    rng = _random.Random(n)
    for i in range(n):
        path = root / f"d{i % 7}" / f"f{i}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(rng.randbytes(rng.randrange(0, 3000)))


def test_forked_helpers_hash_like_one_process(tmp_path):
    # In a fresh interpreter: forking needs a single-threaded process, which pytest with a
    # moto server thread running is not.
    import subprocess

    _tree(tmp_path, 300)
    code = f"""
import json, os, sys
scan_mod = __import__("manifests.scan", fromlist=["scan"])
forks = []
real_fork = os.fork
def counting_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = counting_fork
one = scan_mod.scan({str(tmp_path)!r}, lambda k: ("t", "c", ""), workers=1)
scan_mod.PROCESS_MIN_FILES = 10
two = scan_mod.scan({str(tmp_path)!r}, lambda k: ("t", "c", ""), workers=2)
print(json.dumps({{"forks": len(forks), "same": one == two,
                  "entries": {{k: [e.hash, e.size] for k, e in two.items()}}}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    doc = __import__("json").loads(out.stdout)
    assert doc["forks"] >= 1  # the helper path really ran
    assert doc["same"]
    assert len(doc["entries"]) == 300
    for key, (digest, size) in doc["entries"].items():
        data = (tmp_path / key).read_bytes()
        assert digest == xxhash.xxh3_128_hexdigest(data) and size == len(data)


def test_forked_helpers_report_the_first_unreadable_file(tmp_path, monkeypatch):
    scan_mod = sys.modules["manifests.scan"]

    _tree(tmp_path, 200)
    monkeypatch.setattr(scan_mod, "PROCESS_MIN_FILES", 10)
    real_open = os.open

    def deny(path, *a, **kw):
        if str(path).endswith(("f50.bin", "f150.bin")):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(scan_mod.os, "open", deny)
    with pytest.raises(ScanError, match="f150.bin|f50.bin"):
        scan_mod.scan(str(tmp_path), lambda k: ("t", "c", ""), workers=2)
