"""The deploy lock: one deploy at a time per target, over the state store's conditional writes.

Like Terraform's S3 state lock (``use_lockfile``): the lock is an object ``lock.json`` beside
the manifest, created with If-None-Match: * (a create-only write, under a file lock on the
local backend). It names its holder (deploy, host, process, start) and carries a lease that
the holder renews while it works (If-Match on the lock's own version). A lock whose lease has
expired, or whose holder is a process of this host that no longer runs, is taken over with
If-Match on the version read, so two runs can never both take it. The holder removes it at the
end, on errors too. A holder that can no longer renew (the lock was taken over or removed by
hand) stops before its next write.

Fencing (see :mod:`planner.backends.fence`): given the target's Fence, the lease is kept in S3's clock
and every write of the holder is signed to expire at the lease's end, so S3 itself refuses a
holder that was frozen past it. The lock also names a *margin*: how long after the lease a
write S3 began to accept before the end may still be landing. A run takes an expired lock
over only once the lease *and* the margin are past.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import secrets
import socket
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

from manifests.errors import ConflictError
from manifests.stores import ABSENT, Store
from planner.backends.fence import Fence, lease_over
from planner.errors import LockLost, TargetLocked

LOCK_NAME = "lock.json"
LEASE_SECONDS = 120.0
# S3 drops a request whose body stalls (RequestTimeout, after some seconds of silence; the
# figure is not documented): a minute covers that and a single PUT (at most 16 MiB) sent
# slowly. Multipart objects appear only at CompleteMultipartUpload, a small request.
MARGIN_SECONDS = 60.0
RENEW_EVERY = 30.0
POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Holder:
    deploy: str  # what holds it: "deploy", "verify --repair"...
    host: str
    pid: int
    started: str  # UTC, ISO 8601
    expires: str  # UTC, ISO 8601: the lease
    token: str  # random: tells this holder's lock from a later one of the same process
    machine: str = ""  # hostname and boot id: "the same host" for the dead-process test
    process_start: str = ""  # the process's start tick (Linux), so a reused pid is not alive
    # Seconds after ``expires`` during which a write the holder began before it may still land
    # (None: a lock written before fencing; MARGIN_SECONDS is assumed).
    margin: float | None = None

    def dumps(self) -> bytes:
        return json.dumps(asdict(self), indent=1).encode()

    @classmethod
    def loads(cls, data: bytes) -> "Holder | None":
        """The holder, or None for anything this tool did not write (taken over as stale)."""
        try:
            doc = json.loads(data)
            holder = cls(**{k: doc[k] for k in cls.__dataclass_fields__ if k in doc})
        except (ValueError, TypeError, AttributeError):
            return None
        fields = [getattr(holder, k) for k in cls.__dataclass_fields__ if k not in ("pid", "margin")]
        if type(holder.pid) is not int or not all(isinstance(f, str) for f in fields):
            return None
        margin = holder.margin
        if margin is not None and (
            type(margin) not in (int, float) or not 0 <= margin < 86400
        ):
            return None
        return holder

    @property
    def ends(self) -> float:
        """When the lock may be taken over: the lease's end plus the margin (epoch seconds;
        ValueError when unreadable)."""
        return _epoch(self.expires) + (MARGIN_SECONDS if self.margin is None else self.margin)

    def describe(self) -> str:
        return f"{self.deploy} on host {self.host} (pid {self.pid}) since {self.started}"


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _epoch(text: str) -> float:
    return _dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC).timestamp()


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id", encoding="ascii") as f:
            return f.read().strip()
    except OSError:
        return ""


def _pid_namespace() -> str:
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def this_machine() -> str:
    """Hostname, boot id and pid namespace: where a process id means the same process. Two
    containers on one host differ by namespace (even with one hostname); one host after a
    reboot has another boot id."""
    return f"{socket.gethostname()}/{_boot_id()}/{_pid_namespace()}"


def process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (Linux); "" where unknown."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            stat = f.read()
    except OSError:
        return ""
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = stat.rpartition(")")[2].split()
    if fields and fields[0] == "Z":
        return "zombie"  # killed, not yet reaped: as good as dead
    return fields[19] if len(fields) > 19 else ""


def process_alive(pid: int, started: str = "") -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, someone else's
    except OSError:
        return True  # cannot tell: assume alive (never take a live lock)
    now = process_start(pid)
    if now == "zombie":
        return False
    return not started or not now or now == started


class DeployLock:
    """Hold the target's lock while the ``with`` block runs; renew it in a thread once
    ``keep_alive()`` is called (after hashing, which wants a single-threaded process)."""

    def __init__(
        self,
        store: Store,
        what: str = "deploy",
        lease: float = LEASE_SECONDS,
        timeout: float = 0.0,
        log: Callable[[str], None] = lambda _: None,
        clock: Callable[[], float] | None = None,
        sleep: Callable[[float], None] = time.sleep,
        alive: Callable[[int, str], bool] = process_alive,
        fence: Fence | None = None,
        margin: float = MARGIN_SECONDS,
    ) -> None:
        self.store, self.what, self.lease, self.timeout = store, what, lease, timeout
        self.fence, self.margin = fence, margin
        # The lease is kept in the clock of the place the lock is in (S3's, with a fence).
        clock = clock or (fence.now if fence is not None else time.time)
        self.log, self.clock, self.sleep, self.alive = log, clock, sleep, alive
        self.took_over: str | None = None  # why the lock was taken from another run, if it was
        self.version: str | None = None
        self.holder: Holder | None = None
        self.lost: str | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mutex = threading.Lock()

    # --- taking and giving back --------------------------------------------------------------

    def _mine(self, started: str | None = None) -> Holder:
        now = self.clock()
        return Holder(
            deploy=self.what,
            host=socket.gethostname(),
            pid=os.getpid(),
            started=started or _iso(now),
            expires=_iso(now + self.lease),
            token=self.holder.token if self.holder else secrets.token_hex(8),
            machine=this_machine(),
            process_start=process_start(os.getpid()),
            margin=self.margin,
        )

    def _hold(self, mine: Holder) -> None:
        """``mine`` is in force: writes are authorised until its lease ends."""
        self.holder = mine
        if self.fence is not None:
            self.fence.hold(mine.token, _epoch(mine.expires))

    def acquire(self) -> None:
        deadline = self.clock() + self.timeout
        while True:
            mine = self._mine()
            try:
                self.version = self.store.write(LOCK_NAME, mine.dumps(), expect=ABSENT)
                self._hold(mine)
                return
            except ConflictError:
                pass
            data, version = self.store.read(LOCK_NAME)
            if data is None:
                continue  # released meanwhile: try again at once
            other = Holder.loads(data)
            if other is not None and other.token == mine.token:
                # Our own write, whose answer was lost and whose retry found it there.
                self.version = version
                self._hold(mine)
                return
            stale = self._stale(other)
            if stale:
                try:
                    self.version = self.store.write(LOCK_NAME, mine.dumps(), expect=version)
                except ConflictError:
                    continue  # someone else took it over first
                self._hold(mine)
                self.took_over = stale
                self.log(f"took over the lock of {other.describe() if other else 'an unreadable lock'}: {stale}")
                return
            remaining = deadline - self.clock()
            if remaining <= 0:
                assert other is not None
                margin = other.ends - _epoch(other.expires)
                late = f", and {margin:.0f} s more for its last writes" if margin >= 1 else ""
                raise TargetLocked(
                    f"target is locked by {other.describe()}; its lease runs to "
                    f"{other.expires}{late} (wait with --lock-timeout, or run `planner unlock` "
                    "if that deploy is gone)"
                )
            self.sleep(min(POLL_SECONDS, max(0.1, self.lease / 8), remaining))

    def _stale(self, other: Holder | None) -> str:
        """Why ``other``'s lock may be taken over, or "" when it may not."""
        if other is None:
            return "it is not a lock this tool can read"
        try:
            if other.ends < self.clock():
                return "its lease expired (and its margin for late writes is past)"
        except ValueError:
            return "its lease is unreadable"
        if other.machine and other.machine == this_machine() and not self.alive(
            other.pid, other.process_start
        ):
            return "its process no longer runs"
        return ""

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self.holder is None or self.lost:
            self._unfence()
            return
        with self._mutex:
            try:
                data, version = self.store.read(LOCK_NAME)
                current = Holder.loads(data) if data is not None else None
                if current is not None and current.token == self.holder.token:
                    try:
                        # Conditional: a run that took the lock over between the read and the
                        # delete (our lease had expired) keeps it.
                        self.store.remove(LOCK_NAME, expect=version)
                    except ConflictError:
                        pass
            finally:
                self._unfence()
                self.holder = None

    def _unfence(self) -> None:
        if self.fence is not None and self.holder is not None:
            self.fence.drop(self.holder.token)

    # --- keeping it ---------------------------------------------------------------------------

    def renew(self) -> None:
        """Extend the lease (If-Match on our version); a lock taken over or removed is lost."""
        with self._mutex:
            if self.holder is None or self.lost:
                return
            mine = self._mine(self.holder.started)
            try:
                # A fenced write itself: refused once our lease is over (LockLost).
                self.version = self.store.write(LOCK_NAME, mine.dumps(), expect=self.version)
                self._hold(mine)
            except LockLost as exc:
                self.lost = str(exc)
            except ConflictError:
                data, version = self.store.read(LOCK_NAME)
                if data is not None and Holder.loads(data) == mine:
                    # Our renewal went through; its answer was lost and the retry refused.
                    self.version = version
                    self._hold(mine)
                else:
                    self.lost = (
                        "this deploy lost the target's lock: it was taken over or removed while "
                        "this deploy ran; stopped before the next write: plan again"
                    )

    def keep_alive(self) -> None:
        """Renew now (failing if the lock is already lost), then every RENEW_EVERY seconds."""
        self.renew()
        self.check()
        self._thread = threading.Thread(target=self._renew_loop, name="lock-renewal", daemon=True)
        self._thread.start()

    def _renew_loop(self) -> None:
        period = min(RENEW_EVERY, self.lease / 4)
        while not self._stop.wait(period):
            try:
                self.renew()
            except Exception:  # noqa: BLE001 - a failed renewal is retried; check() guards
                pass

    def check(self) -> None:
        """Raise LockLost before a write when this run no longer holds the lock."""
        if self.lost:
            raise LockLost(self.lost)
        if self.holder is not None and _epoch(self.holder.expires) < self.clock():
            raise lease_over(_epoch(self.holder.expires))

    def __enter__(self) -> "DeployLock":
        self.acquire()
        return self

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001
            if exc_type is None:
                raise
            # Already failing: keep that error; the lease lets the next run take the lock.


def clear_stale(
    store: Store, data: bytes | None, log: Callable[[str], None] = lambda _: None,
    fence: Fence | None = None,
) -> None:
    """Remove a lock left by a deploy that is gone (lease and margin past, or a dead process
    of this machine), as taking it over and giving it back would; a live lock is left alone.
    ``data``: the lock as read (None: there was none; taking it over reads it again,
    conditionally). ``fence``: the target's (its clock judges the lease)."""
    if data is None:
        return
    lock = DeployLock(store, "cleanup", log=log, fence=fence)
    if lock._stale(Holder.loads(data)):
        try:
            with lock:
                pass
        except TargetLocked:
            pass  # someone else took it meanwhile: theirs now


def unlock(store: Store) -> Holder | None:
    """Remove the lock by hand; returns who held it (None: there was none)."""
    data, _ = store.read(LOCK_NAME)
    if data is None:
        return None
    store.remove(LOCK_NAME)
    return Holder.loads(data) or Holder("unreadable lock", "?", 0, "?", "?", "")
