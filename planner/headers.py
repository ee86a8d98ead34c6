"""Content-Type and Cache-Control for a key. Pure.

The type table is our own rather than Python's ``mimetypes``, which reads the machine's
/etc/mime.types: the same site must get the same headers (and so the same manifest) on every
machine, or every CI runner would re-upload everything.
"""

from __future__ import annotations

import posixpath

# Browsers revalidate after a minute; CloudFront keeps a copy for a day (s-maxage), and our
# invalidations make a change visible at the edge at once.
DEFAULT_CACHE_CONTROL = "public, max-age=60, s-maxage=86400"
DEFAULT_CONTENT_TYPE = "application/octet-stream"

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


def content_type(key: str) -> str:
    """Content-Type for a key, by its extension (case-insensitive)."""
    ext = posixpath.splitext(key)[1].lower()
    return CONTENT_TYPES.get(ext, DEFAULT_CONTENT_TYPE)


def headers_for(cache_control: str = DEFAULT_CACHE_CONTROL):
    """A ``key -> (Content-Type, Cache-Control)`` function for the scanner."""

    def headers(key: str) -> tuple[str, str]:
        return content_type(key), cache_control

    return headers


def is_page(content_type_value: str) -> bool:
    """True for HTML and XML documents, which go up after the assets."""
    return content_type_value.split(";", 1)[0].strip() in PAGE_TYPES
