"""Forked helper processes that hash batches of files for this one, free of its GIL (Linux).

The helpers take batches of paths through pipes and answer with digests and sizes, in a small
binary protocol; this process hands out batches while its walk goes on, and hashes too.
"""

from __future__ import annotations

import collections
import gc
import os
import struct
import sys
import threading
from typing import Callable, Sequence

try:
    import fcntl
except ImportError:  # not on Windows; only the Linux helpers use it
    fcntl = None  # type: ignore[assignment]

from .errors import ScanError
from .hashing import BATCH, CHUNK, Tally, hash_batches, hash_list


def can_fork() -> bool:
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


class Helpers:
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
        tally: Tally | None = None,
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

    def call_meanwhile(self, meanwhile: Callable[[], object]) -> None:
        """Call ``meanwhile()`` after handing the helpers a good part of what is left (the
        pipes hold it), since nothing is handed out while it runs."""
        share = len(self.pending) // (len(self.helpers) + 1)
        self.in_flight = max(_IN_FLIGHT, min(share, _IN_FLIGHT_MEANWHILE))
        self.pump()
        meanwhile()
        self.in_flight = _IN_FLIGHT

    def abort(self) -> None:
        """Stop the helpers at once (an error or Ctrl-C in this process)."""
        for h in list(self.helpers):
            self.helpers.remove(h)
            self._end(h, kill=True)

    def _hash_here(self, batch: tuple[int, int]) -> None:
        if self.buf is None:
            self.buf = bytearray(CHUNK)
        hash_batches(
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
                results = hash_list(paths, buf)
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
