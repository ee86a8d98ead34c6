"""From bucket keys to the URL paths CloudFront caches, encoded as invalidations need. Pure.

CloudFront: "If the path includes non-ASCII characters or unsafe characters as defined in
RFC 1738, URL-encode those characters. Do not URL-encode any other characters in the path"
(Developer Guide, "Specifying the files to invalidate").
"""

from __future__ import annotations

import re

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


# --- invalidation paths CloudFront can accept --------------------------------------------------

MAX_PATH_CHARS = 4000  # CloudFront: a path may be at most 4,000 characters
ESCAPE = re.compile(r"(%[0-9A-Fa-f]{2})")


def encode_url(path: str) -> str:
    """Percent-encode a URL path as :func:`encode_path` does, but keep the ``%XX`` escapes it
    already has (a ``%`` not followed by two hex digits becomes ``%25``)."""
    if "%" not in path:
        return encode_path(path)
    parts = ESCAPE.split(path)  # odd indexes are the escapes
    return "".join(part if i % 2 else encode_path(part) for i, part in enumerate(parts))


def path_problem(path: str) -> str | None:
    """Why CloudFront would refuse invalidation ``path``, or the tool would never have written
    it (it is not spelled as :func:`encode_url` spells it); None: valid."""
    if not path.startswith("/"):
        return "does not start with '/'"
    if len(path) > MAX_PATH_CHARS:
        return f"is {len(path):,} characters long, more than CloudFront's {MAX_PATH_CHARS:,}"
    stem = path[:-1] if path.endswith("*") else path
    if "*" in stem:
        return "has '*' before its last character (a wildcard '*' may only be last)"
    if encode_url(stem) != stem:
        # the first character the tool would have encoded (a "%XX" escape is kept as it is)
        raw = next(c for i, part in enumerate(ESCAPE.split(stem)) if i % 2 == 0
                   for c in part if encode_path(c) != c)
        return f"has a raw {raw!r}, which must be URL-encoded ({encode_path(raw)})"
    return None


def valid_path(path: str) -> bool:
    return path_problem(path) is None


def covers(path: str, url: str) -> bool:
    """Whether invalidation ``path`` covers cached ``url`` (a trailing '*' is a prefix match)."""
    return url.startswith(path[:-1]) if path.endswith("*") else url == path


def trim_escape(prefix: str) -> str:
    """Shorten ``prefix`` so it does not end inside a ``%XX`` escape."""
    if prefix.endswith("%"):
        return prefix[:-1]
    if len(prefix) >= 2 and prefix[-2] == "%":
        return prefix[:-2]
    return prefix

def repair_path(path: str) -> str:
    """The nearest valid path that invalidates at least what ``path`` meant: a '/' in front,
    characters that must be encoded encoded (valid escapes kept), a '*' before the end makes
    the path a wildcard from there, and one too long a wildcard on its longest valid prefix."""
    if not path.startswith("/"):
        path = "/" + path
    star = path.find("*")
    wildcard = star != -1
    if wildcard:
        path = path[:star]
    fixed = encode_url(path)
    if len(fixed) + wildcard > MAX_PATH_CHARS:
        fixed, wildcard = trim_escape(fixed[: MAX_PATH_CHARS - 1]), True
    return fixed + ("*" if wildcard else "")


def repair_batch(
    paths: tuple[str, ...] | list[str], max_wildcards: int, max_paths: int
) -> tuple[str, ...]:
    """A batch CloudFront can accept that invalidates at least what ``paths`` meant: each
    path repaired, those a wildcard of the batch covers dropped; "/*" when that is still more
    wildcards or file paths than one distribution may have in progress."""
    fixed = sorted({repair_path(p) for p in paths})
    wild = [p for p in fixed if p.endswith("*")]
    kept = [p for p in fixed if not any(p != w and covers(w, p) for w in wild)]
    wildcards = sum(p.endswith("*") for p in kept)
    if wildcards > max_wildcards or len(kept) - wildcards > max_paths:
        return ("/*",)
    return tuple(kept)
