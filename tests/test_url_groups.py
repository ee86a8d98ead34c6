"""Distributions that serve the target under different URLs (other origin paths or behaviors):
one invalidation per group of alike distributions, sharing the month's free paths. Pure tests
of the plan, the pending record, the ledger and saved plans; tests/test_e2e_url_groups.py
drives the same through the CLI against moto."""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import Entry, Manifest
from planner import ledger
from planner.backends import Distribution
from planner.core.origins import Served, mapper, served
from planner.core.pacing import (
    AccountInvalidations,
    InvalidationCount,
    Usage,
    usage_from,
)
from planner.core.urls import covers
from planner.errors import BadTarget
from planner.plan import saved
from planner.plan.build import url_groups_for
from planner.plan.compute import (
    Cdn,
    Options,
    TargetState,
    UrlGroup,
    compute_plan,
    journal_invalidations,
)
from planner.plan.journal import Journal

TARGET = "s3://bucket/site"
HTML = "text/html; charset=utf-8"
BUCKET_ROOT = Served((("s3", ""),), (), "s3", "index.html")  # /site/js/app.js
SITE_ROOT = Served((("s3", "site/"),), (), "s3", "index.html")  # /js/app.js
JS_ELSEWHERE = Served((("s3", "site/"),), (("js/*", "api"),), "s3", "index.html")


def e(h: str, ctype: str = "text/css", size: int = 10) -> Entry:
    return Entry(h.ljust(32, "0"), size, ctype, "cc")


SITE = {
    "index.html": e("1", HTML),
    "about/index.html": e("2", HTML),
    "js/app.js": e("3", "text/javascript"),
    "img/logo.svg": e("4", "image/svg+xml"),
    "img/bg.png": e("5", "image/png"),
}
CHANGED = dict(SITE, **{"js/app.js": e("3b", "text/javascript"), "img/logo.svg": e("4b")})


def group(view: Served, *dists: str) -> UrlGroup:
    return UrlGroup(dists, mapper(view, "site/"))


def plan_for(groups, old=SITE, new=CHANGED, usage=None, journal=None, **opts):
    opts.setdefault("distribution_ids", tuple(d for g in groups for d in g.distribution_ids))
    opts.setdefault("paths_used", 0)
    return compute_plan(
        site="/site",
        target=TARGET,
        state=TargetState(
            Manifest(dict(old), target=TARGET, deploy_id="prev") if old else None,
            "etag" if old else None,
            journal,
            cdn=Cdn(url_groups=tuple(groups)),
        ),
        entries=dict(new),
        options=Options(**opts),
        tool_version="test",
        usage=usage,
    )


# --- the plan ----------------------------------------------------------------------------------


def test_each_group_invalidates_its_own_urls_on_its_own_distributions():
    p = plan_for([group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB", "EC")])
    a, b = p.invalidations
    assert (a.distribution_ids, a.paths) == (("EA",), ("/site/img/logo.svg", "/site/js/app.js"))
    assert (b.distribution_ids, b.paths) == (("EB", "EC"), ("/img/logo.svg", "/js/app.js"))
    assert p.invalidation is a  # the first group, kept for one-group callers
    assert p.distribution_ids == ("EA", "EB", "EC")
    assert a.caller_reference == b.caller_reference == f"planner-{p.deploy_id}"


def test_a_key_routed_elsewhere_is_invalidated_only_where_the_bucket_serves_it():
    p = plan_for([group(JS_ELSEWHERE, "EA"), group(SITE_ROOT, "EB")])
    assert [inv.paths for inv in p.invalidations] == [
        ("/img/logo.svg",),
        ("/img/logo.svg", "/js/app.js"),
    ]


def test_a_group_that_serves_none_of_the_target_gets_no_paths():
    blog = Served((("s3", "blog/"),), (), "s3", "")
    p = plan_for([group(blog, "EBLOG"), group(SITE_ROOT, "EB")])
    assert [inv.paths for inv in p.invalidations] == [(), ("/img/logo.svg", "/js/app.js")]
    assert p.invalidations[0].site_urls == 0  # nothing of the site is cached there


def test_groups_share_the_free_paths_in_order():
    # 3 free paths (pace none): the first group takes 2 x 1 distribution, the second is left 1
    # for 2 paths x 2 distributions, so 3 of its 4 are paid.
    p = plan_for([group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB", "EC")],
                 free_paths_per_month=3, pace="none", miss_cost=1.0)
    a, b = p.invalidations
    assert (a.free_paths, len(a.paths), a.solution.paid_paths) == (3, 2, 0)
    assert (b.free_paths, len(b.paths), b.solution.paid_paths) == (1, 2, 3)
    assert b.solution.cost_usd == pytest.approx(3 * 0.005)


def test_usage_is_read_once_for_every_group_and_not_at_all_without_a_change():
    calls = []

    def usage():
        calls.append(1)
        return Usage("2026-11", 0, "test")

    groups = [group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB")]
    plan_for(groups, usage=usage, paths_used=None)
    assert len(calls) == 1
    plan_for(groups, new=SITE, usage=usage, paths_used=None)
    assert len(calls) == 1


def test_in_progress_limits_are_per_distribution():
    # EA has 15 wildcards in progress, EB none: only EA's group must do without wildcards.
    usage = Usage("2026-11", 0, "test", 15, 0, in_progress={"EA": (15, 0)})
    many = dict(SITE, **{f"img/p{i}.png": e(f"p{i}") for i in range(40)})
    changed = dict(many, **{f"img/p{i}.png": e(f"q{i}") for i in range(40)})
    p = plan_for([group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB")], old=many, new=changed,
                 usage=usage, paths_used=None, free_paths_per_month=0)
    a, b = p.invalidations
    assert (a.max_wildcards, b.max_wildcards) == (0, 15)
    assert a.solution.wildcards == 0 and len(a.paths) == 40
    assert b.paths == ("/img/p*",)


def test_usage_from_keeps_in_progress_counts_per_distribution():
    at = dt.datetime(2026, 11, 3, tzinfo=dt.UTC)
    account = AccountInvalidations("2026-11", ("EA", "EB", "EC"), (
        InvalidationCount("EA", "1", at, 10, 4, False),
        InvalidationCount("EB", "2", at, 3, 1, False),
        InvalidationCount("EB", "3", at, 5, 5, True),  # completed: holds nothing back
        InvalidationCount("EC", "4", at, 7, 7, False),  # not a target
    ))
    u = usage_from(account, ("EA", "EB"))
    assert u.in_progress == {"EA": (4, 6), "EB": (1, 2)}
    assert u.in_progress_on(("EA", "EB")) == (4, 6)  # the busiest, not the sum (5, 8)
    assert u.in_progress_on(("EB",)) == (1, 2)
    assert u.in_progress_on(("EZ",)) == (0, 0)


# --- grouping ----------------------------------------------------------------------------------


@dataclass
class _Target:
    uri: str = TARGET
    prefix: str = "site/"


class _Backend:
    """Just what url_groups_for reads: the target and each distribution's view."""

    def __init__(self, views: dict[str, Any]) -> None:
        self.target = _Target()
        self.views = views

    def distributions(self, dists):
        return {d: Distribution(d, f"{d.lower()}.cloudfront.net", (), self.views[d],
                                ("bucket.s3.amazonaws.com",)) for d in dists}


def _config(origin_path: str) -> dict[str, Any]:
    return {
        "Origins": {"Items": [{"Id": "s3", "DomainName": "bucket.s3.amazonaws.com",
                               "OriginPath": origin_path}]},
        "DefaultCacheBehavior": {"TargetOriginId": "s3"},
        "DefaultRootObject": "index.html",
    }


def test_distributions_are_grouped_by_how_they_serve_the_target_in_the_order_given():
    views = {d: served(_config(p), "bucket") for d, p in
             [("E1", "/site"), ("E2", ""), ("E3", "/site/"), ("E4", "/site/docs")]}
    groups = url_groups_for(_Backend(views), Options(distribution_ids=("E2", "E1", "E4", "E3")))
    assert [g.distribution_ids for g in groups] == [("E2",), ("E1", "E3"), ("E4",)]
    assert [g.url_map("js/app.js") for g in groups] == [("/site/js/app.js",), ("/js/app.js",), ()]
    assert groups[2].url_map("docs/a.html") == ("/a.html",)  # E4 serves a part of the target


@pytest.mark.parametrize(
    ("view", "why"),
    [
        # No origin is the bucket (a custom origin, another bucket).
        (None, "none of its origins is the bucket"),
        # The bucket, but under another prefix than the target's (site/).
        (served(_config("/blog"), "bucket"), "its origin paths lie outside the target's prefix"),
        (served(_config("/sitemap"), "bucket"), "its origin paths lie outside the target's prefix"),
    ],
)
def test_a_distribution_that_serves_nothing_of_the_target_is_refused_unless_url_prefix(view, why):
    backend = _Backend({"E1": served(_config("/site"), "bucket"), "E9": view})
    with pytest.raises(BadTarget, match=why) as exc:
        url_groups_for(backend, Options(distribution_ids=("E1", "E9")))
    assert str(exc.value).startswith("distribution E9 (e9.cloudfront.net) does not serve s3://")
    # --url-prefix says where the target is served: taken as said.
    opts = Options(distribution_ids=("E1", "E9"), url_prefix="/")
    assert url_groups_for(backend, opts) == (UrlGroup(("E1", "E9")),)


def test_url_prefix_puts_every_distribution_in_one_group():
    views = {"E1": served(_config("/site"), "bucket"), "E2": served(_config(""), "bucket")}
    opts = Options(distribution_ids=("E1", "E2"), url_prefix="/")
    assert url_groups_for(_Backend(views), opts) == (UrlGroup(("E1", "E2")),)


# --- a property: every group covers its changes, and the groups' paid paths add up ---------------

_DIRS = ("", "a/", "a/b/", "c/")


@st.composite
def _sites(draw):
    names = draw(st.lists(st.sampled_from([f"{d}f{i}.css" for d in _DIRS for i in range(6)]),
                          min_size=1, max_size=18, unique=True))
    old = {n: e(f"o{i}") for i, n in enumerate(names)}
    changed = draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True))
    new = dict(old, **{n: e(f"n{i}") for i, n in enumerate(changed)})
    return old, new, set(changed)


def _groups_of(sizes: list[int]) -> list[UrlGroup]:
    """One group per size, each of that many distributions, each layout its own."""
    views = [BUCKET_ROOT, SITE_ROOT, JS_ELSEWHERE]
    return [group(v, *(f"E{i}{j}" for j in range(k))) for i, (v, k) in enumerate(zip(views, sizes))]


@settings(max_examples=150, deadline=None)
@given(
    site=_sites(),
    free=st.integers(0, 12),
    sizes=st.lists(st.integers(1, 3), min_size=1, max_size=3),
    miss=st.sampled_from([0.0, 0.001, 1.0]),
)
def test_every_group_covers_its_changed_urls_and_paid_paths_add_up(site, free, sizes, miss):
    old, new, changed = site
    groups = _groups_of(sizes)
    p = plan_for(groups, old=old, new=new, free_paths_per_month=free, pace="none", miss_cost=miss)
    for g, inv in zip(groups, p.invalidations):
        assert inv.distribution_ids == g.distribution_ids
        for key in changed:
            for url in g.url_map(key):
                assert any(covers(path, url) for path in inv.paths), (url, inv.paths)
    billed = sum(len(inv.paths) * len(inv.distribution_ids) for inv in p.invalidations)
    assert sum(inv.solution.paid_paths for inv in p.invalidations) == max(0, billed - free)


# --- the pending record ------------------------------------------------------------------------


def test_a_pending_record_keeps_each_distributions_paths():
    p = plan_for([group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB", "EC")])
    j = Journal("d", "prev", ("js/app.js",), (), record=None,
                **journal_invalidations(p.invalidations))
    doc = json.loads(j.dumps())
    # No plain "paths": a version that knows only one list refuses the record as malformed
    # instead of finishing it without the other distributions' paths.
    assert "paths" not in doc
    assert doc["per_distribution"] == [
        ["EA", ["/site/img/logo.svg", "/site/js/app.js"]],
        ["EB", ["/img/logo.svg", "/js/app.js"]],
        ["EC", ["/img/logo.svg", "/js/app.js"]],
    ]
    back = Journal.loads(j.dumps())
    assert back == j
    assert back.submissions() == (
        ("EA", ("/site/img/logo.svg", "/site/js/app.js")),
        ("EB", ("/img/logo.svg", "/js/app.js")),
        ("EC", ("/img/logo.svg", "/js/app.js")),
    )
    assert back.path_count == 6


def test_a_pending_record_of_one_group_keeps_the_earlier_shape():
    p = plan_for([group(SITE_ROOT, "EB", "EC")])
    j = Journal("d", "prev", (), (), **journal_invalidations(p.invalidations))
    doc = json.loads(j.dumps())
    assert doc["paths"] == ["/img/logo.svg", "/js/app.js"] and "per_distribution" not in doc
    assert [d for d, _ in Journal.loads(j.dumps()).submissions()] == ["EB", "EC"]


def test_a_group_with_nothing_to_invalidate_submits_nothing():
    blog = Served((("s3", "blog/"),), (), "s3", "")
    p = plan_for([group(blog, "EBLOG"), group(SITE_ROOT, "EB")])
    j = Journal("d", "prev", (), (), **journal_invalidations(p.invalidations))
    assert [d for d, _ in j.submissions()] == ["EB"]


# --- the ledger ----------------------------------------------------------------------------------

START = dt.datetime(2026, 11, 5, 12, 0, tzinfo=dt.UTC)
END = START + dt.timedelta(minutes=1)


def test_the_ledger_sums_each_distributions_own_counts():
    p = plan_for([group(JS_ELSEWHERE, "EA"), group(SITE_ROOT, "EB", "EC")],
                 paths_used=999, free_paths_per_month=1000, miss_cost=1.0)
    d = ledger.draft(p, START)
    assert d["distribution_ids"] == ["EA", "EB", "EC"]
    assert d["changed_urls"] == 1 + 2  # EA serves only the logo
    done = ledger.complete(d, {"EA": "I1", "EB": "I2", "EC": "I3"}, END, False)
    assert done["paths"] == 1 + 2 * 2
    assert done["paid_paths"] == 5 - 1  # one free path was left
    assert done["dollars"] == pytest.approx(4 * 0.005)
    assert done["alternatives"]["wildcard_all"]["paths"] == 3
    assert done["alternatives"]["exact_paths"]["paths"] == 1 + 2 * 2
    # A distribution that could not be invalidated (deleted since) is not counted.
    part = ledger.complete(d, {"EB": "I2", "EC": "I3"}, END, False)
    assert part["paths"] == 4


# --- saved plans -------------------------------------------------------------------------------


def test_a_saved_plan_keeps_every_group_and_applies_their_paths():
    groups = [group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB")]
    p = plan_for(groups)
    kept = saved.load(saved.dumps(p, Options(distribution_ids=("EA", "EB"))), "plan.json")
    # Made again later, with the free paths gone: the saved paths are applied as saved.
    later = plan_for(groups, paths_used=5000, miss_cost=0.0)
    assert later.invalidations[1].paths == ("/*",)
    back = kept.accept(later)
    assert [inv.paths for inv in back.invalidations] == [inv.paths for inv in p.invalidations]


def test_a_saved_plan_is_refused_when_the_distributions_group_differently():
    p = plan_for([group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB")])
    kept = saved.load(saved.dumps(p, Options(distribution_ids=("EA", "EB"))), "plan.json")
    alike = plan_for([group(SITE_ROOT, "EA", "EB")])
    with pytest.raises(saved.BadSavedPlan, match="serve the target differently"):
        kept.accept(alike)


def test_a_plan_saved_before_groups_existed_is_refused_as_format_1():
    """A plan of format 1 (no checksum; the oldest also without "invalidations") is refused,
    with a line saying to make it again (planner.plan.saved says why)."""
    p = plan_for([group(SITE_ROOT, "EB")])
    doc = json.loads(saved.dumps(p, Options(distribution_ids=("EB",))))
    del doc["plan"]["invalidations"], doc["checksum"]
    doc["version"] = 1
    with pytest.raises(saved.BadSavedPlan, match=r"^plan.json was written by an earlier version "
                       r"of planner \(plan format 1, without a checksum\); make the plan again$"):
        saved.load(json.dumps(doc).encode(), "plan.json")


# --- sharing the free paths where they save the most ---------------------------------------------


def _two_groups_that_compete():
    """Group A serves c0..c9 and "c": its free best is 10 exact paths, though one wildcard
    (/a/c*) would cost a single needless miss. Group B serves c0..c9 and, under each, 100
    unchanged pages: every wildcard there costs 100 misses or more."""
    keys = ["c"] + [f"c{i}" for i in range(10)] + [f"c{i}-{j}" for i in range(10) for j in range(100)]
    old = {k: e(f"o{n}") for n, k in enumerate(keys)}
    new = dict(old, **{f"c{i}": e(f"n{i}") for i in range(10)})
    a = UrlGroup(("EA",), lambda k: () if "-" in k else (f"/a/{k}",))
    b = UrlGroup(("EB",), lambda k: () if k == "c" else (f"/b/{k}",))
    return old, new, [a, b]


def test_free_paths_go_where_they_save_the_most_misses():
    old, new, groups = _two_groups_that_compete()
    p = plan_for(groups, old=old, new=new, free_paths_per_month=11, pace="none")
    a, b = p.invalidations
    # In order, A would take 10 free paths and leave B to pay or to wildcard 900+ pages.
    assert a.paths == ("/a/c*",) and a.solution.collateral_urls == 1
    assert b.paths == tuple(f"/b/c{i}" for i in range(10))
    assert (a.free_paths, b.free_paths) == (11, 10)
    assert a.solution.paid_paths + b.solution.paid_paths == 0
    assert a.solution.cost_usd + b.solution.cost_usd == pytest.approx(0.005 / 1000)


def _in_order_cost(groups, p, options):
    """What splitting the allowance in the order given alone would cost."""
    from planner.plan.compute import plan_invalidation

    total, spent = 0.0, 0
    for g in groups:
        alone = plan_invalidation(
            frozenset(u for k in p.manifest.entries for u in g.url_map(k)),
            frozenset(u for up in p.uploads for u in g.url_map(up.key)),
            g.distribution_ids, options, None, "r", spent=spent)
        total += alone.solution.cost_usd
        spent += len(alone.paths) * len(g.distribution_ids)
    return total


@settings(max_examples=100, deadline=None)
@given(
    site=_sites(),
    free=st.integers(0, 12),
    sizes=st.lists(st.integers(1, 3), min_size=2, max_size=3),
    miss=st.sampled_from([0.001, 0.0001, 0.00001]),
)
def test_sharing_the_free_paths_never_costs_more_than_the_order_given(site, free, sizes, miss):
    old, new, _ = site
    groups = _groups_of(sizes)
    opts = dict(free_paths_per_month=free, pace="none", miss_cost=miss, paths_used=0)
    p = plan_for(groups, old=old, new=new, **opts)
    options = Options(distribution_ids=p.distribution_ids, **opts)
    shared = sum(inv.solution.cost_usd for inv in p.invalidations)
    assert shared <= _in_order_cost(groups, p, options) + 1e-12


def test_a_saved_plan_is_refused_when_its_paths_would_miss_a_url_that_changed():
    p = plan_for([group(BUCKET_ROOT, "EA"), group(SITE_ROOT, "EB")])
    kept = saved.load(saved.dumps(p, Options(distribution_ids=("EA", "EB"))), "plan.json")
    js_root = Served((("s3", "site/js/"),), (), "s3", "")  # EB now serves site/js/ at /
    moved = plan_for([group(BUCKET_ROOT, "EA"), group(js_root, "EB")])
    with pytest.raises(saved.BadSavedPlan, match="no longer invalidate /app.js on EB"):
        kept.accept(moved)
