"""The manifest: what a deployed site consists of, entry by entry.

A manifest is a frozen value. Its serialised form is gzipped JSON, written deterministically:
the same site (and the same metadata) gives the same bytes, byte for byte.
"""

from __future__ import annotations

import gzip
import itertools
import json
import operator
import posixpath
import zlib
from array import array
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Iterable, Iterator, Mapping

from .columns import HASH_WIDTH, SEP, Entries, Head, entries_from
from .entry import Entry, _new_entry
from .errors import CorruptManifest

# Written: 2 (columns). Read: 1 (an object per entry) and 2.
FORMAT_VERSION = 2
READABLE_VERSIONS = (1, 2)

# Folder, relative to the target root, that holds the tool's own state (manifest, logs).
STATE_DIR = ".planner"

# Content-Encoding a file may be stored with ("": as built, not compressed).
CONTENT_ENCODINGS = ("", "gzip", "br")


@dataclass(frozen=True)
class Manifest:
    """A deployed (or about to be deployed) site: entries keyed by POSIX relative path, held
    in columns (:class:`~manifests.columns.Entries`; any mapping given is turned into one)."""

    entries: Mapping[str, Entry]
    target: str = ""
    deploy_id: str = ""
    previous_deploy_id: str | None = None
    tool_version: str = ""
    format_version: int = FORMAT_VERSION  # as read (a new manifest is always written as 2)
    # key -> the object's ETag as the store returned it on write (quotes removed), for the
    # keys it is known of. Not part of an entry: a build's entries have none, and entries
    # compare (and deploy ids derive) by content and headers alone.
    etags: Mapping[str, str] = field(default_factory=dict)
    _sorted: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.entries, Entries):
            object.__setattr__(self, "entries", entries_from(self.entries))
        if not isinstance(self.etags, (MappingProxyType, Etags)):
            object.__setattr__(self, "etags", MappingProxyType(dict(self.etags)))

    @property
    def columns(self) -> Entries:
        return self.entries  # type: ignore[return-value]

    @property
    def keys(self) -> tuple[str, ...]:
        """Entry keys in sorted order."""
        if not self._sorted and self.entries:
            object.__setattr__(self, "_sorted", tuple(self.columns.names))
        return self._sorted

    @property
    def total_size(self) -> int:
        return self.columns.total_size()

    def replace(self, **changes: object) -> "Manifest":
        values = {
            "entries": self.entries,
            "target": self.target,
            "deploy_id": self.deploy_id,
            "previous_deploy_id": self.previous_deploy_id,
            "tool_version": self.tool_version,
            "format_version": self.format_version,
            "etags": self.etags,
        }
        values.update(changes)
        return Manifest(**values)  # type: ignore[arg-type]

    # --- serialisation -------------------------------------------------------------------

    def to_json_bytes(self) -> bytes:
        """Format 2: the entries as columns (keys; hashes as one text; sizes; the distinct
        header rows and each key's row), so that a million entries load without an object
        per entry. Header rows are numbered by first use in key order: equal manifests give
        equal bytes."""
        cols = self.columns
        table, heads = _first_use_order(cols.table, cols.heads)
        doc: dict[str, object] = {
            "format_version": FORMAT_VERSION,
            "tool_version": self.tool_version,
            "target": self.target,
            "deploy_id": self.deploy_id,
            "previous_deploy_id": self.previous_deploy_id,
            "keys": cols.text,
            "hashes": cols.hashes,
            "sizes": cols.sizes.tolist(),
            "headers": [list(row) for row in table],
            "header_of": heads.tolist(),
        }
        if self.etags:
            # Only when known; one per key, in the keys' order ("" where unknown), joined.
            etags = self.etags
            if isinstance(etags, Etags) and etags.names_text == cols.text:
                doc["etags"] = etags.text  # as read, for the same keys
            else:
                get = etags.get
                doc["etags"] = SEP.join([get(key, "") for key in cols.names])
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode()

    def content_digest_chunks(self) -> Iterator[bytes]:
        """The bytes that identify the site itself (entries only, no ids), in pieces: the
        JSON list of ``[key, hash, size, content type, cache control(, encoding)]`` rows,
        as format 1 wrote its entries (so deploy ids did not change with format 2)."""
        dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
        yield b"["
        first = True
        batch: list[str] = []
        for key, e in self.columns.rows():
            batch.append(dumps([key, *_entry_list(e)]))
            if len(batch) == 4096:
                yield ((",".join(batch)) if first else ("," + ",".join(batch))).encode()
                first = False
                batch = []
        if batch:
            yield ((",".join(batch)) if first else ("," + ",".join(batch))).encode()
        yield b"]"

    def content_digest_input(self) -> bytes:
        """The bytes that identify the site itself (entries only, no ids)."""
        return b"".join(self.content_digest_chunks())

    def dumps(self) -> bytes:
        """Gzipped JSON; mtime 0 and no file name, so equal manifests give equal bytes."""
        return gzip.compress(self.to_json_bytes(), compresslevel=6, mtime=0)

    @classmethod
    def loads(cls, data: bytes) -> "Manifest":
        try:
            raw = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError
            raise CorruptManifest(f"manifest is not valid gzip ({exc})") from None
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptManifest(f"manifest is not valid JSON ({exc})") from None
        del raw
        if not isinstance(doc, dict):
            raise CorruptManifest("manifest is not a JSON object")
        version = doc.get("format_version")
        if type(version) is not int or version not in READABLE_VERSIONS:
            raise CorruptManifest(
                f"manifest format version {version!r} is not supported (expected "
                f"{' or '.join(map(str, READABLE_VERSIONS))})"
            )
        try:
            entries = _v1_entries(doc["entries"]) if version == 1 else _v2_entries(doc)
            return cls(
                entries=entries,
                target=_text(doc, "target"),
                deploy_id=_text(doc, "deploy_id"),
                previous_deploy_id=_text(doc, "previous_deploy_id", optional=True),
                tool_version=_text(doc, "tool_version"),
                format_version=version,
                etags=(_etags(doc.get("etags"), entries.names) if version == 1
                       else _etags_text(doc.get("etags"), entries)),
            )
        except CorruptManifest:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise CorruptManifest(f"manifest is malformed ({type(exc).__name__}: {exc})") from None


def _first_use_order(table: tuple[Head, ...], heads: array) -> tuple[tuple[Head, ...], array]:
    """``table`` numbered by first use in ``heads`` (rows no key uses dropped), and ``heads``
    renumbered so: the same entries give the same columns, however they were built."""
    firsts = []
    for n in range(len(table)):
        try:
            firsts.append((heads.index(n), n))
        except ValueError:
            pass
    order = [n for _, n in sorted(firsts)]
    if order == list(range(len(table))):
        return table, heads
    renumber = [0] * len(table)
    for new, old in enumerate(order):
        renumber[old] = new
    return tuple(table[n] for n in order), array("I", map(renumber.__getitem__, heads))


def _text(doc: dict, name: str, optional: bool = False) -> str:
    value = doc.get(name, None if optional else "")
    if value is None and optional:
        return None  # type: ignore[return-value]
    if type(value) is not str:
        raise CorruptManifest(f"manifest field {name!r} is not text")
    return value


def _etags(raw: object, names: list[str]) -> MappingProxyType:
    """The optional ``etags``: a list of text, one per entry in the entries' order, ""
    where none is known."""
    if raw is None:
        return MappingProxyType({})
    if (
        type(raw) is not list
        or len(raw) != len(names)
        or not all(type(e) is str for e in raw)
    ):
        raise CorruptManifest("manifest field 'etags' is not a list of text, one per entry")
    return MappingProxyType({k: e for k, e in zip(names, raw) if e})


def _entry_list(e: Entry) -> list[object]:
    if e.content_encoding:
        return [e.hash, e.size, e.content_type, e.cache_control, e.content_encoding]
    return [e.hash, e.size, e.content_type, e.cache_control]


def _strictly_increasing(names: list[str]) -> bool:
    return all(map(operator.lt, names, itertools.islice(names, 1, None)))


def _v2_entries(doc: dict) -> Entries:
    """The columns of a format 2 manifest, checked column by column. The keys stay one text
    (checked in bulk: no object per key); their order is checked when they are first split
    (a build found the same as the manifest never splits them: equal to the build's own
    keys, they are in order)."""
    text, hashes, sizes = doc["keys"], doc["hashes"], doc["sizes"]
    table_raw, heads_raw = doc["headers"], doc["header_of"]
    if type(sizes) is not list or not all(type(s) is int for s in sizes):
        raise CorruptManifest("manifest field 'sizes' is not a list of whole numbers")
    n = len(sizes)
    if type(text) is not str or (text.count(SEP) + 1 if text else 0) != n:
        raise CorruptManifest(f"manifest field 'keys' is not {n} keys joined by NUL")
    if n and not _keys_ok_text(text):
        for key in text.split(SEP):
            check_key(key)  # names the first bad key
    if type(hashes) is str:
        if len(hashes) != HASH_WIDTH * n:
            raise CorruptManifest(f"manifest field 'hashes' is not {n} hashes of {HASH_WIDTH}")
    elif type(hashes) is not list or len(hashes) != n or not all(type(h) is str for h in hashes):
        raise CorruptManifest("manifest field 'hashes' is not one hash per key")
    try:
        size_col = array("q", sizes)
    except OverflowError:
        raise CorruptManifest("manifest field 'sizes' has a size too large") from None
    if n and min(size_col) < 0:
        raise CorruptManifest("manifest field 'sizes' has a negative size")
    if type(table_raw) is not list or not all(
        type(r) is list and len(r) == 3 and all(type(x) is str for x in r) for r in table_raw
    ):
        raise CorruptManifest("manifest field 'headers' is not a list of [type, cache, encoding]")
    for row in table_raw:
        if row[2] not in CONTENT_ENCODINGS:
            raise CorruptManifest(f"manifest has an unknown content encoding {row[2]!r}")
    if (
        type(heads_raw) is not list or len(heads_raw) != n
        or not all(type(h) is int for h in heads_raw)
    ):
        raise CorruptManifest("manifest field 'header_of' is not one number per key")
    try:
        heads = array("I", heads_raw)
    except OverflowError:
        raise CorruptManifest("manifest field 'header_of' has a negative or too large number") from None
    if n and max(heads) >= len(table_raw):
        raise CorruptManifest("manifest field 'header_of' points past 'headers'")
    return Entries(None, hashes, size_col, heads, tuple(tuple(r) for r in table_raw), text,
                   check=_check_order)


def _check_order(names: list[str]) -> None:
    if not _strictly_increasing(names):
        raise CorruptManifest("manifest keys are not sorted, or repeat")


def _etags_text(raw: object, entries: Entries) -> "Etags | MappingProxyType":
    """Format 2's optional ``etags``: one text, an ETag per key in the keys' order ("" where
    none is known) joined by NUL; read into a mapping when first used."""
    if raw is None:
        return MappingProxyType({})
    if type(raw) is not str or (raw.count(SEP) + 1 if len(entries) else 0) != len(entries) \
            or (not len(entries) and raw):
        raise CorruptManifest("manifest field 'etags' is not one ETag per key joined by NUL")
    return Etags(entries, raw)


class Etags(Mapping):
    """key -> ETag, read from format 2's text of ETags when first used (a plan with nothing
    to deploy never does)."""

    def __init__(self, entries: Entries, text: str) -> None:
        self._entries = entries
        self.text = text
        self._map: dict[str, str] | None = None

    @property
    def names_text(self) -> str:
        return self._entries.text

    def _mapping(self) -> dict[str, str]:
        if self._map is None:
            self._map = {k: e for k, e in zip(self._entries.names, self.text.split(SEP)) if e}
        return self._map

    def __getitem__(self, key: str) -> str:
        return self._mapping()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._mapping())

    def __len__(self) -> int:
        return len(self._mapping())

    def __bool__(self) -> bool:
        return bool(self.text.replace(SEP, ""))  # without reading every one

    def __repr__(self) -> str:
        return f"Etags({len(self)} known)"


def _v1_entries(raw_entries: object) -> Entries:
    """The entries of a format 1 manifest (an object of key -> [hash, size, type, cache(,
    encoding)]), checked, in columns."""
    if not isinstance(raw_entries, dict):
        raise CorruptManifest("manifest field 'entries' is malformed")
    rows = _fast_entries(raw_entries)
    if rows is None:  # something is off: the careful loop finds the first fault
        rows = {}
        for key, value in raw_entries.items():
            check_key(key)
            if type(value) is not list or len(value) not in (4, 5):
                raise CorruptManifest(f"manifest entry {key!r} is malformed")
            h, size, ctype, cc = value[:4]
            enc = value[4] if len(value) == 5 else ""
            if not (
                type(h) is str and type(size) is int and size >= 0
                and type(ctype) is str and type(cc) is str
            ):
                raise CorruptManifest(f"manifest entry {key!r} is malformed")
            if type(enc) is not str or enc not in CONTENT_ENCODINGS:
                raise CorruptManifest(
                    f"manifest entry {key!r} has an unknown content encoding {enc!r}"
                )
            rows[key] = Entry(h, size, ctype, cc, enc)
    return entries_from(rows)


# What makes ``check_key`` refuse a key, as text to look for in all keys at once, each key
# between NULs (which no valid key contains): a leading '/', an empty, '.' or '..' part, or
# the state folder as first part. Without those, normpath(key) == key holds too. (A key that
# is not UTF-8 is looked for apart, only when some key is not ASCII.)
_BAD_KEY_TEXT = ("\x00/", "\x00\x00", "//", "/\x00")
_BAD_DOT_KEY_TEXT = (  # only looked for when some part starts with a dot
    "\x00./", "\x00.\x00", "/./", "/.\x00",
    "\x00../", "\x00..\x00", "/../", "/..\x00",
    f"\x00{STATE_DIR}/", f"\x00{STATE_DIR}\x00",
)


def _keys_ok(names: Iterable[str]) -> bool:
    """Whether every key (text, each) passes :func:`check_key`, checked in bulk; False: some
    key may not (the caller checks them one by one, to name it)."""
    joined = "\x00".join(names)
    if joined.count("\x00") != max(0, len(names) - 1):  # type: ignore[arg-type]
        return False  # a key holds a NUL
    return _keys_ok_text(joined)


def _keys_ok_text(joined: str) -> bool:
    """:func:`_keys_ok` of keys joined by NUL (none of them empty: that is "\\x00\\x00")."""
    keys = "\x00" + joined + "\x00"
    if any(bad in keys for bad in _BAD_KEY_TEXT):
        return False
    if not keys.isascii():
        try:
            keys.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a \udXXX escape in the JSON)
            return False
    return not (
        ("\x00." in keys or "/." in keys) and any(bad in keys for bad in _BAD_DOT_KEY_TEXT)
    )


def _fast_entries(raw: dict) -> dict[str, Entry] | None:
    """The entries of a well-formed manifest, checked in bulk; None if anything is unusual
    (the caller then runs the entry-by-entry checks, which name the first fault). An entry
    with a content encoding (a fifth element) is unusual too: the careful loop reads it."""
    if not isinstance(raw, dict) or not all(type(k) is str for k in raw) or not _keys_ok(raw):
        return None
    entries: dict[str, Entry] = {}
    new = _new_entry
    # A site has a handful of distinct header values: keep one copy of each, not one per entry.
    shared: dict[str, str] = {}
    same = shared.setdefault
    try:
        for key, (h, size, ctype, cc) in raw.items():
            if not (
                type(h) is str and type(size) is int and size >= 0
                and type(ctype) is str and type(cc) is str
            ):
                return None
            entries[key] = new(h, size, same(ctype, ctype), same(cc, cc))
    except (TypeError, ValueError):
        return None
    return entries


def check_key(key: str) -> None:
    """Refuse keys that could make the tool act outside the target: absolute, `..`, `.` or
    empty parts, the state folder, NUL; and keys that are not UTF-8 (no S3 key is).

    Deliberately more lenient than the scan (manifests.scan.name_problem), which refuses
    backslashes and control characters in the names of a build: this reads back what any
    version of the tool may have committed, so that an odd key an older scan let through
    ('a\\b.html') never makes the target unusable. The next deploy of a build without it
    deletes the object and invalidates its URL like any other removed file. What is refused
    here could never have been written by a scan (a file name holds no NUL and no '/'
    part that is empty, '.' or '..'), or would send a write or a delete outside the target."""
    if not isinstance(key, str) or not key:
        raise CorruptManifest(f"manifest key {key!r} is empty or not text")
    if key.startswith("/") or "\x00" in key:
        raise CorruptManifest(f"manifest key {key!r} is not a relative POSIX path")
    if not key.isascii():
        try:
            key.encode("utf-8")
        except UnicodeEncodeError:
            raise CorruptManifest(f"manifest key {key!r} is not valid UTF-8") from None
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(key) != key:
        raise CorruptManifest(f"manifest key {key!r} escapes or is not normalised")
    if parts[0] == STATE_DIR:
        raise CorruptManifest(f"manifest key {key!r} is inside the tool's state folder")
