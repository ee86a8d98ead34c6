"""The S3 backend: a bucket (under an optional prefix) behind CloudFront distributions. It is
handed its clients and never creates one; every CloudFront call goes through
:mod:`planner.backends.cloudfront`."""

from __future__ import annotations

import datetime as _dt
import re
from typing import TYPE_CHECKING, Any, BinaryIO, Sequence

from manifests import S3Store
from manifests.etags import normal
from manifests.model import STATE_DIR
from manifests.stores import ANY
from planner.backends import cloudfront
from planner.backends.aws import MAKING, Clients, aws_errors
from planner.backends.base import MULTIPART_THRESHOLD, Distribution
from planner.backends.fence import Fence
from planner.backends.places import MarkingStore, read_surroundings
from planner.backends.targets import S3Target
from planner.core.adopt import Head, Listing, Stored, split_listing
from planner.core.origins import served
from planner.core.pacing import (
    CACHE_NAME,
    AccountInvalidations,
    Usage,
    cache_codec,
    month_of,
    recorded_usage,
    usage_from,
)
from planner.core.places import (
    STATE,
    STATE_MARK,
    TARGET,
    Place,
    Surroundings,
    kind_under,
    marked_target,
    split_keys,
)
from planner.core.words import plural
from planner.errors import AwsError, BadTarget, InvalidationError

if TYPE_CHECKING:
    from planner.backends.fastput import FastPut

HEAD_WORKERS = 32  # HeadObject requests at once (a takeover, verify --deep)
OWNED_PROBES = 64  # folders looked at one by one before a deploy; more: the target is listed
NOT_IN_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # XML 1.0 cannot carry


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
        self._fast: FastPut | None | bool = False  # False: not tried yet; None: botocore only

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
            with MAKING:  # once, though threads ask (the state's reads go out on a pool)
                if self._store is None:
                    self._store = self._make_store()
        return self._store

    def _make_store(self) -> S3Store:
        if self.state is None:
            return _GuardedS3Store(self.clients.s3, self.bucket, self.prefix)
        # marked, with the target, on its first write (see planner.backends.places)
        return MarkingStore(  # type: ignore[return-value]
            _GuardedS3Store(self.clients.s3, self.state.bucket, self.state.prefix, folder=""),
            _GuardedS3Store(self.clients.s3, self.bucket, self.prefix),
            self.target.uri,
        )

    def put_bytes(
        self, key: str, data: bytes, content_type: str, cache_control: str,
        content_encoding: str = "",
    ) -> str:
        what = f"upload s3://{self.bucket}/{self.prefix}{key}"
        fast = self._fast_put()
        if fast is not None:
            headers = {"content-type": content_type, "cache-control": cache_control}
            if content_encoding:
                headers["content-encoding"] = content_encoding
            if "ACL" in self.site_args:
                headers["x-amz-acl"] = self.site_args["ACL"]
            from planner.backends.fastput import Redirected  # loaded with fast (below)

            try:
                return normal(fast.put(self.prefix + key, data, headers, what))
            except Redirected:
                self._fast = None  # the bucket is elsewhere: botocore follows, for the rest too
        extra = {"ContentEncoding": content_encoding} if content_encoding else {}
        with aws_errors(what):
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

    def _fast_put(self) -> FastPut | None:
        """The lean PutObject path (see :mod:`planner.backends.fastput`), made on first use
        from the session our Clients made; None where botocore must send every PUT."""
        if self._fast is False:
            clients = self.clients
            if not isinstance(clients, Clients):  # a caller's own clients: botocore sends
                self._fast = None
                return None
            # Imported here: the lean path is work a run that uploads nothing (a plan, a
            # deploy with nothing changed) need not do at start-up.
            from planner.backends.fastput import open_fast_put

            with aws_errors("S3 client"):
                self._fast = open_fast_put(
                    clients.s3, clients.session, self.bucket, clients.fence,
                    clients.max_attempts, clients.retry_mode,
                )
        return self._fast  # type: ignore[return-value]

    def put_stream(self, key: str, stream: BinaryIO, content_type: str, cache_control: str) -> str:
        """boto3's managed (multipart) upload. ``stream`` is read in order; a read that raises
        fails the upload before it is completed (boto3 aborts the multipart upload). boto3
        does not hand back the ETag: a HeadObject reads it (under the deploy lock, no other
        deploy writes the key meanwhile)."""
        from boto3.s3.inject import upload_fileobj  # boto3's S3 client method, as a function
        from boto3.s3.transfer import TransferConfig

        config = TransferConfig(multipart_threshold=MULTIPART_THRESHOLD, max_concurrency=4)
        with aws_errors(f"upload s3://{self.bucket}/{self.prefix}{key}"):
            upload_fileobj(
                self.clients.s3,
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
                    f"{first.get('Message')} ({plural(len(errors), 'key')} failed)"
                )

    def list_site(self) -> Listing:
        """Every object under the prefix (size, ETag; one ListObjectsV2 pass) but the tool's
        state and folders that belong to the tool (another target, a state place: their own
        ``.planner/``)."""
        return split_listing(self._raw_listing())

    def _raw_listing(self) -> dict[str, Stored]:
        raw: dict[str, Stored] = {}
        args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
        cut = len(self.prefix)
        while True:
            with aws_errors(f"list s3://{self.bucket}/{self.prefix}"):
                resp = self.clients.s3.list_objects_v2(**args)
            for item in resp.get("Contents", []):
                raw[item["Key"][cut:]] = Stored(item["Size"], normal(item.get("ETag") or ""))
            if not resp.get("IsTruncated"):
                return raw
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

    def surroundings(self) -> Surroundings:
        """The prefixes above the target and its state place that belong to the tool, what
        their own ``.planner/`` says, and what the state place holds besides state (a
        ListObjectsV2 of at most one key per place looked at, and one of the state place's
        top: s3:ListBucket is all it needs)."""
        return read_surroundings(self.target, self.state, self._probe, self._top)

    def owned(self, folders: Sequence[str]) -> list[Place]:
        """Those of ``folders`` (relative: "docs/") that belong to the tool: a look at each
        one's ``.planner/`` on a pool of threads, or, for more than OWNED_PROBES folders, one
        listing of the target."""
        if not folders:
            return []
        if len(folders) > OWNED_PROBES:
            places, _ = split_keys(self._raw_listing())
            wanted = set(folders)
            return [Place(p, kind) for p, kind in places.items() if p in wanted]
        from concurrent.futures import ThreadPoolExecutor

        def probe(folder: str) -> Place | None:
            place = self._probe(S3Target(self.bucket, self.prefix + folder))
            return None if place is None else place._replace(where=folder)

        with ThreadPoolExecutor(max_workers=min(HEAD_WORKERS, len(folders))) as pool:
            return [p for p in pool.map(probe, folders) if p is not None]

    def _probe(self, place: S3Target) -> Place | None:
        """What the place's own ``.planner/`` says (its first key tells a state place's
        marker from a target's state or marker): None when it has none."""
        under = f"{place.prefix}{STATE_DIR}/"
        with aws_errors(f"list s3://{place.bucket}/{under}"):
            resp = self.clients.s3.list_objects_v2(Bucket=place.bucket, Prefix=under, MaxKeys=1)
        found = resp.get("Contents") or []
        if not found:
            return None
        if kind_under(found[0]["Key"][len(place.prefix):]) == TARGET:
            return Place(place.uri, TARGET)
        try:
            with aws_errors(f"read s3://{place.bucket}/{place.prefix}{STATE_MARK}"):
                resp = self.clients.s3.get_object(Bucket=place.bucket,
                                                  Key=place.prefix + STATE_MARK)
                data = resp["Body"].read(4096)
        except AwsError:
            data = b""
        return Place(place.uri, STATE, marked_target(data))

    def _top(self, place: S3Target) -> list[str]:
        """The names at the top of the place (a "folder" ending with '/'; up to 1,000)."""
        with aws_errors(f"list s3://{place.bucket}/{place.prefix}"):
            resp = self.clients.s3.list_objects_v2(
                Bucket=place.bucket, Prefix=place.prefix, Delimiter="/", MaxKeys=1000
            )
        cut = len(place.prefix)
        names = [item["Key"][cut:] for item in resp.get("Contents") or []]
        names += [item["Prefix"][cut:] for item in resp.get("CommonPrefixes") or []]
        return sorted(names)

    def distributions(self, distribution_ids: Sequence[str]) -> dict[str, Distribution]:
        """Each distribution's domain, aliases and how it serves this bucket (GetDistribution);
        NoSuchDistribution, AccessDenied... fail here, before anything is written."""

        out: dict[str, Distribution] = {}
        for dist in distribution_ids:
            with aws_errors(f"distribution {dist}"):
                found = cloudfront.get_distribution(self.clients.cloudfront, dist)
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
            for item in cloudfront.distribution_summaries(self.clients.cloudfront):
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
                cloudfront.get_distribution(self.clients.cloudfront, dist)

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
            return cloudfront.read_invalidations(self.clients.cloudfront, month, load, save)

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
        with aws_errors(f"CreateInvalidation on {distribution_id}"):
            inv = cloudfront.create_invalidation(
                self.clients.cloudfront, distribution_id, paths, reference
            )
        self._record(distribution_id, inv["Id"], paths, inv.get("CreateTime"))
        return inv["Id"]

    def invalidation_status(self, distribution_id: str, invalidation_id: str) -> str:
        with aws_errors(f"GetInvalidation {invalidation_id} on {distribution_id}"):
            inv = cloudfront.get_invalidation(
                self.clients.cloudfront, distribution_id, invalidation_id
            )
        return str(inv.get("Status", ""))

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


