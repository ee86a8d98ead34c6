"""From bucket keys to the URL paths CloudFront caches, encoded as invalidations need. Pure.

CloudFront: "If the path includes non-ASCII characters or unsafe characters as defined in
RFC 1738, URL-encode those characters. Do not URL-encode any other characters in the path"
(Developer Guide, "Specifying the files to invalidate").
"""

from __future__ import annotations

# RFC 1738 section 2.2 "unsafe" characters, plus two that must be encoded here for the
# path to mean the file: '*' (else it becomes a wildcard) and '?' (else it starts a query).
_UNSAFE = set(' <>"#%{}|\\^~[]`') | {"*", "?"}
_KEEP = {
    c for c in (chr(i) for i in range(0x21, 0x7F)) if c not in _UNSAFE
}  # printable ASCII that is not unsafe, '/' included
_ENCODED = {chr(i): f"%{i:02X}" for i in range(0x80)}


def encode_path(path: str) -> str:
    """Percent-encode a URL path for CreateInvalidation: non-ASCII (as UTF-8), control and
    RFC 1738 unsafe characters, '*' and '?'; nothing else."""
    if path.isascii() and all(c in _KEEP for c in path):
        return path
    out = []
    for c in path:
        if c in _KEEP:
            out.append(c)
        elif c.isascii():
            out.append(_ENCODED[c])
        else:
            out.extend(f"%{b:02X}" for b in c.encode("utf-8"))
    return "".join(out)


def normalise_url_prefix(prefix: str) -> str:
    """'/', '', 'docs', '/docs/' -> '/', '/', '/docs/', '/docs/'."""
    prefix = prefix.strip("/")
    return f"/{prefix}/" if prefix else "/"


def key_urls(key: str, url_prefix: str = "/", index: str = "index.html") -> tuple[str, ...]:
    """The encoded URL paths under which ``key`` (relative to the site root) may be cached.

    ``a/b.css`` -> ``/a/b.css``; ``dir/index.html`` -> ``/dir/`` and ``/dir/index.html``;
    ``index.html`` -> ``/`` and ``/index.html``.
    """
    url = encode_path(url_prefix + key)
    if key == index or key.endswith("/" + index):
        return (url[: len(url) - len(index)], url)
    return (url,)


def urls_of(keys, url_prefix: str = "/", index: str = "index.html") -> list[str]:
    """Sorted, de-duplicated URLs of many keys."""
    out: set[str] = set()
    for key in keys:
        out.update(key_urls(key, url_prefix, index))
    return sorted(out)
