"""Scan a build folder into manifest entries: walk, filter, hash (xxh3-128), stream.

The walk and its refusals (names, links, special files) are here; hashing a file is in
:mod:`.hashing`. On Linux, files are hashed by forked worker processes (:mod:`.pool`, one per
core) while the walk goes on, free of this process's GIL, which serialises the many small
reads of a site; past PARALLEL_WALK_MIN_FILES files they walk the rest of the build too, in
parts (:mod:`.parts`). Elsewhere, or when this process runs other threads, hashing uses
threads. The entries come out in columns (:class:`~manifests.columns.Entries`).
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
import unicodedata
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence

from .errors import ScanError, show
from .hashing import (  # CHUNK and hash_file: also this module's, for its callers
    BATCH,
    CHUNK,  # noqa: F401
    Progress,
    Tally,
    batches,
    default_workers,
    first_error,
    hash_batches,
    hash_file,  # noqa: F401
    hash_in_threads,
)
from . import parts
from .columns import Entries, build
from .model import STATE_DIR
from .pool import Helpers, can_fork

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

MAX_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes

# key -> (Content-Type, Cache-Control, Content-Encoding)
HeadersFor = Callable[[str], tuple[str, str, str]]


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

    This one walk (:class:`_Walker`) serves every scan (the hashing helpers only hash the
    paths it found, and the parallel walk's parts list folders with it), so its refusals hold
    for every way of scanning."""
    walker = _Walker(root, excludes, key_prefix)
    stack = walker.start()
    add_key, add_path = keys.append, paths.append
    while stack:
        walker.folder(*stack.pop(), add_key, add_path, stack)
        if progress is not None:
            progress()


# A folder still to walk: (its path, its key prefix, the paths of the folders from the root
# down to it).
Folder = tuple[str, str, tuple[str, ...]]


class _Walker:
    """The walk of one build folder: its rules (excludes, names, links, special files, key
    length), and one folder listed by them. Folders are pushed on the walk's stack in
    descending key order, so that they come off it ascending: a walk that stops part way
    (a part of the parallel walk) has found keys all below those of the folders left."""

    def __init__(self, root: str, excludes: Iterable[str], key_prefix: str) -> None:
        try:
            st = os.stat(root)
        except FileNotFoundError:
            raise ScanError(f"build folder {root} does not exist") from None
        except OSError as exc:
            raise ScanError(f"build folder {root} cannot be read: {exc.strerror}") from None
        if not stat.S_ISDIR(st.st_mode):
            raise ScanError(f"build folder {root} is not a folder")
        self.root = root
        self.real_root = os.path.realpath(root)
        self.literal, self.name_match, self.path_match = _compile(list(excludes))
        self.key_prefix = key_prefix
        # Bytes left for the key once the target's prefix is put before it.
        self.room = MAX_KEY_BYTES - len(key_prefix.encode("utf-8"))
        # A folder whose identity (device, inode) repeats one on its descent path is a loop.
        # Only a symlink or a mount can make one: with no mount below the root, plain folders
        # need no stat call, and the identities of a path's folders are looked up when a
        # symlink needs them.
        self.stat_folders = _mounts_below(self.real_root)
        self.idents: dict[str, tuple[int, int]] = {root: (st.st_dev, st.st_ino)}

    def start(self) -> list[Folder]:
        return [(self.root, "", (self.root,))]

    def walk_in_order(self, stack: list[Folder], found: Callable[[str, str], None],
                      more: Callable[[], bool]) -> None:
        """Pop ``stack`` while ``more()``: folders are listed (their first files to
        ``found``), file items given to ``found``. Keys come in order: each is below every key
        the stack still holds."""
        while stack and more():
            path, rel, chain = stack.pop()
            if chain is None:
                found(path, rel)
            else:
                self.folder(path, rel, chain, _nothing, _nothing, stack, found)

    def _loops(self, ident: tuple[int, int], chain: tuple[str, ...]) -> bool:
        idents = self.idents
        for folder in chain:
            known = idents.get(folder)
            if known is None:
                fst = os.stat(folder)
                known = idents[folder] = (fst.st_dev, fst.st_ino)
            if known == ident:
                return True
        return False

    def folder(
        self,
        path: str,
        rel_dir: str,
        chain: tuple[str, ...],
        add_key: Callable[[str], None],
        add_path: Callable[[str], None],
        stack: list[Folder],
        found: Callable[[str, str], None] | None = None,
    ) -> None:
        """List one folder: its files to ``add_key``/``add_path``, its folders onto
        ``stack``. Raises ScanError.

        With ``found(path, key)`` instead (the walk in key order, see :meth:`walk_in_order`),
        the files that sort before every folder listed here are given to it, and the others
        go onto ``stack`` as file items (their chain None), among the folders: a walk that
        pops its stack meets every key in order."""
        in_order = found is not None
        try:
            with os.scandir(path) as it:
                items = list(it)
        except OSError as exc:
            raise ScanError(f"cannot read folder {show(path)}: {exc.strerror}") from None
        literal, name_match, path_match = self.literal, self.name_match, self.path_match
        room, key_prefix = self.room, self.key_prefix
        folders: list[Folder] = []
        files: list[tuple[str, str]] | None = [] if in_order else None
        if files is not None:
            add_key = add_path = _nothing  # type: ignore[assignment]
            keep = files.append
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
                    if files is not None:
                        keep((item.path, rel))
                        continue
                    add_key(rel)
                    add_path(item.path)
                    continue
                if item.is_symlink():
                    target = os.path.realpath(item.path)
                    if os.path.commonpath([self.real_root, target]) != self.real_root:
                        raise ScanError(
                            f"symlink {show(rel)} points outside the build folder; refusing it"
                        )
                    try:
                        ist = os.stat(item.path)
                    except OSError:
                        raise ScanError(f"symlink {show(rel)} is broken or loops") from None
                    if stat.S_ISREG(ist.st_mode):
                        _check_length(rel, key_prefix)
                        if files is not None:
                            keep((item.path, rel))
                            continue
                        add_key(rel)
                        add_path(item.path)
                        continue
                    if not stat.S_ISDIR(ist.st_mode):
                        raise ScanError(_not_a_file(rel, ist.st_mode, link=True))
                elif not item.is_dir(follow_symlinks=False):
                    # A FIFO, a socket, a device. Skipping it would deploy the build without
                    # it, deleting the live page of that name: refused by name instead.
                    raise ScanError(_not_a_file(rel, item.stat(follow_symlinks=False).st_mode))
                elif not self.stat_folders:
                    folders.append((item.path, rel + "/", chain + (item.path,)))
                    continue
                else:
                    ist = item.stat()
                ident = (ist.st_dev, ist.st_ino)
                if self._loops(ident, chain):
                    raise ScanError(f"symlink loop at {show(rel)}; refusing it")
            except OSError as exc:
                raise ScanError(f"cannot stat {show(rel)}: {exc.strerror}") from None
            self.idents[item.path] = ident
            folders.append((item.path, rel + "/", chain + (item.path,)))
        if files:
            _in_order(files, folders, found)
        if len(folders) > 1:
            folders.sort(key=_folder_key, reverse=True)
        stack.extend(folders)


def _folder_key(folder: Folder) -> str:
    return folder[1]


def _nothing(_: str) -> None:
    raise AssertionError("a walk in key order hands its files to found()")


def _in_order(files: list[tuple[str, str]], folders: list[Folder],
              found: Callable[[str, str], None]) -> None:
    """The files of one folder: to ``found`` those before its first folder (all of them when
    it has none), onto ``folders`` (as file items) the others."""
    if len(files) > 1:
        files.sort(key=_file_key)
    first = min(f[1] for f in folders) if folders else None
    for path, key in files:
        if first is None or key < first:
            found(path, key)
        else:
            folders.append((path, key, None))  # type: ignore[arg-type]


def _file_key(file: tuple[str, str]) -> str:
    return file[1]


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

# Below this many files, hashing stays in this process (threads): a helper process costs
# more than it saves. Tests may lower it to exercise the process path on small trees.
PROCESS_MIN_FILES = 1000



def _hash_all(
    paths: Sequence[str],
    keys: Sequence[str],
    workers: int | None,
    tally: Tally | None = None,
) -> list[tuple[str, int]]:
    """(hash, size) of every path, in order; raises the ScanError of the first failing key.
    Files hashed are counted in ``tally``, if any."""
    n = len(paths)
    workers = max(1, min(workers or default_workers(), n or 1))
    out: list = [None] * n
    errors: list[tuple[int, ScanError]] = []
    if workers == 1:
        # One batch of every file, unless progress is counted (per batch).
        hash_batches(paths, keys, out, errors, [(0, n)] if tally is None else batches(n),
                     tally=tally)
    elif n >= PROCESS_MIN_FILES and can_fork():
        helpers = Helpers(workers - 1, paths, keys, out, errors, tally)
        try:
            helpers.add(n)
            helpers.finish()
        except BaseException:
            helpers.abort()
            raise
    else:
        hash_in_threads(paths, keys, out, errors, workers, tally)
    if errors:
        raise first_error(errors, keys)
    return out


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
) -> Entries:
    """Entries of every file below ``root`` (in columns: a ``Mapping[str, Entry]``); ``headers(key)`` gives (Content-Type,
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
) -> Entries:
    """:func:`scan`, also calling ``meanwhile()`` once: while helper processes hash, if there
    are any, else first. Its errors come before any of the scan's, as if it ran before."""
    job = _Scan(max(1, workers or default_workers()), progress)
    try:
        job.walk(root, excludes, key_prefix, meanwhile, headers)
        if job.walk_parts is not None:
            pass  # the parallel walk ran ``meanwhile`` and hashed everything
        elif job.helpers is not None:
            if job.tally is not None:
                job.tally.start(len(job.paths))
            job.finish_with_helpers(headers, meanwhile)
        else:
            if job.tally is not None:
                job.tally.start(len(job.paths))
            if meanwhile is not None:
                meanwhile()
            job.out = _hash_all(job.paths, job.keys, job.workers, job.tally)
    finally:
        job.stop_helpers()
    if job.tally is not None:
        if job.walk_parts is not None:
            job.tally.start(job.tally.files)
        job.tally.finish()
    return job.entries(headers)


# Once the walk in this process has found this many files, the rest of the build is walked in
# parts by the helpers (manifests.parts). A smaller build is walked here, where hashing
# progress can tell the number of files from the start.
PARALLEL_WALK_MIN_FILES = 5_000


class _Scan:
    """One scan: the files its walk finds (``keys[i]`` at ``paths[i]``, in walk order), their
    (hash, size) in ``out[i]`` as they come, and the helper processes, if any, which start
    once the walk has found PROCESS_MIN_FILES files and hash batches of them as they are
    found. With helpers, the headers are asked for while they hash. A build of more than
    PARALLEL_WALK_MIN_FILES files is walked in parts by the helpers (``walk_parts``)."""

    def __init__(self, workers: int, progress: Progress | None) -> None:
        self.workers = workers
        self.tally = None if progress is None else Tally(progress)
        self.keys: list[str] = []
        self.paths: list[str] = []
        self.out: list = []
        self.errors: list[tuple[int, ScanError]] = []
        self.helpers: Helpers | None = None
        self.in_process = False  # decided: no helper processes for this scan
        # With helpers: the indexes in key order, the headers of the keys in that order.
        self.order: list[int] | None = None
        self.heads: list[tuple[str, str, str]] = []
        self.head_error: Exception | None = None
        self.walk_parts: list[parts.Part] | None = None
        self.token = 0
        self.meanwhile_done = False  # by the parallel walk, in a thread

    def walk(
        self,
        root: str,
        excludes: Iterable[str],
        key_prefix: str,
        meanwhile: Callable[[], object] | None,
        headers: HeadersFor,
    ) -> None:
        """Walk ``root``, handing files to helpers as they are found, and the rest of a large
        build to them in parts. On a refusal, stop the helpers, call ``meanwhile()`` and raise
        the refusal."""
        try:
            walker = _Walker(root, excludes, key_prefix)
            self.token = parts.register(walker, headers)  # before the helpers fork
            stack = walker.start()
            add_key, add_path = self.keys.append, self.paths.append

            def found(path: str, key: str) -> None:
                add_key(key)
                add_path(path)

            # In key order (see _Walker.walk_in_order): what is left for the parts lies past it.
            while stack:
                path, rel, chain = stack.pop()
                if chain is None:  # a file item
                    found(path, rel)
                    continue
                walker.folder(path, rel, chain, _nothing, _nothing, stack, found)
                self._folder_done()
                if (
                    stack and self.helpers is not None
                    and len(self.keys) >= PARALLEL_WALK_MIN_FILES
                ):
                    self._walk_in_parts(stack, meanwhile)
                    return
        except ScanError as exc:
            walk_error = exc
        else:
            return
        finally:
            parts.unregister(self.token)
        self.stop_helpers()
        if meanwhile is not None and not self.meanwhile_done:
            meanwhile()
        raise walk_error

    def _walk_in_parts(
        self, stack: list[Folder], meanwhile: Callable[[], object] | None
    ) -> None:
        """The rest of the walk in parts (manifests.parts), ``meanwhile()`` in a thread of
        this process meanwhile; then the files found here are hashed."""
        helpers = self.helpers
        assert helpers is not None
        helpers.add(len(self.paths), last=True)
        if self.tally is not None:
            self.tally.walking()
        walk = parts.Walk(helpers.executor, self.token, self.workers, self.tally)
        walk.start(stack)  # the helpers exist (forked): a thread may start now
        join = parts.in_thread(meanwhile) if meanwhile is not None else None
        try:
            walk.run(helpers.pump)
        except BaseException:
            walk.abort()
            self.meanwhile_done = True
            first = join() if join is not None else None
            if first is not None:
                raise first from None
            raise
        self.meanwhile_done = True
        if join is not None:
            first = join()
            if first is not None:
                raise first
        helpers.finish()
        self.helpers = None
        self.walk_parts = walk.parts

    def _folder_done(self) -> None:
        """The walk's callback after each folder: start the helpers once there are files
        enough, and hand them the batches filled since."""
        if self.helpers is None:
            if self.in_process or len(self.paths) < PROCESS_MIN_FILES:
                return
            self.helpers = self._start_helpers()
            if self.helpers is None:
                return
        if len(self.paths) - self.helpers.queued >= BATCH:
            self.helpers.add(len(self.paths))
            self.helpers.pump()

    def _start_helpers(self) -> Helpers | None:
        """Helpers for this scan, or None: then the hashing stays in this process."""
        self.in_process = self.workers == 1 or not can_fork()
        if self.in_process:
            return None
        try:
            return Helpers(self.workers, self.paths, self.keys, self.out, self.errors,
                           self.tally)
        except OSError:  # no pipes or processes to spare: hash here after the walk
            self.in_process = True
            return None

    def finish_with_helpers(
        self, headers: HeadersFor, meanwhile: Callable[[], object] | None
    ) -> None:
        """Hand the helpers the rest, call ``meanwhile()`` while they hash, ask the headers
        meanwhile, join in the hashing, and raise the first error: of a file (in key order),
        else of ``headers``."""
        helpers = self.helpers
        assert helpers is not None
        helpers.add(len(self.paths), last=True)
        if meanwhile is not None:
            meanwhile()  # the workers go on meanwhile: the executor hands out every chunk
        helpers.pump()
        self.head_error = self._heads_so_far(headers, helpers)
        helpers.finish()
        self.helpers = None
        if self.errors:
            raise first_error(self.errors, self.keys)
        if self.head_error is not None:
            raise self.head_error

    def _heads_so_far(self, headers: HeadersFor, helpers: Helpers) -> Exception | None:
        """While the helpers hash: sort, and ask for the headers in key order. Stops at the
        error of ``headers``, returned."""
        keys = self.keys
        self.order = sorted(range(len(keys)), key=keys.__getitem__)
        add = self.heads.append
        for n, i in enumerate(self.order):
            if not n % 256:
                helpers.pump()
            try:
                add(headers(keys[i]))
            except Exception as exc:
                return exc
        return None

    def stop_helpers(self) -> None:
        """Stop the helpers at once, if any are left (an error, Ctrl-C)."""
        if self.helpers is not None:
            self.helpers.abort()
            self.helpers = None

    def entries(self, headers: HeadersFor) -> Entries:
        """Every entry, in key order and in columns, once every file is hashed; raises the
        first error of a part walked by the helpers (a file, else the headers)."""
        keys, out = self.keys, self.out
        if self.walk_parts is not None:
            here = parts.make_part(keys, out, [(keys[i], e) for i, e in self.errors], headers)
            every = [*self.walk_parts, here]
            problem = parts.first_problem(every)
            if problem is not None:
                raise problem
            return parts.assemble(every)
        order = self.order
        if order is None:
            order = sorted(range(len(keys)), key=keys.__getitem__)
            heads: Iterable[tuple[str, str, str]] = (headers(keys[i]) for i in order)
        else:
            heads = self.heads
        return build([keys[i] for i in order], [out[i][0] for i in order],
                     [out[i][1] for i in order], heads)
