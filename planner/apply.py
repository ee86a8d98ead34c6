"""Carry out a plan, in the order that keeps the site, the manifest and the CDN in step:

1. finish the deletes and invalidation of a committed deploy that was interrupted;
2. write the pending record (journal) naming every key about to be written or deleted;
3. upload assets, then pages (HTML/XML), so no page points at an asset not yet there;
4. commit the manifest, conditional on the version the plan was made against;
5. delete removed objects;
6. create the invalidation on each distribution (CallerReference from the deploy id), after
   the deletes, so that no request can cache a removed object again once it is invalidated;
7. write the deploy's ledger record; 8. remove the pending record;
9. with ``deploy --wait``, once the lock is released: poll until CloudFront has completed
   every invalidation this run submitted (:func:`wait_for_invalidations`).

A crash anywhere leaves a record the next run uses to converge (see ``plan.compute_plan``).
Under a lock with a fence, every write is signed to expire with the lease (see
:mod:`planner.backends.fence`).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import xxhash

from manifests import ScanError, commit_manifest, load_manifest
from manifests.errors import ConflictError
from manifests.scan import hash_file
from planner import ledger
from planner.backends import MULTIPART_THRESHOLD, Backend
from planner.core.cost import MAX_PATHS_IN_PROGRESS, MAX_WILDCARDS_IN_PROGRESS
from planner.core.drift import compare
from planner.core.headers import compress, is_page
from planner.core.pacing import is_completed
from planner.core.urls import repair_batch, valid_path
from planner.core.words import plural
from planner.errors import AwsError, InvalidationError, InvalidationNotFinished
from planner.lock import LEASE_SECONDS, LOCK_NAME, MARGIN_SECONDS, DeployLock, clear_stale
from planner.plan.build import build_plan, state_unchanged
from planner.plan.compute import Options, Plan, Upload, journal_invalidations
from planner.plan.journal import JOURNAL_NAME, Journal

Log = Callable[[str], None]
debug = logging.getLogger("planner.apply").debug
Check = Callable[[], None]  # raises when this run may no longer write (the deploy lock)
# Uploads in flight at once (--workers): a small PUT is a round trip of 20 to 50 ms on S3 and
# about 0.2 ms of CPU here (planner.backends.fastput), so many at once keep the line busy:
# on the upload bench (docs/benchmarks.md, 20 ms a request) 32 took 4.6 s, 64 3.7 s and 128
# 3.5 s, where this process's CPU becomes the limit; S3's own latency is often longer.
WORKERS = 128
BIG_UPLOAD = 1 << 20  # bytes: files this big or bigger go at most BIG_AT_ONCE at a time
BIG_AT_ONCE = 8


def _no_check() -> None:
    return None


@dataclass(frozen=True)
class Wait:
    """What ``deploy --wait`` saw: the last status of each invalidation this run submitted
    (distribution, id, status; status "" when CloudFront never answered), whether all had
    completed, and the seconds waited."""

    statuses: tuple[tuple[str, str, str], ...]
    completed: bool
    seconds: float


@dataclass
class Result:
    uploaded: int = 0
    uploaded_bytes: int = 0
    fixed_in_place: int = 0  # objects whose headers were set in place (a takeover)
    deleted: int = 0
    invalidations: dict[str, str] = field(default_factory=dict)  # distribution -> id
    paths: int = 0  # invalidation paths submitted, over every distribution
    resumed: str | None = None  # deploy id whose pending work was finished first
    # Every invalidation this run submitted (distribution, id), an interrupted deploy's first:
    # unlike ``invalidations``, two on one distribution are both kept.
    submitted: list[tuple[str, str]] = field(default_factory=list)
    wait: Wait | None = None  # deploy --wait: what waiting saw; None when not asked to wait


class _HashingReader:
    """A build file read in order for a managed upload, hashed as it is read: content other
    than the scanned one raises before the last byte is handed over, so the upload fails
    before the object is completed. No seek or tell: boto3 then reads it strictly in order."""

    def __init__(self, path: str, up: Upload) -> None:
        self.up = up
        self.file = open(path, "rb")  # noqa: SIM115 - closed by _upload_one
        self.hash = xxhash.xxh3_128()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self.file.read(n)
        self.hash.update(data)
        self.size += len(data)
        if self.size > self.up.size or (
            not data and (self.hash.hexdigest(), self.size) != (self.up.hash, self.up.size)
        ):
            raise ScanError(f"{self.up.key} changed since it was scanned; build again and rerun")
        return data


def put_bytes(backend: Backend, up: Upload, data: bytes) -> str:
    """Send ``data``, the bytes hashed for ``up``: compressed, with its Content-Encoding, when
    it has one. Returns the object's ETag."""
    if up.content_encoding:
        return backend.put_bytes(up.key, compress(data, up.content_encoding), up.content_type,
                                 up.cache_control, up.content_encoding)
    return backend.put_bytes(up.key, data, up.content_type, up.cache_control)


def _upload_one(plan: Plan, backend: Backend, up: Upload, check: Check) -> str:
    """Write one object (or set its headers in place); its ETag."""
    check()
    if up.in_place:
        debug("headers of %s in place (%s; %s%s)", up.key, up.content_type, up.cache_control,
              f"; {up.content_encoding}" if up.content_encoding else "")
        return backend.copy_in_place(up.key, up.content_type, up.cache_control,
                                     up.content_encoding)
    debug("upload %s (%s, %d B, %s; %s%s)", up.key, up.reason, up.size, up.content_type,
          up.cache_control, f"; {up.content_encoding}" if up.content_encoding else "")
    path = os.path.join(plan.site, *up.key.split("/"))
    # A file stored compressed is always read whole: it is compressed in one piece.
    if up.content_encoding or up.size < MULTIPART_THRESHOLD:
        with open(path, "rb") as f:
            data = f.read()
        # Send exactly the bytes that were hashed: a file edited since the scan is refused.
        if len(data) != up.size or xxhash.xxh3_128_hexdigest(data) != up.hash:
            raise ScanError(f"{up.key} changed since it was scanned; build again and rerun")
        return put_bytes(backend, up, data)
    reader = _HashingReader(path, up)
    try:
        return backend.put_stream(up.key, reader, up.content_type, up.cache_control)  # type: ignore[arg-type]
    finally:
        reader.file.close()


def _unchanged_since_scan(plan: Plan) -> None:
    """Hash every file to upload once more before the first write: a build edited since the
    scan is refused with nothing written (the check at upload time covers the rest)."""
    buf = bytearray(1 << 20)
    for up in plan.uploads:
        if up.in_place:
            continue  # no bytes are sent
        try:
            now = hash_file(os.path.join(plan.site, *up.key.split("/")), buf)
        except OSError as exc:
            raise ScanError(f"cannot read {up.key}: {exc.strerror}") from None
        if now != (up.hash, up.size):
            raise ScanError(f"{up.key} changed since it was scanned; build again and rerun")


def _upload_all(
    plan: Plan,
    backend: Backend,
    ups: list[Upload],
    workers: int,
    check: Check,
    progress: Callable[[int], None],
    etags: dict[str, str],
) -> None:
    """Upload ``ups`` on ``workers`` threads; each object's ETag goes into ``etags``. Files of
    BIG_UPLOAD bytes or more (read whole, or streamed in parts) go at most BIG_AT_ONCE at a
    time, so that memory stays flat however many small ones are in flight."""
    if not ups:
        return
    big = threading.BoundedSemaphore(min(BIG_AT_ONCE, workers))

    def one(up: Upload) -> None:
        if up.size >= BIG_UPLOAD and not up.in_place:
            with big:
                etags[up.key] = _upload_one(plan, backend, up, check)
        else:
            etags[up.key] = _upload_one(plan, backend, up, check)
        progress(0 if up.in_place else up.size)

    _each_on_threads(one, ups, workers)


def _each_on_threads(work: Callable[[Upload], None], ups: list[Upload], workers: int) -> None:
    """``work(up)`` for every upload on ``workers`` threads, which take the next one as they
    are free (a million uploads make no million futures: memory stays flat). At the first
    error no more are started; once the ones under way are done, the error of the first
    failing upload (in list order) is raised."""
    todo = iter(enumerate(ups))  # next() on it is atomic under the GIL
    errors: list[tuple[int, BaseException]] = []

    def run() -> None:
        for i, up in todo:
            if errors:
                return
            try:
                work(up)
            except BaseException as exc:  # raised by the caller's thread, below
                errors.append((i, exc))
                return

    threads = [threading.Thread(target=run, name=f"planner-upload-{n}")
               for n in range(max(1, min(workers, len(ups))))]
    for t in threads:
        t.start()
    try:
        for t in threads:
            t.join()
    except BaseException as exc:  # Ctrl-C: start no more uploads
        errors.append((-1, exc))
        raise
    if errors:
        raise min(errors, key=lambda e: e[0])[1]


# CloudFront's answers that mean "not now": too many invalidations in progress (15 wildcard
# paths or 3,000 file paths per distribution), or throttling that outlasted botocore's retries.
RETRY_LATER = ("TooManyInvalidationsInProgress", "Throttling", "ThrottlingException")
# Its answers that no retry changes: a path it refuses, a batch too large, or the deploy's
# CallerReference already used for other paths (a pending record edited by hand).
REFUSED_FOR_GOOD = ("InvalidArgument", "BatchTooLarge", "InvalidationBatchAlreadyExists")


# GetInvalidation's answers that mean "ask again later" while waiting for completion.
THROTTLED = ("Throttling", "ThrottlingException")


@dataclass
class Waiting:
    """How long to wait for CloudFront, and with what clock: for it to accept an invalidation
    (``timeout`` bounds each distribution's wait), and with ``for_completion`` (``deploy
    --wait``) for it to complete them (``timeout`` bounds that wait too, all invalidations
    together), polling after ``poll_first`` seconds, then twice as long each time up to
    ``poll_max``."""

    timeout: float = 600.0
    first_delay: float = 5.0
    max_delay: float = 60.0
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    now: Callable[[], _dt.datetime] = lambda: _dt.datetime.now(_dt.UTC)  # ledger times
    for_completion: bool = False
    poll_first: float = 5.0
    poll_max: float = 20.0  # boto3's invalidation_completed waiter polls every 20 s


def _submit(
    backend: Backend, dist: str, paths: tuple[str, ...], reference: str, waiting: Waiting, log: Log
) -> str:
    """CreateInvalidation, retried with exponential backoff while CloudFront says "not now",
    up to ``waiting.timeout`` seconds; then the pending record stays for the next run."""
    deadline = waiting.clock() + waiting.timeout
    delay = waiting.first_delay
    while True:
        debug("CreateInvalidation on %s: %s, CallerReference %s", dist, plural(len(paths), "path"),
              reference)
        try:
            return backend.invalidate(dist, paths, reference)
        except AwsError as exc:
            if exc.code not in RETRY_LATER:
                raise
            if waiting.clock() + delay > deadline:
                raise InvalidationError(
                    f"CloudFront still refuses the invalidation on {dist} ({exc.code}) after "
                    f"waiting {waiting.timeout:.0f} s; the site and manifest are deployed, and "
                    "the invalidation stays pending: the next run submits it"
                ) from None
            log(f"{exc.code} on {dist}: retrying in {delay:.0f} s")
            waiting.sleep(delay)
            delay = min(delay * 2, waiting.max_delay)


def _acceptable(paths: tuple[str, ...]) -> bool:
    """Whether CloudFront can ever accept ``paths`` as one batch (what it cannot is refused
    for good, or waits forever for invalidations in progress to make room)."""
    wildcards = sum(p.endswith("*") for p in paths)
    return (
        all(valid_path(p) for p in paths)
        and wildcards <= MAX_WILDCARDS_IN_PROGRESS
        and len(paths) - wildcards <= MAX_PATHS_IN_PROGRESS
    )


def _replace_batch(
    journal: Journal, backend: Backend, dist: str, paths: tuple[str, ...], why: str, log: Log
) -> Journal:
    """``journal`` with a valid batch for ``dist`` covering what ``paths`` meant (each path
    repaired, or "/*"), written to the store before it is submitted: a crash then resubmits
    the same batch with the same CallerReference."""
    fixed = repair_batch(paths, MAX_WILDCARDS_IN_PROGRESS, MAX_PATHS_IN_PROGRESS)
    if fixed == paths or not _acceptable(fixed):
        fixed = ("/*",)
    journal = journal.replace(dist, fixed)
    backend.store.write(JOURNAL_NAME, journal.dumps())
    log(f"the pending invalidation of {plural(len(paths), 'path')} on {dist} cannot be accepted "
        f"({why}): replaced by {plural(len(fixed), 'valid path')} covering the same URLs "
        f"({', '.join(fixed[:3])}{', ...' if len(fixed) > 3 else ''}; CallerReference "
        f"{journal.reference_for(dist, fixed)})")
    return journal


def _invalidate(
    journal: Journal, backend: Backend, result: Result, log: Log, waiting: Waiting, check: Check
) -> dict[str, str]:
    """Submit each distribution's batch; a batch CloudFront refuses for good (or could never
    accept) is replaced by a valid one for the same URLs. Returns distribution -> id."""
    made: dict[str, str] = {}
    for dist, paths in journal.submissions():
        check()
        if not _acceptable(paths):
            journal = _replace_batch(journal, backend, dist, paths, "invalid paths or too many "
                                     "for one distribution", log)
            paths = dict(journal.submissions())[dist]
        for attempt in range(3):
            try:
                made[dist] = _submit(backend, dist, paths, journal.reference_for(dist, paths),
                                     waiting, log)
                result.paths += len(paths)
                result.submitted.append((dist, made[dist]))
                break
            except AwsError as exc:
                if exc.code == "NoSuchDistribution":
                    log(f"distribution {dist} no longer exists; its pending invalidation is dropped")
                    break
                if exc.code not in REFUSED_FOR_GOOD or paths == ("/*",):
                    raise  # "/*" is the last resort
                journal = _replace_batch(journal, backend, dist, paths, exc.code, log)
                paths = dict(journal.submissions())[dist]
        result.invalidations.update(made)
    return made


def finish(
    journal: Journal,
    backend: Backend,
    result: Result,
    log: Log = lambda _: None,
    waiting: Waiting | None = None,
    resumed: bool = False,
    check: Check = _no_check,
) -> None:
    """Steps 5-8 for a committed deploy; safe to repeat (idempotent deletes, the same
    CallerReference, a create-only ledger record). The deletes come first: every removed URL
    is invalidated after its object is gone. A distribution deleted since the record was
    written has nothing cached: skipped."""
    waiting = waiting or Waiting()
    if journal.deletes:
        check()
        debug("delete %s: %s", plural(len(journal.deletes), "object"),
              ", ".join(journal.deletes[:20]))
        backend.delete(list(journal.deletes))
        result.deleted += len(journal.deletes)
    check()
    made = _invalidate(journal, backend, result, log, waiting, check)
    if journal.record is not None:
        record = ledger.complete(journal.record, made, waiting.now(), resumed)
        if ledger.write(backend.store, record):
            log(f"recorded deploy {journal.deploy_id} in {ledger.record_name(record)}")
    backend.store.remove(JOURNAL_NAME)


def apply_plan(
    plan: Plan,
    backend: Backend,
    workers: int = WORKERS,
    log: Log = lambda _: None,
    waiting: Waiting | None = None,
    check: Check = _no_check,
    progress: Callable[[int], None] = lambda _: None,
) -> Result:
    """Carry out ``plan``; ``check`` is called before each write and raises to stop (the
    deploy lock's guard)."""
    result = Result()
    if plan.resume is not None:
        log(f"finishing interrupted deploy {plan.resume.deploy_id} first")
        finish(plan.resume, backend, result, log, waiting, resumed=True, check=check)
        result.resumed = plan.resume.deploy_id
    if not plan.has_work:
        return result

    if plan.invalidates:
        backend.check_distributions(plan.distribution_ids)
    _unchanged_since_scan(plan)
    waiting = waiting or Waiting()
    journal = Journal(
        deploy_id=plan.deploy_id,
        base_deploy_id=plan.previous_deploy_id,
        touched=tuple(sorted({u.key for u in plan.uploads} | set(plan.deletes))),
        deletes=plan.deletes,
        record=ledger.draft(plan, waiting.now()),
        **journal_invalidations(plan.invalidations),  # type: ignore[arg-type]
    )
    check()
    debug("write the pending record %s (%s)", JOURNAL_NAME, plural(len(journal.touched), "key"))
    backend.store.write(JOURNAL_NAME, journal.dumps())

    assets = [u for u in plan.uploads if not is_page(u.content_type)]
    pages = [u for u in plan.uploads if is_page(u.content_type)]
    log(f"uploading {plural(len(assets), 'asset')}, then {plural(len(pages), 'page')} (HTML/XML)")
    etags: dict[str, str] = {}
    _upload_all(plan, backend, assets, workers, check, progress, etags)
    _upload_all(plan, backend, pages, workers, check, progress, etags)
    result.uploaded = sum(1 for u in plan.uploads if not u.in_place)
    result.fixed_in_place = len(plan.uploads) - result.uploaded
    result.uploaded_bytes = plan.upload_bytes

    check()
    try:
        commit_manifest(backend.store, plan.committed_manifest(etags), plan.previous_version)
    except ConflictError:
        # A commit whose answer was lost is retried by botocore and refused (the version
        # moved: to ours). Committed if the stored manifest is this deploy's.
        stored, _ = load_manifest(backend.store, plan.target)
        if stored is None or stored.deploy_id != plan.deploy_id:
            raise
    log(f"committed manifest {plan.deploy_id}")
    if any(inv.must_wait for inv in plan.invalidations):
        log("CloudFront has too many invalidations in progress: waiting (--wait-timeout)")
    finish(journal, backend, result, log, waiting, check=check)
    return result


def _ids(pairs) -> str:
    return ", ".join(f"{dist}:{inv}" for dist, inv, *_ in pairs)


def wait_for_invalidations(
    backend: Backend,
    submitted: list[tuple[str, str]],
    waiting: Waiting,
    log: Log = lambda _: None,
) -> Wait:
    """Poll GetInvalidation until every invalidation of ``submitted`` (distribution, id) has
    completed, or ``waiting.timeout`` seconds have passed: at once, then after
    ``waiting.poll_first`` seconds, twice as long each time, at most ``waiting.poll_max``.
    Throttling is asked again at the next poll; any other AWS error raises, saying that the
    deploy itself is complete. A line for people after each poll that leaves some to wait for."""
    todo = list(dict.fromkeys(submitted))
    status = {inv: "" for inv in todo}
    start = waiting.clock()
    deadline = start + waiting.timeout
    delay = waiting.poll_first

    def seen() -> tuple[tuple[str, str, str], ...]:
        return tuple((dist, inv, status[(dist, inv)]) for dist, inv in todo)

    while True:
        for dist, inv in todo:
            if is_completed(status[(dist, inv)]):
                continue  # a completed invalidation never changes
            try:
                status[(dist, inv)] = backend.invalidation_status(dist, inv)
            except AwsError as exc:
                if exc.code not in THROTTLED:
                    raise AwsError(
                        f"the deploy is complete (invalidations submitted: {_ids(todo)}), but "
                        f"waiting for them failed: {exc}", code=exc.code
                    ) from None
                log(f"{exc.code} on GetInvalidation {inv}: asking again at the next poll")
        done = sum(is_completed(s) for s in status.values())
        elapsed = waiting.clock() - start
        if done == len(todo):
            if todo:
                log(f"CloudFront completed {plural(len(todo), 'invalidation')} "
                    f"({elapsed:.0f} s)")
            return Wait(seen(), True, elapsed)
        left = deadline - waiting.clock()
        if left <= 0:
            return Wait(seen(), False, elapsed)
        log(f"waiting for CloudFront: {done} of {plural(len(todo), 'invalidation')} completed "
            f"({elapsed:.0f} s)")
        waiting.sleep(min(delay, left))
        delay = min(delay * 2, waiting.poll_max)


def check_finished(result: Result) -> None:
    """Raise InvalidationNotFinished (exit 7) when the deploy waited for its invalidations
    and CloudFront had not completed them all within the timeout. By then everything else is
    done: the site, the manifest and the ledger record written, the invalidations submitted,
    the pending record removed; a rerun has nothing to do."""
    w = result.wait
    if w is None or w.completed:
        return
    left = [(d, i, s) for d, i, s in w.statuses if not is_completed(s)]
    raise InvalidationNotFinished(
        f"the deploy is complete (site, manifest and ledger written; invalidations submitted: "
        f"{_ids(w.statuses)}), but CloudFront had not finished invalidating after "
        f"{w.seconds:.0f} s (--wait-timeout): {len(w.statuses) - len(left)} of "
        f"{len(w.statuses)} completed; still "
        + ", ".join(f"{d}:{i} {s or 'unknown'}" for d, i, s in left)
    )


def plan_deploy(
    site: str,
    backend: Backend,
    options: Options,
    tool_version: str,
    accept: Callable[[Plan], Plan] | None = None,
    hash_progress: Callable[[int, int, int], None] | None = None,
    also: Callable[[], None] | None = None,
) -> Plan:
    """The plan ``deploy_site`` would apply now (``deploy --dry-run``), writing nothing:
    ``accept`` checks it, as there (a saved plan that no longer applies is refused). ``also``:
    a read done together with the target's state (see :func:`build_plan`)."""
    plan = build_plan(site, backend, options, tool_version, hash_progress, also=also)
    return accept(plan) if accept else plan


def deploy_site(
    site: str,
    backend: Backend,
    options: Options,
    tool_version: str,
    lock_timeout: float = 0.0,
    workers: int = WORKERS,
    waiting: Waiting | None = None,
    log: Log = lambda _: None,
    show: Callable[[Plan], None] | None = None,
    accept: Callable[[Plan], Plan] | None = None,
    progress: Callable[[Plan], Any] | None = None,
    hash_progress: Callable[[int, int, int], None] | None = None,
    lease: float = LEASE_SECONDS,
    margin: float = MARGIN_SECONDS,
) -> tuple[Plan, Result]:
    """Plan, then (when there is something to do) take the target's lock and apply.

    Every bad input (build, manifest, distribution ids) is refused while planning, before the
    lock is taken, so a refused deploy writes nothing at all; ``backend`` should be read-only
    until then (it is switched with ``allow_writes``). Under the lock the state is read again:
    if another deploy finished meanwhile, the plan is made again against it; if the lock was
    taken over from a deploy that lost it, the objects are checked against the manifest too
    (see :func:`suspects`). ``show`` is handed the plan that is applied, before it is;
    ``accept`` checks (and may adjust) every plan made, e.g. against a saved plan (it raises to
    refuse); ``progress(plan)`` gives a context manager that is called with the size of each
    file uploaded; ``hash_progress`` follows the hashing of the build, each time it is scanned
    (see :func:`manifests.scan.scan`). ``lease`` and ``margin``: the lock's (see
    :mod:`planner.lock`). With ``waiting.for_completion``, once the lock is released, it waits
    for CloudFront to complete every invalidation the run submitted (``result.wait``; see
    :func:`check_finished`)."""
    accept = accept or (lambda p: p)
    waiting = waiting or Waiting()
    lock: dict[str, bytes | None] = {}

    def read_lock() -> None:
        lock["data"] = backend.store.read(LOCK_NAME)[0]

    # The lock is read with the state (one round trip less after planning): a deploy with
    # nothing to do clears a stale one left by a deploy killed as it ended.
    plan = plan_deploy(site, backend, options, tool_version, accept, hash_progress, read_lock)
    if not (plan.has_work or plan.resume is not None):
        if show:
            show(plan)
        clear_stale(backend.store, lock["data"], log, backend.fence)
        result = Result()
    else:
        backend.check_distributions(plan.distribution_ids)
        with DeployLock(backend.store, "deploy", lease=lease, timeout=lock_timeout, log=log,
                        fence=backend.fence, margin=margin) as lock:
            backend.allow_writes()
            doubtful = suspects(backend, log) if lock.took_over else frozenset()
            if doubtful or not state_unchanged(backend, plan):
                if not doubtful:
                    log("the target changed while planning (another deploy finished): "
                        "planning again")
                lock.renew()  # a whole lease for planning again (renewed in a thread only after)
                plan = accept(build_plan(site, backend, options, tool_version, hash_progress,
                                         suspects=doubtful))
            if show:
                show(plan)
            lock.what = f"deploy {plan.deploy_id}"
            lock.keep_alive()  # renewed in a thread from here (hashing is done)
            if progress is None:
                result = apply_plan(plan, backend, workers, log, waiting, check=lock.check)
            else:
                with progress(plan) as bar:  # a context manager called once per uploaded file
                    result = apply_plan(
                        plan, backend, workers, log, waiting, check=lock.check, progress=bar
                    )
    if waiting.for_completion:
        # After the lock is released: the deploy is done, and nobody need wait for this one.
        result.wait = wait_for_invalidations(backend, result.submitted, waiting, log)
    return plan, result


def suspects(backend: Backend, log: Log = lambda _: None) -> frozenset[str]:
    """After taking the lock over from a deploy that lost it (its lease and margin past, so
    S3 refuses anything more from it): the keys whose objects are not what the manifest says
    (missing, another size or ETag, or not in it), which that deploy may have written before
    it stopped. Its pending record names what it meant to touch; this checks what it did."""
    manifest, _ = load_manifest(backend.store, backend.target.uri)
    if manifest is None:
        return frozenset()  # no manifest: the plan takes over what the target holds anyway
    drift = compare(manifest, backend.list_site().objects)
    if drift:
        log(f"the lock was taken over: {plural(len(drift), 'object')} "
            f"{'is' if len(drift) == 1 else 'are'} not as the manifest says "
            f"({', '.join(d.key for d in drift[:3])}{', ...' if len(drift) > 3 else ''}); "
            "they are written again (or deleted) and invalidated")
    return frozenset(d.key for d in drift)
