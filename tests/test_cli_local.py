"""The real CLI in a subprocess, on the local-folder backend (no AWS)."""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from e2e_helpers import without_progress

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "examples" / "sample-site"


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "planner", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


def plan_json(site, target, *extra) -> dict:
    r = run("plan", str(site), "--target", str(target), "--format", "json", *extra)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


@pytest.fixture
def site(tmp_path) -> Path:
    dest = tmp_path / "site"
    shutil.copytree(SAMPLE, dest)
    return dest


def files_of(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in folder.rglob("*")
        if p.is_file() and ".planner" not in p.relative_to(folder).parts
    }


def test_sample_site_plan_then_deploy_mirrors_it(site, tmp_path):
    target = tmp_path / "out"
    r = run("plan", str(site), "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert "added" in r.stdout and "index.html" in r.stdout
    assert not target.exists()  # plan writes nothing
    r = run("deploy", str(site), "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert "Uploaded 12 " in r.stdout
    assert files_of(target) == files_of(site)
    assert (target / ".planner" / "manifest.json.gz").is_file()


def test_edit_uploads_one_file_and_logs_its_invalidation(site, tmp_path):
    target = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(target)).returncode == 0
    (site / "about" / "index.html").write_text("<h1>new about</h1>")
    doc = plan_json(site, target)
    assert doc["uploads"] == [{"key": "about/index.html", "reason": "changed", "size": 18, "in_place": False}]
    # one wildcard covers both forms of the page, and nothing else is under /about/
    assert doc["invalidation"]["paths"] == ["/about/*"]
    assert doc["invalidation"]["changed_urls"] == 2 and doc["invalidation"]["collateral_urls"] == 0
    r = run("deploy", str(site), "--target", str(target), "--format", "json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)["result"]
    assert result["uploaded"] == 1 and result["invalidations"][0]["distribution_id"] == "local"
    log = (target / ".planner" / "invalidations.jsonl").read_text().splitlines()
    assert json.loads(log[-1])["paths"] == ["/about/*"]
    assert (target / "about" / "index.html").read_text() == "<h1>new about</h1>"


def test_rebuild_with_new_mtimes_does_nothing(site, tmp_path):
    target = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(target)).returncode == 0
    manifest = (target / ".planner" / "manifest.json.gz").read_bytes()
    for p in site.rglob("*"):
        if p.is_file():
            p.write_bytes(p.read_bytes())  # a fresh build: same bytes, new mtime
            os.utime(p, (1, 1))
    r = run("deploy", str(site), "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert "Nothing to deploy" in r.stdout
    assert (target / ".planner" / "manifest.json.gz").read_bytes() == manifest
    assert not (target / ".planner" / "invalidations.jsonl").exists()


def test_removed_file_is_deleted_and_invalidated(site, tmp_path):
    target = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(target)).returncode == 0
    shutil.rmtree(site / "blog" / "second-post")
    r = run("deploy", str(site), "--target", str(target), "--format", "json")
    doc = json.loads(r.stdout)
    assert doc["deletes"] == [{"key": "blog/second-post/index.html"}]
    assert doc["invalidation"]["paths"] == ["/blog/second-post/*"]
    assert doc["invalidation"]["collateral_urls"] == 0
    assert not (target / "blog" / "second-post").exists()  # empty folder removed too
    assert files_of(target) == files_of(site)


def test_json_shape_is_stable(site, tmp_path):
    doc = plan_json(site, tmp_path / "out")
    assert set(doc) >= {"uploads", "deletes", "unchanged", "invalidation", "manifest"}
    assert set(doc["invalidation"]) >= {
        "paths", "distribution_ids", "changed_urls", "collateral_urls", "paid_paths", "cost_usd",
    }
    assert set(doc["manifest"]) == {"previous_deploy_id", "deploy_id"}
    assert set(doc["uploads"][0]) == {"key", "reason", "size", "in_place"}


def test_markdown_format_has_tables(site, tmp_path):
    r = run("plan", str(site), "--target", str(tmp_path / "out"), "--format", "markdown")
    assert r.returncode == 0
    assert "| change" in r.stdout and "## Plan" in r.stdout


def test_dry_run_equals_plan_and_writes_nothing(site, tmp_path):
    target = tmp_path / "out"
    a = run("plan", str(site), "--target", str(target), "--format", "json")
    b = run("deploy", str(site), "--target", str(target), "--format", "json", "--dry-run")
    assert a.returncode == b.returncode == 0
    assert json.loads(a.stdout) == json.loads(b.stdout)
    assert not target.exists()


def test_verbose_lists_everything(tmp_path):
    site = tmp_path / "many"
    site.mkdir()
    for i in range(30):
        (site / f"p{i:02}.css").write_text(str(i))
    short = run("plan", str(site), "--target", str(tmp_path / "o")).stdout
    full = run("plan", str(site), "--target", str(tmp_path / "o"), "--verbose").stdout
    assert "p29.css" not in short and "10 more" in short
    assert "p29.css" in full


def test_version_and_help():
    from planner import __version__

    assert run("--version").stdout.strip().endswith(__version__)
    assert "Example" in run("deploy", "-h").stdout


# --- bad input: one line on stderr, non-zero exit, nothing written ------------------------


def one_line_error(r: subprocess.CompletedProcess, code: int = 1) -> str:
    assert r.returncode == code, (r.stdout, r.stderr)
    lines = without_progress(r.stderr.strip())  # hashing progress may come before the error
    assert len(lines) == 1 if code == 1 else lines, r.stderr
    return r.stderr


def test_missing_site_is_an_error(tmp_path):
    err = one_line_error(run("deploy", str(tmp_path / "nope"), "--target", str(tmp_path / "o")))
    assert "does not exist" in err
    assert not (tmp_path / "o").exists()


def test_empty_site_never_deletes_the_deployed_site(site, tmp_path):
    target = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(target)).returncode == 0
    empty = tmp_path / "empty"
    empty.mkdir()
    err = one_line_error(run("deploy", str(empty), "--target", str(target)))
    assert "no files" in err
    assert files_of(target) == files_of(site)


@pytest.mark.parametrize(
    "target, message",
    [
        ("http://example.com/x", "only s3:// and file://"),  # unsupported scheme
        ("s3://Bad_Bucket", "not a valid S3 bucket name"),  # bucket naming rules
        ("file://relative/dir", "absolute path"),  # file: needs an absolute path
        ("s3://bucket/a/../b", "'..'"),  # prefix that escapes
    ],
)
def test_bad_target_is_an_error(site, target, message):
    assert message in one_line_error(run("plan", str(site), "--target", target))


def test_target_inside_the_site_is_refused(site):
    err = one_line_error(run("deploy", str(site), "--target", str(site / "out")))
    assert "overlaps" in err
    assert not (site / "out").exists()


def test_too_many_deletes_changes_nothing(site, tmp_path):
    target = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(target)).returncode == 0
    before = files_of(target)
    shutil.rmtree(site / "blog")
    (site / "index.html").write_text("changed")
    err = one_line_error(run("deploy", str(site), "--target", str(target), "--max-deletes", "2"))
    assert "--max-deletes 2" in err
    assert files_of(target) == before  # nothing uploaded, nothing deleted
    r = run("deploy", str(site), "--target", str(target), "--max-deletes", "3")
    assert r.returncode == 0, r.stderr


def test_no_delete_keeps_removed_files(site, tmp_path):
    target = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(target)).returncode == 0
    (site / "robots.txt").unlink()
    r = run("deploy", str(site), "--target", str(target), "--no-delete")
    assert r.returncode == 0, r.stderr
    assert (target / "robots.txt").exists()
    doc = plan_json(site, target)  # a later deploy without --no-delete removes it
    assert doc["deletes"] == [{"key": "robots.txt"}]


@pytest.mark.parametrize(
    "content, message",
    [
        (b"not gzip at all", "not valid gzip"),
        (gzip.compress(b"{not json"), "not valid JSON"),
        (gzip.compress(b'{"format_version": 99, "entries": {}}'), "version 99"),
        (gzip.compress(b'{"format_version": 1, "entries": {"../etc/passwd": ["0", 1, "a", "b"]}}'), "escapes"),
    ],
)
def test_corrupt_manifest_is_an_error_and_nothing_is_written(site, tmp_path, content, message):
    target = tmp_path / "out"
    (target / ".planner").mkdir(parents=True)
    (target / ".planner" / "manifest.json.gz").write_bytes(content)
    err = one_line_error(run("deploy", str(site), "--target", str(target)))
    assert message in err
    assert files_of(target) == {}


def test_manifest_of_another_target_is_refused(site, tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    assert run("deploy", str(site), "--target", str(a)).returncode == 0
    shutil.copytree(a / ".planner", b / ".planner")
    err = one_line_error(run("deploy", str(site), "--target", str(b)))
    assert "belongs to file://" in err


def test_symlink_out_of_the_site_is_refused(site, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    (site / "leak.txt").symlink_to(secret)
    err = one_line_error(run("deploy", str(site), "--target", str(tmp_path / "out")))
    assert "outside the build folder" in err
    assert not (tmp_path / "out").exists()


def test_bad_option_value_is_a_usage_error(site, tmp_path):
    r = run("deploy", str(site), "--target", str(tmp_path / "o"), "--workers", "0")
    assert r.returncode == 2 and "--workers" in r.stderr


def test_exclude_skips_files(site, tmp_path):
    doc = plan_json(site, tmp_path / "o", "--exclude", "*.xml", "--exclude", "blog/first-post/*")
    keys = {u["key"] for u in doc["uploads"]}
    assert "sitemap.xml" not in keys and "blog/first-post/index.html" not in keys
    assert "blog/index.html" in keys


# --- a folder filled by something else (rsync, cp -r): taken over ------------------------------


def test_a_filled_folder_is_taken_over_equal_files_kept_changed_and_orphans_invalidated(
    site, tmp_path
):
    target = tmp_path / "out"
    shutil.copytree(site, target)  # what `cp -r` or rsync left
    (target / "old.html").write_text("<p>gone</p>")  # the build no longer has it
    (site / "about" / "index.html").write_text("<h1>new about</h1>")
    (site / "new.html").write_text("<p>new</p>")
    kept = (target / "index.html").stat().st_ino  # an adopted file is not written again

    doc = plan_json(site, target)
    assert doc["takeover"] == {
        "reason": "no manifest yet: taking over what the target holds",
        "found": 13, "adopted": 11, "fixed_in_place": 0, "replaced": 1, "orphaned": 1, "new": 1,
    }
    r = run("deploy", str(site), "--target", str(target))
    assert r.returncode == 0, r.stderr
    assert "takeover: 13 objects found: 11 adopted as they are" in r.stdout
    assert files_of(target) == files_of(site)
    assert (target / "index.html").stat().st_ino == kept
    (log,) = [json.loads(line) for line in
              (target / ".planner" / "invalidations.jsonl").read_text().splitlines()]
    covered = lambda url: any(  # noqa: E731
        p == url or (p.endswith("*") and url.startswith(p[:-1])) for p in log["paths"])
    assert covered("/about/") and covered("/about/index.html") and covered("/old.html")
    assert not covered("/new.html")
    again = run("deploy", str(site), "--target", str(target))
    assert again.returncode == 0 and "Nothing to deploy" in again.stdout


def test_state_in_a_folder_of_its_own_from_the_configuration(site, tmp_path):
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "planner.toml").write_text(
        f'[targets.prod]\ntarget = "{tmp_path / "out"}"\nstate = "{tmp_path / "state"}"\n'
    )
    proc = subprocess.run([sys.executable, "-m", "planner", "deploy", str(site), "-t", "prod"],
                          capture_output=True, text=True, timeout=60, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    # The site holds only the site, and the marker that says its state is kept elsewhere.
    assert sorted(p.name for p in (tmp_path / "out" / ".planner").iterdir()) == ["target.json"]
    assert (tmp_path / "state" / "manifest.json.gz").is_file()
    assert not (tmp_path / "state" / "invalidations.jsonl").exists()  # nothing invalidated yet
    again = subprocess.run([sys.executable, "-m", "planner", "plan", str(site), "-t", "prod",
                            "--format", "json"], capture_output=True, text=True, timeout=60,
                           cwd=cwd)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["uploads"] == []  # read back from the state folder


def test_a_folder_inside_another_target_is_refused_and_left_unwritten(site, tmp_path):
    outer = tmp_path / "out"
    assert run("deploy", str(site), "--target", str(outer)).returncode == 0
    for inner in (outer / "docs", outer / "docs" / "v2"):
        r = run("deploy", str(site), "--target", str(inner))
        assert r.returncode == 1
        line = [x for x in without_progress(r.stderr) if x.startswith("Error:")]
        assert line == [f"Error: file://{inner} lies inside the target file://{outer} "
                        f"(file://{outer}/.planner/ marks it), whose deploys own every key under "
                        "it; deploy to a place outside it"], r.stderr
        assert not inner.exists()
