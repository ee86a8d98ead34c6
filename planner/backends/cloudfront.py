"""Every CloudFront call the tool makes, on a client it is handed: the account's distributions
(ListDistributions), one distribution's configuration (GetDistribution), the month's
invalidations and their path counts (ListInvalidations, GetInvalidation), CreateInvalidation,
and one invalidation's status (GetInvalidation, for ``deploy --wait``). Errors are
botocore's, for the caller to turn into messages."""

from __future__ import annotations

import datetime as dt
from typing import Any, Callable, Sequence

from planner.core.pacing import (
    AccountInvalidations,
    InvalidationCount,
    Usage,
    is_completed,
    month_of,
    month_start,
    pruned,
    usage_from,
    valid_counts,
)


def get_distribution(cloudfront: Any, distribution_id: str) -> dict:
    """GetDistribution's ``Distribution`` (its id, domain name and configuration)."""
    return cloudfront.get_distribution(Id=distribution_id)["Distribution"]


def create_invalidation(
    cloudfront: Any, distribution_id: str, paths: Sequence[str], reference: str
) -> dict:
    """CreateInvalidation of ``paths`` with CallerReference ``reference``; its ``Invalidation``."""
    batch = {"Paths": {"Quantity": len(paths), "Items": list(paths)}, "CallerReference": reference}
    return cloudfront.create_invalidation(
        DistributionId=distribution_id, InvalidationBatch=batch
    )["Invalidation"]


def get_invalidation(cloudfront: Any, distribution_id: str, invalidation_id: str) -> dict:
    """GetInvalidation's ``Invalidation`` (its Id, Status, CreateTime and InvalidationBatch).
    Status is ``InProgress`` or ``Completed`` on AWS (moto says ``COMPLETED``)."""
    return cloudfront.get_invalidation(DistributionId=distribution_id, Id=invalidation_id)[
        "Invalidation"
    ]


def read_usage(
    cloudfront: Any,
    month: str,
    targets: tuple[str, ...],
    load_cache: Callable[[], dict],
    save_cache: Callable[[dict], None],
) -> Usage:
    """Paths submitted in ``month`` on every distribution of the account (CloudFront's own
    view, so other tools and people count), and paths in progress on ``targets``.

    Raises botocore's ClientError (AccessDenied...) for the caller to fall back.
    """
    return usage_from(read_invalidations(cloudfront, month, load_cache, save_cache), targets)


def read_invalidations(
    cloudfront: Any,
    month: str,
    load_cache: Callable[[], dict],
    save_cache: Callable[[dict], None],
) -> AccountInvalidations:
    """Every distribution of the account and its invalidations of ``month`` (or in progress),
    with their path counts: GetInvalidation once per completed invalidation, then the cache."""
    cache = dict(load_cache())
    changed = False
    dists: list[str] = []
    items: list[InvalidationCount] = []
    for dist in (item["Id"] for item in distribution_summaries(cloudfront)):
        dists.append(dist)
        for item, created in _invalidations(cloudfront, dist, month):
            this_month = month_of(created) == month
            key = f"{dist}/{item['Id']}"
            completed = is_completed(str(item.get("Status", "")))
            if completed and not this_month:
                continue  # another month's, done: neither spent now nor in progress
            counts = cache.get(key)
            if not completed or not valid_counts(counts):
                paths = get_invalidation(cloudfront, dist, item["Id"])["InvalidationBatch"][
                    "Paths"
                ].get("Items", [])
                wild = sum(1 for p in paths if p.endswith("*"))
                counts = [len(paths), wild, month_of(created)]
                if completed:
                    cache[key] = counts
                    changed = True
            items.append(
                InvalidationCount(dist, item["Id"], created, counts[0], counts[1], completed)
            )
    if changed:
        save_cache(pruned(cache, month))
    return AccountInvalidations(month, tuple(dists), tuple(items))


def distribution_summaries(cloudfront: Any):
    """Every distribution of the account (ListDistributions' items: Id, DomainName,
    Aliases...), page by page."""
    marker = None
    while True:
        args = {"Marker": marker} if marker else {}
        page = cloudfront.list_distributions(**args)["DistributionList"]
        yield from page.get("Items", []) or []
        if not page.get("IsTruncated"):
            return
        marker = page.get("NextMarker")


# An invalidation in progress for longer than this before the month began is assumed
# completed, so listing may stop there (they complete within minutes).
_IN_PROGRESS_MARGIN = dt.timedelta(days=1)


def _created(item: dict) -> dt.datetime:
    created = item["CreateTime"]
    if isinstance(created, str):
        created = dt.datetime.fromisoformat(created.replace("Z", "+00:00"))
    if created.tzinfo is None:
        created = created.replace(tzinfo=dt.timezone.utc)
    return created.astimezone(dt.timezone.utc)


def _invalidations(cloudfront: Any, dist: str, month: str):
    """(item, creation time in UTC) for the invalidations of ``dist`` that may matter for
    ``month``. AWS lists newest first: once a whole page is older than the month (less a
    margin for ones still in progress), the rest is too, and listing stops. moto lists oldest
    first; a page in that order never stops the listing early, so every page is read."""
    stop_before = month_start(month) - _IN_PROGRESS_MARGIN
    marker = None
    while True:
        args: dict[str, Any] = {"DistributionId": dist, "MaxItems": "100"}
        if marker:
            args["Marker"] = marker
        page = cloudfront.list_invalidations(**args)["InvalidationList"]
        times = []
        for item in page.get("Items", []) or []:
            created = _created(item)
            times.append(created)
            yield item, created
        if not page.get("IsTruncated"):
            return
        if len(times) >= 2 and times[0] > times[-1] and times[-1] < stop_before:
            return  # newest first, and this page already reached before the month
        marker = page.get("NextMarker")


