"""Compare two manifests. Pure: no I/O."""

from __future__ import annotations

from dataclasses import dataclass

from .model import Manifest


@dataclass(frozen=True)
class Diff:
    """Keys of the new build sorted into four disjoint, sorted groups.

    ``modified`` holds keys whose content or headers changed; ``header_only`` is the subset
    of ``modified`` whose content is the same (only Content-Type or Cache-Control changed).
    """

    added: tuple[str, ...]
    modified: tuple[str, ...]
    deleted: tuple[str, ...]
    unchanged: tuple[str, ...]
    header_only: frozenset[str] = frozenset()

    @property
    def changed(self) -> bool:
        return bool(self.added or self.modified or self.deleted)


def diff(old: Manifest | None, new: Manifest) -> Diff:
    """Return what turns ``old`` into ``new``. ``old=None`` is a first deploy: all added."""
    if old is None:
        return Diff(added=new.keys, modified=(), deleted=(), unchanged=())
    added, modified, unchanged = [], [], []
    header_only = set()
    old_entries = old.entries
    for key in new.keys:
        before = old_entries.get(key)
        if before is None:
            added.append(key)
            continue
        after = new.entries[key]
        if before == after:
            unchanged.append(key)
        else:
            modified.append(key)
            if before.same_content(after):
                header_only.add(key)
    new_entries = new.entries
    deleted = tuple(k for k in old.keys if k not in new_entries)
    return Diff(tuple(added), tuple(modified), deleted, tuple(unchanged), frozenset(header_only))
