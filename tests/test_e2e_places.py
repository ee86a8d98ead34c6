"""Targets and state places apart, end to end: no command ever deletes or overwrites another
target's state or site, wherever its state is kept (``--state`` included).

Through the CLI (``python -m planner``) on local folders, then against the moto server:

(a) a ``--state`` place inside another target's site is refused; a state place found inside a
    target (made there by an older version, with or without its marker) is never an extra of
    ``verify --repair --delete-extra``, and a takeover of that target is refused;
(b) a ``--target`` that is another target's state place, or lies inside it, is refused (also
    a state place written before markers existed);
(c) a target whose state is apart is seen by a target made inside it, and the other way round;
(d) a deploy of a target that has a manifest never writes or deletes under a folder holding
    another target (made there by an older version), whatever its state place;
(e) a lost manifest with only a pending record says so, in one line, and is taken over;
(f) the earlier deploys that line counts are deploys, not repairs.

Each refusal is one ``Error:`` line, a non-zero exit, and nothing written anywhere (every file
and folder, or the versioned bucket's history, compared before and after). The matrix of
one-line refusals against S3 is in test_bad_input.py; the pure guards in test_places.py.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path

import pytest
from e2e_helpers import (
    SITE,
    body,
    create_distribution,
    history,
    objects,
    one_line_error,
    run,
    run_json,
    write_site,
)

from manifests import Manifest
from planner.core.places import SITE_MARK, STATE_MARK

pytestmark = pytest.mark.e2e

PAGE = "docs/café menu.html"


def env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("PLANNER_")}


def cli(*args: str) -> object:
    return run([*args], env())


def ok(*args: str) -> str:
    proc = run([*args], env())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def tree(root: Path) -> dict[str, bytes | None]:
    """Every file (its bytes) and folder (None) below ``root``: a refused command changes
    none of them."""
    out: dict[str, bytes | None] = {}
    for here, dirs, files in os.walk(root):
        for name in dirs:
            out[os.path.relpath(os.path.join(here, name), root)] = None
        for name in files:
            path = os.path.join(here, name)
            out[os.path.relpath(path, root)] = Path(path).read_bytes()
    return out


def refused(root: Path, *args: str) -> str:
    """Run a command that must be refused: its one error line; nothing below ``root``
    changed."""
    before = tree(root)
    line = one_line_error(cli(*args))
    assert tree(root) == before, "a refused command wrote or removed something"
    return line


def builds(tmp: Path) -> tuple[Path, Path]:
    """Two builds: ``a`` (the site of the tests) and ``b`` (another site)."""
    return (write_site(tmp / "build-a", SITE),
            write_site(tmp / "build-b", {"index.html": "<h1>B</h1>\n", "b.css": "b{}\n"}))


def manifest_of(state: Path) -> Manifest:
    return Manifest.loads((state / "manifest.json.gz").read_bytes())


def older_version(state: Path) -> None:
    """Make ``state`` look like a state place written before markers existed."""
    shutil.rmtree(state / ".planner")


# --- (a) a state place inside another target's site -------------------------------------------


def test_a_state_place_inside_another_targets_site_is_refused(tmp_path):
    a, b = builds(tmp_path)
    ok("deploy", str(a), "-t", str(tmp_path / "A"), "-q")
    line = refused(tmp_path, "deploy", str(b), "-t", str(tmp_path / "B"),
                   "--state", str(tmp_path / "A" / "stateB"))
    assert line == (f"Error: --state file://{tmp_path}/A/stateB lies inside the target "
                    f"file://{tmp_path}/A, whose deploys own every key under it; keep the state "
                    "in a place apart from every site")
    # Nor under a target whose own state is apart (only its marker is in it).
    ok("deploy", str(a), "-t", str(tmp_path / "C"), "--state", str(tmp_path / "stateC"), "-q")
    line = refused(tmp_path, "plan", str(b), "-t", str(tmp_path / "B"),
                   "--state", str(tmp_path / "C" / "docs" / "stateB"))
    assert f"lies inside the target file://{tmp_path}/C," in line


@pytest.mark.parametrize("marked", [True, False], ids=["marked", "before-markers"])
def test_state_places_found_inside_a_target_are_never_its_extras_nor_taken_over(tmp_path, marked):
    """B's state place ends up inside A (an older version let it be made there): `verify
    --repair --delete-extra` of A leaves it whole, and a takeover of A is refused."""
    a, b = builds(tmp_path)
    A, B = tmp_path / "A", tmp_path / "B"
    ok("deploy", str(a), "-t", str(A), "-q")
    ok("deploy", str(b), "-t", str(B), "--state", str(tmp_path / "stateB"), "-q")
    shutil.move(tmp_path / "stateB", A / "stateB")
    if not marked:
        older_version(A / "stateB")
    theirs = tree(A / "stateB")
    assert "manifest.json.gz" in theirs and any(k.startswith("ledger/") for k in theirs)
    (A / "stray.html").write_text("ours to delete")

    out = ok("verify", "-t", str(A), "--repair", str(a), "--delete-extra")
    assert ("stateB/ holds the state of another target (its manifest, ledger and lock): "
            "left out") in out
    assert "stray.html" in out and not (A / "stray.html").exists()
    assert tree(A / "stateB") == theirs  # nothing of B's state deleted
    assert manifest_of(A / "stateB").target == f"file://{B}"

    # A without its manifest: a takeover would delete B's state as orphans; refused.
    (A / ".planner" / "manifest.json.gz").unlink()
    for command in ("plan", "deploy"):
        line = refused(tmp_path, command, str(a), "-t", str(A))
        assert line == (f"Error: file://{A} holds the state place of another target at stateB/ "
                        "(its manifest, ledger and lock); a target may not contain another "
                        "one's state: keep the state apart from every site")


# --- (b) a target on another target's state place ---------------------------------------------


def test_a_target_that_is_or_lies_in_another_targets_state_place_is_refused(tmp_path):
    a, b = builds(tmp_path)
    B, state = tmp_path / "B", tmp_path / "stateB"
    ok("deploy", str(b), "-t", str(B), "--state", str(state), "-q")
    assert (state / STATE_MARK).is_file() and (B / SITE_MARK).is_file()
    line = refused(tmp_path, "deploy", str(a), "-t", str(state))
    assert line == (f"Error: file://{state} is the state place of file://{B} (its "
                    ".planner/state.json says so); its manifest, ledger and lock would be "
                    "taken for site objects: deploy to a place of its own")
    line = refused(tmp_path, "deploy", str(a), "-t", str(state / "site"))
    assert line == (f"Error: file://{state}/site lies inside the state place file://{state} of "
                    f"file://{B}, which holds a manifest, ledger and lock; deploy to a place "
                    "outside it")
    # A state place written before markers existed: known by its manifest and ledger.
    older_version(state)
    line = refused(tmp_path, "deploy", str(a), "-t", str(state))
    assert line == (f"Error: file://{state} holds the state objects of another target "
                    "(manifest.json.gz and its ledger): it is a state place; deploy to a place "
                    "of its own")
    assert "no changes" in ok("plan", str(b), "-t", str(B), "--state", str(state))


# --- (c) a target whose state is apart, and a target inside it --------------------------------


def test_a_target_with_its_state_apart_is_seen_by_a_target_inside_it_and_around_it(tmp_path):
    a, b = builds(tmp_path)
    outer, inner = tmp_path / "O", tmp_path / "O" / "docs"
    ok("deploy", str(a), "-t", str(outer), "--state", str(tmp_path / "stateO"), "-q")
    line = refused(tmp_path, "deploy", str(b), "-t", str(inner))
    assert line == (f"Error: file://{inner} lies inside the target file://{outer} "
                    f"(file://{outer}/.planner/ marks it), whose deploys own every key under "
                    "it; deploy to a place outside it")
    refused(tmp_path, "deploy", str(b), "-t", str(inner), "--state", str(tmp_path / "stateI"))
    assert (outer / PAGE).read_text() == SITE[PAGE]

    # The other way round: the inner one first (its state apart too), then the outer one.
    outer2, inner2 = tmp_path / "P", tmp_path / "P" / "docs"
    ok("deploy", str(b), "-t", str(inner2), "--state", str(tmp_path / "stateI2"), "-q")
    line = refused(tmp_path, "deploy", str(a), "-t", str(outer2),
                   "--state", str(tmp_path / "stateP"))
    assert line == (f"Error: file://{outer2} holds another target at docs/ (marked by "
                    "docs/.planner/); a target may not contain another one: deploy the two to "
                    "places apart (sibling prefixes, served by origin paths or behaviors)")
    assert (inner2 / "index.html").read_text() == "<h1>B</h1>\n"


# --- (d) a deploy never writes or deletes under a nested target --------------------------------


@pytest.mark.parametrize("inner_state", ["own", "apart"])
def test_a_deploy_never_writes_or_deletes_under_a_nested_target(tmp_path, inner_state):
    """A target inside this one (made by an older version, which did not look): this one has
    a manifest, so it never lists itself; it looks at every folder it would write or delete
    in."""
    a, b = builds(tmp_path)
    D = tmp_path / "D"
    ok("deploy", str(a), "-t", str(D), "-q")
    state = ["--state", str(tmp_path / "stateI")] if inner_state == "apart" else []
    ok("deploy", str(b), "-t", str(tmp_path / "I"), *state, "-q")
    for here, _, files in os.walk(tmp_path / "I"):  # what the older version left in D/docs/
        for name in files:
            rel = Path(here, name).relative_to(tmp_path / "I")
            (D / "docs" / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(Path(here, name), D / "docs" / rel)

    (a / PAGE).write_text("<h1>Menu, v2</h1>\n")  # D's page inside the nested target
    line = refused(tmp_path, "deploy", str(a), "-t", str(D))
    assert line == (f"Error: file://{D} holds another target at docs/ (marked by docs/.planner/), "
                    f"and this deploy would write {PAGE} there; a target may not contain "
                    "another one: deploy the two to places apart")
    (a / PAGE).unlink()  # D's build no longer has it: its deploy would delete it there
    line = refused(tmp_path, "deploy", str(a), "-t", str(D))
    assert f"and this deploy would delete {PAGE} there" in line
    # A change elsewhere deploys, and leaves the nested target alone.
    write_site(a, {PAGE: SITE[PAGE], "index.html": "<h1>Home, v2</h1>\n"})
    nested = tree(D / "docs")
    ok("deploy", str(a), "-t", str(D), "-q")
    assert (D / "index.html").read_text() == "<h1>Home, v2</h1>\n"
    assert tree(D / "docs") == nested


# --- (e), (f) the line of a lost manifest -------------------------------------------------------


def test_a_lost_manifest_with_only_a_pending_record_says_so_and_is_taken_over(tmp_path):
    """The first deploy stopped after its pending record and one upload (no manifest, no
    ledger record): the next one says so in one line and takes over what is there."""
    from test_apply_faults import Counter, Crash, FailingBackend
    from test_apply_faults import deploy as deploy_in_process

    from planner.backends import LocalBackend
    from planner.backends.targets import LocalTarget

    a, _ = builds(tmp_path)
    T = tmp_path / "T"
    with pytest.raises(Crash):
        deploy_in_process(str(a), str(T), FailingBackend(LocalBackend(LocalTarget(str(T))),
                                                         Counter(fail_at=2)))
    pending = json.loads((T / ".planner" / "pending.json").read_bytes())
    assert not (T / ".planner" / "manifest.json.gz").exists()
    assert not (T / ".planner" / "ledger").exists()
    doc = run_json(["plan", str(a), "-t", str(T)], env())
    assert doc["takeover"]["reason"] == (
        f"the manifest is missing although deploy {pending['deploy_id']} left a pending record: "
        "taking over what the target holds")
    out = ok("deploy", str(a), "-t", str(T))
    assert (f"the manifest is missing although deploy {pending['deploy_id']} left a pending "
            "record: taking over what the target holds") in out
    assert "previous none (first deploy)" not in out
    assert set(manifest_of(T / ".planner").entries) == set(SITE)
    assert "no drift" in ok("verify", "-t", str(T))


def test_the_earlier_deploys_of_a_lost_manifest_are_deploys_not_repairs(tmp_path):
    a, _ = builds(tmp_path)
    T = tmp_path / "T"
    ok("deploy", str(a), "-t", str(T), "-q")
    (T / "about" / "index.html").unlink()
    ok("verify", "-t", str(T), "--repair", str(a))  # a repair: its own ledger record
    records = sorted(p.name for p in (T / ".planner" / "ledger").rglob("*.json"))
    assert len(records) == 2 and sum("-repair-" in r for r in records) == 1
    (T / ".planner" / "manifest.json.gz").unlink()
    out = ok("plan", str(a), "-t", str(T))
    assert ("the manifest is missing although the ledger records 1 earlier deploy: taking over "
            "what the target holds") in out


# --- the state place given, or forgotten ------------------------------------------------------


def test_a_target_with_its_state_apart_is_refused_without_it_or_with_another(tmp_path):
    a, _ = builds(tmp_path)
    T, state = tmp_path / "T", tmp_path / "state"
    ok("deploy", str(a), "-t", str(T), "--state", str(state), "-q")
    mark = json.loads((T / SITE_MARK).read_bytes())
    assert mark == {"planner": "target", "state": "kept in a place of its own (--state)"}
    for command in (("plan", str(a)), ("deploy", str(a)), ("verify",)):
        line = refused(tmp_path, *command, "-t", str(T))
        assert line == (f"Error: file://{T} keeps its state in a place of its own "
                        f"(file://{T}/.planner/target.json says so): give it with --state (or "
                        "state = ... in the target's table of planner.toml)")
    # A target whose state is still in its own .planner/, given a new --state: move it first.
    U = tmp_path / "U"
    ok("deploy", str(a), "-t", str(U), "-q")
    line = refused(tmp_path, "deploy", str(a), "-t", str(U), "--state", str(tmp_path / "new"))
    assert line == (f"Error: file://{U} keeps its state in file://{U}/.planner/ (its manifest is "
                    f"there), not in --state file://{tmp_path}/new: move it there first with "
                    f"`planner move-state --target file://{U} --state file://{tmp_path}/new`")


def test_state_goes_only_to_a_place_of_its_own_and_a_move_unmarks_the_old_one(tmp_path):
    a, b = builds(tmp_path)
    T = tmp_path / "T"
    ok("deploy", str(a), "-t", str(T), "-q")
    junk = write_site(tmp_path / "junk", {"notes.txt": "mine"})
    line = refused(tmp_path, "move-state", "-t", str(T), "--state", str(junk))
    assert line == (f"Error: --state file://{junk} holds notes.txt, which is not state of "
                    f"file://{T}: a state place holds nothing else; choose an empty place")
    ok("deploy", str(b), "-t", str(tmp_path / "B"), "--state", str(tmp_path / "stateB"), "-q")
    line = refused(tmp_path, "move-state", "-t", str(T), "--state", str(tmp_path / "stateB"))
    assert line == (f"Error: --state file://{tmp_path}/stateB holds the state of "
                    f"file://{tmp_path}/B, not of file://{T}; choose a place of its own")
    ok("move-state", "-t", str(T), "--state", str(tmp_path / "s1"))
    ok("move-state", "-t", str(T), "--from", str(tmp_path / "s1"), "--state", str(tmp_path / "s2"))
    assert not (tmp_path / "s1" / ".planner").exists()  # no longer a state place
    assert json.loads((tmp_path / "s2" / STATE_MARK).read_bytes())["target"] == f"file://{T}"
    assert "no changes" in ok("plan", str(a), "-t", str(T), "--state", str(tmp_path / "s2"))


# --- against S3 (the moto server) ---------------------------------------------------------------


def deploy_s3(moto, build: Path, target: str, *extra: str) -> None:
    proc = run(["deploy", str(build), "-t", target, "-q", *extra], moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def refused_s3(moto, bucket: str, *args: str) -> str:
    before = history(moto.s3, bucket)
    line = one_line_error(run([*args], moto.env, moto.cwd))
    assert history(moto.s3, bucket) == before, "a refused command wrote or deleted an object"
    return line


def test_s3_a_state_place_inside_another_target_is_refused_and_never_its_extra(
    moto, site, tmp_path
):
    a, b = builds(tmp_path)
    bucket = site.bucket
    A, B = f"s3://{bucket}/A", f"s3://{bucket}/B"
    deploy_s3(moto, a, A)
    line = refused_s3(moto, bucket, "deploy", str(b), "-t", B, "--state", f"{A}/stateB")
    assert line == (f"Error: --state {A}/stateB lies inside the target {A}, whose deploys own "
                    "every key under it; keep the state in a place apart from every site")
    # One made there by an older version (no marker), and one with its marker.
    deploy_s3(moto, b, B, "--state", f"s3://{bucket}/ops/stateB")
    for key, item in objects(moto.s3, bucket, "ops/stateB/").items():
        data = body(moto.s3, bucket, f"ops/stateB/{key}")
        moto.s3.put_object(Bucket=bucket, Key=f"A/marked/{key}", Body=data)
        if not key.startswith(".planner/"):
            moto.s3.put_object(Bucket=bucket, Key=f"A/older/{key}", Body=data)
    theirs = {k: v["ETag"] for k, v in objects(moto.s3, bucket, "A/").items()
              if k.startswith(("marked/", "older/"))}
    moto.s3.put_object(Bucket=bucket, Key="A/stray.html", Body=b"ours to delete")
    proc = run(["verify", "-t", A, "--repair", str(a), "--delete-extra"], moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for prefix in ("marked/", "older/"):
        assert f"{prefix} holds the state of another target" in proc.stdout
    held = objects(moto.s3, bucket, "A/")
    assert "stray.html" not in held
    assert {k: v["ETag"] for k, v in held.items() if k.startswith(("marked/", "older/"))} == theirs
    # A without its manifest: its takeover would delete them as orphans; refused.
    moto.s3.delete_object(Bucket=bucket, Key="A/.planner/manifest.json.gz")
    line = refused_s3(moto, bucket, "deploy", str(a), "-t", A)
    assert line == (f"Error: {A} holds the state place of another target at marked/ (its "
                    "manifest, ledger and lock); a target may not contain another one's state: "
                    "keep the state apart from every site")


def test_s3_a_target_on_another_targets_state_place_is_refused(moto, site, tmp_path):
    a, b = builds(tmp_path)
    bucket = site.bucket
    B, state = f"s3://{bucket}/B", f"s3://{bucket}/ops/stateB"
    deploy_s3(moto, b, B, "--state", state)
    assert json.loads(body(moto.s3, bucket, f"ops/stateB/{STATE_MARK}")) == {
        "planner": "state", "target": B}
    assert json.loads(body(moto.s3, bucket, f"B/{SITE_MARK}"))["planner"] == "target"
    line = refused_s3(moto, bucket, "deploy", str(a), "-t", state)
    assert line == (f"Error: {state} is the state place of {B} (its .planner/state.json says "
                    "so); its manifest, ledger and lock would be taken for site objects: "
                    "deploy to a place of its own")
    line = refused_s3(moto, bucket, "deploy", str(a), "-t", f"{state}/www")
    assert line.startswith(f"Error: {state}/www lies inside the state place {state} of {B},")
    # Written before markers existed: the takeover's listing knows it by its objects.
    moto.s3.delete_object(Bucket=bucket, Key=f"ops/stateB/{STATE_MARK}")
    line = refused_s3(moto, bucket, "deploy", str(a), "-t", state)
    assert line == (f"Error: {state} holds the state objects of another target "
                    "(manifest.json.gz and its ledger): it is a state place; deploy to a place "
                    "of its own")
    manifest = Manifest.loads(body(moto.s3, bucket, "ops/stateB/manifest.json.gz"))
    assert manifest.target == B
    plan = run_json(["plan", str(b), "-t", B, "--state", state], moto.env, moto.cwd)
    assert plan["uploads"] == []


@pytest.mark.parametrize("folders", [2, 80], ids=["looked-at-one-by-one", "listed"])
def test_s3_a_deploy_never_writes_or_deletes_under_a_nested_target(moto, site, tmp_path, folders):
    """The outer target has a manifest: it looks at each folder it would write or delete in
    (more than OWNED_PROBES of them: one listing instead)."""
    pages = {f"f{i:03}/index.html": f"<p>{i}</p>\n" for i in range(folders - 1)}
    a = write_site(tmp_path / "build-a", {**SITE, **pages})
    bucket = site.bucket
    deploy_s3(moto, a, site.target(), "-d", site.distribution_id)
    # A target made inside it by an older version: its state and its page over ours.
    nested = {"docs/.planner/manifest.json.gz": gzip.compress(b"theirs"),
              PAGE: b"<h1>their menu</h1>\n"}
    for key, data in nested.items():
        moto.s3.put_object(Bucket=bucket, Key=key, Body=data)
    write_site(a, {PAGE: "<h1>Menu, v2</h1>\n",
                   **{k: v.replace("<p>", "<p>v2 ") for k, v in pages.items()}})
    args = ["deploy", str(a), "-t", site.target(), "-d", site.distribution_id]
    line = refused_s3(moto, bucket, *args)
    assert line == (f"Error: s3://{bucket} holds another target at docs/ (marked by "
                    f"docs/.planner/), and this deploy would write {PAGE} there; a target may "
                    "not contain another one: deploy the two to places apart")
    (a / PAGE).unlink()
    line = refused_s3(moto, bucket, *args)
    assert f"and this deploy would delete {PAGE} there" in line
    assert all(body(moto.s3, bucket, k) == v for k, v in nested.items())
    # A deploy that touches nothing there goes on.
    write_site(a, {PAGE: SITE[PAGE]})
    proc = run(args, moto.env, moto.cwd)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert all(body(moto.s3, bucket, k) == v for k, v in nested.items())


def test_s3_a_target_inside_one_whose_state_is_apart_is_refused(moto, site, tmp_path):
    a, b = builds(tmp_path)
    bucket = site.bucket
    moto.s3.create_bucket(Bucket="planner-ops")
    deploy_s3(moto, a, f"s3://{bucket}/O", "--state", "s3://planner-ops/o")
    line = refused_s3(moto, bucket, "deploy", str(b), "-t", f"s3://{bucket}/O/docs")
    assert line.startswith(f"Error: s3://{bucket}/O/docs lies inside the target s3://{bucket}/O ")
    dist = create_distribution(moto.cloudfront, bucket, "/O")
    assert run(["plan", str(a), "-t", f"s3://{bucket}/O", "--state", "s3://planner-ops/o",
                "-d", dist], moto.env, moto.cwd).returncode == 0
