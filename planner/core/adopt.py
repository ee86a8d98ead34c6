"""Taking over a target that something else deployed (``aws s3 sync``, hugo deploy,
s3deploy...), or whose manifest was lost: what it holds becomes the previous manifest. Pure.

The target's listing (key, size, ETag) is all there is to know of an object without reading
it. A remote object is *adopted* when its bytes are proven equal to what the build would
store there (its ETag recomputed from the build's file: see :mod:`manifests.etags`); its
headers, read with HeadObject, are then fixed in place where they differ from the header
rules'. Anything not proven equal is replaced, and its URLs invalidated (the CDN served it);
a remote object the build lacks is an orphan, deleted and invalidated like a removed file.
Only build files the target did not hold at all are new (never cached).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, NamedTuple

from manifests import Entry, Manifest
from manifests.etags import parts_of
from manifests.model import STATE_DIR
from planner.core.places import STATE, TARGET, split_keys

# CopyObject copies objects up to 5 GB; a larger one would need UploadPartCopy.
MAX_COPY_BYTES = 5 * 1000**3


class Stored(NamedTuple):
    """One object as the target's listing gives it."""

    size: int
    etag: str  # without quotes; "" when the store gives none


@dataclass(frozen=True)
class Listing:
    """What a target holds: its site objects, and the places below it that belong to the tool
    (another target, or the state place of one: see :mod:`planner.core.places`), which are
    not this target's and are left out."""

    objects: dict[str, Stored]
    nested: tuple[str, ...] = ()  # relative prefixes, like "docs/"
    states: tuple[str, ...] = ()  # those of ``nested`` that are state places
    itself: str | None = None  # places.STATE when the target's own place is a state place

    @property
    def kinds(self) -> dict[str, str]:
        """Each nested prefix -> its kind (places.TARGET or places.STATE)."""
        return {p: STATE if p in self.states else TARGET for p in self.nested}


def split_listing(raw: Mapping[str, Stored]) -> Listing:
    """``raw`` (every key under the target, relative to it) without the tool's own state
    (``.planner/...``) and without every key under a folder that belongs to the tool
    (``docs/.planner/...``: another target, its state and its site; or a state place)."""
    places, itself = split_keys(raw)
    found = tuple(places)
    own_state = f"{STATE_DIR}/"
    objects = {
        key: stored
        for key, stored in raw.items()
        if not key.startswith(own_state) and not (found and key.startswith(found))
    }
    return Listing(objects, found, tuple(p for p in found if places[p] == STATE), itself)


class Head(NamedTuple):
    """An object's headers (HeadObject), and the size of its first part when it was written
    in parts (HeadObject with PartNumber=1), else None."""

    content_type: str
    cache_control: str
    content_encoding: str
    part_size: int | None = None


def candidates(entries: Mapping[str, Entry], objects: Mapping[str, Stored]) -> list[str]:
    """Build keys whose remote object may hold the same bytes: an ETag that is an MD5 of the
    bytes (single or multipart), and the same size unless the file is stored compressed
    (whose stored size only its compression tells). Sorted."""
    out = []
    for key, entry in entries.items():
        remote = objects.get(key)
        if remote is None or parts_of(remote.etag) is None:
            continue
        if entry.content_encoding or remote.size == entry.size:
            out.append(key)
    return sorted(out)


@dataclass(frozen=True)
class Takeover:
    """The first plan against a target with no manifest: what it holds, and what becomes of
    it. ``remote`` is that content as a manifest, the previous one for the diff: a proven
    object has the build's hash with its own headers, any other an unknown hash ("")."""

    reason: str  # why the target is taken over ("no manifest", "the manifest is missing ...")
    remote: Manifest
    adopted: tuple[str, ...]  # bytes and headers as the build's: left as they are
    in_place: tuple[str, ...]  # bytes as the build's, headers fixed in place (CopyObject)
    replaced: tuple[str, ...]  # not proven equal: uploaded again, invalidated
    orphaned: tuple[str, ...]  # the build lacks them: deleted (or kept), invalidated
    new: tuple[str, ...]  # build files the target did not hold: never cached

    @property
    def found(self) -> int:
        return len(self.remote.entries)


def takeover(
    entries: Mapping[str, Entry],
    listing: Listing,
    proven: frozenset[str] | set[str],
    heads: Mapping[str, Head] | None,
    reason: str,
    target: str = "",
) -> Takeover:
    """Sort the target's objects against the build. ``proven``: keys whose object holds the
    build file's bytes as they would be stored (ETag recomputed); ``heads``: their headers,
    None where the target has none (a local folder: headers are the build's). Pure."""
    remote: dict[str, Entry] = {}
    adopted, in_place, replaced, orphaned = [], [], [], []
    for key in sorted(listing.objects):
        stored = listing.objects[key]
        entry = entries.get(key)
        if entry is None:
            orphaned.append(key)
            remote[key] = Entry("", stored.size, "", "", "")
            continue
        head = heads.get(key) if heads is not None else None
        if key not in proven or (heads is not None and head is None):
            replaced.append(key)
            remote[key] = Entry("", stored.size, "", "", "")
            continue
        if head is None:  # no headers to compare: the build's
            remote[key] = entry
            adopted.append(key)
            continue
        was = Entry(entry.hash, entry.size, head.content_type, head.cache_control,
                    "" if head.content_encoding == "identity" else head.content_encoding)
        remote[key] = was
        if was.same_headers(entry):
            adopted.append(key)
        elif stored.size <= MAX_COPY_BYTES:
            in_place.append(key)
        else:
            replaced.append(key)  # too large to copy: its bytes are sent again
    new = tuple(sorted(k for k in entries if k not in listing.objects))
    etags = {k: s.etag for k, s in listing.objects.items() if s.etag}
    return Takeover(
        reason=reason,
        remote=Manifest(remote, target=target, etags=etags),
        adopted=tuple(adopted),
        in_place=tuple(in_place),
        replaced=tuple(replaced),
        orphaned=tuple(orphaned),
        new=new,
    )
