"""Hash files (xxh3-128) in this process or in threads, batch by batch, counting progress.

Every file is read into one reusable buffer, so memory does not grow with file size. The
forked helper processes (:mod:`.pool`) use the same functions on their batches.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Callable, Iterable, Sequence

import xxhash

from .errors import ScanError, show

CHUNK = 1 << 20  # streaming buffer per hashing worker
_O_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0)

# ``progress(files_hashed, bytes_hashed, files_in_all)``: see :class:`Tally`.
Progress = Callable[[int, int, int], None]


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
        raise ScanError(f"file {show(path)} changed while it was being hashed; build again")
    return digest, size


# Files per work item: large enough that taking work costs little, small enough that the
# workers finish together.
BATCH = 32

def batches(n: int, size: int = BATCH) -> list[tuple[int, int]]:
    return [(s, min(s + size, n)) for s in range(0, n, size)]


def hash_batches(
    paths: Sequence[str],
    keys: Sequence[str],
    out: list,
    errors: list[tuple[int, ScanError]],
    batches: Iterable[tuple[int, int]],
    buf: bytearray | None = None,
    tally: Tally | None = None,
) -> None:
    """Hash ``paths[i]`` into ``out[i]`` for every ``(start, stop)`` range of ``batches``;
    a file that cannot be hashed goes into ``errors`` as ``(i, ScanError)``. Each batch done
    is counted in ``tally``, if any."""
    if buf is None:
        buf = bytearray(CHUNK)
    hash_one = hash_file
    for start, stop in batches:
        try:
            out[start:stop] = done = hash_list(paths[start:stop], buf)
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
                errors.append((i, ScanError(f"cannot read {show(keys[i])}: {exc.strerror}")))
        if tally is not None:
            tally.add(stop - start, sum([r[1] for r in out[start:stop] if r is not None]))


def hash_list(paths: Sequence[str], buf: bytearray) -> list[tuple[str, int]]:
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


class Tally:
    """Files and bytes hashed so far, counted per batch of results (from the helpers, the
    threads or this process), for a ``progress(files_hashed, bytes_hashed, files_in_all)``
    callback. Nothing is reported before :meth:`start` (the end of the walk, when the number
    of files is known); then at most every hundredth of the files or every REPORT_SECONDS,
    and :meth:`finish` makes sure the last report has the totals. Reports are made one at a
    time (under a lock: threads may add), with counts that never go down. An exception from
    ``report`` stops the reports and is raised by :meth:`finish`, once hashing is done (a
    hashing thread must not die of it)."""

    __slots__ = (
        "report", "files", "bytes", "total", "error", "_step", "_next", "_told", "_last",
        "_lock", "_walking",
    )

    def __init__(self, report: Progress) -> None:
        self.report = report
        self.error: Exception | None = None
        self.files = self.bytes = self.total = 0
        self._step = self._next = 0
        self._told = -1  # files at the last report
        self._last = 0.0
        self._lock = threading.Lock()
        self._walking = False

    def walking(self) -> None:
        """The walk goes on while files are hashed (a large build walked in parts): until
        :meth:`start`, report every REPORT_SECONDS with 0 files in all (not known yet)."""
        with self._lock:
            self._walking = True
            self._last = time.monotonic()

    def start(self, total: int) -> None:
        with self._lock:
            self._walking = False
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
            elif self._walking and time.monotonic() - self._last >= REPORT_SECONDS:
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


def first_error(errors: list[tuple[int, ScanError]], keys: Sequence[str]) -> ScanError:
    """The error of the first failing file in key order, whatever worker met it first."""
    return min(errors, key=lambda e: keys[e[0]])[1]


def hash_in_threads(
    paths: Sequence[str],
    keys: Sequence[str],
    out: list,
    errors: list[tuple[int, ScanError]],
    workers: int,
    tally: Tally | None = None,
) -> None:
    """Threads take work items from one shared iterator (atomic under the GIL). They only
    overlap while one of them is in a system call or hashes 64 KiB or more at once."""
    work = iter(batches(len(paths)))
    threads = [
        threading.Thread(target=hash_batches, args=(paths, keys, out, errors, work, None, tally))
        for _ in range(workers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def default_workers() -> int:
    """One per core this process may run on, at most 8 (hashing from memory gains little
    beyond that, and each worker may be a process)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))
