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
import re
import stat
import threading
from dataclasses import dataclass
from typing import Any, BinaryIO, Protocol, Sequence

import xxhash

from manifests import LocalStore, S3Store, Store
from manifests.etags import normal
from manifests.model import STATE_DIR, check_key
from manifests.stores import ANY
from planner.backends.aws import Clients, aws_errors
from planner.backends.fence import Fence
from planner.backends.targets import LocalTarget, S3Target, Target
from planner.core.pacing import (
    CACHE_NAME,
    AccountInvalidations,
    InvalidationCount,
    Usage,
    cache_codec,
    distribution_summaries,
    month_of,
    read_invalidations,
    recorded_usage,
    usage_from,
)
from planner.errors import AwsError, BadTarget, InvalidationError
from planner.plan.adopt import Head, Listing, Stored, split_listing

MULTIPART_THRESHOLD = 16 * 1024 * 1024
INVALIDATION_LOG = "invalidations.jsonl"
HEAD_WORKERS = 32  # HeadObject requests at once (a takeover, verify --deep)
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0 cannot carry
TMP_PREFIX, TMP_SUFFIX = ".planner-", ".tmp"  # a local write under way (or killed)


@dataclass(frozen=True)
class Distribution:
    """What the plan shows of a distribution, and how it serves the target's bucket
    (``served``: a :class:`planner.core.origins.Served`, None when no origin of it is the
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


class Backend(Protocol):
    target: Target
    store: Store
    default_distributions: tuple[str, ...]
    state: Target | None  # --state: the state's own place; None: <target>/.planner/
    state_apart: bool  # the state lives in a place of its own (--state), not in the target
    # The clock of the place the lock is in, and the lease that bounds writes; on S3 it signs
    # every write to expire with the lease (planner.backends.fence); a local folder can only check.
    fence: Fence

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> str:
        """Store ``data`` as is; ``content_encoding`` ("gzip", "br") says it is compressed.
        Returns the object's ETag ("" when the store gives none)."""

    def put_stream(
        self, key: str, stream: BinaryIO, content_type: str, cache_control: str
    ) -> str: ...

    def copy_in_place(
        self, key: str, content_type: str, cache_control: str, content_encoding: str
    ) -> str:
        """Set the object's headers without sending its bytes again; returns its ETag."""

    def delete(self, keys: Sequence[str]) -> None: ...

    def invalidate(self, distribution_id: str, paths: Sequence[str], reference: str) -> str: ...

    def check_distributions(self, distribution_ids: Sequence[str]) -> None: ...

    def usage(self, month: str, distribution_ids: Sequence[str]) -> Usage: ...

    def invalidations(self, month: str) -> AccountInvalidations: ...

    def list_site(self) -> Listing: ...

    def heads(self, keys: Sequence[str], multipart: frozenset[str] = frozenset()) -> dict[str, Head] | None:
        """Headers of ``keys`` (and the part size of those in ``multipart``); keys gone are
        left out; None where objects have no headers (a local folder)."""

    def enclosing_targets(self) -> list[str]: ...

    def allow_writes(self) -> None: ...

    def distributions(self, distribution_ids: Sequence[str]) -> dict[str, Distribution]: ...

    def resolve_distributions(self, names: Sequence[str]) -> tuple[str, ...]: ...


def _md5(data: bytes = b""):
    """An MD5 (the local backend's ETag); OpenSSL's hashlib loaded on first use, not when
    a plan starts."""
    import hashlib

    return hashlib.md5(data, usedforsecurity=False)


def _md5_of(path: str) -> str:
    digest = _md5()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class LocalBackend:
    """A folder that plays bucket and CDN: files mirrored, invalidations appended to a log.
    Its "ETag" is the MD5 of a file, as S3's is of an object written in one request.

    Files are created as ``open()`` creates them (mode 0666, folders 0777, less the umask:
    0644 and 0755 with umask 022). A key may be a file in one build and a folder in the next
    (``docs``, then ``docs/index.html``), or the reverse: the write makes room by removing
    what is in its way, but only what the deploy under way deletes anyway (its pending
    record's deletes): a file kept by ``--no-delete``, a file the tool never wrote or another
    target is never removed (the write is refused, in one line). Nothing is done through a
    symbolic link: one in the way is removed (the link, never what it points to) or refused
    like a file, and a delete never goes through one."""

    default_distributions = ("local",)

    def __init__(self, target: LocalTarget, state: LocalTarget | None = None) -> None:
        self.target = target
        self.root = os.path.normpath(target.root)
        self.state = state  # --state: the state's own folder; None: <target>/.planner/
        self.state_apart = state is not None
        self.store = LocalStore(self.root) if state is None else LocalStore(state.root, folder="")
        self.fence = Fence()  # the wall clock; a file system cannot refuse a late write
        # Uploads run on threads: one at a time makes room (removes what is in a key's way).
        self._room = threading.Lock()

    def _dest(self, key: str) -> str:
        check_key(key)  # never outside the folder, never in its .planner/
        return os.path.join(self.root, *key.split("/"))

    def _fail(self, doing: str, key: str, exc: OSError) -> BadTarget:
        where = f" ({exc.filename})" if exc.filename else ""
        return BadTarget(f"cannot {doing} {key} in {self.target.uri}: {exc.strerror or exc}{where}")

    def _deleting(self) -> frozenset[str]:
        """The keys the deploy (or repair) under way deletes: its pending record's deletes,
        written before its first write. Only those may be removed early to make room."""
        from planner.plan.compute import read_journal  # (plan imports this module)

        journal = read_journal(self)
        return frozenset(journal.deletes) if journal is not None else frozenset()

    def _folder_for(self, key: str) -> str:
        """Make the folders above ``key``'s file, each a real folder: a file or a link in
        the way (``docs`` when ``docs/index.html`` is written) is removed if the deploy under
        way deletes it, refused otherwise. Returns the key's folder."""
        parts = key.split("/")[:-1]
        os.makedirs(self.root, exist_ok=True)
        here = self.root
        for depth, part in enumerate(parts):
            here = os.path.join(here, part)
            try:
                if stat.S_ISDIR(os.lstat(here).st_mode):
                    continue  # (a link to a folder is not S_ISDIR under lstat)
            except FileNotFoundError:
                pass
            with self._room:  # another upload may be making the same room
                try:
                    st = os.lstat(here)
                except FileNotFoundError:
                    st = None
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    in_way = "/".join(parts[: depth + 1])
                    if in_way not in self._deleting():
                        what = "a link" if stat.S_ISLNK(st.st_mode) else "a file"
                        raise BadTarget(
                            f"cannot write {key} in {self.target.uri}: {in_way} there is {what} "
                            "this deploy does not delete (kept by --no-delete, or not written "
                            "by planner), and a path cannot be a file and a folder at once; "
                            "remove it, or deploy without --no-delete"
                        )
                    os.unlink(here)  # the file or the link itself, never what it points to
                    st = None
                if st is None:
                    os.mkdir(here)  # 0777 less the umask
        return os.path.join(self.root, *parts) if parts else self.root

    def _clear_folder(self, key: str, folder: str) -> None:
        """Remove the folder where ``key``'s file goes (``docs/`` when ``docs`` is written),
        if all it holds is what the deploy under way deletes anyway (and this backend's
        unfinished writes); otherwise refuse, before removing anything."""
        deleting = self._deleting()
        files: list[str] = []
        folders: list[str] = []

        def fail(exc: OSError) -> None:
            raise exc

        for here, dirs, names in os.walk(folder, onerror=fail):  # never into a link
            rel = os.path.relpath(here, self.root).replace(os.sep, "/") + "/"
            if STATE_DIR in dirs:
                raise BadTarget(
                    f"cannot write {key} in {self.target.uri}: the folder {key}/ there holds "
                    f"another target ({rel}{STATE_DIR}/), which a deploy never removes"
                )
            folders.append(here)
            for name in [*names, *(d for d in dirs if os.path.islink(os.path.join(here, d)))]:
                ours = name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX)
                if not ours and rel + name not in deleting:
                    raise BadTarget(
                        f"cannot write {key} in {self.target.uri}: the folder {key}/ there "
                        f"holds {rel + name}, which this deploy does not delete (kept by "
                        "--no-delete, or not written by planner), and a path cannot be a "
                        "folder and a file at once; remove it, or deploy without --no-delete"
                    )
                files.append(os.path.join(here, name))
        for path in files:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        for here in reversed(folders):  # deepest first
            os.rmdir(here)

    def _temp(self, key: str, folder: str) -> str:
        """The name of ``key``'s unfinished write, the same on every try, so that a write
        killed half-way is replaced by the next one (or removed by the key's delete)."""
        name = xxhash.xxh3_64_hexdigest(key.rpartition("/")[2].encode())
        return os.path.join(folder, f"{TMP_PREFIX}{name}{TMP_SUFFIX}")

    def _atomic(self, key: str, write) -> None:
        dest = self._dest(key)
        try:
            folder = self._folder_for(key)
            tmp = self._temp(key, folder)
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)  # left by a write that was killed
            # As open() creates a file: mode 0666 less the umask (mkstemp would give 0600).
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
            fd = os.open(tmp, flags, 0o666)
        except OSError as exc:
            raise self._fail("write", key, exc) from None
        try:
            with os.fdopen(fd, "wb") as f:
                write(f)
            try:
                in_way = stat.S_ISDIR(os.lstat(dest).st_mode)  # (a link is replaced as is)
            except FileNotFoundError:
                in_way = False
            if in_way:  # a folder where the file goes: ``docs/`` when ``docs`` is written
                with self._room:
                    self._clear_folder(key, dest)
            os.replace(tmp, dest)  # a file or a link there is replaced, never followed
        except BaseException as exc:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
            if isinstance(exc, OSError):
                raise self._fail("write", key, exc) from None
            raise

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> str:
        # Compressed data is written compressed, as S3 stores it (there is no header to keep).
        self._atomic(key, lambda f: f.write(data))
        return _md5(data).hexdigest()

    def put_stream(self, key: str, stream: BinaryIO, content_type: str, cache_control: str) -> str:
        # A read that raises (content not the one scanned) leaves nothing: the temporary
        # file is removed, the destination never replaced.
        digest = _md5()

        def write(f: BinaryIO) -> None:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                f.write(chunk)

        self._atomic(key, write)
        return digest.hexdigest()

    def copy_in_place(
        self, key: str, content_type: str, cache_control: str, content_encoding: str
    ) -> str:
        """A file has no headers: nothing to change."""
        return _md5_of(self._dest(key))

    def delete(self, keys: Sequence[str]) -> None:
        """Remove each key's file (a link: the link itself), then the folders that left empty,
        up to the target's own. A key whose place is no longer a file is left alone: a folder
        that replaced it (``docs`` deleted, ``docs/index.html`` written), or a file or a link
        that replaced one of its folders (never gone through)."""
        for key in keys:
            dest = self._dest(key)
            try:
                folder = self._real_folder(key)
                if folder is None:
                    continue
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self._temp(key, folder))  # left by a write that was killed
                with contextlib.suppress(FileNotFoundError):
                    if not stat.S_ISDIR(os.lstat(dest).st_mode):
                        os.unlink(dest)
            except OSError as exc:
                raise self._fail("delete", key, exc) from None
            # Remove folders the delete left empty, up to (not including) the root.
            while folder.startswith(self.root + os.sep):
                try:
                    os.rmdir(folder)
                except OSError:
                    break
                folder = os.path.dirname(folder)

    def _real_folder(self, key: str) -> str | None:
        """``key``'s folder when each folder above its file is a real one (no link, no file
        in a folder's place); None otherwise, or when one is missing."""
        here = self.root
        for part in key.split("/")[:-1]:
            here = os.path.join(here, part)
            try:
                if not stat.S_ISDIR(os.lstat(here).st_mode):
                    return None
            except FileNotFoundError:
                return None
        return here

    def allow_writes(self) -> None:
        """Planning writes nothing here anyway."""

    def distributions(self, distribution_ids: Sequence[str]) -> dict[str, Distribution]:
        """The folder is served as is: keys under "/"."""
        return {d: Distribution(d) for d in distribution_ids}

    def resolve_distributions(self, names: Sequence[str]) -> tuple[str, ...]:
        """Any name will do: the local log plays every distribution."""
        return tuple(names)

    def list_site(self) -> Listing:
        """Every file in the folder (size and MD5: the folder's ETags) but the tool's state
        and folders holding another target (their own state folder)."""
        raw: dict[str, Stored] = {}
        if not os.path.isdir(self.root):
            return Listing({})
        for here, dirs, files in os.walk(self.root):
            rel = os.path.relpath(here, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            if STATE_DIR in dirs:  # the state folder: listed by name only, never read
                dirs.remove(STATE_DIR)
                raw[f"{base}{STATE_DIR}/"] = Stored(0, "")
            for name in files:
                if name.startswith(TMP_PREFIX) and name.endswith(TMP_SUFFIX):
                    continue  # a write of this backend under way (or left by a crash)
                path = os.path.join(here, name)
                try:
                    raw[base + name] = Stored(os.lstat(path).st_size, _md5_of(path))
                except OSError:
                    continue  # gone meanwhile
        return split_listing(raw)

    def heads(self, keys: Sequence[str], multipart: frozenset[str] = frozenset()) -> None:
        """Files have no headers."""
        return None

    def enclosing_targets(self) -> list[str]:
        """Folders above the target that hold another target's state, outermost first."""
        out = []
        folder = os.path.dirname(self.root)
        while True:
            if os.path.isdir(os.path.join(folder, STATE_DIR)):
                out.append("file://" + folder)
            parent = os.path.dirname(folder)
            if parent == folder:
                return out[::-1]
            folder = parent

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
        path = os.path.join(self.store.dir, INVALIDATION_LOG)
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
        path = os.path.join(self.store.dir, INVALIDATION_LOG)
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
        self,
        target: S3Target,
        clients: Clients,
        read_only: bool = False,
        acl: str | None = None,
        state: S3Target | None = None,
    ) -> None:
        self.target = target
        self.state = state  # --state: the state's own place; None: <target>/.planner/
        self.state_apart = state is not None
        self.clients = clients
        self.read_only = read_only  # plan / --dry-run: not even the count cache is written
        # Canned ACL of site files only: state objects go through the store, which sets none.
        self.site_args: dict[str, str] = {"ACL": acl} if acl else {}
        self._unsaved_cache: bytes | None = None
        self.bucket = target.bucket
        self.prefix = target.prefix
        self._store: S3Store | None = None

    @property
    def fence(self) -> Fence:
        return self.clients.fence

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
            if self.state is None:
                self._store = _GuardedS3Store(self.clients.s3, self.bucket, self.prefix)
            else:
                self._store = _GuardedS3Store(
                    self.clients.s3, self.state.bucket, self.state.prefix, folder=""
                )
        return self._store

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> str:
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        with aws_errors(f"upload s3://{self.bucket}/{self.prefix}{key}"):
            resp = self.clients.s3.put_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                Body=data,
                ContentType=content_type,
                CacheControl=cache_control,
                **extra,
                **self.site_args,
            )
        return normal(resp.get("ETag") or "")

    def put_stream(self, key: str, stream: BinaryIO, content_type: str, cache_control: str) -> str:
        """boto3's managed (multipart) upload. ``stream`` is read in order; a read that raises
        fails the upload before it is completed (boto3 aborts the multipart upload). boto3
        does not hand back the ETag: a HeadObject reads it (under the deploy lock, no other
        deploy writes the key meanwhile)."""
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
            head = self.clients.s3.head_object(Bucket=self.bucket, Key=self.prefix + key)
        return normal(head.get("ETag") or "")

    def copy_in_place(
        self, key: str, content_type: str, cache_control: str, content_encoding: str
    ) -> str:
        """CopyObject onto itself with MetadataDirective=REPLACE: new headers, the bytes stay
        in S3 (objects up to 5 GB). The ACL is the one uploads get (``--acl``, else the
        bucket's default), as a new upload would have."""
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        with aws_errors(f"copy s3://{self.bucket}/{self.prefix}{key} in place"):
            resp = self.clients.s3.copy_object(
                Bucket=self.bucket,
                Key=self.prefix + key,
                CopySource={"Bucket": self.bucket, "Key": self.prefix + key},
                MetadataDirective="REPLACE",
                ContentType=content_type,
                CacheControl=cache_control,
                **extra,
                **self.site_args,
            )
        return normal((resp.get("CopyObjectResult") or {}).get("ETag") or "")

    def delete(self, keys: Sequence[str]) -> None:
        # DeleteObjects is an XML request, which cannot carry most control characters: a key
        # holding one (committed by an earlier version) is deleted on its own.
        alone = [k for k in keys if NOT_IN_XML.search(k)]
        for key in alone:
            with aws_errors(f"delete s3://{self.bucket}/{self.prefix}{key}"):
                self.clients.s3.delete_object(Bucket=self.bucket, Key=self.prefix + key)
        if alone:
            keys = [k for k in keys if not NOT_IN_XML.search(k)]
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

    def list_site(self) -> Listing:
        """Every object under the prefix (size, ETag; one ListObjectsV2 pass) but the tool's
        state and folders holding another target (their own ``.planner/``)."""
        raw: dict[str, Stored] = {}
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        cut = len(self.prefix)
        while True:
            with aws_errors(f"list s3://{self.bucket}/{self.prefix}"):
                resp = self.clients.s3.list_objects_v2(**args)
            for item in resp.get("Contents", []):
                raw[item["Key"][cut:]] = Stored(item["Size"], normal(item.get("ETag") or ""))
            if not resp.get("IsTruncated"):
                return split_listing(raw)
            args["ContinuationToken"] = resp["NextContinuationToken"]

    def heads(self, keys: Sequence[str], multipart: frozenset[str] = frozenset()) -> dict[str, Head]:
        """HeadObject of each key, on a pool of threads; with PartNumber=1 for those in
        ``multipart``, which gives the size of their first part (the part size they were
        written with). A key gone meanwhile is left out."""

        def head(key: str) -> tuple[str, Head | None]:
            args: dict[str, Any] = {"Bucket": self.bucket, "Key": self.prefix + key}
            if key in multipart:
                args["PartNumber"] = 1
            try:
                with aws_errors(f"HeadObject s3://{self.bucket}/{self.prefix}{key}"):
                    resp = self.clients.s3.head_object(**args)
            except AwsError as exc:
                if exc.code in ("404", "NoSuchKey", "NotFound"):
                    return key, None
                raise
            part = resp.get("ContentLength") if key in multipart else None
            return key, Head(
                str(resp.get("ContentType") or ""),
                str(resp.get("CacheControl") or ""),
                str(resp.get("ContentEncoding") or ""),
                part,
            )

        if not keys:
            return {}
        from concurrent.futures import (
            ThreadPoolExecutor,  # (and logging): only when used
        )

        with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(keys))) as pool:
            return {k: h for k, h in pool.map(head, keys) if h is not None}

    def enclosing_targets(self) -> list[str]:
        """Prefixes above the target's that hold another target's state, outermost first (one
        ListObjectsV2 of at most one key per level: s3:ListBucket is all it needs)."""
        parts = self.prefix.split("/")[:-1]
        out = []
        for depth in range(len(parts)):
            above = "".join(p + "/" for p in parts[:depth])
            with aws_errors(f"list s3://{self.bucket}/{above}{STATE_DIR}/"):
                resp = self.clients.s3.list_objects_v2(
                    Bucket=self.bucket, Prefix=f"{above}{STATE_DIR}/", MaxKeys=1
                )
            if resp.get("KeyCount") or resp.get("Contents"):
                out.append(f"s3://{self.bucket}/{above}".rstrip("/"))
        return out

    def distributions(self, distribution_ids: Sequence[str]) -> dict[str, Distribution]:
        """Each distribution's domain, aliases and how it serves this bucket (GetDistribution);
        NoSuchDistribution, AccessDenied... fail here, before anything is written."""
        from planner.core.origins import served

        out: dict[str, Distribution] = {}
        for dist in distribution_ids:
            with aws_errors(f"distribution {dist}"):
                found = self.clients.cloudfront.get_distribution(Id=dist)["Distribution"]
            config = found["DistributionConfig"]
            origins = tuple(
                f"{o.get('DomainName', '')}{o.get('OriginPath') or ''}"
                for o in (config.get("Origins") or {}).get("Items") or []
            )
            out[dist] = Distribution(
                dist,
                str(found.get("DomainName") or ""),
                tuple((config.get("Aliases") or {}).get("Items") or ()),
                served(config, self.bucket),
                origins,
            )
        return out

    def resolve_distributions(self, names: Sequence[str]) -> tuple[str, ...]:
        """Ids for names: an id stays; a domain name (``d111111abcdef8.cloudfront.net``) or
        an alternate domain name (``docs.example.com``) becomes the id of the distribution it
        names, read from ListDistributions."""
        if not any("." in n for n in names):
            return tuple(names)
        domains: dict[str, str] = {}
        with aws_errors("ListDistributions"):
            for item in distribution_summaries(self.clients.cloudfront):
                domains[str(item.get("DomainName", "")).lower()] = item["Id"]
                for alias in (item.get("Aliases") or {}).get("Items") or []:
                    domains.setdefault(str(alias).lower(), item["Id"])
        out = []
        for name in names:
            if "." not in name:
                out.append(name)
                continue
            dist = domains.get(name.lower().rstrip("."))
            if dist is None:
                raise BadTarget(
                    f"--distribution {name}: no distribution of this account has that domain "
                    "name or alternate domain name (ListDistributions)"
                )
            out.append(dist)
        return tuple(dict.fromkeys(out))

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
    state: Target | None = None,
) -> Backend:
    """The backend for ``target``; ``read_only`` for plans (the local backend writes nothing
    while planning anyway); ``acl`` for uploaded site files on S3 (never state objects);
    ``state``: the state's own place (``--state``, parsed with ``targets.parse_state``)."""
    if isinstance(target, LocalTarget):
        return LocalBackend(target, state)  # type: ignore[arg-type]
    return S3Backend(target, clients or Clients(), read_only, acl, state)  # type: ignore[arg-type]
