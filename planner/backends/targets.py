"""Parse ``--target``: ``s3://bucket[/prefix]``, ``file:///abs/dir`` or a plain folder path."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from manifests.model import STATE_DIR
from planner.errors import BadTarget

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


def parse_target(text: str, option: str = "--target") -> Target:
    """``text`` as a target; a prefix or folder inside a state folder (``.planner``) is
    refused: its site objects would be the tool's state of another target."""
    target = _parse(text, option)
    parts = target.prefix.split("/") if isinstance(target, S3Target) else target.root.split(os.sep)
    if STATE_DIR in parts:
        raise BadTarget(
            f"{option} {text} lies inside a state folder ({STATE_DIR}), which holds a target's "
            "manifest, ledger and lock; choose a place outside it"
        )
    return target


def _parse(text: str, option: str) -> Target:
    if not text:
        raise BadTarget(f"{option} is empty")
    if text.startswith("s3://"):
        rest = text[len("s3://") :]
        bucket, _, prefix = rest.partition("/")
        if not _BUCKET.match(bucket):
            raise BadTarget(f"{option} {text}: {bucket!r} is not a valid S3 bucket name")
        prefix = prefix.strip("/")
        if any(p in ("", ".", "..") for p in prefix.split("/")) and prefix:
            raise BadTarget(f"{option} {text}: the prefix must not contain empty, '.' or '..' parts")
        return S3Target(bucket, prefix + "/" if prefix else "")
    if text.startswith("file:"):
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
            raise BadTarget(f"{option} {text}: a file: URL needs an absolute path (file:///dir)")
        return LocalTarget(os.path.normpath(unquote(parts.path)))
    if "://" in text:
        raise BadTarget(f"{option} {text}: only s3:// and file:// places are supported")
    return LocalTarget(os.path.abspath(text))


def check_apart(site: str, target: Target, option: str = "--target") -> None:
    """A local target (or state place) may not overlap the build folder (it would deploy
    into itself)."""
    if not isinstance(target, LocalTarget):
        return
    site = os.path.realpath(site)
    root = os.path.realpath(target.root)
    if os.path.commonpath([site, root]) in (site, root):
        raise BadTarget(
            f"{option} {target.root} overlaps the build folder {site}; choose a separate folder"
        )


def parse_state(text: str, target: Target) -> Target:
    """``--state``: where the target's state lives instead of ``<target>/.planner/``; of the
    target's kind (a bucket for an S3 target, a folder for a local one), and apart from the
    site: a state place inside the target would be served as site objects, and a target
    inside the state place would take the state for its site."""
    state = parse_target(text, "--state")
    if type(state) is not type(target):
        kind = "an s3:// place" if isinstance(target, S3Target) else "a folder"
        raise BadTarget(f"--state {text}: the state of {target.uri} must be {kind}, like the target")
    if isinstance(state, S3Target) and isinstance(target, S3Target):
        inside = state.bucket == target.bucket and (
            state.prefix.startswith(target.prefix) or target.prefix.startswith(state.prefix)
        )
    else:
        a, b = os.path.realpath(state.root), os.path.realpath(target.root)  # type: ignore[union-attr]
        inside = os.path.commonpath([a, b]) in (a, b)
    if inside:
        raise BadTarget(
            f"--state {text} overlaps the target {target.uri}: state objects would be site "
            "objects there; choose a place apart (another bucket or prefix)"
        )
    return state


def ancestors(place: Target) -> list[Target]:
    """The places above ``place``, outermost first: the bucket's root and each prefix above
    (an S3 place), or every folder above (a local one)."""
    if isinstance(place, S3Target):
        parts = place.prefix.split("/")[:-1]
        return [S3Target(place.bucket, "".join(p + "/" for p in parts[:depth]))
                for depth in range(len(parts))]
    out = []
    folder = place.root
    while (parent := os.path.dirname(folder)) != folder:
        out.append(LocalTarget(parent))
        folder = parent
    return out[::-1]


def is_bare_name(text: str) -> bool:
    """A word that can only be meant as the name of a configured target: no '/', no '.',
    no scheme (a local folder is written ./name)."""
    return bool(re.fullmatch(r"[A-Za-z0-9_-]+", text))


def check_distribution_names(names: tuple[str, ...]) -> None:
    """A ``--distribution`` that is empty or has white space around it (a CI variable that is
    unset, or pasted with a line break) is refused before anything is read or written."""
    for name in names:
        if not name.strip():
            raise BadTarget(
                "--distribution is empty (an unset CI variable?): give a distribution id, "
                "like E2QWRUHAPOMQZL, or its domain name"
            )
        if name != name.strip() or any(c.isspace() for c in name):
            raise BadTarget(
                f"--distribution {name!r} has white space in it (a CI variable pasted with a "
                "line break?): give the id alone, like E2QWRUHAPOMQZL"
            )
