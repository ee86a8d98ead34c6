"""State stores: where a target keeps the tool's own files (manifest, pending record, logs).

One small interface, two implementations: a local folder and an S3 prefix. Every write can be
conditional on the version read before (``expect``), so a commit never silently overwrites a
concurrent one. The S3 store is handed a client; it never creates one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from typing import Any, Iterator, Protocol

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; conditional writes are best effort there
    fcntl = None  # type: ignore[assignment]

import xxhash

from .errors import ConflictError, CorruptManifest, StoreError, WrongTarget
from .model import STATE_DIR, Manifest

MANIFEST_NAME = "manifest.json.gz"

# ``expect`` values for conditional writes.
ABSENT = "absent"  # the object must not exist yet
ANY = None  # unconditional


class Store(Protocol):
    """Named blobs of the tool's state next to one target."""

    location: str

    def read(self, name: str) -> tuple[bytes | None, str | None]:
        """(data, version) of ``name``, or (None, None) when it does not exist."""

    def write(self, name: str, data: bytes, expect: str | None = ANY) -> str:
        """Write ``name``; ``expect`` is a version read before, ABSENT, or ANY. Returns the new
        version; raises ConflictError when the condition does not hold."""

    def remove(self, name: str, expect: str | None = ANY) -> None:
        """Delete ``name`` if it exists; with ``expect`` (a version read before), only if it is
        still that version: ConflictError otherwise."""

    def list(self, prefix: str) -> list[str]:
        """Names that start with ``prefix`` (a folder-like prefix such as ``ledger/2026-11/``),
        sorted."""


class LocalStore:
    """State in ``<root>/.planner/`` (or in ``root`` itself, ``folder=""``: a state place of
    its own); versions are content hashes; writes are atomic renames."""

    def __init__(self, root: str, folder: str = STATE_DIR) -> None:
        self.dir = os.path.join(root, folder) if folder else os.path.normpath(root)
        self.location = self.dir + os.sep

    def _path(self, name: str) -> str:
        return os.path.join(self.dir, name)

    def read(self, name: str) -> tuple[bytes | None, str | None]:
        try:
            with open(self._path(name), "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None, None
        except OSError as exc:
            raise StoreError(f"cannot read {self._path(name)}: {exc.strerror}") from None
        return data, xxhash.xxh3_128_hexdigest(data)

    def write(self, name: str, data: bytes, expect: str | None = ANY) -> str:
        try:
            os.makedirs(self.dir, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot write {self.location}: {exc.strerror}") from None
        if expect is ANY:
            return self._replace(name, data)
        # Check and replace under an exclusive lock, so two deploys cannot both pass the check.
        with self._locked():
            _, current = self.read(name)
            if (expect == ABSENT and current is not None) or (
                expect != ABSENT and current != expect
            ):
                raise ConflictError(
                    f"{self.location}{name} changed since it was read (another deploy?); run again"
                )
            return self._replace(name, data)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        fd = os.open(os.path.join(self.dir, ".lock"), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock

    def _replace(self, name: str, data: bytes) -> str:
        path = self._path(name)
        folder, base = os.path.split(path)
        try:
            os.makedirs(folder, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{base}.", suffix=".tmp")
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as exc:
            raise StoreError(f"cannot write {path}: {exc.strerror}") from None
        return xxhash.xxh3_128_hexdigest(data)

    def remove(self, name: str, expect: str | None = ANY) -> None:
        if expect is not ANY and self.read(name)[1] not in (expect, None):
            raise ConflictError(f"{self.location}{name} changed since it was read")
        try:
            os.unlink(self._path(name))
        except FileNotFoundError:
            pass

    def list(self, prefix: str) -> list[str]:
        # Names use '/' whatever the OS; a prefix names a folder, then a start of file name.
        folder, _, start = prefix.rpartition("/")
        base = os.path.join(self.dir, *folder.split("/")) if folder else self.dir
        names: list[str] = []
        for here, dirs, files in os.walk(base):
            rel = os.path.relpath(here, self.dir).replace(os.sep, "/")
            rel = "" if rel == "." else rel + "/"
            names.extend(
                rel + f for f in files if not f.startswith(".") and (rel + f).startswith(prefix)
            )
        return sorted(names)


class S3Store:
    """State under ``s3://bucket/<prefix>.planner/`` (or under ``<prefix>`` itself,
    ``folder=""``: a state place of its own); versions are ETags; writes use S3's
    conditional PutObject (If-Match / If-None-Match). Objects get no ACL of their own, so they
    stay private even when site files are public."""

    def __init__(self, client: Any, bucket: str, prefix: str = "", folder: str = STATE_DIR) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = f"{prefix}{folder}/" if folder else prefix
        self.location = f"s3://{bucket}/{self.prefix}"

    def key(self, name: str) -> str:
        return self.prefix + name

    def read(self, name: str) -> tuple[bytes | None, str | None]:
        try:
            resp = self.client.get_object(Bucket=self.bucket, Key=self.key(name))
        except Exception as exc:  # botocore's ClientError, without importing botocore here
            if _code(exc) in ("NoSuchKey", "404"):
                return None, None
            raise
        return resp["Body"].read(), resp["ETag"]

    def write(self, name: str, data: bytes, expect: str | None = ANY) -> str:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name), "Body": data}
        if expect == ABSENT:
            args["IfNoneMatch"] = "*"
        elif expect is not ANY:
            args["IfMatch"] = expect
        try:
            resp = self.client.put_object(
                **args, ContentType="application/octet-stream", CacheControl="no-store"
            )
        except Exception as exc:
            if _code(exc) in ("PreconditionFailed", "ConditionalRequestConflict", "NoSuchKey"):
                raise ConflictError(
                    f"{self.location}{name} changed since it was read (another deploy?); run again"
                ) from None
            raise
        return resp["ETag"]

    def remove(self, name: str, expect: str | None = ANY) -> None:
        """With ``expect``: S3's conditional DeleteObject (If-Match on the ETag); a store
        that ignores the condition deletes unconditionally, as before it existed."""
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(name)}
        if expect is not ANY:
            args["IfMatch"] = expect
        try:
            self.client.delete_object(**args)
        except Exception as exc:
            code = _code(exc)
            if expect is not ANY and code in ("NoSuchKey", "404"):
                return  # gone already (S3 answers 404 to a conditional delete of nothing)
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise ConflictError(
                    f"{self.location}{name} changed since it was read (another deploy?)"
                ) from None
            raise

    def list(self, prefix: str) -> list[str]:
        names: list[str] = []
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.key(prefix)}
        while True:
            resp = self.client.list_objects_v2(**args)
            names.extend(item["Key"][len(self.prefix) :] for item in resp.get("Contents", []))
            if not resp.get("IsTruncated"):
                return sorted(names)
            args["ContinuationToken"] = resp["NextContinuationToken"]


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def load_manifest(store: Store, target: str) -> tuple[Manifest | None, str | None]:
    """The committed manifest of ``target`` and its version; (None, None) before the first
    deploy. A manifest that names another target is refused."""
    data, version = store.read(MANIFEST_NAME)
    if data is None:
        return None, None
    try:
        manifest = Manifest.loads(data)
    except CorruptManifest as exc:
        raise CorruptManifest(f"{store.location}{MANIFEST_NAME}: {exc}") from None
    if manifest.target and manifest.target != target:
        raise WrongTarget(
            f"the manifest in {store.location} belongs to {manifest.target}, not {target}"
        )
    return manifest, version


def commit_manifest(store: Store, manifest: Manifest, previous_version: str | None) -> str:
    """Write ``manifest`` only if the stored one is still ``previous_version`` (or, on a first
    deploy, still absent)."""
    expect = ABSENT if previous_version is None else previous_version
    return store.write(MANIFEST_NAME, manifest.dumps(), expect=expect)
