"""Helpers for the end-to-end tests: a small site on disk, the CLI in a subprocess, and views
of what the (moto) bucket and CloudFront hold."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

STATE_PREFIX = ".planner/"
MANIFEST = ".planner/manifest.json.gz"
TIMEOUT = 60

# key -> content. One name with a space and a non-ASCII letter.
SITE: dict[str, str] = {
    "index.html": "<!doctype html><h1>Home</h1><link rel=stylesheet href=/css/site.css>\n",
    "about/index.html": "<!doctype html><h1>About us</h1>\n",
    "css/site.css": "body { font-family: sans-serif; color: #222; }\n",
    "js/app.js": "console.log('hello');\n",
    "img/logo.svg": '<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>\n',
    "docs/café menu.html": "<!doctype html><h1>Menu du café</h1>\n",
}


def write_site(root: Path, files: dict[str, str] | None = None) -> Path:
    """Write ``files`` (default: SITE) below ``root`` and return ``root``."""
    for key, text in (SITE if files is None else files).items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))
    return root


def nested_key(total_bytes: int, char: str = "d") -> str:
    """A key of exactly ``total_bytes`` UTF-8 bytes, in folders short enough for the file
    system (NAME_MAX is 255 bytes)."""
    width = len(char.encode())
    parts: list[str] = []
    used = 0
    while total_bytes - used > 250:
        parts.append(char * (200 // width))
        used += (200 // width) * width + 1
    parts.append("f" * (total_bytes - used))
    key = "/".join(parts)
    assert len(key.encode()) == total_bytes
    return key


def run(
    args: list[str], env: dict[str, str], cwd: str | None = None, timeout: float = TIMEOUT
) -> subprocess.CompletedProcess:
    """``python -m planner ARGS`` in a subprocess (in ``cwd``), output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "planner", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        encoding="utf-8",
        timeout=timeout,
        check=False,
    )


def run_json(args: list[str], env: dict[str, str], cwd: str | None = None) -> dict[str, Any]:
    """Run a command with ``--format json`` that must succeed; its JSON document."""
    proc = run([*args, "--format", "json"], env, cwd)
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    )
    return json.loads(proc.stdout)


# Progress lines on stderr in CI form (hashing the build, uploads): shown before an error,
# they are not part of it.
PROGRESS_LINE = re.compile(r"(hashed|uploaded) [0-9,]+/[0-9,]+ files \(")


def without_progress(stderr: str) -> list[str]:
    """The lines of ``stderr`` other than progress lines."""
    return [line for line in stderr.splitlines() if not PROGRESS_LINE.match(line)]


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    """The single 'Error: ...' line of a failed run (asserting it is a failure, one line, and
    the last one: only progress lines may come before it)."""
    assert proc.returncode != 0, f"expected failure, got exit 0\nstdout: {proc.stdout}"
    lines = without_progress(proc.stderr.strip())
    assert len(lines) == 1, f"expected one error line, got:\n{proc.stderr}"
    assert proc.stderr.strip().splitlines()[-1] == lines[0], proc.stderr
    assert lines[0].startswith("Error: "), lines[0]
    assert "Traceback" not in proc.stderr
    return lines[0]


# --- the bucket ------------------------------------------------------------------------------


def objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Current objects under ``prefix``: key (prefix removed) -> list_objects_v2 item."""
    out: dict[str, dict[str, Any]] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            out[item["Key"][len(prefix) :]] = item
    return out


def site_objects(s3: Any, bucket: str, prefix: str = "") -> dict[str, dict[str, Any]]:
    """Like ``objects``, without the tool's state objects."""
    return {k: v for k, v in objects(s3, bucket, prefix).items() if not k.startswith(STATE_PREFIX)}


def body(s3: Any, bucket: str, key: str) -> bytes:
    return s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def history(s3: Any, bucket: str) -> list[tuple[str, str, str]]:
    """Every version and delete marker of a versioned bucket: (kind, key, version id), sorted.
    Any write or delete adds a row, so equal histories mean nothing was written."""
    rows: list[tuple[str, str, str]] = []
    for page in s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        rows += [("version", v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
        rows += [("delete", v["Key"], v["VersionId"]) for v in page.get("DeleteMarkers", [])]
    return sorted(rows)


def put_counts(s3: Any, bucket: str) -> dict[str, int]:
    """Number of versions (PUTs) per key of a versioned bucket."""
    counts: dict[str, int] = {}
    for kind, key, _ in history(s3, bucket):
        if kind == "version":
            counts[key] = counts.get(key, 0) + 1
    return counts


def manifest(s3: Any, bucket: str, prefix: str = ""):
    """The committed manifest, or None."""
    from manifests import Manifest

    try:
        data = body(s3, bucket, prefix + MANIFEST)
    except s3.exceptions.NoSuchKey:
        return None
    return Manifest.loads(data)


# --- CloudFront ------------------------------------------------------------------------------


def create_distribution(
    cloudfront: Any,
    bucket: str,
    origin_path: str = "",
    behaviors: tuple[tuple[str, str], ...] = (),
    root_object: str = "index.html",
    aliases: tuple[str, ...] = (),
) -> str:
    """A minimal distribution whose origin is ``bucket`` (under ``origin_path``); returns its
    id. ``behaviors``: (path pattern, "bucket" or "other") in order, "other" being a custom
    origin that is not the bucket; ``aliases``: alternate domain names."""
    origin_id = f"s3-{bucket}"
    origins = [
        {
            "Id": origin_id,
            "DomainName": f"{bucket}.s3.amazonaws.com",
            "OriginPath": origin_path,
            "S3OriginConfig": {"OriginAccessIdentity": ""},
        }
    ]
    if any(target == "other" for _, target in behaviors):
        origins.append({
            "Id": "other",
            "DomainName": "api.example.com",
            "OriginPath": "",
            "CustomOriginConfig": {"HTTPPort": 80, "HTTPSPort": 443,
                                   "OriginProtocolPolicy": "https-only"},
        })
    cache_behaviors = [
        {
            "PathPattern": pattern,
            "TargetOriginId": origin_id if target == "bucket" else "other",
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        }
        for pattern, target in behaviors
    ]
    config = {
        "CallerReference": f"e2e-{uuid.uuid4()}",
        "Comment": "planner e2e",
        "Enabled": True,
        "DefaultRootObject": root_object,
        "Origins": {"Quantity": len(origins), "Items": origins},
        "DefaultCacheBehavior": {
            "TargetOriginId": origin_id,
            "ViewerProtocolPolicy": "redirect-to-https",
            "MinTTL": 0,
            "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            "TrustedSigners": {"Enabled": False, "Quantity": 0},
        },
    }
    if cache_behaviors:
        config["CacheBehaviors"] = {"Quantity": len(cache_behaviors), "Items": cache_behaviors}
    if aliases:
        config["Aliases"] = {"Quantity": len(aliases), "Items": list(aliases)}
    return cloudfront.create_distribution(DistributionConfig=config)["Distribution"]["Id"]


def invalidations(cloudfront: Any, distribution_id: str) -> list[dict[str, Any]]:
    """Every invalidation of a distribution (GetInvalidation's ``Invalidation``), in any order."""
    resp = cloudfront.list_invalidations(DistributionId=distribution_id)
    items = resp["InvalidationList"].get("Items") or []
    return [
        cloudfront.get_invalidation(DistributionId=distribution_id, Id=item["Id"])["Invalidation"]
        for item in items
    ]


def inv_paths(invalidation: dict[str, Any]) -> list[str]:
    return sorted(invalidation["InvalidationBatch"]["Paths"].get("Items") or [])


def touch_all(root: Path, when: float) -> None:
    """Set every file's atime and mtime to ``when``."""
    for dirpath, _, names in os.walk(root):
        for name in names:
            os.utime(os.path.join(dirpath, name), (when, when))
