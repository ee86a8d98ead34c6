"""The markers of a state kept apart (``--state``): before the first write of a command, the
state place gets ``.planner/state.json`` (naming its target) and the target
``.planner/target.json`` (a site whose state is elsewhere; nothing of the site in it), so
that every other target sees both places as the tool's (see :mod:`planner.core.places`)."""

from __future__ import annotations

import contextlib
import os
import threading
from typing import Any, Callable

from manifests import Store
from manifests.model import STATE_DIR
from manifests.stores import ANY
from planner.backends.targets import Target, ancestors
from planner.core.places import (
    SITE_MARK,
    STATE,
    STATE_MARK,
    TARGET,
    Place,
    Surroundings,
    mark_document,
)

SITE_MARK_NAME = SITE_MARK[len(STATE_DIR) + 1 :]  # the site marker's name in <target>/.planner/


class MarkingStore:
    """The store of a state place apart: its first write (the deploy lock, for every command
    that writes) marks the state place and the target first. Everything else is the store's."""

    def __init__(self, store: Store, site: Store, target: str) -> None:
        self._store = store
        self._site = site  # the target's own .planner/ (its default store), for its marker
        self._target = target
        self._marked = False
        self._marking = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def site(self) -> Store:
        """The target's own ``.planner/`` (where its state would be without ``--state``)."""
        return self._site

    def mark(self) -> None:
        """Write both markers where they are missing (or name another target)."""
        with self._marking:
            if self._marked:
                return
            doc = mark_document(STATE, self._target)
            if self._store.read(STATE_MARK)[0] != doc:
                self._store.write(STATE_MARK, doc)
            if self._site.read(SITE_MARK_NAME)[0] is None:
                self._site.write(SITE_MARK_NAME, mark_document(TARGET))
            self._marked = True

    def unmark(self) -> None:
        """Remove the state place's marker (its state has moved away)."""
        self._store.remove(STATE_MARK)
        folder = getattr(self._store, "dir", None)
        if folder is not None:  # a local state place: its .planner/ folder, left empty
            with contextlib.suppress(OSError):
                os.rmdir(os.path.join(folder, STATE_DIR))

    def write(self, name: str, data: bytes, expect: str | None = ANY) -> str:
        if not self._marked:
            self.mark()
        return self._store.write(name, data, expect)


def _state_objects() -> frozenset[str]:
    from manifests.stores import MANIFEST_NAME
    from planner.backends.base import INVALIDATION_LOG
    from planner.core.pacing import CACHE_NAME
    from planner.core.places import LEDGER_DIR
    from planner.lock import LOCK_NAME
    from planner.plan.journal import JOURNAL_NAME

    return frozenset({MANIFEST_NAME, JOURNAL_NAME, LOCK_NAME, CACHE_NAME, INVALIDATION_LOG,
                      f"{LEDGER_DIR}/", f"{STATE_DIR}/", ".lock"})


def is_state_object(name: str) -> bool:
    """A name at the top of a state place that its store writes (a folder ends with '/'):
    a state object, the ledger, the marker's folder, a local store's lock file or one of its
    writes under way (``.manifest.json.gz.XXXX.tmp``)."""
    known = _state_objects()
    if name in known:
        return True
    if name.startswith(".") and name.endswith(".tmp"):
        return any(name.startswith(f".{n}.") for n in known)
    return False


def read_surroundings(
    target: Target, state: Target | None,
    probe: Callable[[Target], Place | None], top: Callable[[Target], list[str]],
) -> Surroundings:
    """What lies around ``target`` and its state place (``state``, when apart): ``probe``
    tells what a place's own ``.planner/`` says (None: it has none); ``top`` lists the names
    at the top of a place (folders ending with '/')."""
    above_target = tuple(p for a in ancestors(target) if (p := probe(a)) is not None)
    itself = probe(target)
    if state is None:
        return Surroundings(above_target, itself)
    above_state = tuple(p for a in ancestors(state) if (p := probe(a)) is not None)
    names = top(state)
    there = probe(state) if f"{STATE_DIR}/" in names else None
    foreign = tuple(sorted(n for n in names if not is_state_object(n)))
    return Surroundings(above_target, itself, above_state, there, foreign)
