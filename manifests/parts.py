"""The parallel walk of a large build: parts of the tree are walked, hashed and given their
headers in the forked helper processes, then put together in key order, in columns.

On a million files the walk is half of a scan (two system calls a folder, four a file), and
in one process it leaves the other cores idle. Here the walk, once it has found
``scan.PARALLEL_WALK_MIN_FILES`` files, hands the folders it has not listed yet to the
helpers: each part lists folders (by the very rules of :class:`manifests.scan._Walker`) until
it has found BUDGET files, hashes them, asks their headers, and sends back its files in
columns with the folders it did not get to, which go to the next parts. Folders come off a
walk's stack in key order, so parts mostly hold runs of keys that do not overlap and are put
together by concatenation (else by one sort).
"""

from __future__ import annotations

import itertools
import operator
import threading
from array import array
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from typing import Any, Callable

from .columns import HASH_WIDTH, SEP, Entries, Head, Tabler
from .errors import ScanError
from .hashing import CHUNK, Tally, hash_batches

BUDGET = 4096  # files a part finds before it hands back the folders it has not listed
SLICE = 512  # folders given to one part at most
Folder = tuple[str, str, tuple[str, ...]]  # as manifests.scan: path, key prefix, chain
HeadersFor = Callable[[str], Head]
_FAILED = "0" * HASH_WIDTH  # in place of the hash of a file that could not be read


@dataclass(slots=True)
class Part:
    """Files of a part in key order, in columns (see :class:`~manifests.columns.Entries`),
    what went wrong, and the folders it left."""

    text: str  # the keys, sorted, joined by SEP (one object to send back, not one per key)
    count: int
    first: str  # the first key and the last ("" when none)
    last: str
    hashes: str
    sizes: array
    heads: array
    table: tuple[Head, ...]
    nbytes: int
    errors: list[tuple[str, ScanError]] = field(default_factory=list)  # files not hashed
    head_error: tuple[str, Exception] | None = None  # the first key whose headers failed
    left: list[Folder] = field(default_factory=list)  # folders not listed, in stack order


def make_part(
    keys: list[str],
    out: list,
    errors: list[tuple[str, ScanError]],
    headers: HeadersFor,
    left: list[Folder] | None = None,
) -> Part:
    """A part of the files ``keys`` (any order) with ``out[i]`` = (hash, size) of
    ``keys[i]`` (None: not hashed, with its error among ``errors``)."""
    if not _increasing(keys):  # (a part's keys mostly come in order: folders do)
        order = sorted(range(len(keys)), key=keys.__getitem__)
        keys = [keys[i] for i in order]
        out = [out[i] for i in order]
    hashes = "".join([r[0] if r is not None else _FAILED for r in out])
    sizes = array("q", [r[1] if r is not None else 0 for r in out])
    tabler = Tabler()
    head_error = None
    try:
        heads = array("I", map(tabler, map(headers, keys)))
    except Exception:  # again key by key, to know the first that fails
        heads = array("I")
        for key in keys:
            try:
                heads.append(tabler(headers(key)))
            except Exception as exc:
                head_error = (key, exc)
                break
    return Part(SEP.join(keys), len(keys), keys[0] if keys else "", keys[-1] if keys else "",
                hashes, sizes, heads, tuple(tabler.rows), sum(sizes), errors, head_error,
                left if left is not None else [])


def _increasing(keys: list[str]) -> bool:
    return all(map(operator.lt, keys, itertools.islice(keys, 1, None)))


def walk_part(walker: Any, headers: HeadersFor, stack: list[Folder], buf: bytearray,
              budget: int = BUDGET) -> Part:
    """List folders off ``stack`` until ``budget`` files are found, hash them, and give the
    part (its ``left``: the rest of ``stack``). Raises the walk's ScanError."""
    keys: list[str] = []
    paths: list[str] = []
    add_key, add_path = keys.append, paths.append

    def found(path: str, key: str) -> None:
        add_key(key)
        add_path(path)

    walker.walk_in_order(stack, found, lambda: len(keys) < budget)
    out: list = [None] * len(keys)
    failed: list[tuple[int, ScanError]] = []
    hash_batches(paths, keys, out, failed, [(0, len(keys))], buf)
    return make_part(keys, out, [(keys[i], e) for i, e in failed], headers, stack)


# The walker and headers of each scan in progress, by token: set before the helpers are
# forked, so that they have them (a part's task names its scan by token).
_JOBS: dict[int, tuple[Any, HeadersFor]] = {}
_tokens = itertools.count(1)
_buf: bytearray | None = None  # a helper's reading buffer


def register(walker: Any, headers: HeadersFor) -> int:
    token = next(_tokens)
    _JOBS[token] = (walker, headers)
    return token


def unregister(token: int) -> None:
    _JOBS.pop(token, None)


def _part_task(token: int, stack: list[Folder]) -> Part:
    """A helper's task: one part of scan ``token``."""
    global _buf
    if _buf is None:
        _buf = bytearray(CHUNK)
    walker, headers = _JOBS[token]
    part = walk_part(walker, headers, stack, _buf)
    if part.head_error is not None:  # an exception of the caller's headers may not pickle:
        part.head_error = (part.head_error[0], ScanError("headers"))  # told apart, redone here
    return part


class Walk:
    """The parallel walk of one scan: folders still to list (``pending``, in stack order)
    handed to the helpers' ``executor`` in parts, at most two per worker at a time; each
    part done is kept, its files counted in ``tally``, its folders left put back. A part
    that failed for another reason than the walk's refusal (a helper lost, a result that
    did not pickle, a headers error) is done again here, which raises or records what its
    first try met."""

    def __init__(self, executor: Any, token: int, workers: int, tally: Tally | None) -> None:
        self.executor = executor
        self.token = token
        self.workers = max(1, workers)
        self.tally = tally
        self.parts: list[Part] = []
        self.runs: list[list[Folder]] = []
        self.inflight: dict[Future, list[Folder]] = {}
        self.buf: bytearray | None = None

    def submit(self) -> None:
        """Hand out folders while fewer than two parts a worker are under way: from one run
        at a time (a run: folders next to each other in key order, with nothing under way
        between them), its first ones, so that every part walks a range of keys of its own."""
        runs = self.runs
        while runs and len(self.inflight) < 2 * self.workers:
            waiting = sum(len(r) for r in runs)
            run = runs[-1]
            k = max(1, min(waiting // (2 * self.workers), SLICE, len(run)))
            items = run[-k:]
            del run[-k:]
            if not run:
                runs.pop()
            self.inflight[self.executor.submit(_part_task, self.token, items)] = items

    def start(self, pending: list[Folder]) -> None:
        """The first parts, of ``pending`` (a stack: its last folder first)."""
        if pending:
            self.runs.append(pending)
        self.submit()

    def run(self, pump: Callable[[], None]) -> None:
        """Walk every folder handed out or left, and below. ``pump()`` is called between
        parts (the helpers' hashing of the files the walk found before)."""
        while self.inflight:
            done, _ = wait(list(self.inflight), timeout=0.05, return_when=FIRST_COMPLETED)
            pump()
            for future in done:
                items = self.inflight.pop(future)
                part = self._result(future, items)
                self.parts.append(part)
                if part.left:  # a run of its own: they lie between its keys and the next
                    self.runs.append(part.left)
                    part.left = []
                if self.tally is not None:
                    self.tally.add(part.count, part.nbytes)
            self.submit()

    def _result(self, future: Future, items: list[Folder]) -> Part:
        try:
            part = future.result()
        except ScanError:
            raise
        except Exception:
            part = None
        if part is not None and part.head_error is None:
            return part
        walker, headers = _JOBS[self.token]
        if self.buf is None:
            self.buf = bytearray(CHUNK)
        return walk_part(walker, headers, list(items), self.buf)

    def abort(self) -> None:
        for future in self.inflight:
            future.cancel()
        self.inflight = {}


def assemble(parts: list[Part]) -> Entries:
    """Every part's files in key order, in columns: the parts' runs put end to end when they
    do not overlap (the usual case: the keys stay one text), else one sort."""
    parts = sorted((p for p in parts if p.count), key=lambda p: p.first)
    tabler = Tabler()
    sizes = array("q")
    heads = array("I")
    for p in parts:
        sizes += p.sizes
        number = [tabler(row) for row in p.table]
        if number == list(range(len(number))):
            heads += p.heads
        else:
            heads += array("I", map(number.__getitem__, p.heads))
    hashes = "".join([p.hashes for p in parts])
    text = SEP.join([p.text for p in parts])
    table = tuple(tabler.rows)
    if all(a.last < b.first for a, b in zip(parts, parts[1:])):
        return Entries(None, hashes, sizes, heads, table, text)
    names = text.split(SEP) if parts else []
    order = sorted(range(len(names)), key=names.__getitem__)
    w = HASH_WIDTH
    return Entries(
        [names[i] for i in order],
        "".join([hashes[i * w : i * w + w] for i in order]),
        array("q", [sizes[i] for i in order]),
        array("I", [heads[i] for i in order]),
        table,
    )


def first_problem(parts: list[Part]) -> Exception | None:
    """The error to raise for ``parts``: of the first file (in key order) that could not be
    hashed, else of the first key whose headers failed; None when there is none."""
    errors = [e for p in parts for e in p.errors]
    if errors:
        return min(errors, key=lambda e: e[0])[1]
    heads = [p.head_error for p in parts if p.head_error is not None]
    if heads:
        return min(heads, key=lambda e: e[0])[1]
    return None


def in_thread(work: Callable[[], object]) -> Callable[[], BaseException | None]:
    """Start ``work()`` in a thread; the function returned waits for it and gives what it
    raised (None when nothing)."""
    box: list[BaseException] = []

    def run() -> None:
        try:
            work()
        except BaseException as exc:  # handed to the caller, raised there
            box.append(exc)

    thread = threading.Thread(target=run, name="planner-meanwhile", daemon=True)
    thread.start()

    def join() -> BaseException | None:
        thread.join()
        return box[0] if box else None

    return join
