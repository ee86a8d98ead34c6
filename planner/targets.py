"""Parse ``--target``: ``s3://bucket[/prefix]``, ``file:///abs/dir`` or a plain folder path."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from .errors import BadTarget

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Target:
    bucket: str
    prefix: str  # "" or "some/prefix/"

    @property
    def uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")


@dataclass(frozen=True)
class LocalTarget:
    root: str  # absolute folder

    @property
    def uri(self) -> str:
        return "file://" + self.root


Target = S3Target | LocalTarget


def parse_target(text: str) -> Target:
    if not text:
        raise BadTarget("--target is empty")
    if text.startswith("s3://"):
        rest = text[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise BadTarget(f"--target {text}: {bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
            raise BadTarget(f"--target {text}: the prefix must not contain empty, '.' or '..' parts")
        return S3Target(bucket, prefix + "/" if prefix else "")
    if text.startswith("file:"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadTarget(f"--target {text}: a file: target needs an absolute path (file:///dir)")
        return LocalTarget(os.path.normpath(unquote(parts.path)))
    if "://" in text:
        raise BadTarget(f"--target {text}: only s3:// and file:// targets are supported")
    return LocalTarget(os.path.abspath(text))


def check_apart(site: str, target: Target) -> None:
    """A local target may not overlap the build folder (it would deploy into itself)."""
    if not isinstance(target, LocalTarget):
        return
    site = os.path.realpath(site)
    root = os.path.realpath(target.root)
    if os.path.commonpath([site, root]) in (site, root):
        raise BadTarget(
            f"--target {target.root} overlaps the build folder {site}; choose a separate folder"
        )
