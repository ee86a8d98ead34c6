"""No credential or signed URL in any output, error or state object.

The CLI runs in a subprocess with distinctive fake credentials in its environment (moto
accepts any), on success paths against the moto server and on failure paths (endpoint down,
missing bucket, unknown distribution, corrupt manifest, one attempt only). Nothing it prints
may contain the keys, the session token or a signature, and every error is one line without a
traceback. The state objects a deploy writes (manifest, pending record, lock, ledger, count
cache: every version of each, in the versioned bucket) hold none of the secrets either.
(That state objects never get a public ACL is tested in test_e2e_s3.py.)
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import quote

import pytest
from e2e_helpers import history, one_line_error, run, write_site

pytestmark = pytest.mark.e2e

ACCESS_KEY = "AKIAEXAMPLESECRETID1"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYzSECRETKEY42"
SESSION_TOKEN = "FwoGZXIvYXdzEXAMPLESESSIONTOKEN//secret+token/0123456789abcdefZZ"
SECRETS = (ACCESS_KEY, SECRET_KEY, SESSION_TOKEN)
# The secrets as they would appear URL-encoded (a presigned URL, a signed query string), and
# the marks of a signature or a signed header.
FORBIDDEN = (
    *SECRETS,
    *(quote(s, safe="") for s in SECRETS),
    "X-Amz-Signature",
    "Signature=",
    "X-Amz-Credential",
    "Authorization",
    "X-Amz-Security-Token",
)


def assert_no_secret(text: str, what: str) -> None:
    for bad in FORBIDDEN:
        assert bad.lower() not in text.lower(), f"{bad!r} in {what}:\n{text}"


def assert_clean(proc: subprocess.CompletedProcess, what: str) -> None:
    assert_no_secret(proc.stdout, f"stdout of {what}")
    assert_no_secret(proc.stderr, f"stderr of {what}")
    assert "Traceback" not in proc.stderr, f"{what}:\n{proc.stderr}"


def secret_env(env: dict[str, str], tmp_path: Path, **changes: str) -> dict[str, str]:
    out = dict(env)
    out.update(
        AWS_ACCESS_KEY_ID=ACCESS_KEY,
        AWS_SECRET_ACCESS_KEY=SECRET_KEY,
        AWS_SESSION_TOKEN=SESSION_TOKEN,
        XDG_CACHE_HOME=str(tmp_path / "xdg-cache"),  # report without --target caches there
    )
    out.update(changes)
    return out


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_all(commands: dict[str, list[str]], env: dict[str, str], cwd: str):
    """Run the commands concurrently (the failure paths wait on retries); name -> result."""
    with ThreadPoolExecutor(max_workers=len(commands)) as pool:
        futures = {name: pool.submit(run, args, env, cwd) for name, args in commands.items()}
        return {name: f.result() for name, f in futures.items()}


def assert_one_line_errors(results: dict[str, subprocess.CompletedProcess]) -> dict[str, str]:
    lines = {}
    for name, proc in results.items():
        assert_clean(proc, name)
        try:
            lines[name] = one_line_error(proc)
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}\nstdout: {proc.stdout}") from None
    return lines


@pytest.fixture
def public(tmp_path: Path) -> Path:
    return write_site(tmp_path / "public")


# --- success paths ---------------------------------------------------------------------------


def test_success_paths_print_no_credential_or_signature(moto, site, public, tmp_path):
    env = secret_env(moto.env, tmp_path)
    target = site.target()
    dist = site.distribution_id
    changed = tmp_path / "changed.txt"
    changed.write_text("about/index.html\n", encoding="utf-8")

    def ok(*args: str, code: int = 0) -> subprocess.CompletedProcess:
        proc = run(list(args), env, moto.cwd)
        assert proc.returncode == code, f"{args}: exit {proc.returncode}\n{proc.stderr}"
        assert_clean(proc, " ".join(args))
        return proc

    ok("plan", str(public), "--target", target, "-d", dist, "-v")
    first = ok("deploy", str(public), "--target", target, "-d", dist, "-v")
    assert "committed manifest" in first.stderr  # the verbose log was there to be checked
    (public / "about" / "index.html").write_text("<h1>About v2</h1>\n", encoding="utf-8")
    (public / "js" / "app.js").unlink()
    second = ok("deploy", str(public), "--target", target, "-d", dist, "-v",
                "--max-attempts", "1")
    assert "invalidated" in second.stdout
    ok("deploy", str(public), "--target", target, "-d", dist, "--format", "json")
    ok("report", "--target", target)
    ok("report", "--target", target, "--format", "json")
    ok("report", "--format", "csv")
    ok("verify", "--target", target)
    moto.s3.delete_object(Bucket=site.bucket, Key="index.html")
    moto.s3.put_object(Bucket=site.bucket, Key="stray.txt", Body=b"stray")
    ok("verify", "--target", target, "--format", "json", code=5)
    ok("verify", "--target", target, "--repair", str(public), "-d", dist, "--delete-extra")
    unlocked = ok("unlock", "--target", target)
    assert "was not locked" in unlocked.stdout
    ok("paths", "-u", str(public), "-c", str(changed), "--format", "table")


def test_state_objects_written_by_deploys_and_repairs_hold_no_secret(moto, site, public, tmp_path):
    env = secret_env(moto.env, tmp_path)
    deploy = ["deploy", str(public), "--target", site.target(), "-d", site.distribution_id]
    assert run(deploy, env, moto.cwd).returncode == 0
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")
    (public / "img" / "logo.svg").unlink()
    assert run(deploy, env, moto.cwd).returncode == 0
    moto.s3.delete_object(Bucket=site.bucket, Key="css/site.css")
    repair = run(["verify", "--target", site.target(), "--repair", str(public),
                  "-d", site.distribution_id], env, moto.cwd)
    assert repair.returncode == 0, repair.stderr

    written = [(key, vid) for kind, key, vid in history(moto.s3, site.bucket)
               if kind == "version" and key.startswith(".planner/")]
    names = {key for key, _ in written}
    # every kind of state object was written at least once (pending and lock are deleted at
    # the end, but the versioned bucket keeps what was written)
    for name in (".planner/manifest.json.gz", ".planner/pending.json", ".planner/lock.json",
                 ".planner/invalidation-counts.json"):
        assert name in names, name
    assert sum(k.startswith(".planner/ledger/") for k in names) == 3  # 2 deploys, 1 repair
    for key, vid in written:
        data = moto.s3.get_object(Bucket=site.bucket, Key=key, VersionId=vid)["Body"].read()
        if key.endswith(".gz"):
            data = gzip.decompress(data)
            json.loads(data)  # the manifest is gzipped JSON
        assert_no_secret(data.decode("utf-8"), f"{key} version {vid}")


# --- failure paths ---------------------------------------------------------------------------


def test_endpoint_down_errors_are_one_line_without_secrets(moto, public, tmp_path):
    env = secret_env(moto.env, tmp_path, AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed_port()}")
    target = "s3://planner-e2e-site"
    once = ("--max-attempts", "1")
    commands = {
        "plan": ["plan", str(public), "--target", target, "-d", "E123", "-v", *once],
        "deploy": ["deploy", str(public), "--target", target, "-d", "E123", "-v", *once],
        "deploy-json": ["deploy", str(public), "--target", target, "--format", "json", *once],
        "verify": ["verify", "--target", target, *once],
        "verify-repair": ["verify", "--target", target, "--repair", str(public), *once],
        # report and unlock have no --max-attempts: botocore's default retries (a few seconds)
        "report-target": ["report", "--target", target],
        "report-account": ["report"],
        "unlock": ["unlock", "--target", target],
    }

    lines = assert_one_line_errors(run_all(commands, env, moto.cwd))

    for name, line in lines.items():
        assert "127.0.0.1" in line or "connect" in line.lower(), (name, line)


def test_aws_refusals_are_one_line_errors_without_secrets(moto, site, public, tmp_path):
    env = secret_env(moto.env, tmp_path)
    target = site.target()
    deployed = run(["deploy", str(public), "--target", target, "-d", site.distribution_id],
                   env, moto.cwd)
    assert deployed.returncode == 0, deployed.stderr
    (public / "index.html").write_text("<h1>v2</h1>\n", encoding="utf-8")
    moto.s3.delete_object(Bucket=site.bucket, Key="js/app.js")  # drift for verify --repair
    moto.s3.create_bucket(Bucket="corrupt-site")
    moto.s3.put_object(Bucket="corrupt-site", Key=".planner/manifest.json.gz",
                       Body=b"\x1f\x8b not really gzip")
    missing, corrupt = "s3://no-such-bucket-here", "s3://corrupt-site"
    once = ("--max-attempts", "1")

    # Independent of each other: run at once.
    lines = assert_one_line_errors(run_all({
        "plan-missing-bucket": ["plan", str(public), "--target", missing, "-v", *once],
        "deploy-missing-bucket": ["deploy", str(public), "--target", missing, "-v"],
        "verify-missing-bucket": ["verify", "--target", missing, *once],
        "report-missing-bucket": ["report", "--target", missing],
        "unlock-missing-bucket": ["unlock", "--target", missing],
        "plan-corrupt-manifest": ["plan", str(public), "--target", corrupt, *once],
        "deploy-corrupt-manifest": ["deploy", str(public), "--target", corrupt, "-v"],
        "verify-corrupt-manifest": ["verify", "--target", corrupt, "--format", "json"],
    }, env, moto.cwd))
    # Both write to the site bucket (the lock): one after the other.
    lines.update(assert_one_line_errors({
        "deploy-unknown-distribution": run(
            ["deploy", str(public), "--target", target, "-d", "ENOSUCHDIST", "-v", *once],
            env, moto.cwd),
        "verify-repair-unknown-distribution": run(
            ["verify", "--target", target, "--repair", str(public), "-d", "ENOSUCHDIST"],
            env, moto.cwd),
    }))

    for name, line in lines.items():
        if "missing-bucket" in name:
            assert "NoSuchBucket" in line, (name, line)
        elif "unknown-distribution" in name:
            assert "NoSuchDistribution" in line, (name, line)
        else:
            assert "manifest" in line, (name, line)


def test_paths_errors_are_one_line_without_secrets(moto, tmp_path):
    # `paths` talks to no AWS at all; its errors still carry nothing of the environment.
    env = secret_env(moto.env, tmp_path)
    proc = run(["paths", "-u", str(tmp_path / "no-such-list"), "-c", "-"], env, moto.cwd)
    assert_clean(proc, "paths")
    one_line_error(proc)

