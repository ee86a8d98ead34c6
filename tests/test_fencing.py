"""Fencing: a deploy that lost its lock can never write again (``planner/fence.py``).

moto does not enforce the expiry of pre-signed requests, so every test here talks to moto
through ``FaultProxy(strict=True)``, which refuses an expired one as S3 does (and drops a body
that stalls, as S3 does with RequestTimeout).

The main test freezes a deploy (SIGSTOP) at a random moment of its uploads and deletes, lets a
second deploy of another build take the lock over and finish, and resumes the first: the
bucket must equal the manifest and the second build, and the first must fail saying it lost
the lock. The lease is short (``--lock-lease``, a setting), so a trial takes seconds. The
second build holds pages the first one deletes, so a late delete of the first would show.
"""

from __future__ import annotations

import datetime as _dt
import os
import random
import signal
import subprocess
import sys
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import boto3
import pytest
import xxhash
from botocore.config import Config
from conftest import Site
from e2e_helpers import (
    STATE_PREFIX,
    body,
    manifest,
    objects,
    one_line_error,
    run,
    site_objects,
)
from e2e_helpers import write_site as write_files
from fault_proxy import Entry, FaultProxy, Hook, Rewrite, Rule

from planner.backends.fence import FENCED, Fence, attach
from planner.errors import LockLost

# A 5 s lease: with 3 s, deploy B (which takes the lock over, then plans again and deploys
# under it) lost its own lease in 2 of 20 trials on a slow spell of the CI host, its
# renewals late; the guarantee tested does not depend on the lease's length.
LEASE, MARGIN, BODY_TIMEOUT = 5.0, 2.0, 1.0
TRIALS = 20


# --- the fence's clock -----------------------------------------------------------------------


class Clocks:
    def __init__(self, mono: float = 1000.0, wall: float = 1_900_000_000.0) -> None:
        self.mono, self.wall = mono, wall


def http_date(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%a, %d %b %Y %H:%M:%S GMT")


def test_without_an_answer_from_s3_the_fence_keeps_the_wall_clock():
    c = Clocks()
    assert Fence(lambda: c.mono, lambda: c.wall).now() == c.wall


def test_the_fence_never_puts_s3_later_than_its_date_says():
    c = Clocks()
    fence = Fence(lambda: c.mono, lambda: c.wall)
    # S3 is 100.7 s ahead of this host; its Date is truncated to the second.
    fence.observe(http_date(c.wall + 100.7))
    assert fence.now() == pytest.approx(c.wall + 100)  # never more than S3's real time
    c.mono += 5
    assert fence.now() == pytest.approx(c.wall + 105)  # monotonic from there
    # A later, tighter answer raises the estimate; an older (smaller) one never lowers it.
    fence.observe(http_date(c.wall + 105.7 + 0.9))
    assert fence.now() == pytest.approx(c.wall + 106)
    fence.observe(http_date(c.wall + 90))
    assert fence.now() == pytest.approx(c.wall + 106)
    fence.observe("not a date")
    assert fence.now() == pytest.approx(c.wall + 106)


def test_a_date_seen_again_later_teaches_nothing_and_is_not_parsed_again(monkeypatch):
    c = Clocks()
    fence = Fence(lambda: c.mono, lambda: c.wall)
    date = http_date(c.wall + 50.2)
    fence.observe(date)
    assert fence.now() == pytest.approx(c.wall + 50)
    parsed = []
    monkeypatch.setattr("email.utils.parsedate_to_datetime",
                        lambda d: parsed.append(d) or _dt.datetime.now(_dt.UTC))
    c.mono += 0.5
    fence.observe(date)  # the same second, half a second later: a smaller offset
    assert parsed == [] and fence.now() == pytest.approx(c.wall + 50.5)


def test_a_write_is_valid_until_the_earliest_lease_held_and_refused_once_it_is_over():
    c = Clocks()
    fence = Fence(lambda: c.mono, lambda: c.wall)
    assert fence.validity() is None  # no lock held: nothing is fenced
    fence.hold("a", c.wall + 30)
    fence.hold("b", c.wall + 10)
    assert fence.validity() == (int(c.wall), 10)
    fence.drop("b")
    assert fence.validity() == (int(c.wall), 30)
    c.wall += 29.5  # signed at a whole second (truncated): it still ends at the lease's end
    assert fence.validity() == (int(c.wall), 1)
    c.wall += 0.5  # no whole second left
    with pytest.raises(LockLost, match="lost the target's lock: its lease ended at "):
        fence.validity()
    fence.hold("a", c.wall + 60)  # renewed: the same lock, a later end
    assert fence.validity() == (int(c.wall), 60) and fence.deadline == c.wall + 60
    fence.hold("b", c.wall + 5)
    assert fence.deadline == c.wall + 5
    fence.drop("a")
    fence.drop("b")
    assert fence.deadline is None and fence.validity() is None


# --- a client with the fence, through the strict proxy ---------------------------------------


@pytest.fixture
def strict(moto):
    with FaultProxy(moto.endpoint, strict=True, body_timeout=BODY_TIMEOUT) as proxy:
        yield proxy


def fenced_client(proxy: FaultProxy) -> tuple[Any, Fence]:
    client = boto3.client(
        "s3", region_name="us-east-1", endpoint_url=proxy.url, aws_access_key_id="testing",
        aws_secret_access_key="testing", config=Config(retries={"mode": "standard", "total_max_attempts": 2}),
    )
    fence = Fence()
    attach(client, fence)
    return client, fence


def test_writes_under_a_lease_are_presigned_to_its_end_and_reads_are_not(moto, site, strict):
    client, fence = fenced_client(strict)
    client.list_objects_v2(Bucket=site.bucket)  # S3's Date sets the clock
    client.put_object(Bucket=site.bucket, Key="free.txt", Body=b"no lock held")
    deadline = int(fence.now()) + 60
    fence.hold("lock", deadline)
    mark = strict.mark()

    client.put_object(Bucket=site.bucket, Key="a.txt", Body=b"a", ContentType="text/plain",
                      CacheControl="max-age=60")
    client.copy_object(Bucket=site.bucket, Key="a.txt", CopySource=f"{site.bucket}/a.txt",
                       MetadataDirective="REPLACE", ContentType="text/plain",
                       CacheControl="max-age=5")
    client.delete_objects(Bucket=site.bucket, Delete={"Objects": [{"Key": "free.txt"}]})
    client.get_object(Bucket=site.bucket, Key="a.txt")

    log = strict.since(mark)
    writes = [e for e in log if e.method in ("PUT", "POST", "DELETE")]
    assert len(writes) == 3 and all(presigned_until(e) == deadline for e in writes), strict.dump()
    assert all("authorization" not in e.headers for e in writes)
    read = next(e for e in log if e.method == "GET")
    assert "X-Amz-Expires" not in read.query and "authorization" in read.headers
    head = moto.s3.head_object(Bucket=site.bucket, Key="a.txt")
    assert (head["ContentType"], head["CacheControl"]) == ("text/plain", "max-age=5")
    assert body(moto.s3, site.bucket, "a.txt") == b"a"
    assert "free.txt" not in objects(moto.s3, site.bucket)
    assert FENCED >= {"PutObject", "CopyObject", "DeleteObjects", "CompleteMultipartUpload"}


def test_a_write_that_reaches_s3_after_the_lease_is_refused_and_is_lock_lost(moto, site, strict):
    client, fence = fenced_client(strict)
    client.list_objects_v2(Bucket=site.bucket)
    fence.hold("lock", int(fence.now()) + 2)

    # Frozen between signing and sending (the request leaves 3 s after it was signed).
    def freeze(request: Any, **_: Any) -> None:
        time.sleep(3.2)

    client.meta.events.register_first("before-send.s3.PutObject", freeze)
    with pytest.raises(LockLost, match="lost the target's lock"):
        client.put_object(Bucket=site.bucket, Key="late.txt", Body=b"late")
    client.meta.events.unregister("before-send.s3.PutObject", freeze)

    refused = strict.requests(method="PUT", key="late.txt")
    assert [e.status for e in refused] == [403] and refused[0].upstream_status is None
    assert "late.txt" not in objects(moto.s3, site.bucket)
    # And nothing more is even sent: the lease is over.
    mark = strict.mark()
    with pytest.raises(LockLost):
        client.delete_object(Bucket=site.bucket, Key="late.txt")
    assert strict.since(mark) == []


def test_a_body_that_stalls_is_dropped_and_never_lands(moto, site, strict):
    import socket

    mark = strict.mark()
    host, port = strict.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port))) as conn:
        conn.sendall(f"PUT /{site.bucket}/stalled.txt HTTP/1.1\r\nHost: {host}:{port}\r\n"
                     "Content-Length: 10\r\n\r\nhalf".encode())
        conn.settimeout(BODY_TIMEOUT + 5)
        answer = b""
        while chunk := conn.recv(4096):  # until the proxy closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"RequestTimeout" in answer
    assert [e.upstream_status for e in strict.since(mark)] == [None]
    assert "stalled.txt" not in objects(moto.s3, site.bucket)


def presigned_until(entry: Entry) -> int | None:
    """X-Amz-Date + X-Amz-Expires of a pre-signed request (epoch seconds), else None."""
    q = entry.query
    if "X-Amz-Expires" not in q:
        return None
    signed = _dt.datetime.strptime(q["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=_dt.UTC)
    return int(signed.timestamp()) + int(q["X-Amz-Expires"][0])


# --- a frozen deploy, a takeover, a resume ---------------------------------------------------

PAGES = 36


def build_files(kind: str) -> dict[str, str]:
    """The base build, and two others (A and B) that change, add and remove different files."""
    files = {f"p{i:02d}/index.html": f"<!doctype html><h1>page {i}</h1>\n" for i in range(PAGES)}
    files |= {f"css/c{i}.css": f"body {{ --v: {i}; }}\n" for i in range(6)}
    files["index.html"] = "<!doctype html><h1>home</h1>\n"
    if kind == "base":
        return files
    rng = random.Random(kind)
    changed = rng.sample(sorted(files), 24)
    removed = rng.sample(sorted(set(files) - set(changed) - {"index.html"}), 4)
    out = {k: (v + f"<!-- {kind} -->\n" if k in changed else v) for k, v in files.items()
           if k not in removed}
    out |= {f"{kind}/new{i}.html": f"<!doctype html><h1>{kind} {i}</h1>\n" for i in range(4)}
    return out


def deploy_args(root: Path, site: Site, *extra: str) -> list[str]:
    return ["deploy", str(root), "--target", site.target(), "--distribution",
            site.distribution_id, "--format", "json", "--lock-lease", str(LEASE),
            "--lock-margin", str(MARGIN), *extra]


def is_write(e: Entry, bucket: str) -> bool:
    return e.service == "s3" and e.bucket == bucket and e.method in ("PUT", "POST", "DELETE")


def from_app(e: Entry, app: str) -> bool:
    return f"app/{app}" in e.headers.get("user-agent", "")


UPLOAD_TRIALS = 12  # the trials after these freeze A in its delete phase
# Deploy A's delete phase (it committed its manifest; its DeleteObjects is next), in turn:
# - "delete-signed": in A's own process, its DeleteObjects signed and about to be sent: frozen
#   between its checks and its request, which only the fence answers (S3 refuses it, expired);
# - "commit": as S3 answers A's manifest commit: A wakes before its DeleteObjects, which its
#   lock check then stops (it is never sent);
# - "delete": a random few ms after A's DeleteObjects reached S3 (it lands, before B starts).
DELETE_MOMENTS = ("delete-signed", "commit", "delete")
STOP_BEFORE_SEND = Path(__file__).with_name("stop_before_send.py")


def freeze_point(trial: int, uploads: int) -> tuple[str, int, float]:
    """(moment, k, delay) of a trial, drawn with a fixed seed: the first UPLOAD_TRIALS
    trials freeze A ``delay`` s after its ``k``-th upload reached S3 (mid-request or between
    requests), the others at each moment of its delete phase in turn."""
    rng = random.Random(f"fence-{trial}")
    if trial < UPLOAD_TRIALS:
        return "upload", rng.randint(1, uploads), rng.uniform(0, 0.03)
    moment = DELETE_MOMENTS[(trial - UPLOAD_TRIALS) % len(DELETE_MOMENTS)]
    return moment, 0, rng.uniform(0, 0.03) if moment == "delete" else 0.0


def is_delete_objects(e: Entry) -> bool:
    return e.service == "s3" and e.method == "POST" and "delete" in e.query


def deleted_keys(e: Entry) -> set[str]:
    """The keys a DeleteObjects request names."""
    assert e.body is not None, e.describe()
    return {el.text or "" for el in ET.fromstring(e.body).iter() if el.tag.endswith("Key")}


class Freezer:
    """Proxy hooks that SIGSTOP deploy A's process group: ``delay`` seconds after its ``k``-th
    upload (moment "upload") or its DeleteObjects ("delete") arrived, or as S3 answers its
    manifest commit ("commit"). Moment "delete-signed" is A's own doing (STOP_BEFORE_SEND)."""

    def __init__(self, bucket: str, moment: str, k: int, delay: float) -> None:
        self.bucket, self.moment, self.k, self.delay = bucket, moment, k, delay
        self.pid: int | None = None
        self.seen = 0
        self.fired = threading.Event()
        self.at: Entry | None = None

    def arrived(self, e: Entry) -> None:
        if self.fired.is_set() or not (is_write(e, self.bucket) and from_app(e, "deploy-a")):
            return
        if self.moment == "upload" and e.key is not None and not e.key.startswith(STATE_PREFIX):
            self.seen += 1
            if self.seen == self.k:
                self._fire(e, self.delay)
        elif self.moment == "delete" and is_delete_objects(e):
            self._fire(e, self.delay)

    def answered(self, e: Entry, data: bytes) -> bytes:
        """The manifest commit, applied by S3: A is stopped before it reads the answer."""
        if self.moment == "commit" and from_app(e, "deploy-a") and not self.fired.is_set():
            self._fire(e, None)
        return data

    def _fire(self, e: Entry, delay: float | None) -> None:
        self.at = e
        self.fired.set()
        if delay is None:
            self._stop()
        else:
            threading.Timer(delay, self._stop).start()

    def _stop(self) -> None:
        assert self.pid is not None
        os.killpg(self.pid, signal.SIGSTOP)


def wait_stopped(proc: subprocess.Popen, timeout: float) -> bool:
    """Until ``proc`` is stopped (SIGSTOP); False if it ended or the time ran out first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        with open(f"/proc/{proc.pid}/stat") as f:
            if f.read().rpartition(")")[2].split()[0] == "T":
                return True
        time.sleep(0.005)
    return False


def check_bucket_is_build(moto, site: Site, files: dict[str, str]) -> list[str]:
    problems = []
    held = {k: body(moto.s3, site.bucket, k).decode() for k in site_objects(moto.s3, site.bucket)}
    if held != files:
        wrong = sorted(k for k in set(held) | set(files) if held.get(k) != files.get(k))
        problems.append(f"bucket differs from build B at {wrong[:8]}")
    m = manifest(moto.s3, site.bucket)
    want = {k: xxhash.xxh3_128_hexdigest(v.encode()) for k, v in files.items()}
    if m is None or {k: e.hash for k, e in m.entries.items()} != want:
        problems.append("manifest is not build B")
    left = set(objects(moto.s3, site.bucket, STATE_PREFIX))
    if {"pending.json", "lock.json"} & left:
        problems.append(f"state left behind: {sorted(left)}")
    return problems


@pytest.mark.parametrize("trial", range(TRIALS))
def test_a_frozen_deploy_that_lost_its_lock_writes_nothing_after_the_takeover(
    moto, site, tmp_path, trial
):
    base, a, b = (write_files(tmp_path / k, build_files(k)) for k in ("base", "A", "B"))
    files_a, files_b = build_files("A"), build_files("B")
    # Pages A deletes that B deploys (changed): a late delete of A would remove them.
    exposed = (set(build_files("base")) - set(files_a)) & set(files_b)
    assert exposed, "build B must hold pages build A deletes"
    first = run(deploy_args(base, site), moto.env, moto.cwd)
    assert first.returncode == 0, first.stderr

    uploads_a = len(set(files_a.items()) - set(build_files("base").items()))
    moment, k, delay = freeze_point(trial, uploads_a)
    freezer = Freezer(site.bucket, moment, k, delay)
    stop_at_delete = moment == "delete-signed"
    cli = [str(STOP_BEFORE_SEND), "DeleteObjects"] if stop_at_delete else ["-m", "planner"]
    with FaultProxy(moto.endpoint, strict=True, body_timeout=BODY_TIMEOUT) as proxy:
        proxy.add(Rule(Rewrite(freezer.answered), method="PUT",
                       path=rf"^/{site.bucket}/{STATE_PREFIX}manifest\.json\.gz$"))
        proxy.add(Rule(Hook(freezer.arrived, then=None)))
        env = proxy.env(moto.env)
        proc_a = subprocess.Popen(
            [sys.executable, *cli, *deploy_args(a, site, "--workers", "2")],
            env=env | {"AWS_SDK_UA_APP_ID": "deploy-a"}, cwd=moto.cwd, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, start_new_session=True,
        )
        freezer.pid = proc_a.pid
        try:
            assert wait_stopped(proc_a, 60), f"deploy A never reached its freeze point ({moment})"
            # B starts while A is frozen holding the lock, waits for it, takes it over.
            run_b = run(deploy_args(b, site, "--lock-timeout", "60"),
                        env | {"AWS_SDK_UA_APP_ID": "deploy-b"}, moto.cwd, timeout=120)
            os.killpg(proc_a.pid, signal.SIGCONT)
            _, err_a = proc_a.communicate(timeout=60)
        finally:
            if proc_a.poll() is None:
                os.killpg(proc_a.pid, signal.SIGKILL)
                proc_a.wait()
        proxy.wait_idle()
        log = proxy.since()

    where = f"trial {trial}: A frozen " + (
        f"{delay * 1000:.0f} ms after {freezer.at.describe()}" if freezer.at is not None
        else "with its DeleteObjects signed, before sending it")
    assert run_b.returncode == 0, f"{where}\nB failed: {run_b.stderr[-3000:]}"
    took_over = [e for e in log if from_app(e, "deploy-b") and e.method == "PUT" and e.applied
                 and e.key == STATE_PREFIX + "lock.json" and "if-match" in e.headers]
    assert took_over, f"{where}: B never took A's lock over\n{proxy.dump()}"
    err_a = err_a.decode()
    assert proc_a.returncode not in (0, None), f"{where}\nA exited 0:\n{err_a[-2000:]}"
    assert "lost the target's lock" in one_line_error(
        subprocess.CompletedProcess([], proc_a.returncode, "", err_a)), err_a[-2000:]

    problems = check_bucket_is_build(moto, site, files_b)
    # The fence itself: no write of A landed once B began writing (B's takeover of the lock).
    b_writes = [e for e in log if is_write(e, site.bucket) and from_app(e, "deploy-b")
                and e.applied]
    b_first = min(e.arrived for e in b_writes)
    a_writes = [e for e in log if is_write(e, site.bucket) and from_app(e, "deploy-a")]
    late = [e.describe() for e in a_writes if e.applied and e.done is not None
            and e.done > b_first]
    if late:
        problems.append(f"writes of A landed after B began: {late}")
    # Every write of A but its lock's creation was signed to expire with its lease.
    unsigned = [e.describe() for e in a_writes[1:] if presigned_until(e) is None]
    if unsigned:
        problems.append(f"writes of A not pre-signed: {unsigned}")
    # A's delete: on time before the takeover, refused by S3 after it, or never sent.
    deletes_a = [e for e in a_writes if is_delete_objects(e)]
    if moment == "delete-signed":
        late_deletes = [e for e in deletes_a if e.arrived > b_first]
        if not (len(deletes_a) == len(late_deletes) == 1 and deletes_a[0].status == 403
                and deletes_a[0].action == "error:403:AccessDenied"
                and deletes_a[0].upstream_status is None
                and exposed <= deleted_keys(deletes_a[0])):
            problems.append("A's DeleteObjects, sent after B began, was not refused as expired: "
                            f"{[e.describe() for e in deletes_a]}")
    elif moment == "commit" and deletes_a:
        problems.append(f"A sent a DeleteObjects after its lease: {deletes_a[0].describe()}")
    elif moment == "delete" and not (len(deletes_a) == 1 and deletes_a[0].applied
                                     and deletes_a[0].arrived < b_first):
        problems.append(f"A's DeleteObjects did not land before B: "
                        f"{[e.describe() for e in deletes_a]}")
    refused = sum(1 for e in a_writes if e.action in ("error:403:AccessDenied", "request timeout"))
    assert not problems, f"{where}; {refused} late writes of A refused\n" + "\n".join(problems)


# --- after a takeover: what the lost deploy did is found and put right -----------------------


def test_after_a_takeover_objects_not_as_the_manifest_says_are_written_again_and_invalidated(
    moto, site, tmp_path
):
    from e2e_helpers import inv_paths, invalidations

    from planner.lock import LOCK_NAME, Holder

    base_files = build_files("base")
    base = write_files(tmp_path / "base", base_files)
    assert run(deploy_args(base, site), moto.env, moto.cwd).returncode == 0
    # A deploy that lost its lock left: an edited page (same size: only its ETag tells), a new
    # page, a deleted stylesheet, and its expired lock (no pending record: it is lost too).
    edited = base_files["p03/index.html"].replace("page", "PAGE")
    moto.s3.put_object(Bucket=site.bucket, Key="p03/index.html", Body=edited.encode())
    moto.s3.put_object(Bucket=site.bucket, Key="stray/index.html", Body=b"<h1>stray</h1>")
    moto.s3.delete_object(Bucket=site.bucket, Key="css/c1.css")
    gone = Holder("deploy lost", "elsewhere", 1, "2026-01-01T00:00:00Z", "2026-01-01T00:01:00Z",
                  "0123456789abcdef", "another-host", "1", margin=0.0)
    moto.s3.put_object(Bucket=site.bucket, Key=STATE_PREFIX + LOCK_NAME, Body=gone.dumps())
    build = dict(base_files) | {"p05/index.html": base_files["p05/index.html"] + "<p>new</p>\n"}
    root = write_files(tmp_path / "next", build)

    done = run(deploy_args(root, site, "--format", "table"), moto.env, moto.cwd)

    assert done.returncode == 0, done.stderr
    assert "took over the lock of deploy lost on host elsewhere" in done.stderr
    assert ("the lock was taken over: 3 objects are not as the manifest says (css/c1.css, "
            "p03/index.html, stray/index.html)") in done.stderr
    assert check_bucket_is_build(moto, site, build) == []
    paths = {p for i in invalidations(moto.cloudfront, site.distribution_id) for p in inv_paths(i)}
    covered = [u for u in ("/p03/", "/p03/index.html", "/stray/", "/stray/index.html",
                           "/css/c1.css", "/p05/", "/p05/index.html")
               if not any(u == p or p.endswith("*") and u.startswith(p[:-1]) for p in paths)]
    assert covered == [], paths
