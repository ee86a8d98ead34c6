"""compute_plan is pure: these tests feed it manifests and entries directly."""

import pytest

from manifests import Entry, Manifest
from planner.errors import BadSite, TooManyDeletes
from planner.plan.compute import Options, TargetState, compute_plan, deploy_id_for
from planner.plan.journal import Journal

TARGET = "s3://bucket"


def e(h: str, ctype: str = "text/html; charset=utf-8", cc: str = "cc", size: int = 10) -> Entry:
    return Entry(h.ljust(32, "0"), size, ctype, cc)


CSS = "text/css; charset=utf-8"
SITE = {
    "index.html": e("1"),
    "about/index.html": e("2"),
    "css/site.css": e("3", CSS),
    "img/a.png": e("4", "image/png"),
}


def plan_for(old, new, journal=None, **opts):
    previous = None
    if old is not None:
        previous = Manifest(old, target=TARGET, deploy_id="prev")
    return compute_plan(
        site="/site",
        target=TARGET,
        state=TargetState(previous, "etag" if old is not None else None, journal),
        entries=dict(new),
        options=Options(**opts),
        tool_version="test",
    )


def test_first_deploy_uploads_everything_and_invalidates_nothing():
    p = plan_for(None, SITE)
    assert {u.key for u in p.uploads} == set(SITE)
    assert {u.reason for u in p.uploads} == {"new"}
    assert p.invalidation.paths == ()
    assert p.previous_deploy_id is None and p.deploy_id


def test_assets_are_uploaded_before_pages():
    p = plan_for(None, SITE)
    kinds = [u.content_type.startswith("text/html") for u in p.uploads]
    assert kinds == sorted(kinds)  # all False (assets) before all True (pages)


def test_unchanged_build_does_nothing_and_keeps_the_deploy_id():
    p = plan_for(SITE, SITE)
    assert p.uploads == () and p.deletes == () and p.invalidation.paths == ()
    assert not p.has_work
    assert p.deploy_id == "prev"


def test_modified_page_is_uploaded_and_both_url_forms_invalidated():
    new = dict(SITE, **{"about/index.html": e("9")})
    p = plan_for(SITE, new)
    assert [(u.key, u.reason) for u in p.uploads] == [("about/index.html", "changed")]
    assert p.invalidation.paths == ("/about/*",)  # both URL forms, nothing else
    assert p.invalidation.solution.changed_urls == 2
    assert p.invalidation.solution.collateral_urls == 0


def test_header_change_is_reuploaded_and_invalidated():
    new = dict(SITE, **{"css/site.css": e("3", CSS, cc="no-cache")})
    p = plan_for(SITE, new)
    assert [(u.key, u.reason) for u in p.uploads] == [("css/site.css", "headers")]
    assert p.invalidation.paths == ("/css/site.css",)


def test_deleted_file_is_deleted_and_invalidated():
    new = {k: v for k, v in SITE.items() if k != "img/a.png"}
    p = plan_for(SITE, new)
    assert p.deletes == ("img/a.png",)
    assert p.invalidation.paths == ("/img/a.png",)


def test_added_file_is_not_invalidated_unless_asked():
    new = dict(SITE, **{"new.html": e("5")})
    assert plan_for(SITE, new).invalidation.paths == ()
    assert plan_for(SITE, new, invalidate_added=True).invalidation.paths == ("/new.html",)


def test_no_delete_keeps_removed_files_in_the_manifest():
    new = {k: v for k, v in SITE.items() if k != "img/a.png"}
    p = plan_for(SITE, new, delete=False)
    assert p.deletes == () and p.kept == ("img/a.png",)
    assert "img/a.png" in p.manifest.entries
    assert p.invalidation.paths == ()


def test_too_many_deletes_refuses_the_whole_deploy():
    with pytest.raises(TooManyDeletes, match="--max-deletes 1"):
        plan_for(SITE, {"index.html": SITE["index.html"]}, max_deletes=1)


def test_deletes_at_the_limit_are_allowed():
    p = plan_for(SITE, {"index.html": SITE["index.html"]}, max_deletes=3)
    assert len(p.deletes) == 3


def test_empty_build_is_refused():
    with pytest.raises(BadSite, match="no files"):
        plan_for(SITE, {})


def test_deploy_id_is_deterministic_and_chained():
    m = Manifest(SITE, target=TARGET)
    assert deploy_id_for("a", TARGET, m) == deploy_id_for("a", TARGET, m)
    assert deploy_id_for("a", TARGET, m) != deploy_id_for("b", TARGET, m)
    assert deploy_id_for("a", TARGET, m) != deploy_id_for("a", "s3://other", m)
    p1, p2 = plan_for(SITE, dict(SITE, x=e("7"))), plan_for(SITE, dict(SITE, x=e("7")))
    assert p1.deploy_id == p2.deploy_id
    assert p1.invalidation.caller_reference == f"planner-{p1.deploy_id}"


def test_committed_journal_is_resumed():
    journal = Journal("prev", "older", ("a",), ("gone.html",), ("/gone.html",), ("E1",), "planner-prev")
    p = plan_for(SITE, SITE, journal=journal)
    assert p.resume == journal
    assert not p.has_work


def test_uncommitted_journal_reuploads_and_invalidates_what_it_touched():
    # A deploy based on "prev" uploaded css/site.css and orphan.js, then died before its commit.
    journal = Journal("next", "prev", ("css/site.css", "orphan.js"), (), ("/x",), ("E1",), "r")
    p = plan_for(SITE, SITE, journal=journal)
    assert p.resume is None
    assert [(u.key, u.reason) for u in p.uploads] == [("css/site.css", "unconfirmed")]
    assert p.deletes == ("orphan.js",)
    assert set(p.invalidation.paths) == {"/css/site.css", "/orphan.js"}


def test_cost_counts_every_distribution():
    new = dict(SITE, **{"about/index.html": e("9")})
    p = plan_for(SITE, new, distribution_ids=("E1", "E2"), paths_used=999)
    assert p.invalidation.free_paths == 1
    assert p.invalidation.paths == ("/about/*",)
    assert p.invalidation.solution.paid_paths == 1  # 1 path x 2 distributions - 1 free
    sol = p.invalidation.solution
    assert sol.charge_usd == pytest.approx(0.005)  # what AWS bills
    # the objective: the paid path, and the free one at its shadow price (--pace price)
    assert sol.cost_usd == pytest.approx(sol.charge_usd + sol.shadow_usd)
