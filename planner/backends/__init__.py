"""Where a deploy writes: the site objects, the state store and the CDN, per kind of target.

``LocalBackend`` (:mod:`.local`) mirrors the site into a folder and keeps an invalidation log
there, so the whole deploy runs without an AWS account. ``S3Backend`` (:mod:`.s3`) writes to a
bucket and submits CloudFront invalidations (every CloudFront call is in :mod:`.cloudfront`);
it is handed its clients (:mod:`.aws`, the one place that creates them) and never creates one.
Writes made under the deploy lock are fenced (:mod:`.fence`). Targets are parsed in
:mod:`.targets`.
"""

from __future__ import annotations

from planner.backends import cloudfront
from planner.backends.aws import Clients, aws_errors
from planner.backends.base import (
    INVALIDATION_LOG,
    MULTIPART_THRESHOLD,
    Backend,
    Distribution,
)
from planner.backends.local import LocalBackend
from planner.backends.s3 import HEAD_WORKERS, S3Backend
from planner.backends.targets import LocalTarget, Target
from planner.core.pacing import Usage

__all__ = [
    "HEAD_WORKERS",
    "INVALIDATION_LOG",
    "MULTIPART_THRESHOLD",
    "Backend",
    "Distribution",
    "LocalBackend",
    "S3Backend",
    "account_usage",
    "make_backend",
]


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



def account_usage(clients: Clients, month: str, distribution_ids: tuple[str, ...]) -> Usage:
    """The account's paths of ``month`` and those in progress on ``distribution_ids``, from
    CloudFront alone (no target, so no count cache: GetInvalidation once per invalidation)."""
    with aws_errors("ListInvalidations"):
        return cloudfront.read_usage(clients.cloudfront, month, distribution_ids, dict,
                                     lambda _cache: None)
