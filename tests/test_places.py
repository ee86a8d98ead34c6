"""Targets and state places as a listing sees them, and the guards between them
(planner.core.places): pure, handed keys and what was found around a target. The same guards
end to end (the CLI on local folders and against the moto server) are in
test_e2e_places.py and test_bad_input.py."""

from __future__ import annotations

import json

import pytest

from planner.core.adopt import Stored, split_listing
from planner.core.places import (
    SITE_MARK,
    STATE,
    STATE_MARK,
    TARGET,
    Place,
    Surroundings,
    check_nested,
    check_places,
    check_touched,
    folders_of,
    is_record,
    kind_under,
    mark_document,
    marked_target,
    split_keys,
)
from planner.errors import BadTarget
from planner.ledger import is_deploy_record, record_name

T, S = "s3://b/site", "s3://ops/www"
RECORD = "ledger/2026-12/20261206T001858Z-90cbcda154f96aaef471.json"
REPAIR = "ledger/2026-12/20261206T001859Z-90cbcda154f96aaef471-repair-e452f1cc5d5a1917.json"


def test_every_place_of_the_tool_is_known_by_its_planner_folder_outermost_only():
    keys = [
        "index.html",
        ".planner/manifest.json.gz", ".planner/" + RECORD,  # this target's own state
        "docs/.planner/manifest.json.gz", "docs/index.html",  # a target (its state inside)
        "docs/api/.planner/lock.json",  # inside the nested one: covered by it
        "blog/.planner/target.json", "blog/a.html",  # a target whose state is apart
        "ops/www/.planner/state.json", "ops/www/manifest.json.gz",  # a state place
        "blog-old/.planner-x/a.html",  # not the tool's
    ]
    places, itself = split_keys(keys)
    assert places == {"blog/": TARGET, "docs/": TARGET, "ops/www/": STATE}
    assert itself is None


def test_a_state_place_written_before_its_marker_is_known_by_its_manifest_and_ledger():
    keys = ["old/manifest.json.gz", "old/" + RECORD, "old/lock.json",
            # a site's own precompressed manifest (gzip_static), no ledger beside it: the site's
            "app/manifest.json", "app/manifest.json.gz",
            # a ledger folder of a site, without a manifest: the site's
            "books/ledger/2026-12/20261206T001858Z-x.json"]
    assert split_keys(keys) == ({"old/": STATE}, None)
    listing = split_listing({k: Stored(1, "e") for k in keys})
    assert listing.nested == ("old/",) and listing.states == ("old/",)
    assert "old/manifest.json.gz" not in listing.objects
    assert "app/manifest.json.gz" in listing.objects


@pytest.mark.parametrize("keys", [
    [".planner/state.json", "manifest.json.gz", RECORD],  # marked
    ["manifest.json.gz", RECORD, "lock.json"],  # written before markers existed
])
def test_a_target_whose_own_place_is_a_state_place_is_told(keys):
    assert split_keys(keys)[1] == STATE
    listing = split_listing({k: Stored(1, "e") for k in keys})
    assert listing.itself == STATE
    with pytest.raises(BadTarget, match=r"^s3://b/site holds the state objects of another "
                       r"target \(manifest.json.gz and its ledger\): it is a state place"):
        check_nested(T, listing.kinds, listing.itself)


def test_a_target_that_only_holds_its_own_state_and_site_passes():
    listing = split_listing({k: Stored(1, "e") for k in
                             ["index.html", ".planner/manifest.json.gz", ".planner/" + RECORD,
                              SITE_MARK]})
    assert listing.nested == () and listing.itself is None
    check_nested(T, listing.kinds, listing.itself)


def test_a_nested_target_or_state_place_is_refused_in_one_line_naming_it():
    with pytest.raises(BadTarget, match=r"^s3://b/site holds another target at docs/ \(marked "
                       r"by docs/\.planner/\); a target may not contain another one"):
        check_nested(T, {"docs/": TARGET}, None)
    with pytest.raises(BadTarget, match=r"^s3://b/site holds the state place of another target "
                       r"at stateB/ \(its manifest, ledger and lock\)"):
        check_nested(T, {"stateB/": STATE}, None)


def test_the_kind_of_a_place_is_the_first_name_of_its_planner_folder():
    assert kind_under(STATE_MARK) == STATE
    for first in (".planner/invalidation-counts.json", ".planner/" + RECORD,
                  ".planner/manifest.json.gz", SITE_MARK):
        assert kind_under(first) == TARGET


def test_markers_hold_no_secret_the_sites_says_only_that_its_state_is_elsewhere():
    site = json.loads(mark_document(TARGET))
    assert site == {"planner": "target", "state": "kept in a place of its own (--state)"}
    state = json.loads(mark_document(STATE, T))
    assert state == {"planner": "state", "target": T}
    assert marked_target(mark_document(STATE, T)) == T
    assert marked_target(b"not json") == marked_target(None) == marked_target(b"[1]") == ""


def test_folders_of_keys_are_every_folder_above_them_but_the_root():
    assert folders_of(["index.html", "docs/a/b.html", "docs/c.html", "x/y"]) == [
        "docs/", "docs/a/", "x/"]
    assert folders_of(["index.html"]) == []


AROUND_REFUSED = [
    (Surroundings(above_target=(Place("s3://b", TARGET),)), None,
     r"^s3://b/site lies inside the target s3://b \(s3://b/\.planner/ marks it\), whose deploys "
     r"own every key under it"),
    (Surroundings(above_target=(Place("s3://b", STATE, "s3://x"),)), None,
     r"^s3://b/site lies inside the state place s3://b of s3://x, which holds a manifest"),
    (Surroundings(target_itself=Place(T, STATE, "file:///B")), None,
     r"^s3://b/site is the state place of file:///B \(its \.planner/state\.json says so\)"),
    (Surroundings(above_state=(Place("s3://ops", TARGET),)), S,
     r"^--state s3://ops/www lies inside the target s3://ops, whose deploys own every key"),
    (Surroundings(above_state=(Place("s3://ops", STATE, "s3://c"),)), S,
     r"^--state s3://ops/www lies inside the state place s3://ops of s3://c; choose a place"),
    (Surroundings(state_itself=Place(S, TARGET)), S,
     r"^--state s3://ops/www is the target s3://ops/www \(s3://ops/www/\.planner/ marks it\)"),
    (Surroundings(state_itself=Place(S, STATE, "s3://other")), S,
     r"^--state s3://ops/www holds the state of s3://other, not of s3://b/site"),
    (Surroundings(state_foreign=("index.html", "x/")), S,
     r"^--state s3://ops/www holds index\.html, which is not state of s3://b/site: a state "
     r"place holds nothing else"),
]


@pytest.mark.parametrize(("around", "state", "message"), AROUND_REFUSED)
def test_places_that_overlap_another_targets_site_or_state_are_refused(around, state, message):
    with pytest.raises(BadTarget, match=message):
        check_places(T, state, around)


def test_places_apart_from_every_other_pass():
    check_places(T, None, Surroundings(target_itself=Place(T, TARGET)))  # its own state
    check_places(T, S, Surroundings(target_itself=Place(T, TARGET),
                                    state_itself=Place(S, STATE, T)))  # its own state place
    check_places(T, S, Surroundings(state_itself=Place(S, STATE)))  # a marker unread


def test_a_deploy_that_would_write_or_delete_under_a_nested_place_is_refused():
    check_touched(T, ["docs/a.html"], [], [])
    owned = [Place("docs/", TARGET)]
    check_touched(T, ["docsx/a.html", "index.html"], ["doc.html"], owned)
    with pytest.raises(BadTarget, match=r"^s3://b/site holds another target at docs/ \(marked "
                       r"by docs/\.planner/\), and this deploy would write docs/a\.html there"):
        check_touched(T, ["index.html", "docs/a.html"], [], owned)
    with pytest.raises(BadTarget, match=r"holds the state of another target at st/ .* would "
                       r"delete st/manifest\.json\.gz there"):
        check_touched(T, [], ["st/manifest.json.gz"], [Place("st/", STATE)])


def test_deploy_records_are_told_from_repair_records():
    assert is_record(RECORD) and is_record(REPAIR)
    assert is_deploy_record(RECORD) and not is_deploy_record(REPAIR)
    assert not is_deploy_record("ledger/2026-12/notes.json") and not is_record("x/" + RECORD)
    made = record_name({"started_at": "2026-12-06T00:18:58Z", "deploy_id": "90cbcda154f96aaef471"})
    assert made == RECORD and is_deploy_record(made)
    repair = record_name({"started_at": "2026-12-06T00:18:59Z", "kind": "repair",
                          "deploy_id": "90cbcda154f96aaef471", "repair_id": "e452f1cc5d5a1917"})
    assert repair == REPAIR and not is_deploy_record(repair)
