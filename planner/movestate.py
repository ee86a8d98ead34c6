"""``planner move-state``: move a target's state (manifest, pending record, ledger, count
cache, the local invalidation log) from one place to another, e.g. from ``<target>/.planner/``,
which a distribution serving the bucket root serves too, to a bucket of its own.

Under both places' deploy locks, so no deploy runs meanwhile: every state object is copied,
the manifest last; then removed from the old place, the manifest first. A move that stops
half-way is finished by running it again: while the old place still has its manifest, it is
copied over again; once the manifest is gone from there, only what the new place lacks is.
"""

from __future__ import annotations

from typing import Callable

from manifests import Store, load_manifest
from manifests.stores import MANIFEST_NAME
from planner.backends import INVALIDATION_LOG
from planner.backends.fence import Fence
from planner.core.pacing import CACHE_NAME
from planner.errors import PlannerError
from planner.ledger import LEDGER_DIR
from planner.lock import LOCK_NAME, DeployLock
from planner.plan.journal import JOURNAL_NAME


def state_names(store: Store) -> list[str]:
    """The state objects ``store`` holds, the manifest last (the lock is not state)."""
    names = store.list(f"{LEDGER_DIR}/")
    names += [n for n in (CACHE_NAME, INVALIDATION_LOG, JOURNAL_NAME, MANIFEST_NAME)
              if store.read(n)[0] is not None]
    return [n for n in names if n != LOCK_NAME]


def move_state(
    old: Store, new: Store, target: str, log: Callable[[str], None] = lambda _: None,
    fence: Fence | None = None,
) -> list[str]:
    """Move ``target``'s state from ``old`` to ``new``; the names moved. Refused (nothing
    written) when ``old`` holds nothing, or ``new`` holds the state of another target or of
    another deploy of this one."""
    if old.location == new.location:
        raise PlannerError(f"the state of {target} is already in {new.location}")
    with DeployLock(old, "move-state", fence=fence) as here, DeployLock(
        new, "move-state", fence=fence
    ) as there:
        here.keep_alive()
        there.keep_alive()
        names = state_names(old)
        if not names:
            raise PlannerError(f"{old.location} holds no state of {target}: nothing to move")
        moving, _ = load_manifest(old, target)
        present, _ = load_manifest(new, target)  # another target's manifest is refused here
        if moving is not None and present is not None and present.deploy_id != moving.deploy_id:
            raise PlannerError(
                f"{new.location} already holds the manifest of deploy {present.deploy_id} of "
                f"{target}, not {moving.deploy_id}; move nothing over it"
            )
        # Old manifest gone: a move that stopped while removing; the new place is current.
        missing_only = moving is None
        for name in names:
            if missing_only and new.read(name)[0] is not None:
                continue
            here.check()
            there.check()
            data, _ = old.read(name)
            if data is not None:
                new.write(name, data)
        for name in [MANIFEST_NAME, *(n for n in names if n != MANIFEST_NAME)]:
            if name in names:
                here.check()
                old.remove(name)
        unmark = getattr(old, "unmark", None)  # a state place apart: no longer one
        if unmark is not None:
            here.check()
            unmark()
        log(f"moved {len(names)} state objects of {target} from {old.location} to {new.location}")
        return names
