"""Fencing: a deploy that lost its lock cannot change the target, by S3's own rule.

A client-side check before each write cannot stop a writer that is frozen (SIGSTOP, a paused
VM, a long GC) between its check and its request: when it resumes, the request goes out.
So every write of a deploy that holds the lock is *signed to expire* when the lock's lease
ends: a SigV4 query-signed (pre-signed) request carries ``X-Amz-Date`` and ``X-Amz-Expires``,
and S3 refuses it (403, "Request has expired") once ``X-Amz-Date + X-Amz-Expires`` is past
by S3's clock. The lease is written in S3's clock too (see :class:`Fence.now`), so the only
clock that decides is S3's. A request S3 began to accept before the end may still finish
after it (S3 drops a body that stalls, with RequestTimeout): the lock carries a *margin* for
that, which a run taking the lock over waits out after the lease (see :mod:`planner.lock`).

Signatures are made as each request goes out (every botocore retry is signed again), so a
renewed lease simply lets later requests run longer: nothing signed is kept.

:class:`Fence` is plain Python; :func:`attach` hooks it into a botocore S3 client.
"""

from __future__ import annotations

import datetime as _dt
import email.utils
import math
import threading
import time
from typing import Any, Callable

from planner.errors import LockLost

# What changes the target: every S3 operation the tool uses to write or delete (the state
# store's included: a late manifest, pending record or ledger record is as bad as a late page).
FENCED = frozenset({
    "PutObject", "CopyObject", "DeleteObject", "DeleteObjects", "CreateMultipartUpload",
    "UploadPart", "UploadPartCopy", "CompleteMultipartUpload", "AbortMultipartUpload",
    "PutObjectAcl",
})
SIGNER_NAME = "planner-fenced-s3v4"  # our query signer's name among botocore's signers
MIN_VALIDITY = 1  # seconds: a signature valid for less is not worth sending


def _iso(t: float) -> str:
    return _dt.datetime.fromtimestamp(t, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def lease_over(deadline: float) -> LockLost:
    return LockLost(
        f"this deploy lost the target's lock: its lease ended at {_iso(deadline)} by S3's clock "
        "and S3 refuses its writes from then on (another run may hold the lock now); stopped, "
        "writing nothing more: plan again"
    )


class Fence:
    """S3's clock as seen from here, and the deadline of the leases held (each lock one).

    ``now()`` is a *lower bound* of S3's time: each response's ``Date`` (whole seconds,
    truncated) was true no later than the response arrived, so ``Date - monotonic()`` at
    arrival never overestimates S3's offset from this host's monotonic clock; the largest
    such offset seen is kept. Without any response yet, the wall clock stands in."""

    def __init__(
        self,
        monotonic: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.monotonic, self.wall = monotonic, wall
        self._offset: float | None = None
        self._last_date = ""  # the last Date header observed (a deploy sees each second often)
        self._deadlines: dict[str, float] = {}
        self._mutex = threading.Lock()

    # --- S3's clock ---------------------------------------------------------------------------

    def observe(self, date: str, arrived: float | None = None) -> None:
        """A response's ``Date`` header, received at monotonic time ``arrived`` (now)."""
        if date == self._last_date and arrived is None:
            return  # the same second arriving later gives a smaller offset: nothing to learn
        self._last_date = date
        try:
            server = email.utils.parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError, IndexError):
            return
        offset = server - (self.monotonic() if arrived is None else arrived)
        with self._mutex:
            if self._offset is None or offset > self._offset:
                self._offset = offset

    def now(self) -> float:
        """S3's time now, never later than it really is (epoch seconds)."""
        offset = self._offset
        return self.wall() if offset is None else self.monotonic() + offset

    # --- leases -------------------------------------------------------------------------------

    def hold(self, token: str, deadline: float) -> None:
        """Writes are authorised until ``deadline`` (S3 epoch seconds) for lock ``token``."""
        with self._mutex:
            self._deadlines[token] = deadline

    def drop(self, token: str) -> None:
        with self._mutex:
            self._deadlines.pop(token, None)

    @property
    def deadline(self) -> float | None:
        """The earliest lease end of the locks held; None when no lock is held (no fencing)."""
        with self._mutex:
            return min(self._deadlines.values()) if self._deadlines else None

    def validity(self) -> tuple[int, int] | None:
        """(X-Amz-Date as epoch seconds, X-Amz-Expires) for a write sent now: its signature
        expires at the lease's end, by S3's clock. None when no lock is held. Raises LockLost
        when the lease is over (or less than a second is left)."""
        deadline = self.deadline
        if deadline is None:
            return None
        signed = math.floor(self.now())
        expires = math.floor(deadline) - signed
        if expires < MIN_VALIDITY:
            raise lease_over(deadline)
        return signed, expires


# --- botocore ---------------------------------------------------------------------------------


def _register_signer() -> None:
    """Add our signer to botocore's table (once): S3's query (pre-signed) SigV4, with the
    signing time and expiry the fence gives, and the body left as the body."""
    import botocore.auth

    if SIGNER_NAME in botocore.auth.AUTH_TYPE_MAPS:
        return

    class FencedS3QueryAuth(botocore.auth.S3SigV4QueryAuth):
        def add_auth(self, request: Any) -> None:
            if self.credentials is None:
                from botocore.exceptions import NoCredentialsError

                raise NoCredentialsError()
            signed, self._expires = request.context["planner_validity"]
            request.context["timestamp"] = _dt.datetime.fromtimestamp(signed, _dt.UTC).strftime(
                botocore.auth.SIGV4_TIMESTAMP
            )
            # The query signer would move a body into the query string (it was written for
            # pre-signed URLs, which have none): keep an object's bytes where they are.
            body, request.data = request.data, b""
            self._modify_request_before_signing(request)
            request.data = body
            canonical = self.canonical_request(request)
            signature = self.signature(self.string_to_sign(request, canonical), request)
            self._inject_signature_to_request(request, signature)

    botocore.auth.AUTH_TYPE_MAPS[SIGNER_NAME] = FencedS3QueryAuth


def attach(client: Any, fence: Fence) -> None:
    """Hook ``fence`` into the S3 ``client``: every response's Date sets the fence's clock;
    while a lock is held, each write in FENCED is query-signed to expire at the lease's end,
    and S3's refusal of an expired one is LockLost."""
    _register_signer()
    events = client.meta.events

    def choose_signer(operation_name: str, context: dict, **_: Any) -> str | None:
        if operation_name not in FENCED:
            return None
        validity = fence.validity()  # raises LockLost: nothing is sent
        if validity is None:
            return None
        context["planner_validity"] = validity
        return SIGNER_NAME

    def before_call(model: Any, context: dict, **_: Any) -> None:
        # A checksum in a trailer needs a streaming (aws-chunked) signature; a pre-signed
        # request sends it as a header, computed over the body before it is sent.
        if model.name in FENCED and fence.deadline is not None:
            algorithm = (context.get("checksum") or {}).get("request_algorithm")
            if isinstance(algorithm, dict) and algorithm.get("in") == "trailer":
                algorithm["in"] = "header"

    def after_call(http_response: Any, parsed: dict, model: Any, context: dict, **_: Any) -> None:
        date = http_response.headers.get("Date") if http_response is not None else None
        if date:
            fence.observe(date)
        if "planner_validity" in context and http_response.status_code == 403:
            message = str((parsed or {}).get("Error", {}).get("Message", ""))
            if "expired" in message.lower():
                signed, expires = context["planner_validity"]
                raise lease_over(signed + expires)

    events.register_first("choose-signer.s3", choose_signer)
    events.register("before-call.s3", before_call)
    events.register("after-call.s3", after_call)
