"""Build side of invalidation-planner: scan a site, hash it, keep and diff manifests.

Knows nothing of CloudFront; ``planner`` builds on it.
"""

from .diff import Diff, diff
from .errors import (
    ConflictError,
    CorruptManifest,
    ManifestError,
    ScanError,
    StoreError,
    WrongTarget,
)
from .model import FORMAT_VERSION, STATE_DIR, Entry, Manifest
from .scan import DEFAULT_EXCLUDES, scan
from .stores import LocalStore, S3Store, Store, commit_manifest, load_manifest

__all__ = [
    "DEFAULT_EXCLUDES",
    "FORMAT_VERSION",
    "STATE_DIR",
    "ConflictError",
    "CorruptManifest",
    "Diff",
    "Entry",
    "LocalStore",
    "Manifest",
    "ManifestError",
    "S3Store",
    "ScanError",
    "Store",
    "StoreError",
    "WrongTarget",
    "commit_manifest",
    "diff",
    "load_manifest",
    "scan",
]
