"""A site's entries held in columns: one list of keys, one text of hashes, one array of sizes
and one of header rows, instead of an object per file.

A million files make a million :class:`~manifests.model.Entry` objects, each with its own
hash text: about 250 MB, and seconds to make and compare. In columns the same million take
about 130 MB (mostly the keys), load from a manifest without a per-file object, and compare
column against column. :class:`Entries` is still a read-only ``Mapping[str, Entry]``: an
entry is made when one is asked for.
"""

from __future__ import annotations

from array import array
from bisect import bisect_left
from collections.abc import ItemsView, Mapping, Sequence, ValuesView
from typing import Callable, Iterable, Iterator

from .entry import Entry, _new_entry

HASH_WIDTH = 32  # xxh3-128 as lowercase hex
SEP = "\x00"  # between keys in a text of keys: no key holds it (manifests.model.check_key)

Head = tuple[str, str, str]  # (Content-Type, Cache-Control, Content-Encoding)


class Entries(Mapping):
    """Entries sorted by key, in columns: the keys (sorted, unique: ``names``, a list, or
    ``text``, the same keys joined by NUL, which no key holds; each made from the other when
    first asked for), ``hashes`` (every hash, HASH_WIDTH characters each, one after another;
    or, when some hash is not that wide, a list of them), ``sizes`` (``array('q')``),
    ``heads`` (``array('I')``, each an index into ``table``, the distinct header rows). Built
    by :func:`entries_from` or by those who hold columns already (the scan, the manifest
    loader); never changed after. A build compared with a manifest and found the same never
    makes an object per key: both sides' keys stay one text."""

    __slots__ = ("_names", "_text", "hashes", "sizes", "heads", "table", "_check")

    def __init__(
        self,
        names: list[str] | None,
        hashes: str | list[str],
        sizes: array,
        heads: array,
        table: tuple[Head, ...],
        text: str | None = None,
        check: "Callable[[list[str]], None] | None" = None,
    ) -> None:
        self._check = check  # of the keys once split from ``text`` (a manifest's: in order?)
        self._names = names
        self._text = text
        self.hashes = hashes
        self.sizes = sizes
        self.heads = heads
        self.table = table

    @property
    def names(self) -> list[str]:
        """The keys, sorted."""
        if self._names is None:
            names = self._text.split(SEP) if self.sizes else []  # type: ignore[union-attr]
            if self._check is not None:
                self._check(names)
                self._check = None
            self._names = names
        return self._names

    @property
    def text(self) -> str:
        """The keys joined by NUL."""
        if self._text is None:
            self._text = SEP.join(self._names)  # type: ignore[arg-type]
        return self._text

    # --- one entry -----------------------------------------------------------------------

    def index(self, key: str) -> int:
        """The row of ``key``, or -1."""
        names = self.names
        i = bisect_left(names, key)
        return i if i < len(names) and names[i] == key else -1

    def hash_at(self, i: int) -> str:
        h = self.hashes
        return h[i] if type(h) is list else h[i * HASH_WIDTH : (i + 1) * HASH_WIDTH]

    def head_at(self, i: int) -> Head:
        return self.table[self.heads[i]]

    def entry_at(self, i: int) -> Entry:
        ctype, cc, enc = self.table[self.heads[i]]
        return _new_entry(self.hash_at(i), self.sizes[i], ctype, cc, enc)

    # --- Mapping -------------------------------------------------------------------------

    def __getitem__(self, key: str) -> Entry:
        i = self.index(key) if type(key) is str else -1
        if i < 0:
            raise KeyError(key)
        return self.entry_at(i)

    def __contains__(self, key: object) -> bool:
        return type(key) is str and self.index(key) >= 0

    def __iter__(self) -> Iterator[str]:
        return iter(self.names)

    def __len__(self) -> int:
        return len(self.sizes)

    def items(self) -> "_Items":  # type: ignore[override]
        return _Items(self)

    def values(self) -> "_Values":  # type: ignore[override]
        return _Values(self)

    def rows(self) -> Iterator[tuple[str, Entry]]:
        """(key, entry) of every row in key order, without a lookup per key."""
        names, sizes, heads, table = self.names, self.sizes, self.heads, self.table
        hashes = self.hashes
        new = _new_entry
        if type(hashes) is list:
            for i, key in enumerate(names):
                yield key, new(hashes[i], sizes[i], *table[heads[i]])
            return
        w = HASH_WIDTH
        for i, key in enumerate(names):
            yield key, new(hashes[i * w : i * w + w], sizes[i], *table[heads[i]])

    def total_size(self) -> int:
        return sum(self.sizes)

    def head_rows(self) -> list[Head]:
        """The header row of every key, in key order (the rows shared, not copied)."""
        table = self.table
        return [table[h] for h in self.heads]

    def same_as(self, other: "Entries") -> bool:
        """Every key, hash, size and header row equal: column against column."""
        if self.sizes != other.sizes:
            return False
        if self._text is not None and other._text is not None:
            if self._text != other._text:
                return False
        elif self.names != other.names:
            return False
        if self.hashes != other.hashes and _hash_list(self) != _hash_list(other):
            return False
        if self.table == other.table:
            return self.heads == other.heads
        return self.head_rows() == other.head_rows()

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Entries):
            return self.same_as(other)
        if isinstance(other, Mapping):
            return len(self) == len(other) and all(
                other.get(k) == e for k, e in self.rows()
            )
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        shown = ", ".join(f"{k!r}: {e!r}" for k, e in _first(self.rows(), 3))
        more = f", ... ({len(self):,} in all)" if len(self) > 3 else ""
        return f"Entries({{{shown}{more}}})"

    def __reduce__(self):  # pickled as its columns (a saved plan, a helper's result)
        return (Entries, (None, self.hashes, self.sizes, self.heads, self.table, self.text))


def _first(it: Iterable, n: int) -> list:
    out = []
    for x in it:
        if len(out) == n:
            break
        out.append(x)
    return out


def _hash_list(e: Entries) -> list[str]:
    h = e.hashes
    if type(h) is list:
        return h
    w = HASH_WIDTH
    return [h[i : i + w] for i in range(0, len(h), w)]


class _Items(ItemsView):
    __slots__ = ()

    def __iter__(self):
        return self._mapping.rows()  # type: ignore[attr-defined]


class _Values(ValuesView):
    __slots__ = ()

    def __iter__(self):
        return (e for _, e in self._mapping.rows())  # type: ignore[attr-defined]


class KeyList(Sequence):
    """The keys of an :class:`Entries`, as a read-only sequence that splits them from their
    text only when one is asked for (a plan with nothing to deploy only counts them). Equal
    to a tuple or list of the same keys."""

    __slots__ = ("entries",)

    def __init__(self, entries: Entries) -> None:
        self.entries = entries

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i):  # type: ignore[override]
        return self.entries.names[i]

    def __iter__(self) -> Iterator[str]:
        return iter(self.entries.names)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, KeyList):
            return self.entries.text == other.entries.text
        if isinstance(other, (tuple, list)):
            return len(other) == len(self) and list(other) == self.entries.names
        return NotImplemented

    def __hash__(self) -> int:
        return hash(tuple(self.entries.names))

    def __repr__(self) -> str:
        return f"KeyList({len(self):,} keys)"


class Tabler:
    """Gives each distinct header row a number, in order of first use."""

    __slots__ = ("rows", "number")

    def __init__(self) -> None:
        self.rows: list[Head] = []
        self.number: dict[Head, int] = {}

    def __call__(self, head: Head) -> int:
        n = self.number.get(head)
        if n is None:
            n = self.number[head] = len(self.rows)
            self.rows.append(head)
        return n


EMPTY = Entries([], "", array("q"), array("I"), (), "")


def entries_from(mapping: Mapping[str, Entry]) -> Entries:
    """``mapping`` in columns (itself when it is already)."""
    if isinstance(mapping, Entries):
        return mapping
    names = sorted(mapping)
    rows = [mapping[k] for k in names]
    return build(names, [e.hash for e in rows], [e.size for e in rows],
                 [(e.content_type, e.cache_control, e.content_encoding) for e in rows])


def build(names: list[str], hashes: list[str], sizes: Iterable[int],
          heads: Iterable[Head]) -> Entries:
    """Columns from one list per field, rows in key order (``names`` sorted, unique)."""
    tabler = Tabler()
    numbers = array("I", map(tabler, heads))
    return Entries(names, joined_hashes(hashes), array("q", sizes), numbers, tuple(tabler.rows))


def joined_hashes(hashes: list[str]) -> str | list[str]:
    """The hashes as one text when every one is HASH_WIDTH wide (they all are, but in tests
    and hand-made manifests), else the list itself."""
    if not hashes or set(map(len, hashes)) == {HASH_WIDTH}:
        return "".join(hashes)
    return list(hashes)
