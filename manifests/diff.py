"""Compare two manifests. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from array import array

from .columns import HASH_WIDTH, Entries, KeyList
from .model import Manifest


@dataclass(frozen=True)
class Diff:
    """Keys of the new build sorted into four disjoint, sorted groups.

    ``modified`` holds keys whose content or headers changed; ``header_only`` is the subset
    of ``modified`` whose content is the same (only Content-Type or Cache-Control changed).
    """

    added: tuple[str, ...]
    modified: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: tuple[str, ...]
    header_only: frozenset[str] = frozenset()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.modified or self.deleted)


def diff(old: Manifest | None, new: Manifest) -> Diff:
    """Return what turns ``old`` into ``new``. ``old=None`` is a first deploy: all added.

    Column against column (see :mod:`.columns`): runs of keys both sides share are compared
    a block at a time (keys, hashes, sizes and header rows each as one slice), and only a
    block that differs row by row; keys in one side only are found by a merge of the two
    sorted key lists."""
    if old is None:
        return Diff(added=new.keys, modified=(), deleted=(), unchanged=())
    a, b = old.columns, new.columns
    if a.same_as(b):  # the keys stay one text: a plan with nothing to deploy only counts them
        return Diff((), (), (), KeyList(b))  # type: ignore[arg-type]
    out = _Out(a, b)
    ak, bk = a.names, b.names
    i = j = 0
    na, nb = len(ak), len(bk)
    block = BLOCK
    while i < na and j < nb:
        if ak[i : i + block] == bk[j : j + block] and i + block <= na and j + block <= nb:
            out.same_keys(i, j, block)
            i += block
            j += block
            continue
        # A merge step at a time until the two sides line up again (or a block's worth).
        for _ in range(block):
            if i >= na or j >= nb:
                break
            x, y = ak[i], bk[j]
            if x == y:
                out.same_keys(i, j, 1)
                i += 1
                j += 1
            elif x < y:
                out.deleted.append(x)
                i += 1
            else:
                out.added.append(y)
                j += 1
    out.deleted.extend(ak[i:])
    out.added.extend(bk[j:])
    return Diff(tuple(out.added), tuple(out.modified), tuple(out.deleted),
                tuple(out.unchanged), frozenset(out.header_only))


BLOCK = 256  # rows compared at once while both sides hold the same keys


class _Out:
    """The four groups as the merge fills them, and how to compare rows of ``a`` (old) and
    ``b`` (new) that hold the same key."""

    def __init__(self, a: Entries, b: Entries) -> None:
        self.a, self.b = a, b
        self.added: list[str] = []
        self.modified: list[str] = []
        self.deleted: list[str] = []
        self.unchanged: list[str] = []
        self.header_only: set[str] = set()
        # Old header rows numbered as the new table numbers them (-1: a row it lacks), so
        # header columns compare as numbers.
        number = {row: n for n, row in enumerate(b.table)}
        self.renumber = [number.get(row, -1) for row in a.table]
        self.same_table = a.table == b.table
        self.wide = type(a.hashes) is str and type(b.hashes) is str

    def _heads(self, i: int, n: int) -> list[int] | array:
        heads = self.a.heads[i : i + n]
        return heads if self.same_table else [self.renumber[h] for h in heads]

    def same_keys(self, i: int, j: int, n: int) -> None:
        """Rows ``i..i+n`` of ``a`` and ``j..j+n`` of ``b`` hold the same keys."""
        a, b = self.a, self.b
        w = HASH_WIDTH
        if (
            self.wide
            and a.hashes[i * w : (i + n) * w] == b.hashes[j * w : (j + n) * w]
            and a.sizes[i : i + n] == b.sizes[j : j + n]
            and self._heads(i, n) == (
                b.heads[j : j + n] if self.same_table else b.heads[j : j + n].tolist())
        ):
            self.unchanged.extend(b.names[j : j + n])
            return
        renumber = self.renumber
        for k in range(n):
            x, y = i + k, j + k
            key = b.names[y]
            same_content = a.hash_at(x) == b.hash_at(y) and a.sizes[x] == b.sizes[y]
            if same_content and renumber[a.heads[x]] == b.heads[y]:
                self.unchanged.append(key)
            else:
                self.modified.append(key)
                if same_content:
                    self.header_only.add(key)
