"""What every backend offers the deploy (the Backend protocol) and what it says of a
distribution; constants shared by the backends."""

from __future__ import annotations

from typing import BinaryIO, Protocol, Sequence

from manifests import Store
from planner.backends.fence import Fence
from planner.backends.targets import Target
from planner.core.adopt import Head, Listing
from planner.core.origins import Distribution
from planner.core.pacing import AccountInvalidations, Usage
from planner.core.places import Place, Surroundings

MULTIPART_THRESHOLD = 16 * 1024 * 1024
INVALIDATION_LOG = "invalidations.jsonl"


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

    def invalidation_status(self, distribution_id: str, invalidation_id: str) -> str:
        """The invalidation's status as CloudFront gives it: ``InProgress`` or ``Completed``
        (compare without case: moto says ``COMPLETED``)."""

    def check_distributions(self, distribution_ids: Sequence[str]) -> None: ...

    def usage(self, month: str, distribution_ids: Sequence[str]) -> Usage: ...

    def invalidations(self, month: str) -> AccountInvalidations: ...

    def list_site(self) -> Listing: ...

    def heads(self, keys: Sequence[str], multipart: frozenset[str] = frozenset()) -> dict[str, Head] | None:
        """Headers of ``keys`` (and the part size of those in ``multipart``); keys gone are
        left out; None where objects have no headers (a local folder)."""

    def surroundings(self) -> Surroundings:
        """The places above the target and its state place that belong to the tool (a
        ``.planner/`` of their own), what the target's and the state place's own ``.planner/``
        say, and what the state place holds besides state (see :mod:`planner.core.places`)."""

    def owned(self, folders: Sequence[str]) -> list[Place]:
        """Those of ``folders`` (relative to the target: "docs/") that belong to the tool."""

    def allow_writes(self) -> None: ...

    def distributions(self, distribution_ids: Sequence[str]) -> dict[str, Distribution]: ...

    def resolve_distributions(self, names: Sequence[str]) -> tuple[str, ...]: ...


