"""``planner move-state``: the state moves whole, a move stopped at any write is finished by
running it again, and nothing is moved over another target's or another deploy's state."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from manifests import LocalStore, Manifest, load_manifest
from manifests.errors import WrongTarget
from planner.errors import PlannerError
from planner.lock import LOCK_NAME
from planner.movestate import move_state, state_names

SAMPLE = Path(__file__).resolve().parent.parent / "examples" / "sample-site"


class Crash(Exception):
    pass


class CrashingStore:
    """A store that raises at its ``at``-th write or remove (the lock's included)."""

    def __init__(self, inner: LocalStore, steps: list[int], at: int) -> None:
        self.inner, self.steps, self.at = inner, steps, at
        self.location, self.dir = inner.location, inner.dir

    def _step(self) -> None:
        self.steps[0] += 1
        if self.steps[0] == self.at:
            raise Crash(f"step {self.at}")

    def read(self, name):
        return self.inner.read(name)

    def list(self, prefix):
        return self.inner.list(prefix)

    def write(self, name, data, expect=None):
        self._step()
        return self.inner.write(name, data, expect)

    def remove(self, name, expect=None):
        self._step()
        return self.inner.remove(name, expect)


def deployed(tmp_path: Path) -> tuple[str, LocalStore, dict[str, bytes]]:
    """A local target deployed twice (manifest, ledger, invalidation log); its state."""
    from planner.apply import deploy_site
    from planner.backends import LocalBackend
    from planner.backends.targets import LocalTarget
    from planner.plan.compute import Options

    site = tmp_path / "public"
    shutil.copytree(SAMPLE, site)
    backend = LocalBackend(LocalTarget(str(tmp_path / "out")))
    deploy_site(str(site), backend, Options(), "test")
    (site / "about" / "index.html").write_text("<h1>v2</h1>")
    deploy_site(str(site), backend, Options(), "test")
    state = {n: backend.store.read(n)[0] for n in state_names(backend.store)}
    assert {"manifest.json.gz", "invalidations.jsonl"} <= set(state)
    assert any(n.startswith("ledger/") for n in state)
    return backend.target.uri, backend.store, state


def test_move_state_moves_every_state_object_and_leaves_none(tmp_path):
    target, old, state = deployed(tmp_path)
    new = LocalStore(str(tmp_path / "state"), folder="")
    assert sorted(move_state(old, new, target)) == sorted(state)
    assert {n: new.read(n)[0] for n in state_names(new)} == state
    assert state_names(old) == [] and old.read(LOCK_NAME)[0] is None
    assert new.read(LOCK_NAME)[0] is None
    with pytest.raises(PlannerError, match="holds no state of .*: nothing to move"):
        move_state(old, new, target)


@pytest.mark.parametrize("at", range(1, 16))  # a move of this state makes 14 writes
def test_a_move_stopped_at_any_write_is_finished_by_running_it_again(tmp_path, at):
    target, old, state = deployed(tmp_path)
    new = LocalStore(str(tmp_path / "state"), folder="")
    steps = [0]
    try:
        move_state(CrashingStore(old, steps, at), CrashingStore(new, steps, at), target)
    except Crash:
        pass
    else:
            assert steps[0] < at  # the move had fewer writes than ``at``: it simply finished
    # The stopped run's locks stay (their lease has not run out, and their process, this one,
    # still runs): removed by hand, as `planner unlock` would.
    for store in (old, new):
        store.remove(LOCK_NAME)
    if state_names(old):
        move_state(old, new, target)
    assert {n: new.read(n)[0] for n in state_names(new)} == state
    assert state_names(old) == []
    manifest, _ = load_manifest(new, target)
    assert manifest == Manifest.loads(state["manifest.json.gz"])


def test_nothing_is_moved_over_another_deploys_or_another_targets_manifest(tmp_path):
    target, old, state = deployed(tmp_path)
    new = LocalStore(str(tmp_path / "state"), folder="")
    other = Manifest.loads(state["manifest.json.gz"]).replace(deploy_id="0" * 20)
    new.write("manifest.json.gz", other.dumps())
    with pytest.raises(PlannerError, match="already holds the manifest of deploy 0{20}"):
        move_state(old, new, target)
    new.write("manifest.json.gz", other.replace(target="file:///elsewhere").dumps())
    with pytest.raises(WrongTarget):
        move_state(old, new, target)
    assert {n: old.read(n)[0] for n in state_names(old)} == state  # nothing moved
