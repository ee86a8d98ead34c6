"""The manifest: what a deployed site consists of, entry by entry.

A manifest is a frozen value. Its serialised form is gzipped JSON, written deterministically:
the same site (and the same metadata) gives the same bytes, byte for byte.
"""

from __future__ import annotations

import gzip
import json
import posixpath
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping

from .errors import CorruptManifest

FORMAT_VERSION = 1

# Folder, relative to the target root, that holds the tool's own state (manifest, logs).
STATE_DIR = ".planner"


@dataclass(frozen=True, slots=True)
class Entry:
    """One file of the site: its content hash and the headers it is served with."""

    hash: str  # xxh3-128, 32 lowercase hex digits
    size: int
    content_type: str
    cache_control: str

    def same_content(self, other: "Entry") -> bool:
        return self.hash == other.hash and self.size == other.size

    def same_headers(self, other: "Entry") -> bool:
        return self.content_type == other.content_type and self.cache_control == other.cache_control


@dataclass(frozen=True)
class Manifest:
    """A deployed (or about to be deployed) site: entries keyed by POSIX relative path."""

    entries: Mapping[str, Entry]
    target: str = ""
    deploy_id: str = ""
    previous_deploy_id: str | None = None
    tool_version: str = ""
    format_version: int = FORMAT_VERSION
    _sorted: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def __post_init__(self) -> None:
        if not isinstance(self.entries, MappingProxyType):
            object.__setattr__(self, "entries", MappingProxyType(dict(self.entries)))

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
            "entries": {
                key: [e.hash, e.size, e.content_type, e.cache_control]
                for key in self.keys
                for e in (self.entries[key],)
            },
        }
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
        except (OSError, EOFError, gzip.BadGzipFile) as exc:
            raise CorruptManifest(f"manifest is not valid gzip ({exc})") from None
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise CorruptManifest(f"manifest is not valid JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise CorruptManifest("manifest is not a JSON object")
        version = doc.get("format_version")
        if version != FORMAT_VERSION:
            raise CorruptManifest(
                f"manifest format version {version!r} is not supported (expected {FORMAT_VERSION})"
            )
        try:
            raw_entries = doc["entries"]
            entries = {}
            for key, value in raw_entries.items():
                check_key(key)
                h, size, ctype, cc = value
                if not (isinstance(h, str) and isinstance(size, int) and size >= 0):
                    raise CorruptManifest(f"manifest entry {key!r} is malformed")
                entries[key] = Entry(h, size, str(ctype), str(cc))
            return cls(
                entries=entries,
                target=str(doc.get("target", "")),
                deploy_id=str(doc.get("deploy_id", "")),
                previous_deploy_id=doc.get("previous_deploy_id"),
                tool_version=str(doc.get("tool_version", "")),
                format_version=version,
            )
        except CorruptManifest:
            raise
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CorruptManifest(f"manifest is malformed ({type(exc).__name__}: {exc})") from None


def _entry_list(e: Entry) -> list[object]:
    return [e.hash, e.size, e.content_type, e.cache_control]


def check_key(key: str) -> None:
    """Refuse keys that are not clean relative POSIX paths (absolute, `..`, empty parts)."""
    if not isinstance(key, str) or not key:
        raise CorruptManifest(f"manifest key {key!r} is empty or not text")
    if key.startswith("/") or "\\" in key or "\x00" in key:
        raise CorruptManifest(f"manifest key {key!r} is not a relative POSIX path")
    parts = key.split("/")
    if any(p in ("", ".", "..") for p in parts) or posixpath.normpath(key) != key:
        raise CorruptManifest(f"manifest key {key!r} escapes or is not normalised")
    if parts[0] == STATE_DIR:
        raise CorruptManifest(f"manifest key {key!r} is inside the tool's state folder")
