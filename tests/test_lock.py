"""The deploy lock (``planner/lock.py``) and how ``planner deploy`` / ``planner unlock`` use it.

Unit tests run DeployLock on both state stores (a local folder, and S3 on moto in process),
with an injected clock, sleep and liveness test instead of real waiting. End-to-end tests run
``python -m planner`` in subprocesses against the moto server (versioned bucket: any write
leaves a row in its history) and on the local-folder backend.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Callable

import pytest
import xxhash
from e2e_helpers import TIMEOUT, history, manifest, one_line_error, run, site_objects

from manifests.errors import ConflictError, StoreError
from manifests.stores import LocalStore, S3Store
from planner.errors import LockLost, TargetLocked
from planner.lock import (
    LOCK_NAME,
    POLL_SECONDS,
    DeployLock,
    Holder,
    process_start,
    this_machine,
    unlock,
)

EXPIRED = "its lease expired (and its margin for late writes is past)"
T0 = 1_900_000_000.0  # the fake clock's start (a whole second: lease ends are exact)
OTHER_MACHINE = "ci-runner-7/0f9e8d7c-6b5a-4f3e-9d2c-1b0a9f8e7d6c"


def iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeTime:
    """A clock that only moves when ``sleep`` is called; ``on_sleep(n)`` runs after the n-th."""

    def __init__(self, start: float = T0, on_sleep: Callable[[int], None] | None = None):
        self.now = start
        self.sleeps: list[float] = []
        self.on_sleep = on_sleep

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        if self.on_sleep is not None:
            self.on_sleep(len(self.sleeps))


def no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s where the lock should be decided at once")


def foreign(**over: Any) -> Holder:
    """A holder on another machine, lease running (on the fake clock) for 10 more minutes."""
    fields: dict[str, Any] = dict(
        deploy="deploy 20261126-ci",
        host="ci-runner-7",
        pid=4242,
        started=iso(T0 - 60),
        expires=iso(T0 + 600),
        token="feedface00000001",
        machine=OTHER_MACHINE,
        process_start="123456",
        margin=0.0,  # its writes stop at the lease's end (the margin has tests of its own)
    )
    fields.update(over)
    return Holder(**fields)


def lock_in(store) -> Holder | None:
    data, _ = store.read(LOCK_NAME)
    return None if data is None else Holder.loads(data)


# --- stores ----------------------------------------------------------------------------------


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """The state store of a target: a local folder, or a prefix of a versioned bucket on moto
    in process."""
    if request.param == "local":
        return LocalStore(str(tmp_path / "target"))
    s3 = request.getfixturevalue("s3_in_process")
    s3.create_bucket(Bucket="lock-bucket")
    s3.put_bucket_versioning(Bucket="lock-bucket", VersioningConfiguration={"Status": "Enabled"})
    return S3Store(s3, "lock-bucket", "site/")


def writes(store) -> Any:
    """Everything a write could change: a versioned bucket's history, or the state folder's
    files with their inodes and times (the local store replaces a file to write it), but for
    the empty file the local store flocks around a conditional write (``.lock``)."""
    if isinstance(store, S3Store):
        rows = []
        for page in store.client.get_paginator("list_object_versions").paginate(
            Bucket=store.bucket
        ):
            rows += [("v", v["Key"], v["VersionId"]) for v in page.get("Versions", [])]
            rows += [("d", v["Key"], v["VersionId"]) for v in page.get("DeleteMarkers", [])]
        return sorted(rows)
    out = {}
    for here, _, files in os.walk(store.dir):
        for name in files:
            if name == ".lock":
                continue
            path = os.path.join(here, name)
            st = os.stat(path)
            with open(path, "rb") as f:
                out[path] = (f.read(), st.st_ino, st.st_mtime_ns)
    return out


class Delegate:
    """A store passed through (the store is the lock's dependency, not what is tested)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.location = inner.location

    def read(self, name):
        return self.inner.read(name)

    def write(self, name, data, expect=None):
        return self.inner.write(name, data, expect)

    def remove(self, name, expect=None):
        return self.inner.remove(name, expect)

    def list(self, prefix):
        return self.inner.list(prefix)


class BarrierStore(Delegate):
    """Each thread's first read waits for the other contenders' first reads: every contender
    has read the same stale lock (and its version) before any of them writes."""

    def __init__(self, inner, parties: int) -> None:
        super().__init__(inner)
        self.barrier = threading.Barrier(parties, timeout=20)
        self.seen: set[int] = set()
        self.guard = threading.Lock()

    def read(self, name):
        result = self.inner.read(name)
        me = threading.get_ident()
        with self.guard:
            first = me not in self.seen and len(self.seen) < self.barrier.parties
            self.seen.add(me)
        if first:
            self.barrier.wait()
        return result


class FailingStore(Delegate):
    """Reads and removes fail once ``down`` is set."""

    down = False

    def read(self, name):
        if self.down:
            raise StoreError("state store unreachable")
        return self.inner.read(name)

    def remove(self, name, expect=None):
        if self.down:
            raise StoreError("state store unreachable")
        return self.inner.remove(name, expect)


# --- processes -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def dead_process() -> tuple[int, str]:
    """(pid, start tick) of a child process of this test that has exited and been reaped."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"],
                            stdin=subprocess.PIPE)
    started = process_start(proc.pid)
    assert started, "no /proc start tick for a running child"
    proc.stdin.close()
    proc.wait(timeout=10)
    return proc.pid, started


def dead_holder_here(pid: int, tick: str, **over: Any) -> Holder:
    """The lock of process ``pid`` (started at ``tick``) of this machine, its lease still
    running for an hour (on the fake clock)."""
    fields = dict(host=socket.gethostname(), machine=this_machine(), pid=pid,
                  process_start=tick, expires=iso(T0 + 3600))
    return foreign(**(fields | over))


# --- taking the lock -------------------------------------------------------------------------


def test_acquire_on_a_free_target_writes_a_lock_naming_this_host_and_process(store):
    t = FakeTime()
    lock = DeployLock(store, "deploy", lease=120, clock=t.clock, sleep=no_sleep)

    lock.acquire()

    data, version = store.read(LOCK_NAME)
    held = Holder.loads(data)
    assert held == lock.holder and version == lock.version
    assert held.deploy == "deploy"
    assert held.host == socket.gethostname()
    assert held.pid == os.getpid()
    assert held.machine == this_machine() and held.machine.startswith(socket.gethostname() + "/")
    assert held.process_start == process_start(os.getpid()) != ""
    assert held.started == iso(T0) and held.expires == iso(T0 + 120)
    assert len(held.token) >= 16
    assert not lock.lost


def test_a_second_contender_without_timeout_is_refused_naming_the_holder_and_writes_nothing(store):
    t = FakeTime()
    first = DeployLock(store, clock=t.clock, sleep=no_sleep)
    first.acquire()
    before = writes(store)
    second = DeployLock(store, clock=t.clock, sleep=no_sleep, timeout=0)

    with pytest.raises(TargetLocked) as caught:
        second.acquire()

    assert caught.value.exit_code == 4
    message = str(caught.value)
    assert message.startswith(
        f"target is locked by deploy on host {socket.gethostname()} (pid {os.getpid()}) "
        f"since {iso(T0)}; its lease runs to {iso(T0 + 120)}"
    ), message
    assert "--lock-timeout" in message and "planner unlock" in message
    assert second.holder is None
    assert writes(store) == before
    assert lock_in(store) == first.holder


def test_a_waiting_contender_polls_and_gets_the_lock_once_the_holder_releases(store):
    t = FakeTime()
    first = DeployLock(store, clock=t.clock, sleep=no_sleep)
    first.acquire()
    t.on_sleep = lambda n: first.release() if n == 3 else None
    second = DeployLock(store, clock=t.clock, sleep=t.sleep, timeout=60)

    second.acquire()

    assert t.sleeps == [POLL_SECONDS] * 3
    assert lock_in(store) == second.holder
    assert first.holder is None  # released
    assert second.holder.started == iso(T0 + 3 * POLL_SECONDS)


def test_a_waiting_contender_takes_over_once_the_holders_lease_expires(store):
    t = FakeTime()
    first = DeployLock(store, lease=10, margin=3, clock=t.clock, sleep=no_sleep)
    first.acquire()
    logs: list[str] = []
    second = DeployLock(store, clock=t.clock, sleep=t.sleep, timeout=60, log=logs.append)

    second.acquire()

    # The lease ends at T0+10 and its margin for late writes at T0+13: taken at the first poll
    # after that (the holder, this very process, is alive: only the lease lets it go).
    assert t.sleeps == [POLL_SECONDS] * 7 and t.now == T0 + 14
    assert lock_in(store) == second.holder
    assert second.holder.token != first.holder.token
    assert second.took_over == EXPIRED
    assert logs == [f"took over the lock of {first.holder.describe()}: {EXPIRED}"]


def test_a_waiting_contender_gives_up_when_its_timeout_runs_out(store):
    t = FakeTime()
    DeployLock(store, clock=t.clock, sleep=no_sleep).acquire()
    before = writes(store)
    second = DeployLock(store, clock=t.clock, sleep=t.sleep, timeout=5)

    with pytest.raises(TargetLocked, match="^target is locked by deploy on host"):
        second.acquire()

    assert t.sleeps == [2.0, 2.0, 1.0]  # never past the timeout
    assert writes(store) == before


def test_an_expired_lease_is_taken_over_at_once(store):
    old = foreign(expires=iso(T0 - 1))
    store.write(LOCK_NAME, old.dumps())
    logs: list[str] = []
    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep, log=logs.append)

    lock.acquire()

    assert lock_in(store) == lock.holder and lock.holder.pid == os.getpid()
    assert logs == [f"took over the lock of {old.describe()}: {EXPIRED}"]


def test_the_lock_of_a_dead_process_on_this_machine_is_taken_over_at_once(store, dead_process):
    pid, started = dead_process
    old = dead_holder_here(pid, started)
    store.write(LOCK_NAME, old.dumps())
    logs: list[str] = []
    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep, log=logs.append)

    lock.acquire()  # the real liveness test: the pid no longer exists

    assert lock_in(store) == lock.holder
    assert logs == [f"took over the lock of {old.describe()}: its process no longer runs"]


def test_a_reused_pid_with_another_start_tick_counts_as_dead(store):
    # This process is alive, but it is not the one that took the lock (that one started at
    # another tick): the pid was reused.
    old = dead_holder_here(os.getpid(), "1")
    store.write(LOCK_NAME, old.dumps())
    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep)

    lock.acquire()

    assert lock_in(store) == lock.holder


def test_the_injected_liveness_test_decides_for_a_holder_on_this_machine(store, dead_process):
    calls: list[tuple[int, str]] = []
    live = dead_holder_here(os.getpid(), process_start(os.getpid()))
    store.write(LOCK_NAME, live.dumps())

    def dead(pid: int, started: str) -> bool:
        calls.append((pid, started))
        return False

    DeployLock(store, clock=FakeTime().clock, sleep=no_sleep, alive=dead).acquire()
    assert calls == [(os.getpid(), process_start(os.getpid()))]
    assert lock_in(store).token != live.token

    # ...and the other way round: a pid that does not exist, said to be alive, is left alone.
    pid, started = dead_process
    store.write(LOCK_NAME, dead_holder_here(pid, started).dumps())
    before = writes(store)
    with pytest.raises(TargetLocked):
        DeployLock(store, clock=FakeTime().clock, sleep=no_sleep,
                   alive=lambda p, s: True).acquire()
    assert writes(store) == before


@pytest.mark.parametrize("who", ["this process", "the parent process"])
def test_the_lock_of_a_live_process_on_this_machine_is_not_taken_over(store, who):
    pid = os.getpid() if who == "this process" else os.getppid()
    live = dead_holder_here(pid, process_start(pid))
    store.write(LOCK_NAME, live.dumps())
    before = writes(store)

    with pytest.raises(TargetLocked) as caught:
        DeployLock(store, clock=FakeTime().clock, sleep=no_sleep).acquire()

    assert f"(pid {pid})" in str(caught.value)
    assert writes(store) == before and lock_in(store) == live


@pytest.mark.parametrize(
    "machine",
    [OTHER_MACHINE, "same-boot-other-host", "after-reboot", ""],
)
def test_a_live_lease_of_another_machine_is_not_taken_over_even_if_its_pid_is_not_here(
    store, dead_process, machine
):
    pid, started = dead_process  # no such process here
    machine = {
        "same-boot-other-host": "other-container/" + this_machine().split("/", 1)[1],
        "after-reboot": socket.gethostname() + "/00000000-0000-0000-0000-000000000000",
    }.get(machine, machine)
    other = foreign(pid=pid, process_start=started, machine=machine)
    store.write(LOCK_NAME, other.dumps())
    before = writes(store)
    asked: list[int] = []

    with pytest.raises(TargetLocked, match=re.escape(f"target is locked by {other.describe()}")):
        DeployLock(store, clock=FakeTime().clock, sleep=no_sleep,
                   alive=lambda p, s: asked.append(p) or False).acquire()

    assert asked == []  # another machine's pids mean nothing here
    assert writes(store) == before


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (b"", "it is not a lock this tool can read"),
        (b"lock", "it is not a lock this tool can read"),
        (b"null", "it is not a lock this tool can read"),
        (b"[1, 2]", "it is not a lock this tool can read"),
        (b'{"deploy": "deploy x"}', "it is not a lock this tool can read"),
        (foreign(expires="in ten minutes").dumps(), "its lease is unreadable"),
    ],
    ids=["empty", "text", "null", "list", "missing-fields", "bad-lease"],
)
def test_an_unreadable_lock_is_taken_over(store, data, why):
    store.write(LOCK_NAME, data)
    logs: list[str] = []
    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep, log=logs.append)

    lock.acquire()

    assert lock_in(store) == lock.holder
    assert len(logs) == 1 and logs[0].endswith(f": {why}")


@pytest.mark.parametrize(
    "fields",
    [{"expires": 0}, {"expires": None}, {"pid": "4242", "machine": "HERE"}],
    ids=["numeric-lease", "null-lease", "text-pid-on-this-machine"],
)
def test_a_lock_whose_fields_have_the_wrong_types_is_taken_over_as_unreadable(store, fields):
    doc = asdict(foreign()) | {k: (this_machine() if v == "HERE" else v)
                               for k, v in fields.items()}
    store.write(LOCK_NAME, json.dumps(doc).encode())
    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep)

    lock.acquire()  # not a TypeError (a traceback from `planner deploy`)

    assert lock_in(store) == lock.holder


@pytest.mark.parametrize("stale", ["expired lease", "dead process"])
def test_two_contenders_taking_over_the_same_stale_lock_exactly_one_wins(
    store, dead_process, stale
):
    pid, started = dead_process
    for _ in range(4):
        old = foreign(expires=iso(T0 - 5)) if stale == "expired lease" else dead_holder_here(
            pid, started
        )
        store.write(LOCK_NAME, old.dumps())
        shared = BarrierStore(store, 2)
        locks = [DeployLock(shared, clock=FakeTime().clock, sleep=no_sleep) for _ in range(2)]
        outcome: dict[int, str] = {}

        def contend(i: int) -> None:
            try:
                locks[i].acquire()
                outcome[i] = "won"
            except TargetLocked:
                outcome[i] = "locked"
            except BaseException as exc:  # noqa: BLE001 - reported below
                outcome[i] = repr(exc)

        threads = [threading.Thread(target=contend, args=(i,)) for i in range(2)]
        for th in threads:
            th.start()
        for th in threads:
            th.join(timeout=30)

        assert sorted(outcome.values()) == ["locked", "won"], outcome
        winner = next(locks[i] for i, o in outcome.items() if o == "won")
        loser = next(locks[i] for i, o in outcome.items() if o == "locked")
        assert lock_in(store) == winner.holder and loser.holder is None
        winner.release()


# --- keeping it ------------------------------------------------------------------------------


def test_renew_extends_the_lease_and_keeps_start_and_token(store):
    t = FakeTime()
    lock = DeployLock(store, lease=120, clock=t.clock, sleep=no_sleep)
    lock.acquire()
    first, first_version = lock_in(store), lock.version

    t.now = T0 + 100
    lock.renew()

    renewed = lock_in(store)
    assert renewed.expires == iso(T0 + 220)
    assert (renewed.started, renewed.token, renewed.pid) == (first.started, first.token, first.pid)
    assert lock.version == store.read(LOCK_NAME)[1] != first_version
    t.now = T0 + 200  # past the first lease, within the renewed one
    lock.check()
    t.now = T0 + 221
    with pytest.raises(LockLost, match="lost the target's lock: its lease ended at "):
        lock.check()


@pytest.mark.e2e
def test_keep_alive_renews_in_the_background_under_the_deploys_name_until_release(store):
    t = FakeTime()
    lock = DeployLock(store, lease=0.2, clock=t.clock, sleep=no_sleep)  # renews every 0.05 s
    lock.acquire()
    lock.what = "deploy 20261126-abc"

    lock.keep_alive()
    assert lock_in(store).deploy == "deploy 20261126-abc"  # renewed at once, under its name
    t.now = T0 + 30
    deadline = time.monotonic() + 10
    while lock_in(store).expires != iso(T0 + 30.2) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert lock_in(store).expires == iso(T0 + 30.2)  # renewed by the thread
    lock.check()

    lock.release()
    assert lock._thread is not None and not lock._thread.is_alive()
    assert store.read(LOCK_NAME) == (None, None)


def test_a_holder_whose_lock_was_taken_over_loses_it_on_renew_and_check_stops_it(store):
    t = FakeTime()
    first = DeployLock(store, lease=10, margin=0, clock=t.clock, sleep=no_sleep)
    first.acquire()
    t.now = T0 + 11
    second = DeployLock(store, clock=t.clock, sleep=no_sleep)
    second.acquire()
    t.now = T0 + 5  # (the first's clock may lag: the lease is not why it stops)

    first.renew()

    assert first.lost
    with pytest.raises(LockLost) as caught:
        first.check()
    assert caught.value.exit_code == 4
    assert "taken over or removed" in str(caught.value)
    with pytest.raises(LockLost):
        first.keep_alive()
    assert lock_in(store) == second.holder  # the renewal overwrote nothing
    first.release()
    assert lock_in(store) == second.holder  # nor did the release


def test_a_holder_whose_lock_was_removed_by_unlock_loses_it_and_does_not_recreate_it(store):
    t = FakeTime()
    lock = DeployLock(store, clock=t.clock, sleep=no_sleep)
    lock.acquire()

    assert unlock(store) == lock.holder
    lock.renew()

    assert lock.lost
    with pytest.raises(LockLost):
        lock.check()
    assert store.read(LOCK_NAME) == (None, None)


def test_a_lock_that_was_never_taken_checks_fine_and_releases_nothing(store):
    store.write(LOCK_NAME, foreign().dumps())
    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep)
    lock.check()
    lock.renew()
    lock.release()
    assert lock_in(store) == foreign()


# --- giving it back --------------------------------------------------------------------------


def test_a_conditional_remove_deletes_only_the_version_read(store):
    old = store.write(LOCK_NAME, foreign(host="a").dumps())
    new = store.write(LOCK_NAME, foreign(host="b").dumps())
    with pytest.raises(ConflictError):
        store.remove(LOCK_NAME, expect=old)
    assert lock_in(store) == foreign(host="b")
    store.remove(LOCK_NAME, expect=new)
    assert store.read(LOCK_NAME) == (None, None)
    store.remove(LOCK_NAME, expect=new)  # gone already: nothing to do


class TakeoverAfterRead(Delegate):
    """Once armed, the next read of the lock returns what it read, but another run takes the
    lock over right after (its lease had expired): the window between a read and a delete."""

    armed = False

    def read(self, name):
        result = self.inner.read(name)
        if self.armed and name == LOCK_NAME:
            self.armed = False
            self.inner.write(LOCK_NAME, foreign(host="next-run").dumps())
        return result


def test_release_leaves_a_lock_taken_over_between_its_read_and_its_delete(store):
    racing = TakeoverAfterRead(store)
    lock = DeployLock(racing, clock=FakeTime().clock, sleep=no_sleep)
    lock.acquire()
    racing.armed = True

    lock.release()

    assert lock_in(store) == foreign(host="next-run")  # the other run keeps its lock


def test_release_removes_its_own_lock_and_the_target_is_free_again(store):
    t = FakeTime()
    lock = DeployLock(store, clock=t.clock, sleep=no_sleep)
    lock.acquire()

    lock.release()

    assert store.read(LOCK_NAME) == (None, None)
    DeployLock(store, clock=t.clock, sleep=no_sleep).acquire()  # at once


def test_release_leaves_a_lock_that_another_run_took_over(store):
    t = FakeTime()
    first = DeployLock(store, lease=10, margin=0, clock=t.clock, sleep=no_sleep)
    first.acquire()
    t.now = T0 + 11
    second = DeployLock(store, clock=t.clock, sleep=no_sleep)
    second.acquire()

    first.release()  # it never renewed, so it does not know it lost the lock

    assert lock_in(store) == second.holder


def test_the_with_block_releases_the_lock_when_it_fails(store):
    with pytest.raises(ValueError, match="build broke"):
        with DeployLock(store, clock=FakeTime().clock, sleep=no_sleep):
            assert lock_in(store) is not None
            raise ValueError("build broke")
    assert store.read(LOCK_NAME) == (None, None)


def test_exit_keeps_the_original_error_when_the_release_fails(store):
    flaky = FailingStore(store)
    with pytest.raises(ValueError, match="upload failed"):
        with DeployLock(flaky, clock=FakeTime().clock, sleep=no_sleep):
            flaky.down = True
            raise ValueError("upload failed")


def test_exit_raises_the_release_error_when_the_block_succeeded(store):
    flaky = FailingStore(store)
    with pytest.raises(StoreError, match="unreachable"):
        with DeployLock(flaky, clock=FakeTime().clock, sleep=no_sleep):
            flaky.down = True


def test_unlock_returns_the_holder_or_none(store):
    assert unlock(store) is None

    lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep)
    lock.acquire()
    assert unlock(store) == lock.holder
    assert store.read(LOCK_NAME) == (None, None)
    assert unlock(store) is None

    store.write(LOCK_NAME, b"garbage")
    held = unlock(store)
    assert held is not None and held.deploy == "unreadable lock"
    assert store.read(LOCK_NAME) == (None, None)


def test_the_conditional_writes_the_lock_relies_on_hold_on_this_store(store):
    # Precondition of every test above: a create-only write fails on an existing object, and
    # a write on a version fails once the object changed or is gone.
    from manifests.stores import ABSENT

    v1 = store.write(LOCK_NAME, b"a", expect=ABSENT)
    with pytest.raises(ConflictError):
        store.write(LOCK_NAME, b"b", expect=ABSENT)
    v2 = store.write(LOCK_NAME, b"c", expect=v1)
    with pytest.raises(ConflictError):
        store.write(LOCK_NAME, b"d", expect=v1)
    store.remove(LOCK_NAME)
    with pytest.raises(ConflictError):
        store.write(LOCK_NAME, b"e", expect=v2)
    assert store.read(LOCK_NAME) == (None, None)


# --- zombies ---------------------------------------------------------------------------------


@pytest.mark.e2e
def test_the_lock_of_a_killed_process_not_yet_reaped_is_taken_over(tmp_path):
    """A deploy killed (SIGKILL) whose parent has not waited for it yet is a zombie: it no
    longer runs, though its pid still answers kill(pid, 0)."""
    store = LocalStore(str(tmp_path / "target"))
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        started = process_start(proc.pid)
        proc.send_signal(signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with open(f"/proc/{proc.pid}/stat") as f:
                if f.read().rpartition(")")[2].split()[0] == "Z":
                    break
            time.sleep(0.01)
        else:
            pytest.fail("the killed child never became a zombie")
        store.write(LOCK_NAME, dead_holder_here(proc.pid, started).dumps())

        lock = DeployLock(store, clock=FakeTime().clock, sleep=no_sleep)
        lock.acquire()

        assert lock_in(store) == lock.holder
    finally:
        proc.kill()
        proc.wait(timeout=10)


# === end to end against the moto server ======================================================


def build(root: Path, tag: str, extra: int = 0, size: int = 0, drop: tuple[str, ...] = ()):
    """A build whose every body starts with ``tag|`` (so a body tells its build): a few pages
    and assets, plus ``extra`` scripts of ``size`` bytes. Returns key -> body."""
    keys = ["index.html", "about/index.html", "css/site.css", "js/app.js", "img/logo.svg"]
    files = {k: f"{tag}|{k}|\n".encode() for k in keys if k not in drop}
    files |= {f"assets/a{i:03}.js": f"{tag}|{i}|".encode() + b"x" * size for i in range(extra)}
    for key, data in files.items():
        path = root.joinpath(*key.split("/"))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return files


def deploy_args(root: Path, site, *extra: str) -> list[str]:
    return ["deploy", str(root), "--target", site.target(), "--distribution",
            site.distribution_id, *extra]


def start(moto, args: list[str]) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "planner", *args], env=moto.env, cwd=moto.cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            encoding="utf-8")


def finish(proc: subprocess.Popen) -> subprocess.CompletedProcess:
    out, err = proc.communicate(timeout=TIMEOUT)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


def ids(proc: subprocess.CompletedProcess) -> tuple[str, str]:
    """(deploy id, previous deploy id) of a table-format deploy's plan, shown under the lock."""
    m = re.search(r"^deploy (\S+), previous (.+)$", proc.stdout, re.M)
    assert m, proc.stdout
    return m.group(1), m.group(2)


def assert_bucket_is(moto, bucket: str, files: dict[str, bytes]):
    """The site objects are exactly ``files`` (bodies compared), and so is the manifest."""
    objs = site_objects(moto.s3, bucket)
    assert sorted(objs) == sorted(files)
    for key, data in files.items():
        assert moto.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data, key
    m = manifest(moto.s3, bucket)
    assert m is not None and sorted(m.entries) == sorted(files)
    for key, data in files.items():
        assert (m.entries[key].hash, m.entries[key].size) == (
            xxhash.xxh3_128_hexdigest(data), len(data)), key
    return m


def etags_ever(moto, bucket: str) -> set[str]:
    """The ETag (MD5 of the body: single-part uploads) of every version the bucket ever held."""
    tags = set()
    for page in moto.s3.get_paginator("list_object_versions").paginate(Bucket=bucket):
        tags |= {v["ETag"].strip('"') for v in page.get("Versions", [])}
    return tags


def md5s(files: dict[str, bytes]) -> set[str]:
    return {hashlib.md5(data).hexdigest() for data in files.values()}


def s3_lock_store(moto, site) -> S3Store:
    return S3Store(moto.s3, site.bucket)


LOCKED = re.compile(
    r"^Error: target is locked by deploy( \S+)? on host \S+ \(pid \d+\) since "
    r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ; its lease runs to "
)


def test_two_deploys_of_different_builds_at_once_one_wins_and_the_loser_writes_nothing(
    moto, site, tmp_path
):
    build(tmp_path / "v1", "v1")
    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    previous = manifest(moto.s3, site.bucket).deploy_id
    outcomes = []
    for round_ in range(2):
        tags = (f"r{round_}a", f"r{round_}b")
        builds = {
            tags[0]: build(tmp_path / tags[0], tags[0], extra=100, size=1000),
            tags[1]: build(tmp_path / tags[1], tags[1], extra=100, size=1000,
                           drop=("img/logo.svg",)),
        }
        procs = {tag: start(moto, deploy_args(tmp_path / tag, site)) for tag in tags}
        done = {tag: finish(p) for tag, p in procs.items()}
        codes = {tag: p.returncode for tag, p in done.items()}

        assert set(codes.values()) <= {0, 4}, done
        assert 0 in codes.values(), done
        if 4 in codes.values():
            loser = next(t for t in tags if codes[t] == 4)
            winner = next(t for t in tags if t != loser)
            line = one_line_error(done[loser])
            assert LOCKED.match(line), line
            named = LOCKED.match(line).group(1)
            won_id, won_previous = ids(done[winner])
            assert named in (None, f" {won_id}")  # the lock names the winner's deploy
            assert done[loser].stdout == ""
            assert won_previous == previous
            m = assert_bucket_is(moto, site.bucket, builds[winner])
            assert m.previous_deploy_id == previous
            assert not md5s(builds[loser]) & etags_ever(moto, site.bucket)  # uploaded nothing
            outcomes.append("one locked out")
        else:  # the second started after the first had finished: it deployed over it
            a_id, b_prev = ids(done[tags[0]])[0], ids(done[tags[1]])[1]
            first, last = (tags[0], tags[1]) if b_prev == a_id else (tags[1], tags[0])
            assert ids(done[first])[1] == previous and ids(done[last])[1] == ids(done[first])[0]
            m = assert_bucket_is(moto, site.bucket, builds[last])
            assert m.previous_deploy_id == ids(done[first])[0]
            outcomes.append("in turn")
        assert s3_lock_store(moto, site).read(LOCK_NAME) == (None, None)
        previous = m.deploy_id
    print("outcomes:", outcomes)


def test_two_deploys_that_wait_for_the_lock_both_succeed_and_the_last_one_wins(
    moto, site, tmp_path
):
    build(tmp_path / "v1", "v1")
    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    v1_id = manifest(moto.s3, site.bucket).deploy_id
    builds = {
        "v2": build(tmp_path / "v2", "v2", extra=80, size=1000),
        "v3": build(tmp_path / "v3", "v3", extra=80, size=1000, drop=("css/site.css",)),
    }

    procs = {t: start(moto, deploy_args(tmp_path / t, site, "--lock-timeout", "60"))
             for t in builds}
    done = {t: ok(finish(p)) for t, p in procs.items()}

    first, last = ("v2", "v3") if ids(done["v3"])[1] == ids(done["v2"])[0] else ("v3", "v2")
    first_id, first_prev = ids(done[first])
    last_id, last_prev = ids(done[last])
    assert first_prev == v1_id and last_prev == first_id  # the last planned against the first
    m = assert_bucket_is(moto, site.bucket, builds[last])
    assert (m.deploy_id, m.previous_deploy_id) == (last_id, first_id)
    assert md5s(builds[first]) <= etags_ever(moto, site.bucket)  # both really deployed
    assert "planning again" not in done[first].stderr
    assert "took over" not in done[first].stderr + done[last].stderr  # it waited its turn
    print("replanned:", "planning again" in done[last].stderr)
    assert s3_lock_store(moto, site).read(LOCK_NAME) == (None, None)


def test_a_lock_left_by_a_dead_deploy_on_this_machine_is_taken_over_by_the_rerun(
    moto, site, tmp_path, dead_process
):
    files = build(tmp_path / "v1", "v1")
    pid, started = dead_process
    now = time.time()
    left = dead_holder_here(pid, started, started=iso(now - 30), expires=iso(now + 3600))
    s3_lock_store(moto, site).write(LOCK_NAME, left.dumps())

    proc = ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))  # --lock-timeout 0

    assert f"took over the lock of {left.describe()}: its process no longer runs" in proc.stderr
    assert_bucket_is(moto, site.bucket, files)
    assert s3_lock_store(moto, site).read(LOCK_NAME) == (None, None)


def test_a_deploy_killed_while_holding_the_lock_is_taken_over_and_the_rerun_converges(
    moto, site, tmp_path
):
    files = build(tmp_path / "big", "big", extra=150, size=1500)
    lock_key = ".planner/lock.json"
    killed = start(moto, deploy_args(tmp_path / "big", site))
    try:
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline and killed.poll() is None:
            if lock_key in {o["Key"] for o in moto.s3.list_objects_v2(
                    Bucket=site.bucket, Prefix=".planner/").get("Contents", [])}:
                break
            time.sleep(0.01)
        assert killed.poll() is None, "the deploy finished before it could be killed"
        killed.send_signal(signal.SIGKILL)
    finally:
        killed.communicate(timeout=TIMEOUT)  # reaped, like a shell or CI runner does
    left = Holder.loads(body_of(moto, site.bucket, lock_key))
    assert left.pid == killed.pid and left.machine == this_machine()

    proc = ok(run(deploy_args(tmp_path / "big", site), moto.env, moto.cwd))

    assert "took over the lock of deploy" in proc.stderr
    assert "its process no longer runs" in proc.stderr
    assert_bucket_is(moto, site.bucket, files)
    assert s3_lock_store(moto, site).read(LOCK_NAME) == (None, None)


def body_of(moto, bucket: str, key: str) -> bytes:
    return moto.s3.get_object(Bucket=bucket, Key=key)["Body"].read()


def test_a_live_lock_of_another_machine_refuses_the_deploy_until_unlocked(moto, site, tmp_path):
    build(tmp_path / "v1", "v1")
    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    v2 = build(tmp_path / "v1", "v2")  # every file changed: uploads and an invalidation
    now = time.time()
    other = foreign(started=iso(now - 60), expires=iso(now + 600))
    s3_lock_store(moto, site).write(LOCK_NAME, other.dumps())
    before = history(moto.s3, site.bucket)

    locked = run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd)

    assert locked.returncode == 4
    assert one_line_error(locked) == (
        f"Error: target is locked by {other.describe()}; its lease runs to {other.expires} "
        "(wait with --lock-timeout, or run `planner unlock` if that deploy is gone)"
    )
    assert history(moto.s3, site.bucket) == before  # not a single write

    # Bad input is refused before the lock is even tried.
    bad = run(deploy_args(tmp_path / "v1", site)[:-1] + ["E0000000000000"], moto.env, moto.cwd)
    assert bad.returncode not in (0, 4) and "E0000000000000" in one_line_error(bad)
    assert "locked" not in bad.stderr
    # `planner plan` never takes the lock.
    plan = ok(run(["plan", *deploy_args(tmp_path / "v1", site)[1:]], moto.env, moto.cwd))
    assert "index.html" in plan.stdout
    assert history(moto.s3, site.bucket) == before

    unlocked = ok(run(["unlock", "--target", site.target()], moto.env, moto.cwd))
    assert f"removed the lock of {other.describe()}" in unlocked.stdout
    assert s3_lock_store(moto, site).read(LOCK_NAME) == (None, None)
    again = ok(run(["unlock", "--target", site.target()], moto.env, moto.cwd))
    assert "was not locked" in again.stdout

    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    assert_bucket_is(moto, site.bucket, v2)


def test_a_locked_deploy_writes_nothing_even_with_invalidations_not_yet_counted(
    moto, site, tmp_path
):
    build(tmp_path / "v1", "v1")
    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    build(tmp_path / "v1", "v2")
    # An invalidation made by someone else: the deploy's budget reads it from CloudFront.
    moto.cloudfront.create_invalidation(
        DistributionId=site.distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/x"]}, "CallerReference": "other"},
    )
    now = time.time()
    s3_lock_store(moto, site).write(
        LOCK_NAME, foreign(started=iso(now), expires=iso(now + 600)).dumps()
    )
    before = history(moto.s3, site.bucket)

    locked = run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd)

    assert locked.returncode == 4, locked.stderr
    assert history(moto.s3, site.bucket) == before


def test_a_deploy_with_nothing_to_do_takes_no_lock(moto, site, tmp_path):
    build(tmp_path / "v1", "v1")
    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    before = history(moto.s3, site.bucket)

    proc = ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))

    assert "Nothing to deploy" in proc.stdout
    assert history(moto.s3, site.bucket) == before  # not even a lock

    # Nor does it touch another deploy's live lock.
    now = time.time()
    other = foreign(started=iso(now), expires=iso(now + 600))
    s3_lock_store(moto, site).write(LOCK_NAME, other.dumps())
    before = history(moto.s3, site.bucket)
    proc = ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    assert "Nothing to deploy" in proc.stdout
    assert history(moto.s3, site.bucket) == before
    assert lock_in(s3_lock_store(moto, site)) == other


def test_a_deploy_with_nothing_to_do_clears_a_lock_left_by_a_dead_deploy(
    moto, site, tmp_path, dead_process
):
    files = build(tmp_path / "v1", "v1")
    ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))
    pid, started = dead_process
    now = time.time()
    left = dead_holder_here(pid, started, started=iso(now), expires=iso(now + 3600))
    s3_lock_store(moto, site).write(LOCK_NAME, left.dumps())
    site_versions = [row for row in history(moto.s3, site.bucket)
                     if not row[1].startswith(".planner/")]

    proc = ok(run(deploy_args(tmp_path / "v1", site), moto.env, moto.cwd))

    assert "Nothing to deploy" in proc.stdout
    assert s3_lock_store(moto, site).read(LOCK_NAME) == (None, None)
    assert [row for row in history(moto.s3, site.bucket)
            if not row[1].startswith(".planner/")] == site_versions
    assert_bucket_is(moto, site.bucket, files)


# --- the local backend -----------------------------------------------------------------------


def tree(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``folder`` (state included): bytes, inode, mtime."""
    out = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file():
            st = path.stat()
            out[path.relative_to(folder).as_posix()] = (path.read_bytes(), st.st_ino,
                                                        st.st_mtime_ns)
    return out


@pytest.mark.e2e
def test_local_target_locked_deploy_writes_nothing_until_unlocked(tmp_path):
    target = tmp_path / "out"
    build(tmp_path / "site", "v1")
    ok(run(["deploy", str(tmp_path / "site"), "--target", str(target)], None))
    v2 = build(tmp_path / "site", "v2", extra=3)
    now = time.time()
    other = foreign(started=iso(now - 60), expires=iso(now + 600))
    LocalStore(str(target)).write(LOCK_NAME, other.dumps())
    before = tree(target)

    locked = run(["deploy", str(tmp_path / "site"), "--target", str(target)], None)

    assert locked.returncode == 4
    assert one_line_error(locked).startswith(f"Error: target is locked by {other.describe()};")
    assert tree(target) == before
    ok(run(["plan", str(tmp_path / "site"), "--target", str(target)], None))
    assert tree(target) == before

    unlocked = ok(run(["unlock", "--target", str(target)], None))
    assert f"removed the lock of {other.describe()}" in unlocked.stdout
    assert not (target / ".planner" / LOCK_NAME).exists()

    ok(run(["deploy", str(tmp_path / "site"), "--target", str(target)], None))
    files = {k: v[0] for k, v in tree(target).items() if not k.startswith(".planner/")}
    assert files == v2
    assert not (target / ".planner" / LOCK_NAME).exists()


def test_a_lock_without_a_margin_is_given_the_default_one(store):
    from planner.lock import MARGIN_SECONDS

    old = foreign(expires=iso(T0 - 1), margin=None)  # written before locks had a margin
    store.write(LOCK_NAME, old.dumps())
    with pytest.raises(TargetLocked, match=f"and {MARGIN_SECONDS:.0f} s more for its last writes"):
        DeployLock(store, clock=FakeTime().clock, sleep=no_sleep).acquire()
    t = FakeTime(start=T0 + MARGIN_SECONDS)  # lease + margin past
    lock = DeployLock(store, clock=t.clock, sleep=no_sleep)
    lock.acquire()
    assert lock.took_over == EXPIRED and lock_in(store) == lock.holder


@pytest.mark.parametrize("margin", ["60", -1, 1e9, True])
def test_a_lock_with_an_unreadable_margin_is_not_a_lock_this_tool_can_read(margin):
    doc = json.loads(foreign().dumps()) | {"margin": margin}
    assert Holder.loads(json.dumps(doc).encode()) is None
