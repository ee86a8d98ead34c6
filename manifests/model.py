"""The manifest: what a deployed site consists of, entry by entry.

A manifest is a frozen value. Its serialised form is gzipped JSON, written deterministically:
the same site (and the same metadata) gives the same bytes, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import posixpath
import zlib
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .errors import CorruptManifest

FORMAT_VERSION = 1

# Folder, relative to the target root, that holds the tool's own state (manifest, logs).
STATE_DIR = ".planner"

# Content-Encoding a file may be stored with ("": as built, not compressed).
CONTENT_ENCODINGS = ("", "gzip", "br")


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the site: its content hash and the headers it is served with.

    ``hash`` and ``size`` are those of the built file, also when it is stored compressed
    (``content_encoding`` "gzip" or "br"): a build is diffed by its own content."""

    hash: str  # xxh3-128, 32 lowercase hex digits
    size: int
    content_type: str
    cache_control: str
    content_encoding: str = ""  # one of CONTENT_ENCODINGS

    def __eq__(self, other: object) -> bool:
        # What dataclass would generate (field tuples compared), without building the tuples:
        # a diff compares every entry of a site.
        if other.__class__ is not self.__class__:
            return NotImplemented
        return (
            self.hash == other.hash  # type: ignore[attr-defined]
            and self.size == other.size  # type: ignore[attr-defined]
            and self.content_type == other.content_type  # type: ignore[attr-defined]
            and self.cache_control == other.cache_control  # type: ignore[attr-defined]
            and self.content_encoding == other.content_encoding  # type: ignore[attr-defined]
        )

    def same_content(self, other: "Entry") -> bool:
        return self.hash == other.hash and self.size == other.size

    def same_headers(self, other: "Entry") -> bool:
        return (
            self.content_type == other.content_type
            and self.cache_control == other.cache_control
            and self.content_encoding == other.content_encoding
        )


def _new_entry(
    hash: str,
    size: int,
    content_type: str,
    cache_control: str,
    content_encoding: str = "",
    _new=object.__new__,
    _set_hash=Entry.hash.__set__,  # type: ignore[attr-defined]
    _set_size=Entry.size.__set__,  # type: ignore[attr-defined]
    _set_type=Entry.content_type.__set__,  # type: ignore[attr-defined]
    _set_cc=Entry.cache_control.__set__,  # type: ignore[attr-defined]
    _set_enc=Entry.content_encoding.__set__,  # type: ignore[attr-defined]
) -> Entry:
    """``Entry(hash, size, content_type, cache_control, content_encoding)`` in half the time
    (the slots are set directly instead of through the frozen ``__setattr__``), for bulk use."""
    e = _new(Entry)
    _set_hash(e, hash)
    _set_size(e, size)
    _set_type(e, content_type)
    _set_cc(e, cache_control)
    _set_enc(e, content_encoding)
    return e


@dataclass(frozen=True)
class Manifest:
    """A deployed (or about to be deployed) site: entries keyed by POSIX relative path."""

    entries: Mapping[str, Entry]
    target: str = ""
    deploy_id: str = ""
    previous_deploy_id: str | None = None
    tool_version: str = ""
    format_version: int = FORMAT_VERSION
    # key -> the object's ETag as the store returned it on write (quotes removed), for the
    # keys it is known of. Not part of an entry: a build's entries have none, and entries
    # compare (and deploy ids derive) by content and headers alone.
    etags: Mapping[str, str] = field(default_factory=dict)
    _sorted: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.entries, MappingProxyType):
            object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))
        if not isinstance(self.etags, MappingProxyType):
            object.__setattr__(self, "etags", MappingProxyType(dict(self.etags)))

    @property
    def keys(self) -> tuple[str, ...]:
        """Entry keys in sorted order."""
        if not self._sorted and self.entries:
            object.__setattr__(self, "_sorted", tuple(sorted(self.entries)))
        return self._sorted

    @property
    def total_size(self) -> int:
        return sum(e.size for e in self.entries.values())

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
        doc = {
            "format_version": self.format_version,
            "tool_version": self.tool_version,
            "target": self.target,
            "deploy_id": self.deploy_id,
            "previous_deploy_id": self.previous_deploy_id,
            # [hash, size, content type, cache control], and the content encoding as a fifth
            # element only when there is one: a site without encodings gives the bytes (and
            # the deploy ids) it gave before encodings existed.
            "entries": {
                key: [e.hash, e.size, e.content_type, e.cache_control]
                if not e.content_encoding
                else [e.hash, e.size, e.content_type, e.cache_control, e.content_encoding]
                for key in self.keys
                for e in (self.entries[key],)
            },
        }
        if self.etags:
            # Only when known, so a manifest without them has the bytes it had before; a
            # version of the tool that does not know them ignores them. One per entry, in the
            # entries' order ("" where unknown): the keys are not written twice.
            get = self.etags.get
            doc["etags"] = [get(key, "") for key in self.keys]
        return json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode()

    def content_digest_input(self) -> bytes:
        """The bytes that identify the site itself (entries only, no ids)."""
        return json.dumps(
            [[k, *_entry_list(self.entries[k])] for k in self.keys],
            ensure_ascii=False,
            separators=(",", ":"),
        ).encode()

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
        if not isinstance(doc, dict):
            raise CorruptManifest("manifest is not a JSON object")
        version = doc.get("format_version")
        if type(version) is not int or version != FORMAT_VERSION:
            raise CorruptManifest(
                f"manifest format version {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        try:
            raw_entries = doc["entries"]
            entries = _fast_entries(raw_entries)
            if entries is None:  # something is off: the careful loop finds the first fault
                entries = {}
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
                    entries[key] = Entry(h, size, ctype, cc, enc)
            return cls(
                # Read-only already: this dict is ours alone, no need for the defensive copy.
                entries=MappingProxyType(entries),
                target=_text(doc, "target"),
                deploy_id=_text(doc, "deploy_id"),
                previous_deploy_id=_text(doc, "previous_deploy_id", optional=True),
                tool_version=_text(doc, "tool_version"),
                format_version=version,
                etags=_etags(doc.get("etags"), raw_entries),
            )
        except CorruptManifest:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptManifest(f"manifest is malformed ({type(exc).__name__}: {exc})") from None


def _text(doc: dict, name: str, optional: bool = False) -> str:
    value = doc.get(name, None if optional else "")
    if value is None and optional:
        return None  # type: ignore[return-value]
    if type(value) is not str:
        raise CorruptManifest(f"manifest field {name!r} is not text")
    return value


def _etags(raw: object, entries: dict) -> MappingProxyType:
    """The optional ``etags``: a list of text, one per entry in the entries' order, ""
    where none is known."""
    if raw is None:
        return MappingProxyType({})
    if (
        type(raw) is not list
        or len(raw) != len(entries)
        or not all(type(e) is str for e in raw)
    ):
        raise CorruptManifest("manifest field 'etags' is not a list of text, one per entry")
    return MappingProxyType({k: e for k, e in zip(entries, raw) if e})


def _entry_list(e: Entry) -> list[object]:
    if e.content_encoding:
        return [e.hash, e.size, e.content_type, e.cache_control, e.content_encoding]
    return [e.hash, e.size, e.content_type, e.cache_control]


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


def _fast_entries(raw: dict) -> dict[str, Entry] | None:
    """The entries of a well-formed manifest, checked in bulk; None if anything is unusual
    (the caller then runs the entry-by-entry checks, which name the first fault). An entry
    with a content encoding (a fifth element) is unusual too: the careful loop reads it."""
    if not isinstance(raw, dict) or not all(type(k) is str for k in raw):
        return None
    keys = "\x00" + "\x00".join(raw) + "\x00"
    if keys.count("\x00") != len(raw) + 1 or any(bad in keys for bad in _BAD_KEY_TEXT):
        return None
    if not keys.isascii():
        try:
            keys.encode("utf-8")
        except UnicodeEncodeError:  # a lone surrogate (a \udXXX escape in the JSON)
            return None
    if ("\x00." in keys or "/." in keys) and any(bad in keys for bad in _BAD_DOT_KEY_TEXT):
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
