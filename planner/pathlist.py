"""Lists of URL paths or bucket keys, the input of ``planner paths``. No click, no boto3.

One entry a line; blank lines and lines starting with ``#`` are skipped, and spaces and tabs
around an entry are dropped (a name that really starts or ends with a space is given as a
URL path with ``%20``; one that starts with ``#`` as ``/%23...``).

- A line starting with ``/`` is a URL path, as CloudFront caches it. It is taken as is, then
  percent-encoded as invalidations need (:func:`encode_url`): non-ASCII, control and RFC 1738
  unsafe characters, ``*`` and ``?`` are encoded; an existing ``%XX`` escape (two hex digits)
  is kept as written, and any other ``%`` becomes ``%25``. So ``/caf%C3%A9`` and ``/café``
  name the same URL, and ``/100%.html`` is ``/100%25.html``. A line is a path, not a URL: a
  ``?`` or ``#`` in it is part of the name (``%3F``, ``%23``), and a ``*`` is a literal star,
  never a wildcard.
- Any other line is a bucket key relative to the site root (``blog/index.html``; a leading
  ``./`` is dropped, as ``find .`` prints it) and maps to its URLs through
  :func:`planner.core.urls.key_urls`: ``blog/index.html`` gives ``/blog/`` and ``/blog/index.html``;
  a key is a raw name, so every ``%`` in it is encoded (``100%.html`` -> ``/100%25.html``).
- Refused, with the line number: a NUL byte, text that is not UTF-8, and a full URL
  (``https://...``: give its path).
"""

from __future__ import annotations

import os
import re
from typing import BinaryIO, Iterable

from manifests.scan import DEFAULT_EXCLUDES, walk
from planner.core.cost import (
    MAX_PATHS_IN_PROGRESS,
    MAX_WILDCARDS_IN_PROGRESS,
    CostModel,
)
from planner.core.minimizer import Problem
from planner.core.urls import encode_url, key_urls, normalise_url_prefix, urls_of
from planner.errors import BadPathList

STDIN = "-"
_FULL_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://")


def read_lines(text: str, source: str = "input") -> list[str]:
    """The entries of a list, in order (see the module docstring); ``source`` names it in
    error messages. Raises BadPathList on a NUL byte or a full URL."""
    out: list[str] = []
    for number, line in enumerate(text.split("\n"), 1):
        entry = line.strip(" \t\r")
        if not entry or entry.startswith("#"):
            continue
        if "\x00" in entry:
            raise BadPathList(f"{source}, line {number}: NUL byte in a name")
        if _FULL_URL.match(entry):
            raise BadPathList(
                f"{source}, line {number}: a full URL; give its path, starting with '/'"
            )
        out.append(entry)
    return out


def to_urls(entries: Iterable[str], url_prefix: str = "/") -> list[str]:
    """Sorted, de-duplicated encoded URLs of list entries: URL paths (leading ``/``) as they
    are, keys through :func:`planner.core.urls.key_urls` under ``url_prefix``."""
    prefix = normalise_url_prefix(url_prefix)
    out: set[str] = set()
    for entry in entries:
        if entry.startswith("/"):
            out.add(encode_url(entry))
            continue
        while entry.startswith("./"):
            entry = entry[2:]
        if entry:
            out.update(key_urls(entry, prefix))
    return sorted(out)


def load_text(source: str, label: str, stdin: BinaryIO | None = None) -> str:
    """The text of list file ``source`` (``-``: ``stdin``), UTF-8. ``label`` names the list
    in messages. Raises BadPathList when it cannot be read or decoded."""
    name = "standard input" if source == STDIN else source
    try:
        if source == STDIN:
            if stdin is None:
                raise BadPathList(f"{label} list: no standard input to read")
            data = stdin.read()
        else:
            with open(source, "rb") as f:
                data = f.read()
    except OSError as exc:
        raise BadPathList(f"cannot read {label} list {name}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8-sig")  # a byte order mark (Windows editors) is dropped
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise BadPathList(f"{label} list {name}, line {line}: not UTF-8") from None


def list_urls(
    source: str, label: str, url_prefix: str = "/", stdin: BinaryIO | None = None
) -> list[str]:
    """Encoded URLs of a list file (or ``-``)."""
    name = "standard input" if source == STDIN else source
    return to_urls(read_lines(load_text(source, label, stdin), f"{label} list {name}"), url_prefix)


def folder_urls(root: str, url_prefix: str = "/") -> list[str]:
    """Encoded URLs of every file of a build folder (default excludes, no hashing). Raises
    manifests.ScanError."""
    return urls_of((f.key for f in walk(root, DEFAULT_EXCLUDES)), normalise_url_prefix(url_prefix))


def universe_urls(source: str, url_prefix: str = "/", stdin: BinaryIO | None = None) -> list[str]:
    """The universe: a build folder's URLs, or those of a list file (or ``-``)."""
    if source != STDIN and os.path.isdir(source):
        return folder_urls(source, url_prefix)
    return list_urls(source, "universe", url_prefix, stdin)


def make_problem(
    universe: Iterable[str],
    changed: Iterable[str],
    model: CostModel = CostModel(),
    max_wildcards: int = MAX_WILDCARDS_IN_PROGRESS,
    max_paths: int = MAX_PATHS_IN_PROGRESS,
) -> Problem:
    """The minimizer's problem; changed URLs missing from the universe (deleted pages) are
    added to it."""
    changed_set = frozenset(changed)
    return Problem(
        universe=frozenset(universe) | changed_set,
        changed=changed_set,
        model=model,
        max_wildcards=max_wildcards,
        max_paths=max_paths,
    )
