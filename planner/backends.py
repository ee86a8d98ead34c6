"""Where a deploy writes: the site objects, the state store and the CDN, per kind of target.

``LocalBackend`` mirrors the site into a folder and keeps an invalidation log there, so the
whole deploy runs without an AWS account. ``S3Backend`` writes to a bucket and submits
CloudFront invalidations; it is handed its clients and never creates one.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import shutil
import tempfile
from typing import Any, BinaryIO, Protocol, Sequence

from manifests import LocalStore, S3Store, Store
from manifests.model import STATE_DIR
from manifests.stores import ANY

from .aws import Clients, aws_errors
from .budget import (
    CACHE_NAME,
    AccountInvalidations,
    InvalidationCount,
    Usage,
    cache_codec,
    month_of,
    read_invalidations,
    recorded_usage,
    usage_from,
)
from .errors import AwsError, InvalidationError
from .targets import LocalTarget, S3Target, Target

MULTIPART_THRESHOLD = 16 * 1024 * 1024
INVALIDATION_LOG = "invalidations.jsonl"


class Backend(Protocol):
    target: Target
    store: Store
    default_distributions: tuple[str, ...]

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> None:
        """Store ``data`` as is; ``content_encoding`` ("gzip", "br") says it is compressed."""

    def put_stream(
        self, key: str, stream: BinaryIO, content_type: str, cache_control: str
    ) -> None: ...

    def delete(self, keys: Sequence[str]) -> None: ...

    def invalidate(self, distribution_id: str, paths: Sequence[str], reference: str) -> str: ...

    def check_distributions(self, distribution_ids: Sequence[str]) -> None: ...

    def usage(self, month: str, distribution_ids: Sequence[str]) -> Usage: ...

    def invalidations(self, month: str) -> AccountInvalidations: ...

    def list_site(self) -> dict[str, int]: ...

    def allow_writes(self) -> None: ...

    def served_by(self, distribution_ids: Sequence[str]) -> dict[str, Any]: ...


class LocalBackend:
    """A folder that plays bucket and CDN: files mirrored, invalidations appended to a log."""

    default_distributions = ("local",)

    def __init__(self, target: LocalTarget) -> None:
        self.target = target
        self.root = target.root
        self.store = LocalStore(self.root)

    def _dest(self, key: str) -> str:
        return os.path.join(self.root, *key.split("/"))

    def _atomic(self, key: str, write) -> None:
        dest = self._dest(key)
        folder = os.path.dirname(dest)
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".planner-", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            os.replace(tmp, dest)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            raise

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> None:
        # Compressed data is written compressed, as S3 stores it (there is no header to keep).
        self._atomic(key, lambda f: f.write(data))

    def put_stream(self, key: str, stream: BinaryIO, content_type: str, cache_control: str) -> None:
        # A read that raises (content not the one scanned) leaves nothing: the temporary
        # file is removed, the destination never replaced.
        self._atomic(key, lambda f: shutil.copyfileobj(stream, f, 1 << 20))

    def delete(self, keys: Sequence[str]) -> None:
        for key in keys:
            dest = self._dest(key)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)
            # Remove folders the delete left empty, up to (not including) the root.
            folder = os.path.dirname(dest)
            while folder != self.root and folder.startswith(self.root):
                try:
                    os.rmdir(folder)
                except OSError:
                    break
                folder = os.path.dirname(folder)

    def allow_writes(self) -> None:
        """Planning writes nothing here anyway."""

    def served_by(self, distribution_ids: Sequence[str]) -> dict[str, Any]:
        """The folder is served as is: keys under "/"."""
        return {d: None for d in distribution_ids}

    def list_site(self) -> dict[str, int]:
        """key -> size of every file in the folder but the tool's state."""
        out: dict[str, int] = {}
        for here, dirs, files in os.walk(self.root):
            if here == self.root:
                dirs[:] = [d for d in dirs if d != STATE_DIR]
            rel = os.path.relpath(here, self.root)
            for name in files:
                key = name if rel == "." else f"{rel.replace(os.sep, '/')}/{name}"
                out[key] = os.lstat(os.path.join(here, name)).st_size
        return out

    def check_distributions(self, distribution_ids: Sequence[str]) -> None:
        """Any name will do: the local log plays every distribution."""

    def usage(self, month: str, distribution_ids: Sequence[str]) -> Usage:
        """The log is this backend's CloudFront: its paths of ``month``; nothing is ever in
        progress (a local invalidation completes when it is written)."""
        return usage_from(self.invalidations(month), tuple(distribution_ids))

    def invalidations(self, month: str) -> AccountInvalidations:
        items = []
        dists: dict[str, None] = {}
        for r in self.invalidation_log():
            dists[r["distribution_id"]] = None
            created = _dt.datetime.strptime(r["create_time"], "%Y-%m-%dT%H:%M:%SZ").replace(
                tzinfo=_dt.UTC
            )
            if month_of(created) == month:
                wild = sum(1 for p in r["paths"] if p.endswith("*"))
                items.append(
                    InvalidationCount(r["distribution_id"], r["id"], created, len(r["paths"]), wild, True)
                )
        return AccountInvalidations(month, tuple(dists), tuple(items), "local invalidation log")

    def invalidation_log(self) -> list[dict[str, Any]]:
        path = os.path.join(self.root, STATE_DIR, INVALIDATION_LOG)
        try:
            with open(path, encoding="utf-8") as f:
                return [json.loads(line) for line in f if line.strip()]
        except FileNotFoundError:
            return []

    def invalidate(self, distribution_id: str, paths: Sequence[str], reference: str) -> str:
        # Same rule as CloudFront: a repeated reference with the same paths returns the earlier
        # invalidation; with other paths it is an error.
        for record in self.invalidation_log():
            if record["distribution_id"] == distribution_id and record["caller_reference"] == reference:
                if record["paths"] != list(paths):
                    raise InvalidationError(
                        f"invalidation reference {reference} was already used with other paths"
                    )
                return record["id"]
        record = {
            "id": f"L{reference[-12:].upper()}",
            "distribution_id": distribution_id,
            "caller_reference": reference,
            "create_time": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "paths": list(paths),
        }
        path = os.path.join(self.root, STATE_DIR, INVALIDATION_LOG)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            f.flush()
            os.fsync(f.fileno())
        return record["id"]


class S3Backend:
    """A bucket (under an optional prefix) behind CloudFront distributions."""

    default_distributions: tuple[str, ...] = ()

    def __init__(
        self, target: S3Target, clients: Clients, read_only: bool = False, acl: str | None = None
    ) -> None:
        self.target = target
        self.clients = clients
        self.read_only = read_only  # plan / --dry-run: not even the count cache is written
        # Canned ACL of site files only: state objects go through the store, which sets none.
        self.site_args: dict[str, str] = {"ACL": acl} if acl else {}
        self._unsaved_cache: bytes | None = None
        self.bucket = target.bucket
        self.prefix = target.prefix
        self._store: S3Store | None = None

    def allow_writes(self) -> None:
        """End of planning (a deploy that goes on): write what planning kept back, the count
        cache, so that a refused deploy writes nothing at all."""
        self.read_only = False
        if self._unsaved_cache is not None:
            data, self._unsaved_cache = self._unsaved_cache, None
            try:
                self.store.write(CACHE_NAME, data)
            except AwsError:
                pass  # only a cache

    @property
    def store(self) -> S3Store:  # created on first use so `plan` makes no client it needs not
        if self._store is None:
            self._store = _GuardedS3Store(self.clients.s3, self.bucket, self.prefix)
        return self._store

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> None:
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        with aws_errors(f"upload s3://{self.bucket}/{self.prefix}{key}"):
            self.clients.s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                **extra,
                **self.site_args,
            )

    def put_stream(self, key: str, stream: BinaryIO, content_type: str, cache_control: str) -> None:
        """boto3's managed (multipart) upload. ``stream`` is read in order; a read that raises
        fails the upload before it is completed (boto3 aborts the multipart upload)."""
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4)
        with aws_errors(f"upload s3://{self.bucket}/{self.prefix}{key}"):
            self.clients.s3.upload_fileobj(
                stream,
                self.bucket,
                self.prefix + key,
                ExtraArgs={
                    "ContentType": content_type,
                    "CacheControl": cache_control,
                    **self.site_args,
                },
                Config=config,
            )

    def delete(self, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1,000 keys
            batch = keys[start : start + 1000]
            with aws_errors(f"delete from s3://{self.bucket}/{self.prefix}"):
                resp = self.clients.s3.delete_objects(
                    Bucket=self.bucket,
                    Delete={"Objects": [{"Key": self.prefix + k} for k in batch], "Quiet": True},
                )
            errors = resp.get("Errors") or []
            if errors:
                first = errors[0]
                raise InvalidationError(
                    f"delete s3://{self.bucket}/{first.get('Key')}: {first.get('Code')}: "
                    f"{first.get('Message')} ({len(errors)} keys failed)"
                )

    def list_site(self) -> dict[str, int]:
        """key (prefix removed) -> size of every object under the prefix but the state."""
        out: dict[str, int] = {}
        state = self.prefix + STATE_DIR + "/"
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        while True:
            with aws_errors(f"list s3://{self.bucket}/{self.prefix}"):
                resp = self.clients.s3.list_objects_v2(**args)
            for item in resp.get("Contents", []):
                if not item["Key"].startswith(state):
                    out[item["Key"][len(self.prefix) :]] = item["Size"]
            if not resp.get("IsTruncated"):
                return out
            args["ContinuationToken"] = resp["NextContinuationToken"]

    def served_by(self, distribution_ids: Sequence[str]) -> dict[str, Any]:
        """distribution -> how it serves this bucket (planner.origins.Served), None when no
        origin of it is the bucket."""
        from .origins import served

        out: dict[str, Any] = {}
        for dist in distribution_ids:
            with aws_errors(f"distribution {dist}"):
                config = self.clients.cloudfront.get_distribution(Id=dist)["Distribution"][
                    "DistributionConfig"
                ]
            out[dist] = served(config, self.bucket)
        return out

    def check_distributions(self, distribution_ids: Sequence[str]) -> None:
        """Fail (NoSuchDistribution, AccessDenied...) before anything is written, so a mistyped
        id never leaves a committed deploy waiting for an invalidation that cannot be made."""
        for dist in distribution_ids:
            with aws_errors(f"distribution {dist}"):
                self.clients.cloudfront.get_distribution(Id=dist)

    def _cache(self):
        def read() -> bytes | None:
            return self.store.read(CACHE_NAME)[0]

        def write(data: bytes) -> None:
            if self.read_only:
                self._unsaved_cache = data  # saved by allow_writes(), if the deploy goes on
                return
            try:
                self.store.write(CACHE_NAME, data)
            except AwsError:
                pass  # only a cache (e.g. a report run without PutObject): read again next time

        return cache_codec(read, write)

    def invalidations(self, month: str) -> AccountInvalidations:
        """CloudFront's own list for the whole account (other tools' and people's included)."""
        load, save = self._cache()
        with aws_errors("reading the month's invalidations"):
            return read_invalidations(self.clients.cloudfront, month, load, save)

    def usage(self, month: str, distribution_ids: Sequence[str]) -> Usage:
        """CloudFront's own count (all distributions of the account, other tools included);
        without permission to list, the tool's own record, and the Usage says so."""
        try:
            return usage_from(self.invalidations(month), tuple(distribution_ids))
        except AwsError as exc:
            if exc.code not in ("AccessDenied", "AccessDeniedException"):
                raise
            return Usage(
                month,
                recorded_usage(self._cache()[0](), month),
                "tool record",
                note="no permission to list invalidations (AccessDenied): counted from the "
                "tool's own record; pass --paths-used to set it",
            )

    def invalidate(self, distribution_id: str, paths: Sequence[str], reference: str) -> str:
        batch = {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": reference}
        with aws_errors(f"CreateInvalidation on {distribution_id}"):
            resp = self.clients.cloudfront.create_invalidation(
                DistributionId=distribution_id, InvalidationBatch=batch
            )
        inv = resp["Invalidation"]
        self._record(distribution_id, inv["Id"], paths, inv.get("CreateTime"))
        return inv["Id"]

    def _record(self, distribution_id: str, inv_id: str, paths: Sequence[str], created) -> None:
        """Add a submitted invalidation to the tool's own record (the count cache), for when
        listing is not allowed. Best effort: the record is only a fallback."""
        when = created if isinstance(created, _dt.datetime) else _dt.datetime.now(_dt.UTC)
        load, save = self._cache()
        try:
            cache = load()
            wild = sum(1 for p in paths if p.endswith("*"))
            cache[f"{distribution_id}/{inv_id}"] = [len(paths), wild, month_of(when)]
            save(cache)
        except Exception:  # noqa: BLE001 - a failed record must not fail a made invalidation
            pass


class _GuardedS3Store(S3Store):
    """S3Store whose botocore errors surface as AwsError with their code."""

    def read(self, name: str):
        with aws_errors(f"read {self.location}{name}"):
            return super().read(name)

    def write(self, name: str, data: bytes, expect=None) -> str:
        with aws_errors(f"write {self.location}{name}"):
            return super().write(name, data, expect)

    def remove(self, name: str, expect=ANY) -> None:
        with aws_errors(f"delete {self.location}{name}"):
            super().remove(name, expect)

    def list(self, prefix: str) -> list[str]:
        with aws_errors(f"list {self.location}{prefix}"):
            return super().list(prefix)


def make_backend(
    target: Target,
    clients: Clients | None = None,
    read_only: bool = False,
    acl: str | None = None,
) -> Backend:
    """The backend for ``target``; ``read_only`` for plans (the local backend writes nothing
    while planning anyway); ``acl`` for uploaded site files on S3 (never state objects)."""
    if isinstance(target, LocalTarget):
        return LocalBackend(target)
    return S3Backend(target, clients or Clients(), read_only, acl)
