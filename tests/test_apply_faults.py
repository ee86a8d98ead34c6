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
from planner.backends.targets import LocalTarget
from planner.plan.build import build_plan
from planner.plan.compute import Options
from planner.plan.journal import JOURNAL_NAME


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

    def list(self, prefix):
        return self.inner.list(prefix)

    def write(self, name, data, expect=None):
        self.counter.step()
        return self.inner.write(name, data, expect)

    def remove(self, name, expect=None):
        self.counter.step()
        return self.inner.remove(name, expect)


class FailingBackend:
    def __init__(self, inner: LocalBackend, counter: Counter) -> None:
        self.inner, self.counter = inner, counter
        self.target = inner.target
        self.default_distributions = inner.default_distributions
        self.state_apart = inner.state_apart
        self.state = inner.state
        self.store = FailingStore(inner.store, counter)
        self.fence = inner.fence  # the wall clock: nothing to fail

    def put_bytes(self, *a):
        self.counter.step()
        return self.inner.put_bytes(*a)

    def put_stream(self, *a):
        self.counter.step()
        return self.inner.put_stream(*a)

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

    def copy_in_place(self, *a):
        self.counter.step()
        return self.inner.copy_in_place(*a)

    # Reads: not steps.
    def surroundings(self):
        return self.inner.surroundings()

    def owned(self, folders):
        return self.inner.owned(folders)

    def list_site(self):
        return self.inner.list_site()

    def heads(self, *a):
        return self.inner.heads(*a)

    def distributions(self, ids):
        return self.inner.distributions(ids)


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
    from planner.core.urls import covers

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
        touched_before_crash = {"/about/", "/about/index.html", "/css/a.css", "/js/x.js", "/new.html"}
        if k >= 2:  # the journal and at least one upload happened
            assert log, f"step {k}: nothing invalidated after a partial deploy"
        # and nothing beyond what the two builds touched
        from planner.core.urls import covers

        others = {"/", "/index.html", "/img/logo.svg"}
        assert not any(covers(p, u) for p in log for u in others), log
        assert all(any(covers(p, u) for u in touched_before_crash) for p in log), log


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
    from planner.plan.journal import Journal

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
    from planner.plan.journal import Journal

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
    from planner.plan.journal import Journal

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
    from planner.plan.journal import Journal

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


# --- the deploy ledger: one record per committed deploy, whatever was interrupted -----------


class Ticking:
    """The ledger's clock: one second later at every reading, all within one month, so two
    runs of the same deploy never share a start time (and a duplicate record would show)."""

    def __init__(self) -> None:
        import datetime as dt

        self.t = dt.datetime(2026, 11, 10, 12, 0, 0, tzinfo=dt.UTC)

    def __call__(self):
        import datetime as dt

        self.t += dt.timedelta(seconds=1)
        return self.t


def deploy_logged(site, target, tick, backend=None, options=None):
    from planner.apply import Waiting

    backend = backend or LocalBackend(LocalTarget(str(target)))
    plan = build_plan(str(site), backend, options or Options(), "test")
    return apply_plan(plan, backend, workers=2, waiting=Waiting(now=tick))


def ledger_records(target) -> list[dict]:
    """Every record of the target's ledger, all months, in order; none may be unreadable."""
    from planner import ledger

    store = LocalBackend(LocalTarget(str(target))).store
    names = store.list("ledger/")
    records: list[dict] = []
    for month in sorted({n.split("/")[1] for n in names}):
        recs, bad = ledger.read_month(store, month)
        assert bad == []
        records += recs
    assert len(records) == len(names)
    return records


def committed_id(target) -> str | None:
    data, _ = LocalBackend(LocalTarget(str(target))).store.read("manifest.json.gz")
    return Manifest.loads(data).deploy_id if data is not None else None


def log_by_deploy(target) -> dict[str, dict[str, dict]]:
    """deploy id -> distribution -> its invalidation in the local log."""
    out: dict[str, dict[str, dict]] = {}
    for inv in LocalBackend(LocalTarget(str(target))).invalidation_log():
        deploy_id = inv["caller_reference"].removeprefix("planner-")
        out.setdefault(deploy_id, {})[inv["distribution_id"]] = inv
    return out


def assert_ledger_agrees_with_the_log(target, records) -> None:
    """Each record names the invalidations its deploy made and counts their paths; every
    invalidation in the log belongs to a recorded deploy."""
    log = log_by_deploy(target)
    for r in records:
        made = log.get(r["deploy_id"], {})
        assert r["invalidation_ids"] == {d: inv["id"] for d, inv in made.items()}, r
        assert r["paths"] == sum(len(inv["paths"]) for inv in made.values()), r
        assert r["wildcards"] == sum(p.endswith("*") for inv in made.values() for p in inv["paths"])
    assert set(log) <= {r["deploy_id"] for r in records}


def test_each_deploy_writes_one_ledger_record_of_what_it_did(tmp_path):
    site, target, tick = tmp_path / "site", tmp_path / "target", Ticking()
    write_site(site, V1)
    deploy_logged(site, target, tick)
    [r1] = ledger_records(target)
    v1_id = committed_id(target)
    assert (r1["deploy_id"], r1["previous_deploy_id"]) == (v1_id, None)
    assert r1["uploads"] == {"files": 5, "bytes": sum(len(t) for t in V1.values())}
    assert (r1["deletes"], r1["changed_urls"], r1["paths"], r1["invalidation_ids"]) == (0, 0, 0, {})

    write_site(site, V2)
    result = deploy_logged(site, target, tick)
    first, r2 = ledger_records(target)
    assert first == r1
    assert (r2["deploy_id"], r2["previous_deploy_id"]) == (committed_id(target), v1_id)
    assert r2["uploads"] == {"files": 3, "bytes": len("about v2") + len("a{color:red}") + len("n")}
    assert (r2["uploads"]["files"], r2["uploads"]["bytes"]) == (result.uploaded, result.uploaded_bytes)
    assert r2["deletes"] == 1  # js/x.js
    assert r2["changed_urls"] == len(CHANGED_V1_V2)
    assert r2["site_urls"] == 8  # the URLs of the keys of both builds
    assert r2["distribution_ids"] == ["local"]
    assert r2["invalidation_ids"] == result.invalidations
    assert r2["paths"] > 0
    assert_ledger_agrees_with_the_log(target, [r1, r2])
    assert r2["alternatives"]["exact_paths"]["paths"] == len(CHANGED_V1_V2)
    assert (r2["account_paths_before"], r2["paid_paths"], r2["dollars"]) == (0, 0, 0)
    assert r2["resumed"] is False
    assert r1["finished_at"] < r2["started_at"] < r2["finished_at"]


def test_a_deploy_to_two_distributions_records_the_paths_of_both(tmp_path):
    site, target, tick = tmp_path / "site", tmp_path / "target", Ticking()
    two = Options(distribution_ids=("E1", "E2"))
    write_site(site, V1)
    deploy_logged(site, target, tick, options=two)
    write_site(site, V2)
    result = deploy_logged(site, target, tick, options=two)
    r1, r2 = ledger_records(target)
    assert set(r2["invalidation_ids"]) == {"E1", "E2"} == set(result.invalidations)
    per_distribution = len(log_by_deploy(target)[r2["deploy_id"]]["E1"]["paths"])
    assert r2["paths"] == 2 * per_distribution
    assert r2["alternatives"]["exact_paths"]["paths"] == 2 * len(CHANGED_V1_V2)
    assert r2["alternatives"]["wildcard_all"]["paths"] == 2
    assert_ledger_agrees_with_the_log(target, [r1, r2])


def test_a_deploy_with_nothing_to_do_writes_no_record(tmp_path):
    site, target, tick = tmp_path / "site", tmp_path / "target", Ticking()
    write_site(site, V1)
    deploy_logged(site, target, tick)
    deploy_logged(site, target, tick)
    assert len(ledger_records(target)) == 1
    write_site(site, V2)
    deploy_logged(site, target, tick)
    deploy_logged(site, target, tick)
    assert [r["deploy_id"] for r in ledger_records(target)][1:] == [committed_id(target)]


def test_a_deploy_whose_invalidation_stays_pending_is_recorded_once_by_the_run_that_finishes_it(tmp_path):
    from planner.apply import Waiting
    from planner.errors import InvalidationError

    site, target, tick = tmp_path / "site", tmp_path / "target", Ticking()
    write_site(site, V1)
    deploy_logged(site, target, tick)
    v1_id = committed_id(target)
    write_site(site, V2)
    busy = Busy(LocalTarget(str(target)))
    busy.busy = 1000
    fake = FakeClock()
    plan = build_plan(str(site), busy, Options(), "test")
    with pytest.raises(InvalidationError, match="stays pending"):
        apply_plan(plan, busy, workers=2, waiting=Waiting(0, 5, 60, fake.sleep, fake.clock, now=tick))
    v2_id = committed_id(target)
    assert v2_id == plan.deploy_id
    assert [r["deploy_id"] for r in ledger_records(target)] == [v1_id]  # not finished: no record
    assert busy.store.read(JOURNAL_NAME)[0] is not None

    result = deploy_logged(site, target, tick)  # CloudFront has room again
    assert result.resumed == v2_id
    records = ledger_records(target)
    assert [r["deploy_id"] for r in records] == [v1_id, v2_id]
    r2 = records[1]
    assert r2["resumed"] is True
    assert r2["invalidation_ids"] == result.invalidations and r2["paths"] > 0
    # what the deploy did, though the run that finished it uploaded nothing
    assert (r2["uploads"]["files"], r2["deletes"], r2["changed_urls"]) == (3, 1, len(CHANGED_V1_V2))
    assert r2["started_at"] < r2["finished_at"]
    assert_ledger_agrees_with_the_log(target, records)

    deploy_logged(site, target, tick)
    assert ledger_records(target) == records


def v1_then_v2_crashing_at_on_a_clock(tmp_path, k: int, tick, name: str):
    """Deploy V1, then V2 crashing at write ``k``; returns (site, target, V1's deploy id)."""
    site, target = tmp_path / f"{name}-site", tmp_path / f"{name}-target"
    write_site(site, V1)
    deploy_logged(site, target, tick)
    v1_id = committed_id(target)
    write_site(site, V2)
    failing = FailingBackend(LocalBackend(LocalTarget(str(target))), Counter(k))
    with pytest.raises(Crash):
        deploy_logged(site, target, tick, backend=failing)
    return site, target, v1_id


def test_a_crash_after_the_ledger_write_leaves_one_record_after_the_rerun(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    tick = Ticking()
    site, target, v1_id = v1_then_v2_crashing_at_on_a_clock(tmp_path, total - 1, tick, "last")
    v2_id = committed_id(target)
    store = LocalBackend(LocalTarget(str(target))).store
    # the crash hit the last write: the record is written, the pending record not removed yet
    records = ledger_records(target)
    assert [r["deploy_id"] for r in records] == [v1_id, v2_id]
    assert store.read(JOURNAL_NAME)[0] is not None

    result = deploy_logged(site, target, tick)
    assert result.resumed == v2_id
    assert ledger_records(target) == records  # the same single record, not rewritten
    assert records[1]["resumed"] is False
    assert_converged(str(target), V2)
    assert_ledger_agrees_with_the_log(target, records)


def check_ledger_after_rerun(target, k, v1_id, committed_at_crash, written_at_crash) -> None:
    """One record per committed deploy, in order; records written before the crash are kept
    as they were; a record written by the rerun of a committed deploy says it was resumed."""
    records = ledger_records(target)
    expected = list(dict.fromkeys(i for i in (v1_id, committed_at_crash, committed_id(target)) if i))
    assert [r["deploy_id"] for r in records] == expected, f"step {k}"
    for r in records:
        if r["deploy_id"] in written_at_crash:
            assert r == written_at_crash[r["deploy_id"]], f"step {k}"
        else:
            assert r["resumed"] is (r["deploy_id"] == committed_at_crash), f"step {k}"
    assert_ledger_agrees_with_the_log(target, records)


def test_interrupted_at_every_step_the_ledger_holds_one_record_per_committed_deploy(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    for k in range(total):
        tick = Ticking()
        site, target, v1_id = v1_then_v2_crashing_at_on_a_clock(tmp_path, k, tick, f"k{k}")
        committed_at_crash = committed_id(target)
        written = {r["deploy_id"]: r for r in ledger_records(target)}
        deploy_logged(site, target, tick)
        assert_converged(str(target), V2)
        check_ledger_after_rerun(target, k, v1_id, committed_at_crash, written)
        assert len(ledger_records(target)) == 2, f"step {k}"  # V1 and V2, each once


def test_interrupted_at_every_step_then_reverted_the_ledger_holds_one_record_per_committed_deploy(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    for k in range(total):
        tick = Ticking()
        site, target, v1_id = v1_then_v2_crashing_at_on_a_clock(tmp_path, k, tick, f"r{k}")
        committed_at_crash = committed_id(target)
        written = {r["deploy_id"]: r for r in ledger_records(target)}
        write_site(site, V1)  # the team reverts before the rerun
        deploy_logged(site, target, tick)
        assert_converged(str(target), V1)
        check_ledger_after_rerun(target, k, v1_id, committed_at_crash, written)


def test_crashing_twice_the_ledger_holds_one_record_per_committed_deploy(tmp_path):
    total = steps_of_full_deploy(tmp_path)
    for k in range(total):
        for j in (0, 2, 5):
            tick = Ticking()
            site, target, v1_id = v1_then_v2_crashing_at_on_a_clock(tmp_path, k, tick, f"t{k}-{j}")
            failing = FailingBackend(LocalBackend(LocalTarget(str(target))), Counter(j))
            try:
                deploy_logged(site, target, tick, backend=failing)
            except Crash:
                pass
            deploy_logged(site, target, tick)
            assert_converged(str(target), V2)
            records = ledger_records(target)
            assert [r["deploy_id"] for r in records] == [v1_id, committed_id(target)], (k, j)
            assert_ledger_agrees_with_the_log(target, records)
