"""Scan a build folder into manifest entries: walk, filter, hash (xxh3-128), stream.

Hashing is done by a few threads, each with one reusable buffer, so memory does not grow
with file size; ``os.read``/``readinto`` release the GIL, which lets two cores overlap I/O
and hashing on sites of many small files.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import threading
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import xxhash

from .errors import ScanError
from .model import STATE_DIR, Entry

# Names skipped at any depth unless the caller passes its own list.
DEFAULT_EXCLUDES: tuple[str, ...] = (
    ".git",
    ".hg",
    ".svn",
    STATE_DIR,
    ".DS_Store",
    "._*",
    "Thumbs.db",
    "desktop.ini",
)

CHUNK = 1 << 20  # streaming buffer per hashing thread
MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes

HeadersFor = Callable[[str], tuple[str, str]]


@dataclass(frozen=True, slots=True)
class FoundFile:
    key: str  # POSIX path relative to the build folder
    path: str  # path to open


def _matcher(patterns: Sequence[str]) -> Callable[[str, str], bool]:
    """Glob rules: a pattern without '/' matches a name at any depth; with '/', the
    relative path from the top (a leading '/' anchors it, a trailing '/' is dropped).
    All patterns are compiled into two regular expressions, matched once per entry."""
    cleaned = [p.strip("/") for p in patterns if p.strip("/")]
    names = [p for p in cleaned if "/" not in p]
    paths = [p for p in cleaned if "/" in p]
    never = re.compile(r"(?!)")
    name_re = re.compile("|".join(fnmatch.translate(p) for p in names)) if names else never
    path_re = re.compile("|".join(fnmatch.translate(p) for p in paths)) if paths else never

    def excluded(rel: str, name: str) -> bool:
        return name_re.match(name) is not None or path_re.match(rel) is not None

    return excluded


def walk(root: str, excludes: Iterable[str] = DEFAULT_EXCLUDES) -> list[FoundFile]:
    """Every regular file below ``root``, sorted by key.

    Symlinks are followed while they stay inside ``root``; a link that leaves it, a broken
    link and a link loop are refused with :class:`ScanError`.
    """
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise ScanError(f"build folder {root} does not exist") from None
    except OSError as exc:
        raise ScanError(f"build folder {root} cannot be read: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ScanError(f"build folder {root} is not a folder")
    real_root = os.path.realpath(root)
    excluded = _matcher(list(excludes))
    found: list[FoundFile] = []
    # Directory identities on the current descent path: a repeat is a loop.
    stack: list[tuple[str, str, frozenset[tuple[int, int]]]] = [
        (root, "", frozenset({(st.st_dev, st.st_ino)}))
    ]
    while stack:
        path, rel_dir, ancestors = stack.pop()
        try:
            with os.scandir(path) as it:
                items = list(it)
        except OSError as exc:
            raise ScanError(f"cannot read folder {_show(path)}: {exc.strerror}") from None
        for item in items:
            name = item.name
            rel = f"{rel_dir}{name}"
            if excluded(rel, name):
                continue
            try:
                # d_type from the directory listing: no stat call for plain files and folders.
                if item.is_file(follow_symlinks=False):
                    _check_name(rel)
                    found.append(FoundFile(rel, item.path))
                    continue
                if item.is_symlink():
                    target = os.path.realpath(item.path)
                    if os.path.commonpath([real_root, target]) != real_root:
                        raise ScanError(
                            f"symlink {_show(rel)} points outside the build folder; refusing it"
                        )
                    try:
                        mode = os.stat(item.path).st_mode
                    except OSError:
                        raise ScanError(f"symlink {_show(rel)} is broken or loops") from None
                    if stat.S_ISREG(mode):
                        _check_name(rel)
                        found.append(FoundFile(rel, item.path))
                        continue
                    if not stat.S_ISDIR(mode):
                        continue
                elif not item.is_dir(follow_symlinks=False):
                    continue  # sockets, fifos, devices: not part of a site
                ist = item.stat()
            except OSError as exc:
                raise ScanError(f"cannot stat {_show(rel)}: {exc.strerror}") from None
            ident = (ist.st_dev, ist.st_ino)
            if ident in ancestors:
                raise ScanError(f"symlink loop at {_show(rel)}; refusing it")
            stack.append((item.path, rel + "/", ancestors | {ident}))
    found.sort(key=lambda f: f.key)
    return found


def _show(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def _check_name(rel: str) -> None:
    try:
        encoded = rel.encode("utf-8")
    except UnicodeEncodeError:
        raise ScanError(f"file name {_show(rel)!s} is not valid UTF-8; rename it") from None
    if len(encoded) > MAX_KEY_BYTES:
        raise ScanError(f"file name {rel[:60]}... is longer than S3's 1024-byte key limit")


def hash_file(path: str, buf: bytearray | None = None) -> tuple[str, int]:
    """(xxh3-128 as 32 hex digits, size) of a file, read into one reusable buffer: no
    per-file allocation and constant memory whatever the file size."""
    if buf is None:
        buf = bytearray(CHUNK)
    view = memoryview(buf)
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
    try:
        size = os.fstat(fd).st_size
        n = os.readv(fd, [view])
        if n < CHUNK:
            more = os.readv(fd, [view[n : n + 1]])
            if more == 0:
                digest, total = xxhash.xxh3_128_hexdigest(view[:n]), n
                n = -1
            else:
                n += more
        if n >= 0:
            h = xxhash.xxh3_128(view[:n])
            total = n
            while n := os.readv(fd, [view]):
                h.update(view[:n])
                total += n
            digest = h.hexdigest()
    finally:
        os.close(fd)
    if total != size:
        raise ScanError(f"file {_show(path)} changed while it was being hashed; build again")
    return digest, size


def hash_files(files: Sequence[FoundFile], workers: int | None = None) -> list[tuple[str, int]]:
    """(hash, size) of ``files`` in the same order, computed by ``workers`` threads."""
    n = len(files)
    workers = max(1, min(workers or os.cpu_count() or 1, n or 1))
    out: list[tuple[str, int]] = [("", 0)] * n
    errors: list[BaseException] = []

    def run(start: int) -> None:
        buf = bytearray(CHUNK)
        i = start
        try:
            for i in range(start, n, workers):
                out[i] = hash_file(files[i].path, buf)
        except ScanError as exc:
            errors.append(exc)
        except OSError as exc:
            errors.append(ScanError(f"cannot read {_show(files[i].key)}: {exc.strerror}"))

    if workers == 1:
        run(0)
    else:
        threads = [threading.Thread(target=run, args=(s,), daemon=True) for s in range(workers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]
    return out


def scan(
    root: str,
    headers: HeadersFor,
    excludes: Iterable[str] = DEFAULT_EXCLUDES,
    workers: int | None = None,
) -> dict[str, Entry]:
    """Entries of every file below ``root``; ``headers(key)`` gives (Content-Type, Cache-Control)."""
    files = walk(root, excludes)
    hashed = hash_files(files, workers)
    entries: dict[str, Entry] = {}
    for f, (digest, size) in zip(files, hashed):
        ctype, cc = headers(f.key)
        entries[f.key] = Entry(digest, size, ctype, cc)
    return entries
