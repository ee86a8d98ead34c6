"""The local backend: a folder that plays bucket and CDN, so the whole deploy runs without an
AWS account (files mirrored, invalidations appended to a log)."""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import os
import stat
import threading
from typing import Any, BinaryIO, Sequence

import xxhash

from manifests import LocalStore
from manifests.model import STATE_DIR, check_key
from planner.backends.base import INVALIDATION_LOG, Distribution
from planner.backends.fence import Fence
from planner.backends.places import MarkingStore, read_surroundings
from planner.backends.targets import LocalTarget
from planner.core.adopt import Listing, Stored, split_listing
from planner.core.pacing import (
    AccountInvalidations,
    InvalidationCount,
    Usage,
    month_of,
    usage_from,
)
from planner.core.places import (
    STATE,
    STATE_MARK,
    TARGET,
    Place,
    Surroundings,
    marked_target,
)
from planner.errors import BadTarget, InvalidationError
from planner.plan.journal import JOURNAL_NAME, Journal

TMP_PREFIX, TMP_SUFFIX = ".planner-", ".tmp"  # a local write under way (or killed)


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



def _top(place: LocalTarget) -> list[str]:
    """The names in a folder (a folder's name ending with '/'); none when it is missing."""
    try:
        with os.scandir(place.root) as found:
            return sorted(e.name + ("/" if e.is_dir(follow_symlinks=False) else "")
                          for e in found)
    except (FileNotFoundError, NotADirectoryError):
        return []


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
        if state is None:
            self.store = LocalStore(self.root)
        else:  # marked, with the target, on its first write (see planner.backends.places)
            self.store = MarkingStore(LocalStore(state.root, folder=""), LocalStore(self.root),
                                      target.uri)
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
        data, _ = self.store.read(JOURNAL_NAME)
        return frozenset(Journal.loads(data).deletes) if data is not None else frozenset()

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
        and folders that belong to the tool (another target, a state place: their own
        ``.planner/``)."""
        raw: dict[str, Stored] = {}
        if not os.path.isdir(self.root):
            return Listing({})
        for here, dirs, files in os.walk(self.root):
            rel = os.path.relpath(here, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            if STATE_DIR in dirs:  # the state folder: listed by name only, never read
                dirs.remove(STATE_DIR)
                raw[f"{base}{STATE_DIR}/"] = Stored(0, "")
                if os.path.isfile(os.path.join(here, *STATE_MARK.split("/"))):
                    raw[base + STATE_MARK] = Stored(0, "")  # a state place's marker
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

    def surroundings(self) -> Surroundings:
        """The folders above the target and its state place that belong to the tool, what
        their own ``.planner/`` folders say, and what the state place holds besides state."""
        return read_surroundings(self.target, self.state, self._probe, _top)

    def owned(self, folders: Sequence[str]) -> list[Place]:
        """Those of ``folders`` (relative: "docs/") that belong to the tool."""
        out = []
        for folder in folders:
            place = self._probe(LocalTarget(os.path.join(self.root, *folder.split("/"))))
            if place is not None:
                out.append(place._replace(where=folder))
        return out

    @staticmethod
    def _probe(place: LocalTarget) -> Place | None:
        """What the folder's own ``.planner/`` says: None when it has none."""
        folder = os.path.join(place.root, STATE_DIR)
        if not os.path.isdir(folder):
            return None
        mark = os.path.join(place.root, *STATE_MARK.split("/"))
        if not os.path.isfile(mark):
            return Place(place.uri, TARGET)
        try:
            with open(mark, "rb") as f:
                return Place(place.uri, STATE, marked_target(f.read(4096)))
        except OSError:
            return Place(place.uri, STATE)

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

    def invalidation_status(self, distribution_id: str, invalidation_id: str) -> str:
        """A local invalidation is complete once it is written to the log."""
        return "Completed"

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


