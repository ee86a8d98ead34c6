"""Errors of the manifests package. Only the CLI turns them into click errors."""


class ManifestError(Exception):
    """Base class for every error this package raises."""


class ScanError(ManifestError):
    """The build folder cannot be scanned as a site (missing, unreadable, unsafe link...)."""


class CorruptManifest(ManifestError):
    """A stored manifest cannot be read: truncated, not gzip/JSON, wrong version, bad keys."""


class WrongTarget(ManifestError):
    """A stored manifest belongs to another target than the one being deployed."""


class ConflictError(ManifestError):
    """The stored manifest changed since it was read (another deploy committed first)."""


class StoreError(ManifestError):
    """The state store could not be read or written."""


def show(text: str) -> str:
    """``text`` (a path, maybe with bytes that are not UTF-8) fit for a message."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
