"""Content-Type, Cache-Control and Content-Encoding for a key, and the compression an
encoding stands for. Pure.

The type table is our own rather than Python's ``mimetypes``, which reads the machine's
/etc/mime.types: the same site must get the same headers (and so the same manifest) on every
machine, or every CI runner would re-upload everything.
"""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass
from typing import Callable, Sequence

# Browsers revalidate after a minute; CloudFront keeps a copy for a day (s-maxage), and our
# invalidations make a change visible at the edge at once.
DEFAULT_CACHE_CONTROL = "public, max-age=60, s-maxage=86400"
DEFAULT_CONTENT_TYPE = "application/octet-stream"
# A file whose name holds a hash of its content never changes under that name.
IMMUTABLE_CACHE_CONTROL = "public, max-age=31536000, immutable"
# A hex hash of 8 or more digits, with a letter and a digit among them (so "20240101" or
# "12345678" are not hashes), as its own part of the file name: app.3f9a8b7c.js,
# main-3f9a8b7c12.css, 0a1b2c3d4e5f.woff2.
_FINGERPRINT = re.compile(
    r"(?:^|(?<=/)|[._-])(?=[0-9]*[a-f])(?=[a-f]*[0-9])[0-9a-f]{8,}(?=[._-])", re.IGNORECASE
)

CONTENT_TYPES: dict[str, str] = {
    # pages and data
    ".html": "text/html; charset=utf-8",
    ".htm": "text/html; charset=utf-8",
    ".xhtml": "application/xhtml+xml",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".cjs": "text/javascript; charset=utf-8",
    ".map": "application/json",
    ".json": "application/json",
    ".jsonld": "application/ld+json",
    ".webmanifest": "application/manifest+json",
    ".xml": "application/xml",
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".xsl": "application/xslt+xml",
    ".txt": "text/plain; charset=utf-8",
    ".md": "text/markdown; charset=utf-8",
    ".csv": "text/csv; charset=utf-8",
    ".ics": "text/calendar; charset=utf-8",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
    ".wasm": "application/wasm",
    ".pdf": "application/pdf",
    ".zip": "application/zip",
    ".gz": "application/gzip",
    # images
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".ico": "image/x-icon",
    ".bmp": "image/bmp",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    # fonts
    ".woff2": "font/woff2",
    ".woff": "font/woff",
    ".ttf": "font/ttf",
    ".otf": "font/otf",
    ".eot": "application/vnd.ms-fontobject",
    # media
    ".mp4": "video/mp4",
    ".webm": "video/webm",
    ".ogv": "video/ogg",
    ".mp3": "audio/mpeg",
    ".ogg": "audio/ogg",
    ".oga": "audio/ogg",
    ".wav": "audio/wav",
    ".m4a": "audio/mp4",
    ".vtt": "text/vtt; charset=utf-8",
}

# Uploaded last, after every asset they may point at.
PAGE_TYPES = ("text/html", "application/xhtml+xml", "application/xml", "application/rss+xml",
              "application/atom+xml")


_PAGE_CONTENT_TYPES = frozenset(
    t for t in CONTENT_TYPES.values() if t.split(";", 1)[0].strip() in PAGE_TYPES
)


def content_type(key: str) -> str:
    """Content-Type for a key, by its extension (case-insensitive)."""
    ext = posixpath.splitext(key)[1].lower()
    return CONTENT_TYPES.get(ext, DEFAULT_CONTENT_TYPE)


@dataclass(frozen=True)
class HeaderRule:
    """Headers for the keys ``pattern`` matches (gitignore-style); None: the default."""

    pattern: str
    cache_control: str | None = None
    content_type: str | None = None
    content_encoding: str | None = None  # "gzip", "br", or "" (stored as built)


def compile_pattern(pattern: str):
    """A gitignore-style pattern, matched as git matches .gitignore (the pathspec library);
    ValueError when it is not one."""
    import pathspec

    return pathspec.GitIgnoreSpec.from_lines([pattern])


def is_fingerprinted(key: str) -> bool:
    """A name with a content hash in it (never a page: pages keep their URL)."""
    return _fingerprinted(key, content_type(key))


def _fingerprinted(key: str, ctype: str) -> bool:
    # Searched from the start of the file name: hashes in folder names do not count.
    return (
        _FINGERPRINT.search(key, key.rfind("/") + 1) is not None
        and ctype not in _PAGE_CONTENT_TYPES
    )


def headers_for(
    cache_control: str = DEFAULT_CACHE_CONTROL, rules: Sequence[HeaderRule] = ()
) -> Callable[[str], tuple[str, str, str]]:
    """A ``key -> (Content-Type, Cache-Control, Content-Encoding)`` function for the scanner:
    the first rule whose pattern matches, then fingerprinted files immutable, then
    ``cache_control``; no encoding ("") unless a rule sets one."""

    def default(key: str) -> tuple[str, str, str]:
        # Called once per file of the build: content_type and is_fingerprinted, inlined.
        # posixpath.splitext's rule: the last dot of the name, not among its leading dots.
        dot, slash = key.rfind("."), key.rfind("/")
        ctype = (
            CONTENT_TYPES.get(key[dot:].lower(), DEFAULT_CONTENT_TYPE)
            if dot > slash + 1 and key[slash + 1 : dot].strip(".")
            else DEFAULT_CONTENT_TYPE
        )
        if _fingerprinted(key, ctype):
            return ctype, IMMUTABLE_CACHE_CONTROL, ""
        return ctype, cache_control, ""

    if not rules:
        return _by_name(default)
    specs = [(compile_pattern(r.pattern), r) for r in rules]

    def headers(key: str) -> tuple[str, str, str]:
        for spec, rule in specs:
            if spec.match_file(key):
                ctype, cc, _ = default(key)
                enc = rule.content_encoding or ""
                return rule.content_type or ctype, rule.cache_control or cc, enc
        return default(key)

    return headers


NAMES_REMEMBERED = 65_536  # distinct file names whose default headers are kept


def _by_name(default: Callable[[str], tuple[str, str, str]]) -> Callable[[str], tuple[str, str, str]]:
    """``default``, remembered by file name: without rules a key's headers depend on its
    last part alone (the extension, and a fingerprint searched from the start of the name),
    and a large site repeats a few names (index.html) a million times."""
    known: dict[str, tuple[str, str, str]] = {}

    def headers(key: str) -> tuple[str, str, str]:
        name = key[key.rfind("/") + 1 :]
        got = known.get(name)
        if got is None:
            got = default(name)
            if len(known) < NAMES_REMEMBERED:
                known[name] = got
        return got

    return headers


def compress(data: bytes, content_encoding: str) -> bytes:
    """``data`` as stored with ``content_encoding`` ("gzip" or "br"; "" returns it as is).
    Deterministic, so the same build gives the same object: gzip at level 9 with mtime 0 and
    no file name; brotli at its default (and highest) quality, 11."""
    if not content_encoding:
        return data
    if content_encoding == "gzip":
        import gzip

        return gzip.compress(data, compresslevel=9, mtime=0)
    if content_encoding == "br":
        import brotli  # only when a file is stored with brotli

        return brotli.compress(data)
    raise ValueError(f"unknown content encoding {content_encoding!r}")


def is_page(content_type_value: str) -> bool:
    """True for HTML and XML documents, which go up after the assets."""
    return content_type_value.split(";", 1)[0].strip() in PAGE_TYPES
