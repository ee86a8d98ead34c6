"""One file of a site as a manifest records it: its content hash, size and headers."""

from __future__ import annotations

from dataclasses import dataclass


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
