"""Scan a build folder into manifest entries: walk, filter, hash (xxh3-128), stream.

Every file is read into one reusable buffer, so memory does not grow with file size. On
Linux, files are hashed by forked helper processes (one per extra core) while the walk goes
on: they take batches of paths through pipes and answer with digests, free of this process's
GIL, which serialises the many small reads of a site. Elsewhere, or when this process runs
other threads, hashing uses threads.
"""

from __future__ import annotations

import collections
import fnmatch
import gc
import os
import re
import stat
import struct
import sys
import threading
import time
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

import xxhash

try:
    import fcntl
except ImportError:  # not on Windows; only the Linux helpers use it
    fcntl = None  # type: ignore[assignment]

from .errors import ScanError
from .model import STATE_DIR, Entry, _new_entry

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

CHUNK = 1 << 20  # streaming buffer per hashing worker
MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)

# key -> (Content-Type, Cache-Control, Content-Encoding)
HeadersFor = Callable[[str], tuple[str, str, str]]
# ``progress(files_hashed, bytes_hashed, files_in_all)``: see :class:`_Tally`.
Progress = Callable[[int, int, int], None]


@dataclass(frozen=True, slots=True)
class FoundFile:
    key: str  # POSIX path relative to the build folder
    path: str  # path to open


def _compile(patterns: Sequence[str]) -> tuple[frozenset[str], Callable | None, Callable | None]:
    """Exclude rules, matched once per entry by the walk: a pattern without '/' matches a name
    at any depth; with '/', the relative path from the top (a leading '/' anchors it, a
    trailing '/' is dropped). Names without wildcards go into a set (an exact match is set
    membership), the other names and the paths into one regex each (``None`` when there are
    none)."""
    cleaned = [p.rstrip("/") for p in patterns if p.strip("/")]
    names = [p for p in cleaned if "/" not in p]
    paths = [p.lstrip("/") for p in cleaned if "/" in p]
    literal = frozenset(p for p in names if not any(c in p for c in "*?["))
    wild = [p for p in names if p not in literal]
    name_match = re.compile("|".join(fnmatch.translate(p) for p in wild)).match if wild else None
    path_match = re.compile("|".join(fnmatch.translate(p) for p in paths)).match if paths else None
    return literal, name_match, path_match


def walk(
    root: str, excludes: Iterable[str] = DEFAULT_EXCLUDES, key_prefix: str = ""
) -> list[FoundFile]:
    """Every regular file below ``root``, sorted by key.

    Symlinks are followed while they stay inside ``root``; a link that leaves it, a broken
    link and a link loop are refused with :class:`ScanError`. So are names the tool will not
    deploy (see :func:`name_problem`), keys longer than S3 allows once ``key_prefix`` (the
    target's) is put before them, and anything that is neither a file nor a folder (a FIFO,
    a socket, a device).
    """
    keys: list[str] = []
    paths: list[str] = []
    _walk(root, excludes, keys, paths, key_prefix=key_prefix)
    return [FoundFile(keys[i], paths[i]) for i in sorted(range(len(keys)), key=keys.__getitem__)]


def _walk(
    root: str,
    excludes: Iterable[str],
    keys: list[str],
    paths: list[str],
    progress: Callable[[], None] | None = None,
    key_prefix: str = "",
) -> None:
    """Append the key and the path of every file below ``root`` to ``keys`` and ``paths``,
    in walk order (not sorted); ``progress()`` is called after each folder. Raises ScanError.

    This one walk serves every scan (the hashing helpers only hash the paths it found), so
    its refusals hold for every way of scanning."""
    try:
        st = os.stat(root)
    except FileNotFoundError:
        raise ScanError(f"build folder {root} does not exist") from None
    except OSError as exc:
        raise ScanError(f"build folder {root} cannot be read: {exc.strerror}") from None
    if not stat.S_ISDIR(st.st_mode):
        raise ScanError(f"build folder {root} is not a folder")
    real_root = os.path.realpath(root)
    literal, name_match, path_match = _compile(list(excludes))
    add_key = keys.append
    add_path = paths.append
    # Bytes left for the key once the target's prefix is put before it.
    room = MAX_KEY_BYTES - len(key_prefix.encode("utf-8"))
    scandir = os.scandir
    # A folder whose identity (device, inode) repeats one on its descent path is a loop. Only
    # a symlink or a mount can make one: with no mount below the root, plain folders need no
    # stat call, and the identities of a path's folders are looked up when a symlink needs them.
    stat_folders = _mounts_below(real_root)
    idents: dict[str, tuple[int, int]] = {root: (st.st_dev, st.st_ino)}

    def loops(ident: tuple[int, int], chain: tuple[str, ...]) -> bool:
        for folder in chain:
            known = idents.get(folder)
            if known is None:
                fst = os.stat(folder)
                known = idents[folder] = (fst.st_dev, fst.st_ino)
            if known == ident:
                return True
        return False

    # (folder path, its key prefix, the paths of the folders from the root down to it)
    stack: list[tuple[str, str, tuple[str, ...]]] = [(root, "", (root,))]
    while stack:
        path, rel_dir, chain = stack.pop()
        try:
            with scandir(path) as it:
                items = list(it)
        except OSError as exc:
            raise ScanError(f"cannot read folder {_show(path)}: {exc.strerror}") from None
        for item in items:
            name = item.name
            rel = rel_dir + name
            if (
                name in literal
                or (name_match is not None and name_match(name) is not None)
                or (path_match is not None and path_match(rel) is not None)
            ):
                continue
            # Every name on the way to a key passes here once (a folder's before its files):
            # most are printable and have no backslash, and need nothing more.
            if "\\" in name or not name.isprintable():
                _check_name(rel, name, item)
            try:
                # d_type from the directory listing: no stat call for plain files and folders.
                if item.is_file(follow_symlinks=False):
                    # An ASCII key has as many UTF-8 bytes as characters.
                    if len(rel) > room or not rel.isascii():
                        _check_length(rel, key_prefix)
                    add_key(rel)
                    add_path(item.path)
                    continue
                if item.is_symlink():
                    target = os.path.realpath(item.path)
                    if os.path.commonpath([real_root, target]) != real_root:
                        raise ScanError(
                            f"symlink {_show(rel)} points outside the build folder; refusing it"
                        )
                    try:
                        ist = os.stat(item.path)
                    except OSError:
                        raise ScanError(f"symlink {_show(rel)} is broken or loops") from None
                    if stat.S_ISREG(ist.st_mode):
                        _check_length(rel, key_prefix)
                        add_key(rel)
                        add_path(item.path)
                        continue
                    if not stat.S_ISDIR(ist.st_mode):
                        raise ScanError(_not_a_file(rel, ist.st_mode, link=True))
                elif not item.is_dir(follow_symlinks=False):
                    # A FIFO, a socket, a device. Skipping it would deploy the build without
                    # it, deleting the live page of that name: refused by name instead.
                    raise ScanError(_not_a_file(rel, item.stat(follow_symlinks=False).st_mode))
                elif not stat_folders:
                    stack.append((item.path, rel + "/", chain + (item.path,)))
                    continue
                else:
                    ist = item.stat()
                ident = (ist.st_dev, ist.st_ino)
                if loops(ident, chain):
                    raise ScanError(f"symlink loop at {_show(rel)}; refusing it")
            except OSError as exc:
                raise ScanError(f"cannot stat {_show(rel)}: {exc.strerror}") from None
            idents[item.path] = ident
            stack.append((item.path, rel + "/", chain + (item.path,)))
        if progress is not None:
            progress()


def _mounts_below(real_root: str) -> bool:
    """Whether a file system is mounted somewhere below ``real_root`` (True when unknown)."""
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            table = f.read()
    except OSError:
        return True
    below = os.fsencode(real_root.rstrip("/") + "/")
    for line in table.splitlines():
        fields = line.split(b" ")
        if len(fields) > 4:
            # Octal escapes for space, tab, newline and backslash, as in /proc/self/mountinfo.
            point = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m[1], 8)]), fields[4])
            if point.startswith(below):
                return True
    return False


def _show(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


# --- file names ------------------------------------------------------------------------------
#
# What the tool does with each name is decided here, at scan time, before anything remote is
# written: a name becomes the S3 key (and the URL) of the same text, or the deploy is refused
# with one line naming the file and what to do. Refused, per part of the path:
#
# * a backslash: every browser turns `\` into `/` in an http(s) URL (WHATWG URL standard,
#   "special" schemes), so a link to `a\b.html` as written asks for `a/b.html`; the S3
#   console and Windows tools take it for a folder separator, too.
# * control characters (Unicode Cc: U+0000-U+001F, U+007F-U+009F): a browser drops tab and
#   line breaks from a URL, XML 1.0 cannot carry most of them (S3's DeleteObjects request is
#   XML, and a CR in it is read back as LF: another key), and they garble logs and terminals.
# * U+FFFE and U+FFFF: not characters to XML 1.0 either.
# * a name that is not valid UTF-8 (os.fsdecode makes each such byte a lone surrogate): S3
#   keys are UTF-8 text, there is no key to give it.
# * a key of more than 1,024 UTF-8 bytes with the target's prefix: S3's limit.
# Everything else (spaces, `%`, `#`, `?`, `*`, non-ASCII letters, invisible but valid
# characters) deploys under the very same key and is invalidated percent-encoded.
#
# The manifest loader (model.check_key) is more lenient on purpose: it reads back what any
# version of the tool may have committed (a backslash key, say), so a target never becomes
# unusable; only the scan, which decides what is written next, holds the whole rule.

_NOT_XML = frozenset("\ufffe\uffff")


def name_problem(name: str) -> str | None:
    """Why the file or folder name ``name`` (one part of a path, as os.fsdecode gives it)
    cannot be deployed, or None if it can."""
    if any("\ud800" <= c <= "\udfff" for c in name):
        return "is not valid UTF-8 (S3 keys are UTF-8 text)"
    if "\\" in name:
        return "has a backslash, which browsers turn into '/' in URLs"
    if any(unicodedata.category(c) == "Cc" for c in name):
        return "has a control character, which URLs, S3 requests and logs cannot carry"
    if not _NOT_XML.isdisjoint(name):
        return "has U+FFFE or U+FFFF, which S3 requests (XML) cannot carry"
    return None


def quote_name(rel: str) -> str:
    """``rel`` quoted for a one-line message: repr()'s escapes for quotes, backslashes and
    characters that are not printable, and each byte that is not UTF-8 (a lone surrogate
    from os.fsdecode) as ``\\xNN``, the byte itself."""
    out = []
    for c in rel:
        if "\udc80" <= c <= "\udcff":
            out.append(f"\\x{ord(c) - 0xDC00:02x}")
        elif c == "'":
            out.append("\\'")
        else:
            out.append(repr(c)[1:-1])
    return "'" + "".join(out) + "'"


def _check_name(rel: str, name: str, item: os.DirEntry) -> None:
    problem = name_problem(name)
    if problem is not None:
        try:
            kind = "folder" if item.is_dir(follow_symlinks=False) else "file"
        except OSError:
            kind = "file"
        raise ScanError(
            f"{kind} {quote_name(rel)} {problem}; rename it, or leave it out with --exclude"
        )


def _check_length(rel: str, key_prefix: str) -> None:
    size = len((key_prefix + rel).encode("utf-8"))
    if size > MAX_KEY_BYTES:
        with_prefix = f" with the prefix {quote_name(key_prefix)}" if key_prefix else ""
        shown = rel if len(rel) <= 60 else rel[:60] + "..."
        raise ScanError(
            f"file {quote_name(shown)} makes a key of {size:,} bytes{with_prefix}, longer "
            "than S3's 1024-byte key limit; shorten its path"
        )


_KINDS = (
    (stat.S_ISFIFO, "FIFO (named pipe)"),
    (stat.S_ISSOCK, "socket"),
    (stat.S_ISBLK, "block device"),
    (stat.S_ISCHR, "character device"),
)


def _not_a_file(rel: str, mode: int, link: bool = False) -> str:
    kind = next((text for test, text in _KINDS if test(mode)), "special file")
    return (
        f"{quote_name(rel)} is {'a symlink to ' if link else ''}a {kind}, not a file: only "
        "files and folders can be deployed; remove it from the build, or leave it out with "
        "--exclude"
    )


def hash_file(path: str, buf: bytearray | None = None) -> tuple[str, int]:
    """(xxh3-128 as 32 hex digits, size) of a file, read into one reusable buffer: no
    per-file allocation and constant memory whatever the file size."""
    if buf is None:
        buf = bytearray(CHUNK)
    view = memoryview(buf)
    limit = len(buf)
    fd = os.open(path, _O_FLAGS)
    try:
        size = os.fstat(fd).st_size
        n = os.readv(fd, [view])
        if n == size and n < limit:
            # The whole file in one read (a regular file reads short only at its end):
            # most files of a site take this path, with no probe read.
            return xxhash.xxh3_128_hexdigest(view[:n]), size
        if n < limit:
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


# Files per work item: large enough that taking work costs little, small enough that the
# workers finish together.
BATCH = 32
# Below this many files, hashing stays in this process (threads): a helper process costs
# more than it saves. Tests may lower it to exercise the process path on small trees.
PROCESS_MIN_FILES = 1000


def _batches(n: int, size: int = BATCH) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def _hash_batches(
    paths: Sequence[str],
    keys: Sequence[str],
    out: list,
    errors: list[tuple[int, ScanError]],
    batches: Iterable[tuple[int, int]],
    buf: bytearray | None = None,
    tally: "_Tally | None" = None,
) -> None:
    """Hash ``paths[i]`` into ``out[i]`` for every ``(start, stop)`` range of ``batches``;
    a file that cannot be hashed goes into ``errors`` as ``(i, ScanError)``. Each batch done
    is counted in ``tally``, if any."""
    if buf is None:
        buf = bytearray(CHUNK)
    hash_one = hash_file
    for start, stop in batches:
        try:
            out[start:stop] = done = _hash_list(paths[start:stop], buf)
        except (OSError, ScanError):
            pass  # one by one, to know which files fail and why
        else:
            if tally is not None:
                tally.add(stop - start, sum([size for _, size in done]))
            continue
        for i in range(start, stop):
            try:
                out[i] = hash_one(paths[i], buf)
            except ScanError as exc:
                errors.append((i, exc))
            except OSError as exc:
                errors.append((i, ScanError(f"cannot read {_show(keys[i])}: {exc.strerror}")))
        if tally is not None:
            tally.add(stop - start, sum([r[1] for r in out[start:stop] if r is not None]))


def _hash_list(paths: Sequence[str], buf: bytearray) -> list[tuple[str, int]]:
    """``[hash_file(p, buf) for p in paths]``, with fewer system calls and less Python per
    file for the many files smaller than the buffer: the size comes from ``lseek``, and one
    positional read gets all of a file that did not change; any other file goes through
    :func:`hash_file`."""
    preadv = getattr(os, "preadv", None)
    if preadv is None:
        return [hash_file(p, buf) for p in paths]
    view = memoryview(buf)
    bufs = [view]
    limit = len(buf)
    open_, lseek, close = os.open, os.lseek, os.close
    hexdigest = xxhash.xxh3_128_hexdigest
    hash_one = hash_file
    out = []
    add = out.append
    for path in paths:
        fd = open_(path, _O_FLAGS)
        try:
            size = lseek(fd, 0, os.SEEK_END)
            n = preadv(fd, bufs, 0) if size < limit else -1
        finally:
            close(fd)
        add((hexdigest(view[:n]), size) if n == size else hash_one(path, buf))
    return out


# Hashing progress is reported at most every hundredth of the files, or once this long (in
# seconds) has passed since the last report, as batches of results arrive.
REPORT_SECONDS = 0.1


class _Tally:
    """Files and bytes hashed so far, counted per batch of results (from the helpers, the
    threads or this process), for a ``progress(files_hashed, bytes_hashed, files_in_all)``
    callback. Nothing is reported before :meth:`start` (the end of the walk, when the number
    of files is known); then at most every hundredth of the files or every REPORT_SECONDS,
    and :meth:`finish` makes sure the last report has the totals. Reports are made one at a
    time (under a lock: threads may add), with counts that never go down. An exception from
    ``report`` stops the reports and is raised by :meth:`finish`, once hashing is done (a
    hashing thread must not die of it)."""

    __slots__ = (
        "report", "files", "bytes", "total", "error", "_step", "_next", "_told", "_last", "_lock"
    )

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.error: Exception | None = None
        self.files = self.bytes = self.total = 0
        self._step = self._next = 0
        self._told = -1  # files at the last report
        self._last = 0.0
        self._lock = threading.Lock()

    def start(self, total: int) -> None:
        with self._lock:
            self.total = total
            self._step = max(1, total // 100)
            if total:
                self._tell()

    def add(self, files: int, nbytes: int) -> None:
        with self._lock:
            self.files += files
            self.bytes += nbytes
            if self.total and (
                self.files >= self._next or time.monotonic() - self._last >= REPORT_SECONDS
            ):
                self._tell()

    def finish(self) -> None:
        with self._lock:
            if self.total and self._told != self.files:
                self._tell()
            if self.error is not None:
                raise self.error

    def _tell(self) -> None:
        self._told = self.files
        self._next = self.files + self._step
        if self.error is None:
            try:
                self.report(self.files, self.bytes, self.total)
            except Exception as exc:
                self.error = exc
        self._last = time.monotonic()


def _first_error(errors: list[tuple[int, ScanError]], keys: Sequence[str]) -> ScanError:
    """The error of the first failing file in key order, whatever worker met it first."""
    return min(errors, key=lambda e: keys[e[0]])[1]


def _hash_all(
    paths: Sequence[str],
    keys: Sequence[str],
    workers: int | None,
    tally: _Tally | None = None,
) -> list[tuple[str, int]]:
    """(hash, size) of every path, in order; raises the ScanError of the first failing key.
    Files hashed are counted in ``tally``, if any."""
    n = len(paths)
    workers = max(1, min(workers or _default_workers(), n or 1))
    out: list = [None] * n
    errors: list[tuple[int, ScanError]] = []
    if workers == 1:
        # One batch of every file, unless progress is counted (per batch).
        _hash_batches(paths, keys, out, errors, [(0, n)] if tally is None else _batches(n),
                      tally=tally)
    elif n >= PROCESS_MIN_FILES and _can_fork():
        helpers = _Helpers(workers - 1, paths, keys, out, errors, tally)
        try:
            helpers.add(n)
            helpers.finish()
        except BaseException:
            helpers.abort()
            raise
    else:
        _hash_in_threads(paths, keys, out, errors, workers, tally)
    if errors:
        raise _first_error(errors, keys)
    return out


def _hash_in_threads(
    paths: Sequence[str],
    keys: Sequence[str],
    out: list,
    errors: list[tuple[int, ScanError]],
    workers: int,
    tally: _Tally | None = None,
) -> None:
    """Threads take work items from one shared iterator (atomic under the GIL). They only
    overlap while one of them is in a system call or hashes 64 KiB or more at once."""
    work = iter(_batches(len(paths)))
    threads = [
        threading.Thread(target=_hash_batches, args=(paths, keys, out, errors, work, None, tally))
        for _ in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def _default_workers() -> int:
    """One per core this process may run on, at most 8 (hashing from memory gains little
    beyond that, and each worker may be a process)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _can_fork() -> bool:
    """Helpers are forked copies of this process: only on Linux (macOS frameworks do not
    survive a fork) and only while this process runs a single thread (a fork copies no other
    thread, so a lock one of them holds would stay locked in the copy)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:  # threads started by native code too
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


_TASK = struct.Struct("<IHI")  # first index, file count, bytes of paths that follow
_DONE = struct.Struct("<IHB")  # first index, file count, 0 (digests and sizes follow) or 1
# Batches handed to a helper and not yet answered: enough to keep it busy while this process
# does something else for a while (sorting the keys), few once the end is near.
_IN_FLIGHT = 24
_IN_FLIGHT_AT_END = 2
_IN_FLIGHT_MEANWHILE = 128


class _Helper:
    __slots__ = ("pid", "task", "done", "out", "inbox", "busy")

    def __init__(self, pid: int, task: int, done: int) -> None:
        self.pid = pid
        self.task = task  # write end of its task pipe (non-blocking)
        self.done = done  # read end of its result pipe (non-blocking)
        self.out = bytearray()  # tasks not yet written to the pipe
        self.inbox = bytearray()  # results not yet parsed
        self.busy: dict[int, tuple[int, int]] = {}  # first index -> batch


class _Helpers:
    """Forked processes that hash batches of files for this one, free of its GIL.

    Files are handed out while they are found: ``add(count)`` makes batches of the first
    ``count`` paths, ``pump()`` (non-blocking) sends each helper a few batches, their paths in
    a pipe, and collects the digests and sizes it sends back. ``finish()`` hashes what is left
    here, taking batches from the end while the helpers take them from the front, then waits
    for the helpers. A batch a helper could not finish (an error, a crash) is hashed again
    here, which records the error exactly as the in-process path does. Batches done, by the
    helpers or here, are counted in ``tally``, if any.
    """

    def __init__(
        self,
        count: int,
        paths: Sequence[str],
        keys: Sequence[str],
        out: list,
        errors: list[tuple[int, ScanError]],
        tally: _Tally | None = None,
    ) -> None:
        self.paths, self.keys, self.out, self.errors = paths, keys, out, errors
        self.tally = tally
        self.queued = 0  # paths already put into batches
        self.pending: collections.deque[tuple[int, int]] = collections.deque()
        self.redo: list[tuple[int, int]] = []
        self.helpers: list[_Helper] = []
        self.in_flight = _IN_FLIGHT
        self.buf: bytearray | None = None  # for the batches hashed here
        for _ in range(count):
            fds: list[int] = []
            try:
                fds += os.pipe()
                fds += os.pipe()
                pid = os.fork()
            except OSError:  # no more pipes or processes: the ones running share the work
                for fd in fds:
                    os.close(fd)
                break
            task_r, task_w, done_r, done_w = fds
            if pid == 0:  # pragma: no cover - runs in the helper, which never returns
                code = 1
                try:
                    # This process keeps only its own ends (the other helpers' pipes must see
                    # end-of-file when the parent closes them).
                    theirs = [f for other in self.helpers for f in (other.task, other.done)]
                    for fd in [task_w, done_r, *theirs]:
                        os.close(fd)
                    code = _helper_main(task_r, done_w)
                finally:
                    os._exit(code)
            os.close(task_r)
            os.close(done_w)
            try:  # room for many batches of paths while this process is busy elsewhere
                fcntl.fcntl(task_w, fcntl.F_SETPIPE_SZ, 1 << 20)  # type: ignore[union-attr]
            except (AttributeError, OSError):
                pass
            os.set_blocking(task_w, False)
            os.set_blocking(done_r, False)
            self.helpers.append(_Helper(pid, task_w, done_r))

    def add(self, count: int, last: bool = False) -> None:
        """Queue the paths up to ``count`` in batches; the rest of a batch waits for more
        paths unless ``last``."""
        while count - self.queued >= BATCH or (last and count > self.queued):
            stop = min(self.queued + BATCH, count)
            self.pending.append((self.queued, stop))
            self.queued = stop
        if len(self.out) < self.queued:
            self.out.extend([None] * (self.queued - len(self.out)))

    def pump(self) -> None:
        """Without blocking: collect the helpers' results and hand them more batches."""
        for h in list(self.helpers):
            if self._collect(h):
                self._feed(h)

    def _feed(self, h: _Helper) -> None:
        while len(h.busy) < self.in_flight and self.pending:
            start, stop = batch = self.pending.popleft()
            data = "\0".join(self.paths[start:stop]).encode("utf-8", "surrogateescape")
            h.out += _TASK.pack(start, stop - start, len(data))
            h.out += data
            h.busy[start] = batch
        if h.out:
            try:
                del h.out[: os.write(h.task, h.out)]
            except BlockingIOError:
                pass
            except OSError:  # the helper is gone
                self._lose(h)

    def _collect(self, h: _Helper, block: bool = False) -> bool:
        """Read what the helper has answered (all of it, to its exit, if ``block``); False
        once it has exited."""
        while True:
            try:
                data = os.read(h.done, 1 << 16)
            except BlockingIOError:
                return True
            except OSError:
                data = b""
            if not data:
                self._lose(h)
                return False
            h.inbox += data
            self._parse(h)
            if not block:
                return True

    def _parse(self, h: _Helper) -> None:
        inbox, out = h.inbox, self.out
        pos = 0
        while len(inbox) - pos >= _DONE.size:
            start, count, failed = _DONE.unpack_from(inbox, pos)
            need = 0 if failed else 40 * count
            end = pos + _DONE.size + need
            if len(inbox) < end:
                break
            batch = h.busy.pop(start)
            if failed:
                self.redo.append(batch)
            else:
                base = pos + _DONE.size
                hexes = inbox[base : base + 32 * count].decode("ascii")
                sizes = struct.unpack_from(f"<{count}Q", inbox, base + 32 * count)
                for k in range(count):
                    out[start + k] = (hexes[32 * k : 32 * k + 32], sizes[k])
                if self.tally is not None:
                    self.tally.add(count, sum(sizes))
            pos = end
        del inbox[:pos]

    def _lose(self, h: _Helper) -> None:
        """A helper that has exited (or is gone): what it had not answered is done here."""
        self.redo.extend(h.busy.values())
        h.busy.clear()
        self.helpers.remove(h)
        self._end(h, kill=True)

    def _end(self, h: _Helper, kill: bool) -> None:
        for fd in (h.task, h.done):
            try:
                os.close(fd)
            except OSError:
                pass
        try:
            if kill:
                os.kill(h.pid, 9)  # SIGKILL
            os.waitpid(h.pid, 0)
        except (ChildProcessError, ProcessLookupError):
            pass

    def finish(self) -> None:
        """Hash what is left, sharing it with the helpers, and wait for them."""
        self.add(len(self.paths), last=True)
        local = self._hash_here
        while self.pending:
            if len(self.pending) <= 2 * _IN_FLIGHT * len(self.helpers):
                self.in_flight = _IN_FLIGHT_AT_END  # near the end: commit little to anyone
            self.pump()
            if self.pending:
                local(self.pending.pop())
        for h in self.helpers:  # nothing more to hand out: let them finish and exit
            if h.out:
                os.set_blocking(h.task, True)
                try:
                    while h.out:
                        del h.out[: os.write(h.task, h.out)]
                except OSError:
                    pass
            os.close(h.task)
            h.task = -1
        for h in list(self.helpers):
            os.set_blocking(h.done, True)
            self._collect(h, block=True)
        for batch in self.redo:
            local(batch)
        self.redo = []

    def abort(self) -> None:
        """Stop the helpers at once (an error or Ctrl-C in this process)."""
        for h in list(self.helpers):
            self.helpers.remove(h)
            self._end(h, kill=True)

    def _hash_here(self, batch: tuple[int, int]) -> None:
        if self.buf is None:
            self.buf = bytearray(CHUNK)
        _hash_batches(
            self.paths, self.keys, self.out, self.errors, (batch,), self.buf, self.tally
        )


def _helper_main(task: int, done: int) -> int:
    """A helper's loop: read batches of paths, hash them, write back digests and sizes."""
    gc.disable()  # no collection: a finaliser of the parent's garbage must not run twice
    buf = bytearray(CHUNK)
    inbox = bytearray()
    while data := os.read(task, 1 << 16):
        inbox += data
        pos = 0
        while len(inbox) - pos >= _TASK.size:
            start, count, length = _TASK.unpack_from(inbox, pos)
            end = pos + _TASK.size + length
            if len(inbox) < end:
                break
            paths = inbox[pos + _TASK.size : end].decode("utf-8", "surrogateescape").split("\0")
            pos = end
            try:
                results = _hash_list(paths, buf)
                hexes = "".join([d for d, _ in results]).encode("ascii")
                if len(results) != count or len(hexes) != 32 * count:
                    raise ValueError("unexpected digest")
                reply = _DONE.pack(start, count, 0) + hexes + struct.pack(
                    f"<{count}Q", *[size for _, size in results]
                )
            except Exception:  # the parent hashes this batch again and reports the error
                reply = _DONE.pack(start, count, 1)
            view = memoryview(reply)
            while view:
                view = view[os.write(done, view) :]
        del inbox[:pos]
    return 0


def hash_files(files: Sequence[FoundFile], workers: int | None = None) -> list[tuple[str, int]]:
    """(hash, size) of ``files`` in the same order, computed by ``workers`` threads (or, on
    Linux, processes)."""
    return _hash_all([f.path for f in files], [f.key for f in files], workers)


def scan(
    root: str,
    headers: HeadersFor,
    excludes: Iterable[str] = DEFAULT_EXCLUDES,
    workers: int | None = None,
    progress: Progress | None = None,
    key_prefix: str = "",
) -> dict[str, Entry]:
    """Entries of every file below ``root``; ``headers(key)`` gives (Content-Type,
    Cache-Control, Content-Encoding). Refuses what :func:`walk` refuses, ``key_prefix`` being
    the target's (keys are counted with it against S3's limit).

    With more than one worker on Linux, hashing starts while the walk goes on: once the walk
    has found PROCESS_MIN_FILES files, forked helpers hash batches of them as they are found.

    ``progress(files_hashed, bytes_hashed, files_in_all)``, if given, is called from the end of
    the walk (when the number of files is known) as hashed files are counted: at most every
    hundredth of the files or every REPORT_SECONDS, with counts that never go down, one call
    at a time (maybe from a hashing thread), the last one with every file hashed.
    """
    return scan_meanwhile(
        root, headers, excludes, workers, progress=progress, key_prefix=key_prefix
    )


def scan_meanwhile(
    root: str,
    headers: HeadersFor,
    excludes: Iterable[str] = DEFAULT_EXCLUDES,
    workers: int | None = None,
    meanwhile: Callable[[], object] | None = None,
    progress: Progress | None = None,
    key_prefix: str = "",
) -> dict[str, Entry]:
    """:func:`scan`, also calling ``meanwhile()`` once: while helper processes hash, if there
    are any, else first. Its errors come before any of the scan's, as if it ran before."""
    workers = max(1, workers or _default_workers())
    tally = None if progress is None else _Tally(progress)
    keys: list[str] = []
    paths: list[str] = []
    helpers: _Helpers | None = None
    in_process = False  # decided: no helper processes for this scan
    out: list = []
    errors: list[tuple[int, ScanError]] = []

    def progress() -> None:
        nonlocal helpers, in_process
        if helpers is None:
            if in_process or len(paths) < PROCESS_MIN_FILES:
                return
            in_process = workers == 1 or not _can_fork()
            try:
                helpers = (
                    None if in_process else _Helpers(workers - 1, paths, keys, out, errors, tally)
                )
            except OSError:  # no pipes or processes to spare: hash here after the walk
                in_process = True
            if helpers is None:
                return
        if len(paths) - helpers.queued >= BATCH:
            helpers.add(len(paths))
            helpers.pump()

    order: list[int] | None = None
    heads: list[tuple[str, str, str]] = []
    made: list[Entry | None] = []
    head_error: Exception | None = None
    try:
        try:
            _walk(root, excludes, keys, paths, progress, key_prefix)
        except ScanError as exc:
            walk_error = exc
        else:
            walk_error = None
        if walk_error is not None:
            if helpers is not None:
                helpers.abort()
                helpers = None
            if meanwhile is not None:
                meanwhile()
            raise walk_error
        if tally is not None:
            tally.start(len(paths))
        if helpers is not None:
            helpers.add(len(paths), last=True)
            if meanwhile is not None:
                # Hand the helpers a good part of what is left (the pipes hold it), since
                # nothing is handed out while ``meanwhile`` runs.
                share = len(helpers.pending) // (len(helpers.helpers) + 1)
                helpers.in_flight = max(_IN_FLIGHT, min(share, _IN_FLIGHT_MEANWHILE))
                helpers.pump()
                meanwhile()
                helpers.in_flight = _IN_FLIGHT
            # While the helpers hash, this process sorts, asks for the headers (in key order,
            # stopping at the first error, as below), makes the entries of the files already
            # hashed, then joins in the hashing.
            helpers.pump()
            order = sorted(range(len(keys)), key=keys.__getitem__)
            new = _new_entry
            for n, i in enumerate(order):
                if not n % 256:
                    helpers.pump()
                try:
                    ctype, cc, enc = headers(keys[i])
                except Exception as exc:
                    head_error = exc
                    break
                heads.append((ctype, cc, enc))
                done = out[i]
                made.append(None if done is None else new(done[0], done[1], ctype, cc, enc))
            helpers.finish()
            helpers = None
            if errors:
                raise _first_error(errors, keys)
            if head_error is not None:
                raise head_error
        else:
            if meanwhile is not None:
                meanwhile()
            out = _hash_all(paths, keys, workers, tally)
    finally:
        if helpers is not None:
            helpers.abort()
    if tally is not None:
        tally.finish()
    new = _new_entry
    if order is None:
        entries: dict[str, Entry] = {}
        for i in sorted(range(len(keys)), key=keys.__getitem__):
            key = keys[i]
            digest, size = out[i]
            ctype, cc, enc = headers(key)
            entries[key] = new(digest, size, ctype, cc, enc)
        return entries
    for n, entry in enumerate(made):
        if entry is None:
            digest, size = out[order[n]]
            ctype, cc, enc = heads[n]
            made[n] = new(digest, size, ctype, cc, enc)
    return dict(zip([keys[i] for i in order], made))
