"""S3 ETags of build files: what proves that an object already holds a file's bytes.

An object written in one request without SSE-KMS has the hex MD5 of its bytes as its ETag; a
multipart upload has ``md5(md5(part 1) + ... + md5(part N))-N``, where every part but the
last has the part size the writer chose (HeadObject with ``PartNumber=1`` gives it). Any
other ETag (SSE-KMS, SSE-C, a store of its own kind) proves nothing.
"""

from __future__ import annotations

import re
from typing import Callable

import xxhash

from .errors import ScanError

CHUNK = 1 << 20  # bytes read at a time

_SINGLE = re.compile(r"[0-9a-f]{32}")
_MULTI = re.compile(r"([0-9a-f]{32})-([1-9][0-9]{0,4})")


def normal(etag: str) -> str:
    """An ETag as S3 sends it (``"abc..."``, or ``W/"..."`` from some stores) without the
    quotes, lowercase."""
    etag = etag.strip()
    if etag.startswith("W/"):
        etag = etag[2:]
    return etag.strip('"').lower()


def parts_of(etag: str) -> int | None:
    """1 for a single-request ETag (an MD5), N for a multipart one (``...-N``), None for an
    ETag that is no MD5 of the bytes at all."""
    etag = normal(etag)
    if _SINGLE.fullmatch(etag):
        return 1
    m = _MULTI.fullmatch(etag)
    return int(m.group(2)) if m else None


def etag_of(data: bytes, part_size: int | None = None) -> str:
    """The ETag S3 gives ``data`` written in one request (``part_size`` None), or as a
    multipart upload in parts of ``part_size`` bytes."""
    import hashlib  # OpenSSL's: loaded only when an ETag is computed (a takeover)

    if part_size is None:
        return hashlib.md5(data, usedforsecurity=False).hexdigest()
    if part_size <= 0:
        raise ValueError("part size must be positive")
    digests = b"".join(
        hashlib.md5(data[i : i + part_size], usedforsecurity=False).digest()
        for i in range(0, max(len(data), 1), part_size)
    )
    count = max(1, -(-len(data) // part_size))
    return f"{hashlib.md5(digests, usedforsecurity=False).hexdigest()}-{count}"


def stored_etag(
    path: str,
    key: str,
    scanned: tuple[str, int],
    stored: Callable[[bytes], bytes] | None = None,
    part_size: int | None = None,
) -> str:
    """The ETag of the object this build file becomes: its bytes read once, checked against
    the hash and size of the scan (``scanned``; ScanError if the file changed since, so a
    proof is never made from other bytes than those deployed), turned into what is stored
    (``stored``: compressed, for a content encoding; the file is then read whole), then as
    :func:`etag_of`. Without ``stored`` the file is read in pieces."""
    import hashlib

    check = xxhash.xxh3_128()
    size = 0
    try:
        with open(path, "rb") as f:
            if stored is not None:
                data = f.read()
                check.update(data)
                size = len(data)
                etag = etag_of(stored(data), part_size)
            else:
                piece = part_size or CHUNK
                part = hashlib.md5(usedforsecurity=False)
                digests: list[bytes] = []
                while True:
                    chunk = f.read(min(CHUNK, piece - (size % piece) or piece))
                    if not chunk:
                        break
                    check.update(chunk)
                    part.update(chunk)
                    size += len(chunk)
                    if part_size is not None and size % part_size == 0:
                        digests.append(part.digest())
                        part = hashlib.md5(usedforsecurity=False)
                if part_size is None:
                    etag = part.hexdigest()
                else:
                    if size % part_size or not digests:
                        digests.append(part.digest())
                    whole = hashlib.md5(b"".join(digests), usedforsecurity=False).hexdigest()
                    etag = f"{whole}-{len(digests)}"
    except OSError as exc:
        raise ScanError(f"cannot read {key}: {exc.strerror}") from None
    if (check.hexdigest(), size) != scanned:
        raise ScanError(f"{key} changed since it was scanned; build again and rerun")
    return etag


def proves(etag: str, mine: str) -> bool:
    """Whether a remote ETag equals the one computed for the build's bytes."""
    return normal(etag) == mine
