"""Drift: how what a target holds differs from its manifest. Pure."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

from manifests import Entry, Manifest
from planner.core.adopt import Head, Stored


@dataclass(frozen=True)
class Drift:
    key: str
    problem: str  # "missing", "size", "etag" (same size, other bytes), "headers", "extra"
    manifest_size: int | None
    target_size: int | None
    detail: str = ""  # what differs ("headers": which header, and both values)



def compare(
    manifest: Manifest,
    listing: Mapping[str, Stored],
    heads: Mapping[str, Head] | None = None,
) -> list[Drift]:
    """Keys the manifest has and the target lacks, or holds with another size, or with the
    same size and another ETag than the one the manifest recorded when the object was
    written (an edit behind the tool's back); keys the target holds and the manifest lacks;
    with ``heads`` (``verify --deep``), objects whose Content-Type, Cache-Control or
    Content-Encoding differ from the manifest's. Pure; sorted by key.

    An entry stored compressed (a content encoding) has no size to compare (the object's is
    the compressed size; the manifest holds the build's): its ETag tells."""
    out: list[Drift] = []
    etags = manifest.etags
    for key, entry in manifest.entries.items():
        stored = listing.get(key)
        if stored is None:
            out.append(Drift(key, "missing", entry.size, None))
            continue
        size, etag = stored
        if size != entry.size and not entry.content_encoding:
            out.append(Drift(key, "size", entry.size, size))
        elif etag and etags.get(key, etag) != etag:
            out.append(Drift(key, "etag", entry.size, size,
                             f"ETag {etag}, not {etags[key]} as written"))
        elif heads is not None and key in heads:
            wrong = _wrong_headers(entry, heads[key])
            if wrong:
                out.append(Drift(key, "headers", entry.size, size, wrong))
    out.extend(
        Drift(k, "extra", None, s.size) for k, s in listing.items() if k not in manifest.entries
    )
    return sorted(out, key=lambda d: d.key)


def _wrong_headers(entry: Entry, head: Head) -> str:
    """Which of the object's headers differ from the manifest's, and how; "" if none."""
    pairs = (
        ("Content-Type", head.content_type, entry.content_type),
        ("Cache-Control", head.cache_control, entry.cache_control),
        ("Content-Encoding", "" if head.content_encoding == "identity" else head.content_encoding,
         entry.content_encoding),
    )
    return "; ".join(f"{name} {have!r}, not {want!r}" for name, have, want in pairs if have != want)
