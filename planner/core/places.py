"""Where the tool keeps something of a target, as a listing sees it, and the guards between
targets and state places. Pure.

Every place the tool writes for a target holds a ``.planner/`` folder, which no build ever
ships (the scan leaves every ``.planner`` folder out) and no manifest key may start with:

- a target whose state lives in it: ``<target>/.planner/`` holds the manifest, ledger, lock...;
- a target whose state is kept apart (``--state``): ``<target>/.planner/target.json``, a small
  marker (no key, hash or header of the site in it);
- a state place apart: ``<state>/.planner/state.json``, naming the target whose state it is
  (the state objects themselves lie beside it: ``<state>/manifest.json.gz``...).

So one rule finds them all, in a listing or by looking for one ``.planner/`` prefix: a folder
holding ``.planner/`` belongs to the tool. A state place apart written before its marker
existed is still known by what its store wrote: ``manifest.json.gz`` with ledger records
beside it.

A target may neither lie inside such a place nor hold one; a state place may lie neither in
a target nor in another state place, and holds nothing but state; a deploy never writes or
deletes under a folder that holds one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Iterable, Mapping, NamedTuple, Sequence

from manifests.model import STATE_DIR
from manifests.stores import MANIFEST_NAME
from planner.errors import BadTarget

STATE_MARK = f"{STATE_DIR}/state.json"  # in a state place apart: whose state it holds
SITE_MARK = f"{STATE_DIR}/target.json"  # in a target whose state is apart: a site
LEDGER_DIR = "ledger"  # where a store keeps its ledger records (planner.ledger)

TARGET, STATE = "target", "state"  # the kinds of Place

# A ledger record, as planner.ledger names them: ledger/YYYY-MM/YYYYMMDDTHHMMSSZ-<id>[...].json
_RECORD = re.compile(rf"(?:^|/)({LEDGER_DIR}/\d{{4}}-\d{{2}}/\d{{8}}T\d{{6}}Z-[^/]+\.json)$")


class Place(NamedTuple):
    """A place that belongs to the tool: a target (its site, its state folder) or the state
    place of a target."""

    where: str  # a URI (s3://b/p, file:///dir), or a prefix relative to a target ("docs/")
    kind: str  # TARGET or STATE
    of: str = ""  # a state place: the target whose state it holds, when known

    def describe(self) -> str:
        if self.kind == TARGET:
            return f"the target {self.where}"
        return f"the state place {self.where}" + (f" of {self.of}" if self.of else "")


def kind_under(first: str) -> str:
    """The kind of a place, from the first name its ``.planner/`` folder lists (relative to
    the place): a state place's holds only its marker."""
    return STATE if first == STATE_MARK else TARGET


def mark_document(kind: str, target: str = "") -> bytes:
    """A marker's bytes: a state place's names its target (it is as private as the state);
    a site's says only that its state is kept elsewhere (it may be served)."""
    doc: dict[str, str] = {"planner": kind}
    if kind == STATE:
        doc["target"] = target
    else:
        doc["state"] = "kept in a place of its own (--state)"
    return json.dumps(doc, sort_keys=True).encode() + b"\n"


def marked_target(data: bytes | None) -> str:
    """The target a state place's marker names ("" when unreadable)."""
    try:
        doc = json.loads(data or b"")
        return str(doc.get("target") or "") if isinstance(doc, dict) else ""
    except ValueError:
        return ""


def is_record(name: str) -> bool:
    """A ledger record's name (relative to its store)."""
    found = _RECORD.search(name)
    return found is not None and found.start(1) == 0


def split_keys(raw: Iterable[str]) -> tuple[dict[str, str], str | None]:
    """(prefix -> kind of every folder below the root that belongs to the tool, outermost
    only; the kind of the root itself when it is a state place (STATE), else None). ``raw``:
    every key under the root, relative to it; a local listing may give a ``.planner/``
    folder as ``<folder>/.planner/`` (and its marker) instead of its files."""
    keys = set(raw)
    marker = f"/{STATE_DIR}/"
    found: dict[str, str] = {}
    records: set[str] = set()  # folders holding ledger records
    own = f"{STATE_DIR}/"
    for key in keys:
        if marker in key:
            prefix = key[: key.index(marker) + 1]
            if found.get(prefix) != STATE:
                found[prefix] = STATE if key == prefix + STATE_MARK else TARGET
        elif not key.startswith(own) and (record := _RECORD.search(key)) is not None:
            records.add(key[: record.start(1)])
    # A state place written before its marker: its manifest beside its ledger records.
    for prefix in records:
        if prefix and prefix + MANIFEST_NAME in keys and prefix not in found:
            found[prefix] = STATE
    outer: dict[str, str] = {}
    for prefix in sorted(found):
        if not any(prefix.startswith(o) for o in outer):
            outer[prefix] = found[prefix]
    itself = STATE if STATE_MARK in keys or ("" in records and MANIFEST_NAME in keys) else None
    return outer, itself


def folders_of(keys: Iterable[str]) -> list[str]:
    """Every folder above each key, below the root ("docs/", "docs/api/"), sorted."""
    out: set[str] = set()
    for key in keys:
        parts = key.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            out.add("".join(p + "/" for p in parts[:depth]))
    return sorted(out)


@dataclass(frozen=True)
class Surroundings:
    """What lies around a target and its state place: the places above each that belong to
    the tool (outermost first), what each one's own ``.planner/`` says, and the names at the
    top of the state place that are not state objects."""

    above_target: tuple[Place, ...] = ()
    target_itself: Place | None = None  # the target's own .planner/ (a state place's marker?)
    above_state: tuple[Place, ...] = ()
    state_itself: Place | None = None
    state_foreign: tuple[str, ...] = ()  # at the top of the state place, besides its state


def check_places(target: str, state: str | None, around: Surroundings) -> None:
    """Refuse (BadTarget, one line, before anything is written) a target that lies inside
    another target or a state place, or is a state place; a state place (``state``, when
    apart) that lies inside a target or another state place, is a target, holds another
    target's state, or holds anything but state. Pure."""
    if around.above_target:
        outer = around.above_target[-1]
        if outer.kind == TARGET:
            raise BadTarget(
                f"{target} lies inside the target {outer.where} ({outer.where}/{STATE_DIR}/ "
                "marks it), whose deploys own every key under it; deploy to a place outside it"
            )
        raise BadTarget(
            f"{target} lies inside {outer.describe()}, which holds a manifest, ledger and "
            "lock; deploy to a place outside it"
        )
    itself = around.target_itself
    if itself is not None and itself.kind == STATE:
        raise BadTarget(
            f"{target} is the state place of {itself.of or 'another target'} (its "
            f"{STATE_MARK} says so); its manifest, ledger and lock would be taken for site "
            "objects: deploy to a place of its own"
        )
    if state is None:
        return
    if around.above_state:
        outer = around.above_state[-1]
        if outer.kind == TARGET:
            raise BadTarget(
                f"--state {state} lies inside the target {outer.where}, whose deploys own "
                "every key under it; keep the state in a place apart from every site"
            )
        raise BadTarget(
            f"--state {state} lies inside {outer.describe()}; choose a place of its own"
        )
    there = around.state_itself
    if there is not None and there.kind == TARGET:
        raise BadTarget(
            f"--state {state} is the target {there.where} ({there.where}/{STATE_DIR}/ marks "
            "it): its site and state are not this target's; choose a place of its own"
        )
    if there is not None and there.of and there.of != target:
        raise BadTarget(
            f"--state {state} holds the state of {there.of}, not of {target}; choose a place "
            "of its own"
        )
    if around.state_foreign:
        raise BadTarget(
            f"--state {state} holds {around.state_foreign[0]}, which is not state of "
            f"{target}: a state place holds nothing else; choose an empty place"
        )


def check_nested(target: str, nested: Mapping[str, str], itself: str | None) -> None:
    """A target may neither be a state place nor hold another target or state place (its
    deploys would adopt, overwrite or delete them as site objects). Pure."""
    if itself == STATE:
        raise BadTarget(
            f"{target} holds the state objects of another target (manifest.json.gz and its "
            "ledger): it is a state place; deploy to a place of its own"
        )
    for prefix, kind in sorted(nested.items()):
        if kind == TARGET:
            raise BadTarget(
                f"{target} holds another target at {prefix} (marked by {prefix}{STATE_DIR}/); "
                "a target may not contain another one: deploy the two to places apart "
                "(sibling prefixes, served by origin paths or behaviors)"
            )
        raise BadTarget(
            f"{target} holds the state place of another target at {prefix} (its manifest, "
            "ledger and lock); a target may not contain another one's state: keep the state "
            "apart from every site"
        )


def check_touched(
    target: str, writes: Sequence[str], deletes: Sequence[str], owned: Sequence[Place]
) -> None:
    """Refuse a deploy that would write or delete a key under a folder that belongs to
    another target or state place (``owned``: those folders, relative prefixes). Pure."""
    if not owned:
        return
    for verb, keys in (("write", writes), ("delete", deletes)):
        for key in sorted(keys):
            place = next((p for p in owned if key.startswith(p.where)), None)
            if place is None:
                continue
            what = "another target" if place.kind == TARGET else "the state of another target"
            raise BadTarget(
                f"{target} holds {what} at {place.where} (marked by {place.where}"
                f"{STATE_DIR}/), and this deploy would {verb} {key} there; a target may not "
                "contain another one: deploy the two to places apart"
            )
