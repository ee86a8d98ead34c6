"""Worker processes that hash chunks of files for this one, free of its GIL (Linux).

A ``concurrent.futures.ProcessPoolExecutor`` with forked workers: measured against the
hand-written pool it replaces (pipes, a binary protocol), it was as fast on 20,000 and on
100,000 files (docs/hashing-pool.md), in a third of the code.
"""

from __future__ import annotations

import gc
import os
import sys
import threading
from typing import TYPE_CHECKING, Sequence

from .errors import ScanError
from .hashing import CHUNK, Tally, hash_batches, hash_list

if TYPE_CHECKING:
    from concurrent.futures import Future

# Files per task: large enough that handing out work costs little (each task is pickled to
# a worker and back), small enough that the workers finish together. See
# docs/hashing-pool.md for 64 against 256.
CHUNK_FILES = 64


def can_fork() -> bool:
    """Workers are forked copies of this process: only on Linux (macOS frameworks do not
    survive a fork) and only while this process runs a single thread (a fork copies no other
    thread, so a lock one of them holds would stay locked in the copy)."""
    if not sys.platform.startswith("linux") or threading.active_count() != 1:
        return False
    try:  # threads started by native code too
        return len(os.listdir("/proc/self/task")) == 1
    except OSError:
        return False


_buf: bytearray | None = None  # a worker's reading buffer, made by its first task


def _hash_chunk(paths: list[str]) -> list[tuple[str, int]]:
    """A worker's task: (hash, size) of each path. Any error sends the chunk back to the
    parent, which hashes it again file by file and records the error as it does for its own."""
    global _buf
    if _buf is None:
        _buf = bytearray(CHUNK)
    return hash_list(paths, _buf)


class Helpers:
    """``workers`` forked processes that hash chunks of files for this one.

    Files are handed out while they are found: ``add(count)`` submits chunks of the first
    ``count`` paths, ``pump()`` (non-blocking) stores the digests and sizes of the chunks
    done into ``out``. ``finish()`` hashes here the chunks no worker has started, last first,
    then waits for the workers. A chunk a worker could not finish (an error, a crash) is
    hashed again here, which records the error in ``errors`` exactly as the in-process path
    does. Chunks done, by the workers or here, are counted in ``tally``, if any.
    """

    def __init__(
        self,
        workers: int,
        paths: Sequence[str],
        keys: Sequence[str],
        out: list,
        errors: list[tuple[int, ScanError]],
        tally: Tally | None = None,
    ) -> None:
        self.workers = workers
        self.paths, self.keys, self.out, self.errors = paths, keys, out, errors
        self.tally = tally
        # Imported here: concurrent.futures and multiprocessing add about 10 ms to the start of
        # every command that imports the scan, most of which never hash (paths, report...).
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        # No collection in a worker: a finaliser of this process's garbage must not run twice.
        self.executor = ProcessPoolExecutor(
            workers, mp_context=multiprocessing.get_context("fork"), initializer=gc.disable
        )
        self.queued = 0  # paths already submitted
        self.futures: dict[Future, tuple[int, int]] = {}  # in submission order
        self.done: list[Future] = []  # appended to by the executor's thread
        self.redo: list[tuple[int, int]] = []
        self.buf: bytearray | None = None  # for the chunks hashed here

    def add(self, count: int, last: bool = False) -> None:
        """Submit the paths up to ``count`` in chunks; the rest of a chunk waits for more
        paths unless ``last``."""
        while count - self.queued >= CHUNK_FILES or (last and count > self.queued):
            chunk = start, stop = self.queued, min(self.queued + CHUNK_FILES, count)
            self.queued = stop
            if len(self.out) < stop:
                self.out.extend([None] * (stop - len(self.out)))
            try:
                future = self.executor.submit(_hash_chunk, self.paths[start:stop])
            except (RuntimeError, OSError):  # BrokenProcessPool, or no fork: hash it here
                self.redo.append(chunk)
                continue
            self.futures[future] = chunk
            future.add_done_callback(self.done.append)

    def pump(self) -> None:
        """Without blocking: store the results of the chunks done."""
        while self.done:
            self._take(self.done.pop())

    def _take(self, future: Future) -> None:
        chunk = self.futures.pop(future, None)
        if chunk is None:  # taken already, or cancelled and hashed here
            return
        try:
            results = future.result()
        except Exception:
            self.redo.append(chunk)
            return
        start, stop = chunk
        self.out[start:stop] = results
        if self.tally is not None:
            self.tally.add(stop - start, sum([size for _, size in results]))

    def finish(self) -> None:
        """Hash what is left, sharing it with the workers, and wait for them."""
        self.add(len(self.paths), last=True)
        while self.futures:
            self.pump()
            if not self.futures:
                break
            last = next(reversed(self.futures))
            if last.cancel():  # no worker has started it: hash it here
                self._hash_here(self.futures.pop(last))
                continue
            for future in list(self.futures):  # every chunk is started: wait for them
                future.exception()
                self._take(future)
        self.executor.shutdown(wait=True)
        for chunk in self.redo:
            self._hash_here(chunk)
        self.redo = []

    def abort(self) -> None:
        """Stop at once (an error or Ctrl-C in this process): the chunks not started are
        dropped, the workers exit after the one they hash."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def _hash_here(self, chunk: tuple[int, int]) -> None:
        if self.buf is None:
            self.buf = bytearray(CHUNK)
        hash_batches(
            self.paths, self.keys, self.out, self.errors, (chunk,), self.buf, self.tally
        )
