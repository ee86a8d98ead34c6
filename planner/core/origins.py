"""Which URLs a CloudFront distribution serves a bucket key under. Pure.

From the distribution's config: the origins whose domain is the bucket's (REST or website
endpoint), each with its OriginPath; the cache behaviors, in order, whose path pattern decides
which origin a URL goes to (the default behavior when none matches); and the default root
object, which "/" serves. A key under an origin's path is served at the rest of its key, if the
behavior for that URL targets that origin; a key outside every origin path of the distribution
(or routed to another origin) is not served there, and not invalidated there.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable

from planner.core.urls import key_urls

# bucket.s3.amazonaws.com, bucket.s3.eu-west-1.amazonaws.com, bucket.s3-eu-west-1.amazonaws.com,
# bucket.s3-website-us-east-1.amazonaws.com, bucket.s3-website.eu-west-1.amazonaws.com (.cn too)
_S3_DOMAIN = re.compile(
    r"^(?P<bucket>[a-z0-9][a-z0-9.\-]*?)\.s3(?:[.\-](?:website|dualstack|[a-z]{2}(?:-[a-z]+)+-\d))*"
    r"\.amazonaws\.com(?:\.cn)?$"
)


@dataclass(frozen=True)
class Served:
    """How one distribution serves one bucket: what decides a key's URLs."""

    origins: tuple[tuple[str, str], ...]  # (origin id, origin path as "dir/" or "")
    behaviors: tuple[tuple[str, str], ...]  # (path pattern, target origin id), in order
    default_origin: str
    root_object: str  # DefaultRootObject, "" if none

    def routes(self, url: str) -> str:
        """The origin id a URL path goes to."""
        for pattern, origin in self.behaviors:
            if _pattern(pattern).fullmatch(url):
                return origin
        return self.default_origin

    def urls(self, key: str) -> tuple[str, ...]:
        """URLs (encoded) under which this distribution serves the bucket key ``key``."""
        out: list[str] = []
        for origin, root in self.origins:
            if not key.startswith(root):
                continue
            rel = key[len(root) :]
            if not rel:
                continue
            urls = list(key_urls(rel))
            if self.root_object and rel == self.root_object and "/" not in urls:
                urls.append("/")
            out.extend(u for u in urls if self.routes(u) == origin and u not in out)
        return tuple(sorted(out))


def bucket_of(domain: str) -> str | None:
    m = _S3_DOMAIN.match(domain.lower())
    return m.group("bucket") if m else None


def served(config: dict[str, Any], bucket: str) -> Served | None:
    """How the distribution of ``config`` (GetDistribution's DistributionConfig) serves
    ``bucket``; None when none of its origins is the bucket (a custom origin: the caller
    falls back to URLs = keys)."""
    origins = []
    for origin in (config.get("Origins") or {}).get("Items") or []:
        if bucket_of(str(origin.get("DomainName", ""))) == bucket:
            path = str(origin.get("OriginPath") or "").strip("/")
            origins.append((str(origin["Id"]), f"{path}/" if path else ""))
    if not origins:
        return None
    behaviors = tuple(
        (str(b["PathPattern"]), str(b["TargetOriginId"]))
        for b in (config.get("CacheBehaviors") or {}).get("Items") or []
    )
    return Served(
        origins=tuple(origins),
        behaviors=behaviors,
        default_origin=str((config.get("DefaultCacheBehavior") or {}).get("TargetOriginId", "")),
        root_object=str(config.get("DefaultRootObject") or "").lstrip("/"),
    )


def serves_prefix(view: Served, key_prefix: str) -> bool:
    """Whether some origin of the bucket reaches keys under ``key_prefix``: its origin path
    lies under the prefix, or the prefix under its origin path."""
    return any(
        root.startswith(key_prefix) or key_prefix.startswith(root) for _, root in view.origins
    )


def mapper(view: Served, key_prefix: str) -> Callable[[str], tuple[str, ...]]:
    """Site key (relative to the target) -> URLs, for a target under ``key_prefix``."""

    def urls(key: str) -> tuple[str, ...]:
        return view.urls(key_prefix + key)

    return urls


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _pattern(pattern: str) -> re.Pattern[str]:
    """A cache behavior's path pattern: '*' any characters, '?' one, case-sensitive, the
    leading '/' optional. URLs are matched encoded, as CloudFront sees them."""
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        text = pattern if pattern.startswith("/") else "/" + pattern
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
        compiled = _PATTERNS[pattern] = re.compile(regex, re.DOTALL)
    return compiled


@dataclass(frozen=True)
class Distribution:
    """What the plan shows of a distribution, and how it serves the target's bucket
    (``served``: a :class:`Served`, None when no origin of it is the
    bucket)."""

    id: str
    domain: str = ""
    aliases: tuple[str, ...] = ()
    served: Any = None
    # Every origin's domain and path, for messages; none: not a CloudFront distribution (the
    # local backend's log), which serves the target as is.
    origins: tuple[str, ...] = ()

    @property
    def names(self) -> str:
        """``d111.cloudfront.net, docs.example.com``, or "" when unknown."""
        return ", ".join(n for n in (self.domain, *self.aliases) if n)
