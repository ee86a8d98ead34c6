"""What a report reads: the account's invalidations (CloudFront, or the local log), and, with
a target, its ledger records and pending record. The only part of ``report`` that does I/O."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from planner import ledger
from planner.backends import make_backend
from planner.backends.aws import Clients, aws_errors
from planner.backends.cloudfront import read_invalidations
from planner.backends.targets import parse_state, parse_target
from planner.core.pacing import CACHE_NAME, AccountInvalidations, cache_codec
from planner.errors import AwsError
from planner.plan.build import read_journal

ACCESS_DENIED = ("AccessDenied", "AccessDeniedException")


@dataclass
class Sources:
    account: AccountInvalidations | None
    target: str | None = None
    records: list[dict] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    pending: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def user_cache_path() -> str:
    """Where the count cache lives when no target (and so no state store) is given."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "invalidation-planner", CACHE_NAME)


def _file_cache(path: str):
    def read() -> bytes | None:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError:
            return None

    def write(data: bytes) -> None:
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except OSError:
            pass  # only a cache

    return cache_codec(read, write)


def read_sources(
    target_text: str | None, month: str, clients: Clients, state: str | None = None
) -> Sources:
    """Everything ``build_report`` needs for ``month``; writes only the count cache."""

    if target_text is None:
        load, save = _file_cache(user_cache_path())
        with aws_errors("reading the month's invalidations"):
            return Sources(read_invalidations(clients.cloudfront, month, load, save))


    parsed = parse_target(target_text)
    backend = make_backend(parsed, clients, state=parse_state(state, parsed) if state else None)
    sources = Sources(None, backend.target.uri)
    try:
        sources.account = backend.invalidations(month)
    except AwsError as exc:
        if exc.code not in ACCESS_DENIED:
            raise
        sources.notes.append(
            "no permission to list invalidations (AccessDenied): no account view; the "
            "projection is the tool's"
        )
    sources.records, sources.unreadable = ledger.read_month(backend.store, month)
    journal = read_journal(backend)
    if journal is not None:  # a deploy that did not finish: the next one finishes it
        sources.pending = {
            "deploy_id": journal.deploy_id,
            "started_at": journal.record["started_at"] if journal.record else None,
            "paths": journal.path_count,
        }
    return sources
