"""The deploy ledger (planner.ledger): the pure parts (billing, drafting and completing a
record from a real plan, its name), then writing and reading records in both state stores
(a local folder, and an S3 prefix against moto in process)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, LocalStore, Manifest, S3Store
from planner import ledger
from planner.plan.compute import Options, TargetState, compute_plan
from planner.plan.journal import Journal

UTC = dt.UTC
START = dt.datetime(2026, 11, 5, 12, 0, 0, tzinfo=UTC)
END = dt.datetime(2026, 11, 5, 12, 1, 30, tzinfo=UTC)
TARGET = "s3://bucket"


# --- billable --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("before", "paths", "free", "paid"),
    [
        (0, 0, 1000, 0),  # nothing submitted, nothing to pay
        (0, 10, 1000, 0),  # well inside the allowance
        (990, 10, 1000, 0),  # reaches the allowance exactly: still free
        (995, 10, 1000, 5),  # crosses it: only the paths beyond it are paid
        (999, 2, 1000, 1),  # one path free, one paid
        (0, 1001, 1000, 1),  # one deploy bigger than the whole allowance
        (1000, 10, 1000, 10),  # allowance used up before: every path is paid
        (1500, 10, 1000, 10),  # already well over: every path is paid, not more
        (1500, 0, 1000, 0),  # zero paths cost nothing, even when over
        (0, 10, 0, 10),  # no free allowance at all
        (0, 0, 0, 0),  # no allowance and no paths
    ],
)
def test_billable_counts_only_paths_beyond_the_free_allowance(before, paths, free, paid):
    assert ledger.billable(before, paths, free) == paid


@settings(max_examples=300, deadline=None)
@given(
    free=st.integers(0, 3000),
    batches=st.lists(st.integers(0, 1500), max_size=25),
)
def test_billing_invalidations_one_by_one_sums_to_what_is_over_the_allowance(free, batches):
    running, paid = 0, 0
    for paths in batches:
        part = ledger.billable(running, paths, free)
        assert 0 <= part <= paths  # never negative, never more than submitted
        paid += part
        running += paths
    assert paid == max(0, running - free)


# --- draft and complete on real plans ----------------------------------------------------------


def e(h: str, ctype: str = "text/html; charset=utf-8", size: int = 10) -> Entry:
    return Entry(h.ljust(32, "0"), size, ctype, "cc")


# A blog of 9 pages and a home page; a deploy that changes 8 of the 9 pages. With the free
# allowance used up, the minimizer takes one wildcard "/blog/p*" that also hits p9 needlessly.
BLOG = {f"blog/p{i}.html": e(str(i)) for i in range(1, 10)} | {"index.html": e("a")}
BLOG_8_CHANGED = BLOG | {f"blog/p{i}.html": e(f"{i}x", size=7) for i in range(1, 9)}
BLOG_URLS = 11  # 9 pages, "/" and "/index.html"


def plan_of(old, new, journal=None, **opts):
    previous = Manifest(old, target=TARGET, deploy_id="prev") if old is not None else None
    return compute_plan(
        site="/site",
        target=TARGET,
        state=TargetState(previous, "etag" if old is not None else None, journal),
        entries=dict(new),
        options=Options(**opts),
        tool_version="test-1.2",
    )


def blog_plan(dists: tuple[str, ...], paths_used: int = 1000):
    p = plan_of(BLOG, BLOG_8_CHANGED, distribution_ids=dists, paths_used=paths_used)
    # what the expected numbers below assume of the minimizer
    assert p.invalidation.paths == ("/blog/p*",)
    assert p.invalidation.solution.collateral_urls == 1
    assert p.invalidation.site_urls == BLOG_URLS
    return p


def totals(paths, wildcards, misses, paid, dollars):
    """A record's totals: the AWS charge (``charge_usd``, and ``dollars``, its older name)
    apart from the miss estimate (the default model: $0.000005 a needless miss)."""
    return {
        "paths": paths,
        "wildcards": wildcards,
        "needless_misses": misses,
        "paid_paths": paid,
        "dollars": dollars,
        "charge_usd": dollars,
        "miss_cost_usd": round(misses * 0.000005, 9),
    }


ZERO = totals(0, 0, 0, 0, 0.0)


@pytest.mark.parametrize(
    ("dists", "made", "chosen", "exact", "wildcard_all"),
    [
        # no distribution: nothing invalidated, and no alternative would have cost anything
        ((), {}, ZERO, ZERO, ZERO),
        # one distribution, all paid (allowance used up): 1 wildcard hitting p9 needlessly,
        # against 8 exact paths, or "/*" emptying the 3 unchanged URLs
        (("E1",), {"E1": "I1"}, totals(1, 1, 1, 1, 0.005), totals(8, 0, 0, 8, 0.04),
         totals(1, 1, 3, 1, 0.005)),
        # two distributions: every count doubles
        (("E1", "E2"), {"E1": "I1", "E2": "I2"}, totals(2, 2, 2, 2, 0.01),
         totals(16, 0, 0, 16, 0.08), totals(2, 2, 6, 2, 0.01)),
        # E2 deleted since (NoSuchDistribution): only E1 invalidated; the alternatives still
        # name both distributions the deploy was planned for
        (("E1", "E2"), {"E1": "I1"}, totals(1, 1, 1, 1, 0.005),
         totals(16, 0, 0, 16, 0.08), totals(2, 2, 6, 2, 0.01)),
        # both gone: nothing invalidated at all
        (("E1", "E2"), {}, ZERO, totals(16, 0, 0, 16, 0.08), totals(2, 2, 6, 2, 0.01)),
    ],
    ids=["no distribution", "one", "two", "one of two gone", "both gone"],
)
def test_complete_totals_over_the_distributions_invalidated(dists, made, chosen, exact, wildcard_all):
    plan = blog_plan(dists)
    record = ledger.complete(ledger.draft(plan, START), made, END, resumed=False)
    assert {k: record[k] for k in chosen} == chosen
    assert record["alternatives"] == {"exact_paths": exact, "wildcard_all": wildcard_all}
    assert record["invalidation_ids"] == made
    assert record["distribution_ids"] == list(dists)


@pytest.mark.parametrize(
    ("paths_used", "chosen_paid", "exact_paid", "wildcard_all_paid"),
    [
        (0, 0, 0, 0),  # far from the allowance: everything free
        (996, 0, 0, 0),  # 4 left: exactly enough for the 4 exact paths
        (997, 0, 1, 0),  # 3 left: the chosen 2 paths fit, the 4 exact paths do not
        (999, 1, 3, 1),  # 1 left: the allowance is crossed by each way
        (1000, 2, 4, 2),  # used up: every path is paid
        (5000, 2, 4, 2),  # well over: every path is paid, not more
    ],
)
def test_complete_prices_each_way_from_the_usage_before_the_deploy(
    paths_used, chosen_paid, exact_paid, wildcard_all_paid
):
    # One page changed (2 URL forms) on two distributions: "/about/*" on each.
    site = {"index.html": e("1"), "about/index.html": e("2"), "css/s.css": e("3", "text/css")}
    plan = plan_of(site, site | {"about/index.html": e("9")}, distribution_ids=("E1", "E2"),
                   paths_used=paths_used)
    assert plan.invalidation.paths == ("/about/*",)
    record = ledger.complete(ledger.draft(plan, START), {"E1": "a", "E2": "b"}, END, False)
    assert record["account_paths_before"] == paths_used
    assert record["free_paths_per_month"] == 1000
    assert (record["paths"], record["paid_paths"]) == (2, chosen_paid)
    assert record["dollars"] == pytest.approx(chosen_paid * 0.005)
    alts = record["alternatives"]
    assert (alts["exact_paths"]["paths"], alts["exact_paths"]["paid_paths"]) == (4, exact_paid)
    assert alts["exact_paths"]["dollars"] == pytest.approx(exact_paid * 0.005)
    assert (alts["wildcard_all"]["paths"], alts["wildcard_all"]["paid_paths"]) == (2, wildcard_all_paid)


def test_complete_uses_the_price_the_plan_was_made_with():
    plan = plan_of(BLOG, BLOG_8_CHANGED, distribution_ids=("E1",), paths_used=1000, price=0.01)
    record = ledger.complete(ledger.draft(plan, START), {"E1": "I"}, END, False)
    assert record["price_per_path"] == 0.01
    assert record["dollars"] == pytest.approx(record["paid_paths"] * 0.01)
    assert record["alternatives"]["exact_paths"]["dollars"] == pytest.approx(
        record["alternatives"]["exact_paths"]["paid_paths"] * 0.01
    )


def test_draft_records_what_the_plan_will_do():
    old = {"index.html": e("1"), "a.css": e("2", "text/css"), "old.js": e("3", "text/javascript")}
    new = {
        "index.html": e("1"),
        "a.css": e("2x", "text/css", size=120),  # changed
        "b.html": e("4", size=33),  # new
    }  # old.js deleted
    plan = plan_of(old, new, distribution_ids=("E1", "E2"), paths_used=12, free_paths_per_month=50)
    d = ledger.draft(plan, START)
    assert d["version"] == ledger.RECORD_VERSION
    assert d["deploy_id"] == plan.deploy_id and d["deploy_id"] != "prev"
    assert d["previous_deploy_id"] == "prev"
    assert d["target"] == TARGET
    assert d["tool_version"] == "test-1.2"
    assert d["started_at"] == "2026-11-05T12:00:00Z"
    assert d["distribution_ids"] == ["E1", "E2"]
    assert d["uploads"] == {"files": 2, "bytes": 153}
    assert d["deletes"] == 1
    assert d["changed_urls"] == 2  # /a.css and /old.js; the new page is not invalidated
    assert d["site_urls"] == 5  # /, /index.html, /a.css, /b.html, /old.js
    assert d["account_paths_before"] == 12
    assert d["free_paths_per_month"] == 50
    assert d["price_per_path"] == 0.005
    assert list(d["per_distribution"]) == ["E1", "E2"]
    for each in d["per_distribution"].values():
        assert each["chosen"]["paths"] == len(plan.invalidation.paths)
        assert each["exact_paths"] == {"paths": 2, "wildcards": 0, "needless_misses": 0}
        assert each["wildcard_all"] == {"paths": 1, "wildcards": 1, "needless_misses": 3}


def test_a_draft_of_the_earlier_shape_completes_to_the_same_record():
    """A pending record written by the version before per-distribution drafts (one "each"
    for every distribution) is completed by this version to the same figures."""
    d = ledger.draft(blog_plan(("E1", "E2")), START)
    old = {k: v for k, v in d.items() if k != "per_distribution"}
    old["each"] = d["per_distribution"]["E1"]
    for ids in ({"E1": "I1", "E2": "I2"}, {"E2": "I2"}, {}):
        assert ledger.complete(old, ids, END, False) == ledger.complete(d, ids, END, False)


def test_draft_of_a_first_deploy_has_no_previous_deploy_and_nothing_to_invalidate():
    plan = plan_of(None, BLOG, distribution_ids=("E1",))
    record = ledger.complete(ledger.draft(plan, START), {}, END, False)
    assert record["previous_deploy_id"] is None
    assert record["uploads"] == {"files": 10, "bytes": 100}
    assert (record["changed_urls"], record["paths"], record["paid_paths"]) == (0, 0, 0)
    assert record["alternatives"]["exact_paths"]["paths"] == 0
    # "/*" on every deploy is submitted whatever changed
    assert record["alternatives"]["wildcard_all"]["paths"] == 1


def test_draft_times_are_utc_whatever_the_clock_zone():
    plus_two = dt.timezone(dt.timedelta(hours=2))
    d = ledger.draft(blog_plan(("E1",)), dt.datetime(2026, 12, 1, 0, 30, tzinfo=plus_two))
    assert d["started_at"] == "2026-11-30T22:30:00Z"
    done = ledger.complete(d, {"E1": "I"}, dt.datetime(2026, 12, 1, 1, 0, tzinfo=plus_two), True)
    assert done["finished_at"] == "2026-11-30T23:00:00Z"
    assert ledger.record_name(done).startswith("ledger/2026-11/20261130T223000Z-")


def test_complete_adds_what_happened_and_drops_the_per_distribution_draft():
    d = ledger.draft(blog_plan(("E1", "E2")), START)
    record = ledger.complete(d, {"E1": "I1", "E2": "I2"}, END, resumed=True)
    assert "per_distribution" not in record
    assert record["finished_at"] == "2026-11-05T12:01:30Z"
    assert record["resumed"] is True
    # everything the draft knew is kept
    kept = [k for k in d if k != "per_distribution"]
    assert {k: d[k] for k in kept} == {k: record[k] for k in kept}


def test_complete_does_not_change_its_input():
    d = ledger.draft(blog_plan(("E1", "E2")), START)
    ids = {"E1": "I1", "E2": "I2"}
    before, ids_before = copy.deepcopy(d), dict(ids)
    record = ledger.complete(d, ids, END, False)
    assert d == before and ids == ids_before
    record["invalidation_ids"]["E3"] = "x"  # the record holds its own copy of the ids
    assert ids == ids_before
    # completing the same draft again gives the same record
    assert ledger.complete(d, ids_before, END, False) == ledger.complete(before, ids_before, END, False)


def test_a_draft_survives_the_pending_record():
    """The draft is kept in pending.json: a later run completes it to the same record."""
    plan = blog_plan(("E1", "E2"))
    d = ledger.draft(plan, START)
    journal = Journal(plan.deploy_id, "prev", (), (), plan.invalidation.paths, ("E1", "E2"),
                      "planner-x", record=d)
    loaded = Journal.loads(journal.dumps())
    assert loaded.record == d
    ids = {"E1": "I1", "E2": "I2"}
    assert ledger.complete(loaded.record, ids, END, True) == ledger.complete(d, ids, END, True)


# --- record_name -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("started_at", "deploy_id", "name"),
    [
        # an ordinary start
        ("2026-11-05T12:00:00Z", "abc123", "ledger/2026-11/20261105T120000Z-abc123.json"),
        # the first second of a month is filed in that month
        ("2026-12-01T00:00:00Z", "d", "ledger/2026-12/20261201T000000Z-d.json"),
        # the last second of a month is filed in that month
        ("2026-11-30T23:59:59Z", "d", "ledger/2026-11/20261130T235959Z-d.json"),
        # new year's eve goes with the old year
        ("2026-12-31T23:59:59Z", "d", "ledger/2026-12/20261231T235959Z-d.json"),
        # single-digit months and days are zero-padded
        ("2027-01-02T03:04:05Z", "d", "ledger/2027-01/20270102T030405Z-d.json"),
    ],
)
def test_record_name_files_a_record_under_the_month_of_its_start(started_at, deploy_id, name):
    assert ledger.record_name({"started_at": started_at, "deploy_id": deploy_id}) == name


def test_record_name_is_the_same_for_the_draft_and_whichever_run_completes_it():
    d = ledger.draft(blog_plan(("E1",)), START)
    first = ledger.complete(d, {"E1": "I"}, END, False)
    later = ledger.complete(d, {"E1": "I"}, END + dt.timedelta(days=40), True)
    assert ledger.record_name(d) == ledger.record_name(first) == ledger.record_name(later)
    assert ledger.record_name(d) == f"ledger/2026-11/20261105T120000Z-{d['deploy_id']}.json"


seconds = st.datetimes(
    min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2099, 12, 31, 23, 59, 59),
    timezones=st.just(UTC),
).map(lambda t: t.replace(microsecond=0))


@settings(max_examples=200, deadline=None)
@given(a=seconds, b=seconds)
def test_record_names_sort_like_their_starts(a, b):
    def name(t):
        return ledger.record_name({"started_at": ledger.iso(t), "deploy_id": "0123456789abcdef0123"})

    assert (name(a) < name(b)) == (a < b)
    assert name(a).startswith(f"ledger/{a:%Y-%m}/")
    assert ledger.parse_iso(ledger.iso(a)) == a


# --- write and read_month, in both stores -----------------------------------------------------

BUCKET = "planner-ledger-test"


@pytest.fixture
def s3_client(s3_in_process: Any) -> Any:
    s3_in_process.create_bucket(Bucket=BUCKET)
    return s3_in_process


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "local":
        return LocalStore(str(tmp_path))
    return S3Store(request.getfixturevalue("s3_client"), BUCKET, "blog/")


def record_at(started: dt.datetime, deploy_id: str, **changes: Any) -> dict[str, Any]:
    """A completed record of the blog deploy, started at ``started``."""
    d = ledger.draft(blog_plan(("E1",)), started)
    d["deploy_id"] = deploy_id
    rec = ledger.complete(d, {"E1": f"I{deploy_id}"}, started + dt.timedelta(minutes=2), False)
    rec.update(changes)
    return rec


def at(day: int, hour: int = 12, minute: int = 0, second: int = 0, month: int = 11) -> dt.datetime:
    return dt.datetime(2026, month, day, hour, minute, second, tzinfo=UTC)


def test_written_records_are_read_back_sorted_by_start(store):
    recs = [
        record_at(at(20), "c"),
        record_at(at(3), "a"),
        record_at(at(20), "b"),  # same start as "c": ordered by deploy id
        record_at(at(11, 8, 30, 5), "z"),
    ]
    for rec in recs:
        assert ledger.write(store, rec) is True
    records, bad = ledger.read_month(store, "2026-11")
    assert bad == []
    assert [r["deploy_id"] for r in records] == ["a", "z", "b", "c"]
    assert records == sorted(recs, key=lambda r: (r["started_at"], r["deploy_id"]))
    assert store.list("ledger/") == sorted(ledger.record_name(r) for r in recs)


def test_a_record_is_one_object_named_by_its_start_and_deploy_id(store):
    rec = record_at(at(5), "d1")
    ledger.write(store, rec)
    assert store.list("ledger/") == ["ledger/2026-11/20261105T120000Z-d1.json"]
    data, _ = store.read("ledger/2026-11/20261105T120000Z-d1.json")
    assert json.loads(data) == rec


def test_writing_the_same_record_twice_keeps_the_first_and_says_so(store):
    first = record_at(at(5), "d1")
    again = dict(first, resumed=True, finished_at="2026-11-06T00:00:00Z")  # a later run's
    assert ledger.write(store, first) is True
    assert ledger.write(store, again) is False
    assert store.list("ledger/") == [ledger.record_name(first)]
    assert ledger.read_month(store, "2026-11") == ([first], [])


def test_reading_a_month_lists_only_that_month(store):
    inside = [record_at(at(1, 0, 0, 0), "first-second"), record_at(at(30, 23, 59, 59), "last-second")]
    outside = [
        record_at(at(31, 23, 59, 59, month=10), "october"),
        record_at(at(1, 0, 0, 0, month=12), "december"),
        record_at(dt.datetime(2025, 11, 15, tzinfo=UTC), "a-year-before"),
    ]
    for rec in inside + outside:
        ledger.write(store, rec)
    records, bad = ledger.read_month(store, "2026-11")
    assert [r["deploy_id"] for r in records] == ["first-second", "last-second"]
    assert bad == []
    assert [r["deploy_id"] for r in ledger.read_month(store, "2026-12")[0]] == ["december"]


def test_reading_a_month_without_records_is_empty(store):
    assert ledger.read_month(store, "2026-11") == ([], [])
    ledger.write(store, record_at(at(5), "d1"))
    assert ledger.read_month(store, "2026-10") == ([], [])


def test_objects_that_are_not_records_are_reported_not_raised(store):
    good = record_at(at(5), "good")
    ledger.write(store, good)
    corrupt = "ledger/2026-11/20261106T000000Z-corrupt.json"
    old = "ledger/2026-11/20261107T000000Z-version0.json"
    negative = "ledger/2026-11/20261108T000000Z-negative.json"
    text_count = "ledger/2026-11/20261109T000000Z-text.json"
    store.write(corrupt, b'{"version": 1, "deploy_id": ')
    store.write(old, json.dumps(record_at(at(7), "version0", version=0)).encode())
    store.write(negative, json.dumps(record_at(at(8), "negative", paths=-1)).encode())
    store.write(text_count, json.dumps(record_at(at(9), "text", wildcards="1")).encode())
    store.write("ledger/2026-11/notes.txt", b"not a record, not a .json name: ignored")
    records, bad = ledger.read_month(store, "2026-11")
    assert records == [good]
    assert sorted(bad) == sorted([corrupt, old, negative, text_count])


def mutate(path: str, value: Any):
    """A valid record with the field at ``path`` (dotted) set to ``value``, or removed when
    ``value`` is REMOVE."""

    def make() -> bytes:
        rec = record_at(at(9), "bad")
        *parents, last = path.split(".")
        here = rec
        for p in parents:
            here = here[p]
        if value is REMOVE:
            del here[last]
        else:
            here[last] = value
        return json.dumps(rec).encode()

    return make


REMOVE = object()


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(lambda: b"", id="empty object"),  # a write cut short
        pytest.param(lambda: b'{"version": 1, "paths": 3', id="truncated JSON"),
        pytest.param(lambda: b"\xff\xfe not utf-8", id="not text"),
        pytest.param(lambda: b"[1, 2, 3]", id="JSON but not an object"),
        pytest.param(lambda: b"null", id="JSON null"),
        pytest.param(mutate("version", 2), id="a newer version"),
        pytest.param(mutate("version", "1"), id="version as text"),
        pytest.param(mutate("version", REMOVE), id="no version"),
        pytest.param(mutate("started_at", "yesterday"), id="start is not a time"),
        pytest.param(mutate("started_at", 1762344000), id="start is a number"),
        pytest.param(mutate("started_at", REMOVE), id="no start"),
        pytest.param(mutate("deploy_id", REMOVE), id="no deploy id"),
        pytest.param(mutate("paths", -1), id="negative paths"),
        pytest.param(mutate("needless_misses", -3), id="negative misses"),
        pytest.param(mutate("paid_paths", "2"), id="paid paths as text"),
        pytest.param(mutate("wildcards", 1.0), id="wildcards as a float"),
        pytest.param(mutate("wildcards", True), id="wildcards as a boolean"),
        pytest.param(mutate("paths", None), id="paths null"),
        pytest.param(mutate("paths", REMOVE), id="no paths"),
        pytest.param(mutate("deletes", -1), id="negative deletes"),
        pytest.param(mutate("changed_urls", [1]), id="changed urls as a list"),
        pytest.param(mutate("uploads.bytes", -10), id="negative upload bytes"),
        pytest.param(mutate("uploads.files", "3"), id="upload files as text"),
        pytest.param(mutate("uploads", 3), id="uploads not an object"),
        pytest.param(mutate("alternatives.exact_paths.paid_paths", -1), id="negative alternative"),
        pytest.param(mutate("alternatives.wildcard_all.paths", 2.5), id="fractional alternative"),
        pytest.param(mutate("alternatives.wildcard_all", REMOVE), id="an alternative missing"),
        pytest.param(mutate("alternatives", "none"), id="alternatives not an object"),
        pytest.param(mutate("dollars", -0.5), id="negative dollars"),
        pytest.param(mutate("dollars", "0.5"), id="dollars as text"),
        pytest.param(mutate("alternatives.exact_paths.dollars", None), id="alternative dollars null"),
    ],
)
def test_an_invalid_object_under_the_month_is_reported_by_name(tmp_path, data):
    store = LocalStore(str(tmp_path))
    good = record_at(at(5), "good")
    ledger.write(store, good)
    name = "ledger/2026-11/20261109T120000Z-bad.json"
    store.write(name, data())
    records, bad = ledger.read_month(store, "2026-11")
    assert (records, bad) == ([good], [name])


@pytest.mark.parametrize("deploy_id", [None, 7, ["x"]], ids=["null", "number", "list"])
def test_a_record_with_a_deploy_id_that_is_not_text_is_reported_not_raised(tmp_path, deploy_id):
    # Same start as a good record, so sorting by (start, deploy id) has to compare them.
    store = LocalStore(str(tmp_path))
    good = record_at(at(5), "good")
    ledger.write(store, good)
    name = "ledger/2026-11/20261105T120000Z-odd.json"
    odd = record_at(at(5), "odd")
    odd["deploy_id"] = deploy_id
    store.write(name, json.dumps(odd).encode())
    assert ledger.read_month(store, "2026-11") == ([good], [name])


def test_a_local_write_left_half_done_is_not_read_as_a_record(tmp_path):
    store = LocalStore(str(tmp_path))
    ledger.write(store, record_at(at(5), "good"))
    # the temporary file of a write killed before its rename
    (tmp_path / ".planner" / "ledger" / "2026-11" / ".20261106T000000Z-x.json.abc.tmp").write_text("{")
    records, bad = ledger.read_month(store, "2026-11")
    assert [r["deploy_id"] for r in records] == ["good"] and bad == []


def test_ledger_written_under_a_target_prefix_stays_under_it(s3_client):
    blog, docs = S3Store(s3_client, BUCKET, "blog/"), S3Store(s3_client, BUCKET, "docs/")
    ledger.write(blog, record_at(at(5), "blog-deploy"))
    ledger.write(docs, record_at(at(6), "docs-deploy"))
    keys = [o["Key"] for o in s3_client.list_objects_v2(Bucket=BUCKET)["Contents"]]
    assert sorted(keys) == [
        "blog/.planner/ledger/2026-11/20261105T120000Z-blog-deploy.json",
        "docs/.planner/ledger/2026-11/20261106T120000Z-docs-deploy.json",
    ]
    assert [r["deploy_id"] for r in ledger.read_month(blog, "2026-11")[0]] == ["blog-deploy"]
    assert [r["deploy_id"] for r in ledger.read_month(docs, "2026-11")[0]] == ["docs-deploy"]


# --- S3 listing follows continuation tokens ----------------------------------------------------


class SmallPages:
    """The moto client, but ListObjectsV2 answers at most 2 keys a page (as S3 does 1,000)."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.lists: list[dict[str, Any]] = []

    def list_objects_v2(self, **kwargs: Any) -> Any:
        self.lists.append(dict(kwargs))
        return self._client.list_objects_v2(**kwargs, MaxKeys=2)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def test_reading_a_month_follows_every_page_of_the_s3_listing(s3_client):
    paged = SmallPages(s3_client)
    store = S3Store(paged, BUCKET, "blog/")
    recs = [record_at(at(day), f"d{day:02d}") for day in (9, 1, 7, 3, 5)]
    for rec in recs:
        assert ledger.write(store, rec)
    records, bad = ledger.read_month(store, "2026-11")
    assert [r["deploy_id"] for r in records] == ["d01", "d03", "d05", "d07", "d09"]
    assert bad == []
    assert len(paged.lists) == 3  # 2 + 2 + 1
    assert "ContinuationToken" not in paged.lists[0]
    assert all(call.get("ContinuationToken") for call in paged.lists[1:])
    assert {call["Prefix"] for call in paged.lists} == {"blog/.planner/ledger/2026-11/"}


class TwoPages:
    """A strict fake of ListObjectsV2: two pages, the second only for the token of the first."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def list_objects_v2(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        assert kwargs["Bucket"] == "b" and kwargs["Prefix"] == "p/.planner/ledger/2026-11/"
        token = kwargs.get("ContinuationToken")
        if token is None:
            assert set(kwargs) == {"Bucket", "Prefix"}
            return {
                "IsTruncated": True,
                "NextContinuationToken": "token-1",
                "Contents": [
                    {"Key": "p/.planner/ledger/2026-11/b.json"},
                    {"Key": "p/.planner/ledger/2026-11/a.json"},
                ],
            }
        assert token == "token-1", f"unexpected token {token!r}"
        return {"IsTruncated": False, "Contents": [{"Key": "p/.planner/ledger/2026-11/c.json"}]}


def test_s3_store_list_sends_back_the_continuation_token_until_the_last_page():
    fake = TwoPages()
    names = S3Store(fake, "b", "p/").list("ledger/2026-11/")
    assert names == ["ledger/2026-11/a.json", "ledger/2026-11/b.json", "ledger/2026-11/c.json"]
    assert len(fake.calls) == 2
