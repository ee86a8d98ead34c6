"""A deploy interrupted at any step converges when run again (local backend).

A wrapper backend raises at its N-th write (upload, delete, invalidation or state write),
the way a killed process would stop; the rerun must leave the target equal to the build, the
manifest equal to the target, no pending record, and every changed URL invalidated.
"""

from __future__ import annotations

import os
import shutil

import pytest

from manifests import Manifest
from planner.apply import apply_plan
from planner.backends import LocalBackend
from planner.plan import JOURNAL_NAME, Options, build_plan
from planner.targets import LocalTarget


class Crash(Exception):
    pass


class Counter:
    def __init__(self, fail_at: int | None) -> None:
        self.n = 0
        self.fail_at = fail_at

    def step(self) -> None:
        if self.n == self.fail_at:
            raise Crash(f"crash at step {self.n}")
        self.n += 1


class FailingStore:
    def __init__(self, inner, counter: Counter) -> None:
        self.inner, self.counter, self.location = inner, counter, inner.location

    def read(self, name):
        return self.inner.read(name)

    def write(self, name, data, expect=None):
        self.counter.step()
        return self.inner.write(name, data, expect)

    def remove(self, name):
        self.counter.step()
        return self.inner.remove(name)


class FailingBackend:
    def __init__(self, inner: LocalBackend, counter: Counter) -> None:
        self.inner, self.counter = inner, counter
        self.target = inner.target
        self.default_distributions = inner.default_distributions
        self.store = FailingStore(inner.store, counter)

    def put_bytes(self, *a):
        self.counter.step()
        return self.inner.put_bytes(*a)

    def put_file(self, *a):
        self.counter.step()
        return self.inner.put_file(*a)

    def delete(self, keys):
        self.counter.step()
        return self.inner.delete(keys)

    def invalidate(self, *a):
        self.counter.step()
        return self.inner.invalidate(*a)

    def check_distributions(self, ids):  # a read: not a step that can leave anything behind
        return self.inner.check_distributions(ids)

    def usage(self, month, ids):  # a read too
        return self.inner.usage(month, ids)


def write_site(root, files: dict[str, str]) -> None:
    shutil.rmtree(root, ignore_errors=True)
    for key, text in files.items():
        path = os.path.join(root, *key.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)


V1 = {
    "index.html": "home",
    "about/index.html": "about v1",
    "css/a.css": "a{}",
    "js/x.js": "x()",
    "img/logo.svg": "<svg/>",
}
V2 = dict(V1, **{"about/index.html": "about v2", "css/a.css": "a{color:red}", "new.html": "n"})
del V2["js/x.js"]
CHANGED_V1_V2 = {"/about/", "/about/index.html", "/css/a.css", "/js/x.js"}


def deploy(site, target, backend=None):
    backend = backend or LocalBackend(LocalTarget(target))
    plan = build_plan(site, backend, Options(), "test")
    return apply_plan(plan, backend, workers=2)


def target_files(target) -> dict[str, str]:
    out = {}
    for dirpath, dirnames, filenames in os.walk(target):
        dirnames[:] = [d for d in dirnames if d != ".planner"]
        for name in filenames:
            path = os.path.join(dirpath, name)
            key = os.path.relpath(path, target).replace(os.sep, "/")
            with open(path, encoding="utf-8") as f:
                out[key] = f.read()
    return out


def invalidated(target) -> set[str]:
    log = LocalBackend(LocalTarget(target)).invalidation_log()
    return {p for record in log for p in record["paths"]}


def all_covered(urls, paths) -> bool:
    from planner.minimizer import covers

    return all(any(covers(p, u) for p in paths) for u in urls)


def assert_converged(target, files: dict[str, str]) -> None:
    assert target_files(target) == files
    store = LocalBackend(LocalTarget(target)).store
    data, _ = store.read("manifest.json.gz")
    assert set(Manifest.loads(data).entries) == set(files)
    assert store.read(JOURNAL_NAME) == (None, None)


def steps_of_full_deploy(tmp_path) -> int:
    site, target = tmp_path / "count-site", tmp_path / "count-target"
    write_site(site, V1)
    deploy(str(site), str(target))
    write_site(site, V2)
    counter = Counter(None)
    deploy(str(site), str(target), FailingBackend(LocalBackend(LocalTarget(str(target))), counter))
    return counter.n


def v1_then_v2_crashing_at(tmp_path, k: int):
    """Deploy V1, then V2 with a crash at write number ``k``; returns (site, target)."""
    site, target = tmp_path / f"site{k}", tmp_path / f"target{k}"
    write_site(site, V1)
    deploy(str(site), str(target))
    write_site(site, V2)
    with pytest.raises(Crash):
        deploy(str(site), str(target), FailingBackend(LocalBackend(LocalTarget(str(target))), Counter(k)))
    return site, target


def test_interrupted_deploy_converges_at_every_step(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    assert total >= 7  # journal, 3 uploads, commit, invalidation, delete, journal removal
    for k in range(total):
        site, target = v1_then_v2_crashing_at(tmp_path, k)
        deploy(str(site), str(target))
        assert_converged(str(target), V2)
        assert all_covered(CHANGED_V1_V2, invalidated(str(target))), f"step {k}"


def test_interrupted_deploy_then_a_revert_converges_to_the_old_build(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    for k in range(total):
        site, target = v1_then_v2_crashing_at(tmp_path, k)
        write_site(site, V1)  # the team reverts before the rerun
        deploy(str(site), str(target))
        assert_converged(str(target), V1)
        # Whatever the interrupted deploy may have put in front of the CDN is invalidated.
        log = invalidated(str(target))
        store = LocalBackend(LocalTarget(str(target))).store
        assert store.read(JOURNAL_NAME) == (None, None)
        touched_before_crash = {"/about/", "/about/index.html", "/css/a.css", "/new.html"}
        if k >= 2:  # the journal and at least one upload happened
            assert log, f"step {k}: nothing invalidated after a partial deploy"
        # and nothing beyond what the two builds touched
        from planner.minimizer import covers

        others = {"/", "/index.html", "/img/logo.svg"}
        assert not any(covers(p, u) for p in log for u in others), log


def test_crash_twice_then_converge(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    for k in range(0, total, 2):
        for j in (0, 3):
            site, target = tmp_path / f"s{k}-{j}", tmp_path / f"t{k}-{j}"
            write_site(site, V1)
            deploy(str(site), str(target))
            write_site(site, V2)
            for fail in (k, j):
                try:
                    deploy(str(site), str(target), FailingBackend(LocalBackend(LocalTarget(str(target))), Counter(fail)))
                except Crash:
                    pass
            deploy(str(site), str(target))
            assert_converged(str(target), V2)
            assert all_covered(CHANGED_V1_V2, invalidated(str(target)))


def test_resume_skips_a_distribution_deleted_since(tmp_path):
    from planner.apply import Result, finish
    from planner.errors import AwsError
    from planner.plan import Journal

    class Gone(LocalBackend):
        def invalidate(self, dist, paths, reference):
            if dist == "EGONE":
                raise AwsError("CreateInvalidation on EGONE: NoSuchDistribution: x", code="NoSuchDistribution")
            return super().invalidate(dist, paths, reference)

    backend = Gone(LocalTarget(str(tmp_path)))
    journal = Journal("d", "p", (), (), ("/a",), ("EGONE", "EOK"), "planner-d")
    backend.store.write(JOURNAL_NAME, journal.dumps())
    result, said = Result(), []
    finish(journal, backend, result, said.append)
    assert list(result.invalidations) == ["EOK"]
    assert "EGONE no longer exists" in said[0]
    assert backend.store.read(JOURNAL_NAME) == (None, None)


def test_other_invalidation_errors_keep_the_pending_record(tmp_path):
    from planner.apply import Result, finish
    from planner.errors import AwsError
    from planner.plan import Journal

    class Denied(LocalBackend):
        def invalidate(self, dist, paths, reference):
            raise AwsError("CreateInvalidation: AccessDenied: no", code="AccessDenied")

    backend = Denied(LocalTarget(str(tmp_path)))
    journal = Journal("d", "p", (), ("x.css",), ("/a",), ("E1",), "planner-d")
    backend.store.write(JOURNAL_NAME, journal.dumps())
    with pytest.raises(AwsError, match="AccessDenied"):
        finish(journal, backend, Result())
    assert backend.store.read(JOURNAL_NAME)[0] is not None


class FakeClock:
    def __init__(self):
        self.now = 0.0
        self.sleeps = []

    def sleep(self, seconds):
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self):
        return self.now


class Busy(LocalBackend):
    """Strict fake of CloudFront's limit: refuses while `busy` invalidations are in progress."""

    busy = 0

    def invalidate(self, dist, paths, reference):
        from planner.errors import AwsError

        if self.busy:
            self.busy -= 1
            raise AwsError(
                "CreateInvalidation: TooManyInvalidationsInProgress: 15 wildcard paths in progress",
                code="TooManyInvalidationsInProgress",
            )
        return super().invalidate(dist, paths, reference)


def test_too_many_in_progress_waits_with_backoff_then_submits(tmp_path):
    from planner.apply import Result, Waiting, finish
    from planner.plan import Journal

    backend = Busy(LocalTarget(str(tmp_path)))
    backend.busy = 3
    journal = Journal("d", "p", (), (), ("/*",), ("E1",), "planner-d")
    backend.store.write(JOURNAL_NAME, journal.dumps())
    fake, said = FakeClock(), []
    result = Result()
    finish(journal, backend, result, said.append, Waiting(600, 5, 60, fake.sleep, fake.clock))
    assert fake.sleeps == [5, 10, 20]  # exponential backoff
    assert list(result.invalidations) == ["E1"]
    assert backend.store.read(JOURNAL_NAME) == (None, None)
    assert "TooManyInvalidationsInProgress" in said[0]


def test_still_busy_after_the_timeout_fails_and_keeps_the_invalidation_pending(tmp_path):
    from planner.apply import Result, Waiting, finish
    from planner.errors import InvalidationError
    from planner.plan import Journal

    backend = Busy(LocalTarget(str(tmp_path)))
    backend.busy = 1000
    journal = Journal("d", "p", (), ("gone.css",), ("/*",), ("E1",), "planner-d")
    backend.store.write(JOURNAL_NAME, journal.dumps())
    fake = FakeClock()
    with pytest.raises(InvalidationError, match="stays pending"):
        finish(journal, backend, Result(), waiting=Waiting(30, 5, 60, fake.sleep, fake.clock))
    assert sum(fake.sleeps) <= 30
    assert backend.store.read(JOURNAL_NAME)[0] is not None  # kept for the next run
    # the next run, once CloudFront has room, submits it with the same reference
    backend.busy = 0
    result = Result()
    finish(journal, backend, result)
    assert backend.invalidation_log()[0]["caller_reference"] == "planner-d"
