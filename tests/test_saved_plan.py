"""End to end: ``plan --detailed-exitcode``, ``plan --out FILE`` and ``deploy --plan FILE``.

The real CLI runs in a subprocess in a working directory, on the local folder backend (its
invalidations are appended to ``<target>/.planner/invalidations.jsonl``), and once against the
moto server (S3 and CloudFront). "Nothing changed" is checked on every file of the target
folder, the tool's state and invalidation log included.

The build: six pages under docs/ and a home page, deployed once. The change: four of the six
docs pages edited. With free paths the minimizer invalidates the four exact paths; with none
(``--free-paths-per-month 0``) it pays for one wildcard, ``/docs/p*``.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from e2e_helpers import (
    history,
    inv_paths,
    invalidations,
    manifest,
    one_line_error,
    run,
    without_progress,
    write_site,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

BASE = {
    "index.html": "<h1>home</h1>\n",
    "css/site.css": "body{}\n",
    **{f"docs/p{i}.html": f"<p>page {i}</p>\n" for i in range(1, 6)},
}
EDITED = [f"docs/p{i}.html" for i in range(1, 5)]
EXACT = [f"/docs/p{i}.html" for i in range(1, 5)]
WILDCARD = ["/docs/p*"]
FORMAT = "invalidation-planner/plan"
EDITED_MESSAGE = "was edited after `planner plan` wrote it (checksum mismatch); make the plan again"


def checksum(doc: dict[str, Any]) -> str:
    from planner.plan.saved import checksum as of

    return of(doc)


def clean_env(**extra: str) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("PLANNER_", "AWS_", "BOTO_"))
    }
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    env.update(extra)
    return env


def tree(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (the tool's state and log included) -> its bytes."""
    if not root.exists():
        return {}
    return {
        p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def site_files(root: Path) -> dict[str, bytes]:
    return {k: v for k, v in tree(root).items() if not k.startswith(".planner/")}


def inv_log(target: Path) -> list[dict[str, Any]]:
    path = target / ".planner" / "invalidations.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@dataclass
class Env:
    cwd: Path
    public: Path
    target: Path

    def run(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
        return run(list(args), env or clean_env(), str(self.cwd))

    def ok(self, *args: str) -> subprocess.CompletedProcess:
        proc = self.run(*args)
        assert proc.returncode == 0, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        return proc

    def plan(self, *extra: str) -> subprocess.CompletedProcess:
        return self.run("plan", str(self.public), "--target", str(self.target), *extra)

    def deploy(self, *extra: str) -> subprocess.CompletedProcess:
        return self.run("deploy", str(self.public), "--target", str(self.target), *extra)

    def save(self, *extra: str, name: str = "plan.json") -> dict[str, Any]:
        """``plan --out NAME``; the saved document."""
        proc = self.plan("--out", name, *extra)
        assert proc.returncode == 0, proc.stderr
        return json.loads((self.cwd / name).read_text())

    def edit(self) -> None:
        for key in EDITED:
            (self.public / key).write_text(f"<p>{key} edited</p>\n")

    def current_deploy_id(self) -> str:
        from manifests import Manifest

        return Manifest.loads((self.target / ".planner" / "manifest.json.gz").read_bytes()).deploy_id


@pytest.fixture(scope="module")
def deployed(tmp_path_factory) -> Path:
    """The build deployed once to a folder target, kept as pristine copies (``*.orig``)."""
    root = tmp_path_factory.mktemp("saved")
    e = Env(cwd=root, public=write_site(root / "public", BASE), target=root / "out")
    assert e.deploy().returncode == 0
    for name in ("public", "out"):
        (root / name).rename(root / f"{name}.orig")
    return root


@pytest.fixture
def env(deployed: Path) -> Env:
    """The deployed build and its target, restored at the same paths (the manifest names its
    target) for each test; a working directory without a config."""
    for entry in deployed.iterdir():
        if not entry.name.endswith(".orig"):
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    for name in ("public", "out"):
        shutil.copytree(deployed / f"{name}.orig", deployed / name)
    e = Env(cwd=deployed / "cwd", public=deployed / "public", target=deployed / "out")
    e.cwd.mkdir()
    return e


def pending_record(deploy_id: str, base_deploy_id: str | None, touched: tuple[str, ...]) -> bytes:
    from planner.plan.journal import Journal

    return Journal(
        deploy_id=deploy_id,
        base_deploy_id=base_deploy_id,
        touched=touched,
        deletes=(),
        paths=("/docs/p5.html",),
        distribution_ids=("local",),
        caller_reference=f"planner-{deploy_id}",
    ).dumps()


def other_tool_used_the_free_paths(target: Path) -> None:
    """Another tool's invalidation of 1,000 paths this month, in the local log."""
    record = {
        "id": "LOTHERTOOL",
        "distribution_id": "local",
        "caller_reference": "other-tool",
        "create_time": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "paths": [f"/other/{i}" for i in range(1000)],
    }
    with open(target / ".planner" / "invalidations.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(record) + "\n")


# --- plan --detailed-exitcode ----------------------------------------------------------------


@pytest.mark.e2e
@pytest.mark.parametrize("fmt", ["table", "json"])
def test_detailed_exitcode_0_nothing_2_something_1_error(env, fmt):
    proc = env.plan("--detailed-exitcode", "--format", fmt)
    assert proc.returncode == 0, proc.stderr
    if fmt == "json":
        assert json.loads(proc.stdout)["uploads"] == []
    env.edit()
    proc = env.plan("--detailed-exitcode", "--format", fmt)
    assert proc.returncode == 2, proc.stderr
    assert without_progress(proc.stderr) == []  # no error (hashing progress with a table)
    if fmt == "json":
        assert sorted(u["key"] for u in json.loads(proc.stdout)["uploads"]) == EDITED
    assert env.plan("--format", fmt).returncode == 0  # without the flag: 0
    before = tree(env.target)
    proc = env.run("plan", str(env.cwd / "no-such-build"), "--target", str(env.target),
                   "--detailed-exitcode", "--format", fmt)
    assert proc.returncode == 1
    assert "no-such-build does not exist" in one_line_error(proc)
    # a first deploy is "something"; the plans wrote nothing
    proc = env.run("plan", str(env.public), "--target", str(env.cwd / "new"), "--detailed-exitcode",
                   "--format", fmt)
    assert proc.returncode == 2
    assert tree(env.target) == before and not (env.cwd / "new").exists()


@pytest.mark.e2e
def test_detailed_exitcode_counts_an_unfinished_invalidation_as_a_change(env):
    current = env.current_deploy_id()
    # a committed deploy whose invalidation was never made: the next run finishes it
    (env.target / ".planner" / "pending.json").write_bytes(
        pending_record(current, None, ("docs/p5.html",))
    )
    proc = env.plan("--detailed-exitcode", "--format", "json")
    assert proc.returncode == 2, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["uploads"] == [] and doc["resume"]["deploy_id"] == current


# --- plan --out / deploy --plan --------------------------------------------------------------


@pytest.mark.e2e
def test_plan_out_saves_the_plan_shown_and_writes_nothing_to_the_target(env):
    env.edit()
    before = tree(env.target)
    proc = env.plan("--out", "plan.json", "--format", "json", "--max-deletes", "9")
    assert proc.returncode == 0, proc.stderr
    shown = json.loads(proc.stdout)
    saved = json.loads((env.cwd / "plan.json").read_text())
    assert saved["format"] == FORMAT and saved["version"] == 2
    assert saved["checksum"] == checksum(saved) and saved["checksum"].startswith("sha256:")
    assert saved["site"] == str(env.public)
    assert saved["target"] == f"file://{env.target}"
    assert saved["deploy_id"] == shown["manifest"]["deploy_id"]
    assert saved["plan"] == shown
    assert saved["plan"]["invalidation"]["paths"] == EXACT
    assert saved["options"]["max_deletes"] == 9
    assert sorted(u[0] for u in saved["uploads"]) == EDITED
    assert tree(env.target) == before


@pytest.mark.e2e
def test_deploy_plan_applies_exactly_the_saved_plan(env):
    env.edit()
    saved = env.save()
    proc = env.run("deploy", "--plan", "plan.json", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["manifest"]["deploy_id"] == saved["deploy_id"]
    assert doc["invalidation"]["paths"] == EXACT
    assert doc["result"]["uploaded"] == 4
    assert inv_log(env.target)[-1]["paths"] == EXACT
    assert inv_log(env.target)[-1]["caller_reference"] == f"planner-{saved['deploy_id']}"
    assert site_files(env.target) == site_files(env.public)
    assert env.plan("--detailed-exitcode").returncode == 0


@pytest.mark.e2e
def test_deploy_plan_of_a_first_deploy(env, tmp_path):
    fresh = tmp_path / "fresh"
    env.ok("plan", str(env.public), "--target", str(fresh), "--out", "first.json")
    assert not fresh.exists()
    env.ok("deploy", "--plan", "first.json")
    assert site_files(fresh) == site_files(env.public)


@pytest.mark.e2e
def test_saved_wildcard_is_used_even_when_the_deploy_flags_say_otherwise(env):
    env.edit()
    saved = env.save("--free-paths-per-month", "0")
    assert saved["plan"]["invalidation"]["paths"] == WILDCARD
    # the plan's options come from the file: these flags change nothing
    proc = env.run("deploy", "--plan", "plan.json", "--free-paths-per-month", "1000",
                   "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["manifest"]["deploy_id"] == saved["deploy_id"]
    (record,) = inv_log(env.target)
    assert record["paths"] == WILDCARD


@pytest.mark.e2e
def test_saved_exact_paths_are_used_after_the_months_budget_ran_out(env):
    env.edit()
    saved = env.save()
    assert saved["plan"]["invalidation"]["paths"] == EXACT
    other_tool_used_the_free_paths(env.target)
    # a plan made now would pay for one wildcard instead
    now = json.loads(env.ok("plan", str(env.public), "--target", str(env.target), "--format",
                            "json").stdout)
    assert now["invalidation"]["paths"] == WILDCARD
    assert now["invalidation"]["budget"]["paths_used"] == 1000
    env.ok("deploy", "--plan", "plan.json")
    assert inv_log(env.target)[-1]["paths"] == EXACT
    assert len(inv_log(env.target)) == 2


# --- refusals --------------------------------------------------------------------------------


def _another_deploy(env: Env) -> None:
    env.ok("deploy", str(env.public), "--target", str(env.target))


def _same_plan_applied_before(env: Env) -> None:
    env.ok("deploy", "--plan", "plan.json")


def _page_edited(env: Env) -> None:
    (env.public / "docs" / "p5.html").write_text("<p>edited after the plan</p>\n")


def _page_added(env: Env) -> None:
    (env.public / "docs" / "p6.html").write_text("<p>new</p>\n")


def _page_removed(env: Env) -> None:
    (env.public / "index.html").unlink()


def _pending_record(env: Env) -> None:
    (env.target / ".planner" / "pending.json").write_bytes(
        pending_record("0123456789abcdef0123", env.current_deploy_id(), ("docs/p5.html",))
    )


@pytest.mark.e2e
@pytest.mark.parametrize(
    "meanwhile, message",
    [
        pytest.param(_another_deploy, "changed since the plan was made", id="another-deploy"),
        pytest.param(_same_plan_applied_before, "changed since the plan was made",
                     id="plan-already-applied"),
        pytest.param(_pending_record, "changed since the plan was made", id="pending-record"),
        pytest.param(_page_edited, "is not the one the plan was made from", id="build-edited"),
        pytest.param(_page_added, "is not the one the plan was made from", id="build-file-added"),
        pytest.param(_page_removed, "is not the one the plan was made from",
                     id="build-file-removed"),
    ],
)
def test_deploy_plan_refuses_when_target_or_build_changed(env, meanwhile, message):
    env.edit()
    env.save()
    meanwhile(env)
    before = tree(env.target)
    dry_runs = [["--dry-run"]] if meanwhile in (_another_deploy, _page_edited) else []
    for extra in [[], *dry_runs]:
        proc = env.run("deploy", "--plan", "plan.json", *extra)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        line = one_line_error(proc)
        assert message in line and "make a new plan" in line
        assert tree(env.target) == before


def _not_a_saved_plan(env: Env) -> bytes:
    # the plan's JSON on stdout, a likely mix-up
    return env.ok("plan", str(env.public), "--target", str(env.target), "--format", "json") \
        .stdout.encode()


def _wrong_version(env: Env) -> bytes:
    doc = json.loads((env.cwd / "plan.json").read_text())
    doc["version"] = 3
    return json.dumps(doc).encode()


def _format_1(env: Env) -> bytes:
    """As the version before checksums wrote it."""
    doc = json.loads((env.cwd / "plan.json").read_text())
    del doc["checksum"]
    doc["version"] = 1
    return json.dumps(doc).encode()


def _truncated(env: Env) -> bytes:
    data = (env.cwd / "plan.json").read_bytes()
    return data[: len(data) // 2]


def _missing_fields(env: Env) -> bytes:
    doc = {"format": FORMAT, "version": 2}
    return json.dumps({**doc, "checksum": checksum(doc)}).encode()


@pytest.mark.e2e
@pytest.mark.parametrize(
    "make, message",
    [
        pytest.param(_not_a_saved_plan, "is not a plan saved by `planner plan --out`",
                     id="plan-json-not-saved-plan"),
        pytest.param(lambda env: b'{"hello": 1}', "is not a plan saved by", id="other-json"),
        pytest.param(_wrong_version, "plan format version 3 is not 2", id="wrong-version"),
        pytest.param(_format_1, "written by an earlier version of planner (plan format 1, "
                     "without a checksum); make the plan again", id="format-1-no-checksum"),
        pytest.param(_truncated, "is not a readable saved plan", id="truncated-json"),
        pytest.param(lambda env: b"", "is not a readable saved plan", id="empty-file"),
        pytest.param(lambda env: b"[1, 2]", "is not a readable saved plan", id="json-list"),
        pytest.param(lambda env: b"\xff\xfe\x00binary", "is not a readable saved plan",
                     id="binary"),
        pytest.param(_missing_fields, "bad.json: tool_version: missing; make the plan again",
                     id="missing-fields"),
    ],
)
def test_unreadable_saved_plan_is_a_one_line_error(env, make, message):
    env.edit()
    env.save()
    (env.cwd / "bad.json").write_bytes(make(env))
    before = tree(env.target)
    proc = env.run("deploy", "--plan", "bad.json")
    assert proc.returncode == 1
    line = one_line_error(proc)
    assert line.startswith("Error: bad.json") and message in line
    assert tree(env.target) == before


@pytest.mark.e2e
def test_deploy_plan_with_another_site_or_target_is_a_usage_error(env, tmp_path):
    env.edit()
    env.save()
    other = write_site(tmp_path / "other", BASE)
    before = tree(env.target)
    for extra, what in (([str(other)], "site"), (["--target", str(tmp_path / "elsewhere")], "target")):
        proc = env.run("deploy", "--plan", "plan.json", *extra)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"Error: --plan plan.json is for {what} " in proc.stderr
        assert "Traceback" not in proc.stderr
    assert env.run("deploy", "--plan", "missing.json").returncode == 2
    assert tree(env.target) == before and not (tmp_path / "elsewhere").exists()
    # the same site and target, spelled as the plan spells them, are fine
    env.ok("deploy", "--plan", "plan.json", str(env.public), "--target", f"file://{env.target}")
    assert inv_log(env.target)[-1]["paths"] == EXACT


@pytest.mark.e2e
def test_deploy_plan_accepts_the_same_site_and_target_given_relative(env):
    """`planner plan public --target out --out plan.json` then the same words with --plan."""
    env.edit()
    cwd = env.cwd.parent  # holds public/ and out/
    proc = run(["plan", "public", "--target", "out", "--out", "plan.json"], clean_env(), str(cwd))
    assert proc.returncode == 0, proc.stderr
    proc = run(["deploy", "--plan", "plan.json", "public", "--target", "out"], clean_env(), str(cwd))
    assert proc.returncode == 0, proc.stderr
    assert inv_log(env.target)[-1]["paths"] == EXACT


@pytest.mark.e2e
def test_deploy_plan_works_with_the_site_in_the_config_file(env):
    """The recipe of docs/saved-plans.md with docs/configuration.md's file: `site = "public"`
    in planner.toml, a named target, `planner plan public --target prod --out plan.json ...
    --detailed-exitcode`, then `planner deploy --plan plan.json` (the file's `site` is the
    plan's own site)."""
    env.edit()
    cwd = env.cwd.parent  # holds public/ and out/
    (cwd / "planner.toml").write_text('site = "public"\n\n[targets.prod]\ntarget = "out"\n')
    proc = run(["plan", "public", "--target", "prod", "--out", "plan.json", "--format", "markdown",
                "--detailed-exitcode"], clean_env(), str(cwd))
    assert proc.returncode == 2, proc.stderr
    proc = run(["deploy", "--plan", "plan.json"], clean_env(), str(cwd))
    assert proc.returncode == 0, proc.stderr
    assert inv_log(env.target)[-1]["paths"] == EXACT


@pytest.mark.e2e
def test_deploy_plan_dry_run_shows_the_saved_paths_and_writes_nothing(env):
    env.edit()
    env.save("--free-paths-per-month", "0")
    before = tree(env.target)
    proc = env.run("deploy", "--plan", "plan.json", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "/docs/p*" in proc.stdout and "/docs/p1.html" not in proc.stdout
    proc = env.run("deploy", "--plan", "plan.json", "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["invalidation"]["paths"] == WILDCARD
    assert tree(env.target) == before


@pytest.mark.e2e
def test_quiet_dry_run_of_a_saved_plan_still_refuses(env):
    """`deploy --plan FILE --dry-run --quiet` as a CI check: a plan that deploy would refuse
    is an error, even when nothing is shown."""
    env.edit()
    env.save()
    _page_edited(env)
    proc = env.run("deploy", "--plan", "plan.json", "--dry-run", "--quiet")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "is not the one the plan was made from" in one_line_error(proc)


@pytest.mark.e2e
def test_deploy_plan_json_is_consistent_about_the_chosen_paths(env):
    """After the budget changed, the shown "chosen" alternative is the saved invalidation,
    not the one a new plan would choose."""
    env.edit()
    env.save()
    other_tool_used_the_free_paths(env.target)
    proc = env.run("deploy", "--plan", "plan.json", "--dry-run", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    inv = json.loads(proc.stdout)["invalidation"]
    assert inv["paths"] == EXACT
    (chosen,) = [a for a in inv["alternatives"] if a["name"] == "chosen"]
    assert chosen["paths"] == len(inv["paths"])


@pytest.mark.e2e
def test_plan_out_into_a_missing_folder_is_a_one_line_error(env):
    env.edit()
    proc = env.plan("--out", "no-such-dir/plan.json")
    assert proc.returncode == 1
    assert "no-such-dir/plan.json" in one_line_error(proc)


# --- S3 and CloudFront (moto server) ---------------------------------------------------------


def test_saved_plan_on_s3_invalidates_exactly_the_saved_paths(moto, site, tmp_path):
    public = write_site(tmp_path / "public", BASE)
    cwd = moto.cwd
    common = ["--target", site.target(), "--distribution", site.distribution_id]

    def planner(*args: str) -> subprocess.CompletedProcess:
        proc = run(list(args), moto.env, cwd)
        assert proc.returncode == 0, proc.stderr
        return proc

    planner("deploy", str(public), *common)
    for key in EDITED:
        (public / key).write_text(f"<p>{key} edited</p>\n")
    planner("plan", str(public), *common, "--free-paths-per-month", "0", "--out", "plan.json")
    saved = json.loads(Path(cwd, "plan.json").read_text())
    assert saved["target"] == site.target()
    assert saved["plan"]["invalidation"]["paths"] == WILDCARD
    planner("deploy", "--plan", "plan.json")
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == WILDCARD
    assert inv["InvalidationBatch"]["CallerReference"] == f"planner-{saved['deploy_id']}"
    assert manifest(moto.s3, site.bucket).deploy_id == saved["deploy_id"]

    # another deploy after the plan: refused, nothing written, nothing invalidated
    (public / "docs" / "p5.html").write_text("<p>p5 edited</p>\n")
    planner("plan", str(public), *common, "--out", "plan2.json")
    (public / "index.html").write_text("<h1>home, edited</h1>\n")
    planner("deploy", str(public), *common)
    before = history(moto.s3, site.bucket)
    proc = run(["deploy", "--plan", "plan2.json"], moto.env, cwd)
    assert proc.returncode == 1
    assert "changed since the plan was made" in one_line_error(proc)
    assert history(moto.s3, site.bucket) == before
    assert len(invalidations(moto.cloudfront, site.distribution_id)) == 2


# --- hand edits: refused in one line, nothing changed ----------------------------------------
#
# Each edit is made to a plan that `plan --out` wrote, then applied either as is (the checksum
# no longer matches: that message wins, whatever the edit broke) or "resealed", with the
# checksum recomputed as someone covering their tracks would: the content checks must then
# name the field and the problem. test_bad_input.py runs the same table against the moto server.


def _groups(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The invalidation objects of a saved plan ("invalidation" is the first of the others)."""
    return [doc["plan"]["invalidation"], *doc["plan"]["invalidations"]]


def _set_paths(paths: Any) -> Any:
    """An edit setting every group's paths to ``paths(old paths)``, coverage and wildcard count
    kept in step, as a careful editor would."""

    def edit(doc: dict[str, Any]) -> None:
        for inv in _groups(doc):
            inv["paths"] = new = paths(list(inv["paths"]))
            text = [p for p in new if isinstance(p, str)]
            inv["coverage"] = [{"path": p, "changed": 1, "collateral": 0} for p in text]
            inv["wildcards"] = sum(p.endswith("*") for p in text)

    return edit


def _first(change: Any) -> Any:
    return _set_paths(lambda paths: [change(paths[0]), *paths[1:]])


def _set(*keys: str, value: Any) -> Any:
    def edit(doc: dict[str, Any]) -> None:
        *outer, last = keys
        for key in outer:
            doc = doc[key]
        doc[last] = value

    return edit


def _drop(key: str) -> Any:
    return lambda doc: doc.pop(key)


@dataclass(frozen=True)
class HandEdit:
    id: str
    edit: Any  # (saved document) -> None, in place
    resealed: str | None  # the error once the checksum is recomputed; None: that case not run


HAND_EDITS = [
    # Valid content: only the checksum tells (the acl a reviewer saw was none).
    HandEdit("acl-public-read", _set("acl", value="public-read"), None),
    HandEdit("acl-not-an-acl", _set("acl", value="public-read-write"),
             "acl: 'public-read-write' is not one of --acl's values (private, public-read, "
             "or null)"),
    HandEdit("path-with-a-raw-space", _first(lambda p: p.replace(".", " .", 1)),
             "has a raw ' ', which must be URL-encoded (%20)"),
    HandEdit("path-with-raw-non-ascii", _first(lambda p: p.replace(".", "é.", 1)),
             "has a raw 'é', which must be URL-encoded (%C3%A9)"),
    HandEdit("path-with-star-in-the-middle", _first(lambda p: p.rsplit("/", 1)[0] + "/*.html"),
             "has '*' before its last character (a wildcard '*' may only be last)"),
    HandEdit("path-without-leading-slash", _first(lambda p: p.lstrip("/")),
             "does not start with '/'"),
    HandEdit("path-of-4001-characters", _first(lambda p: "/" + "a" * 4000),
             "is 4,001 characters long, more than CloudFront's 4,000"),
    HandEdit("21-wildcards", _set_paths(lambda paths: [f"/w{i:02}/*" for i in range(21)]),
             "plan.invalidations[0].paths: 21 wildcard paths, more than the 15 CloudFront "
             "allows in progress per distribution"),
    HandEdit("3001-paths", _set_paths(lambda paths: [f"/f{i}.html" for i in range(3001)]),
             "plan.invalidations[0].paths: 3,001 file paths, more than the 3,000 CloudFront "
             "allows in progress per distribution"),
    HandEdit("paths-no-longer-covering-a-changed-url", _set_paths(lambda paths: paths[1:]),
             "the saved paths no longer invalidate"),
    HandEdit("path-not-text", _first(lambda p: 42), "plan.invalidations[0].paths[0]: 42, not text"),
    HandEdit("option-of-the-wrong-type", _set("options", "max_deletes", value="9"),
             'options.max_deletes: "9", not a whole number'),
    HandEdit("option-out-of-range", _set("options", "free_paths_per_month", value=-1),
             "options.free_paths_per_month: -1 is negative"),
    HandEdit("uploads-not-a-list", _set("uploads", value={"css/site.css": "changed"}),
             "uploads: an object, not a list"),
    HandEdit("field-missing", _drop("deploy_id"), "deploy_id: missing"),
    HandEdit("checksum-changed", _set("checksum", value="sha256:" + "0" * 64), None),
    HandEdit("checksum-removed", _drop("checksum"), None),
]


def edit_plan(data: bytes, edit: HandEdit, resealed: bool) -> bytes:
    """The saved plan ``data`` with ``edit`` made (and its checksum recomputed if
    ``resealed``)."""
    doc = json.loads(data)
    edit.edit(doc)
    if resealed:
        doc["checksum"] = checksum(doc)
    return json.dumps(doc, indent=1).encode()


def truncated(data: bytes) -> bytes:
    return data[: len(data) * 2 // 3]


HAND_EDIT_CASES = [
    *(pytest.param(e, False, EDITED_MESSAGE, id=e.id) for e in HAND_EDITS),
    *(pytest.param(e, True, e.resealed, id=f"{e.id}-resealed") for e in HAND_EDITS if e.resealed),
]


@pytest.mark.e2e
@pytest.mark.parametrize(("edit", "resealed", "message"), HAND_EDIT_CASES)
def test_hand_edited_plan_is_refused_in_one_line_and_changes_nothing(env, edit, resealed, message):
    env.edit()
    env.save()
    path = env.cwd / "plan.json"
    path.write_bytes(edit_plan(path.read_bytes(), edit, resealed))
    before = tree(env.target)
    for extra in ([], ["--dry-run"]):
        proc = env.run("deploy", "--plan", "plan.json", *extra)
        assert proc.returncode == 1, proc.stdout + proc.stderr
        line = one_line_error(proc)
        assert line.startswith("Error: plan.json") and message in line, line
        assert line.endswith(("make the plan again", "make a new plan")), line
        assert tree(env.target) == before


@pytest.mark.e2e
def test_truncated_plan_is_refused_in_one_line_and_changes_nothing(env):
    env.edit()
    env.save()
    path = env.cwd / "plan.json"
    path.write_bytes(truncated(path.read_bytes()))
    before = tree(env.target)
    proc = env.run("deploy", "--plan", "plan.json")
    assert proc.returncode == 1
    assert one_line_error(proc).startswith("Error: plan.json is not a readable saved plan (")
    assert tree(env.target) == before


@pytest.mark.e2e
def test_an_acl_given_to_deploy_must_be_the_plans(env):
    """`deploy --plan` used to apply its own --acl over the plan's (none here): refused now, as
    another SITE or --target is; the plan's own ACL, given again, is fine."""
    env.edit()
    env.save()
    before = tree(env.target)
    for acl_args in (["--acl", "public-read"], ["--acl", "private"]):
        proc = env.run("deploy", "--plan", "plan.json", *acl_args)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert one_line_error(proc) == (f"Error: --plan plan.json is for acl none (the bucket's "
                                        f"setting), not {acl_args[1]}")
    proc = env.run("deploy", "--plan", "plan.json", env=clean_env(PLANNER_DEPLOY_ACL="private"))
    assert proc.returncode == 2 and "is for acl none" in one_line_error(proc)
    assert tree(env.target) == before
    env.save("--acl", "private")
    env.ok("deploy", "--plan", "plan.json", "--acl", "private")
    assert inv_log(env.target)[-1]["paths"] == EXACT


# --- every plan the tool writes passes its own checks, and round-trips ----------------------


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("/docs/p1.html", None),
        ("/", None),
        ("/*", None),
        ("/docs/p*", None),
        ("/caf%C3%A9%20menu.html", None),  # as urls.encode_path writes it
        ("/a%2Ab.js", None),  # a literal star, encoded
        ("/100%25.html", None),
        ("/" + "a" * 3999, None),  # 4,000 characters: the limit
        ("/" + "a" * 3998 + "*", None),
        ("docs/p1.html", "does not start with '/'"),
        ("", "does not start with '/'"),
        ("/" + "a" * 4000, "is 4,001 characters long"),
        ("/docs/*.html", "has '*' before its last character"),
        ("/**", "has '*' before its last character"),
        ("/my page.html", "has a raw ' ', which must be URL-encoded (%20)"),
        ("/café.html", "has a raw 'é', which must be URL-encoded (%C3%A9)"),
        ("/what?.html", "has a raw '?', which must be URL-encoded (%3F)"),
        ("/issue#1.html", "has a raw '#', which must be URL-encoded (%23)"),
        ("/100%.html", "has a raw '%', which must be URL-encoded (%25)"),  # not an escape
        ("/caf%C*", "has a raw '%', which must be URL-encoded (%25)"),  # ends inside one
        ("/tab\there", "has a raw '\\t', which must be URL-encoded (%09)"),
        ("/a~b", "has a raw '~', which must be URL-encoded (%7E)"),  # RFC 1738 unsafe
    ],
)
def test_path_problem_follows_cloudfronts_rules_and_the_tools_encoding(path, problem):
    from planner.core.urls import path_problem

    found = path_problem(path)
    assert found == problem if problem is None else (found is not None and problem in found)


def test_every_option_of_a_plan_is_checked():
    import dataclasses as dc

    from planner.plan import saved
    from planner.plan.compute import Options

    assert set(saved._OPTION) == {f.name for f in dc.fields(Options)} - set(saved._NOT_SAVED)


NAME = st.text(alphabet="ab %*?#é~[]^`{}|<>\"", min_size=1, max_size=5)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=st.lists(NAME, min_size=1, max_size=14, unique=True),
    changed=st.sets(st.integers(0, 13)),
    free=st.sampled_from([0, 1000]),
    url_prefix=st.sampled_from([None, "/", "docs"]),
    pace=st.sampled_from(["even", "none"]),
    price=st.floats(0, 1, allow_nan=False),
    miss_cost=st.none() | st.floats(0, 1, allow_nan=False),
    flags=st.tuples(st.booleans(), st.booleans()),
    acl=st.sampled_from([None, "private", "public-read"]),
)
def test_every_plan_the_tool_writes_passes_its_checks_and_round_trips(
    names, changed, free, url_prefix, pace, price, miss_cost, flags, acl
):
    import dataclasses as dc
    import tempfile

    from planner import __version__
    from planner.apply import apply_plan
    from planner.backends import LocalBackend
    from planner.backends.targets import LocalTarget
    from planner.plan import saved
    from planner.plan.build import build_plan
    from planner.plan.compute import Options

    with tempfile.TemporaryDirectory() as tmp:
        keys = [f"d/f{n}.html" for n in names]
        public = write_site(Path(tmp, "public"), {"index.html": "home\n",
                                                  **{k: "v1\n" for k in keys}})
        backend = LocalBackend(LocalTarget(str(Path(tmp, "out"))))
        apply_plan(build_plan(str(public), backend, Options(hash_workers=1), __version__), backend)
        write_site(public, {keys[i]: "v2\n" for i in changed if i < len(keys)})
        options = Options(
            invalidate_added=flags[0], delete=flags[1], url_prefix=url_prefix,
            free_paths_per_month=free, pace=pace, price=price, miss_cost=miss_cost,
            excludes=("*.tmp",), hash_workers=1,
        )
        plan = build_plan(str(public), backend, options, __version__)
        data = saved.dumps(plan, options, acl=acl)

        kept = saved.load(data, "plan.json")  # raises if the tool's own plan fails its checks

        assert kept.options == dc.replace(options, hash_workers=None)
        assert (kept.site, kept.target, kept.acl, kept.deploy_id) == (
            plan.site, plan.target, acl, plan.deploy_id)
        again = kept.accept(plan)
        assert [i.paths for i in again.invalidations] == [i.paths for i in plan.invalidations]
        assert saved.dumps(again, kept.options, acl=kept.acl) == data


@pytest.mark.parametrize(("row", "count"), [
    pytest.param(["index.html"], "1 item", id="one-item"),
    pytest.param(["index.html", "changed"], "2 items", id="two-items"),
])
def test_an_upload_row_of_the_wrong_length_is_counted_in_words(tmp_path, row, count):
    """A hand-edited upload row (resealed, so only its shape tells) is refused with its
    items counted as people count them: "1 item", "2 items"."""
    from planner import __version__
    from planner.backends import LocalBackend
    from planner.backends.targets import LocalTarget
    from planner.plan import saved
    from planner.plan.build import build_plan
    from planner.plan.compute import Options

    public = write_site(tmp_path / "public", {"index.html": "home\n"})
    backend = LocalBackend(LocalTarget(str(tmp_path / "out")))
    options = Options(hash_workers=1)
    doc = json.loads(saved.dumps(build_plan(str(public), backend, options, __version__), options))
    doc["uploads"][0] = row
    doc["checksum"] = checksum(doc)
    with pytest.raises(saved.BadSavedPlan) as refused:
        saved.load(json.dumps(doc).encode(), "plan.json")
    assert f"uploads[0]: {count}, not [key, reason, hash]" in str(refused.value), refused.value
