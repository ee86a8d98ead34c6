"""Bad input, end to end: the one place that shows the whole matrix.

Every bad input of the issue gets a row here (a saved plan edited by hand included), including
those also tested elsewhere (as units in test_scan.py, test_names.py, test_model.py,
test_stores.py and test_plan.py; through the CLI in test_cli_local.py, test_e2e_s3.py and
test_saved_plan.py): a clear one-line ``Error: ...`` on stderr, exit 1, and
NOTHING changed remotely. Each refused case first deploys a good site, then introduces the bad input, runs
``python -m planner deploy`` in a subprocess against the session's moto server, and compares
everything a deploy could change, before and after:

* the versioned bucket's full history (every object version and delete marker: any PUT or
  DELETE adds a row), and its current objects;
* the list of buckets (a refused deploy creates none);
* every invalidation of every distribution.

The deploy lock (``.planner/lock.json``, taken and removed by every deploy) is the one
exception: a refused deploy may leave versions of it in the history, never a current object.

File names that look odd but are valid (space, ``%``, ``*``, ``?``, ``#``, non-ASCII) are not
bad input: they must deploy under the very same S3 key and be invalidated under the
percent-encoded path of docs/urls.md ("URLs and invalidation paths").

How the harder cases are made real:

* unreadable files and folders: tests run as root, and root ignores ``chmod 000``; the deploy
  runs without the capabilities that let root bypass file permissions (CAP_DAC_OVERRIDE and
  CAP_DAC_READ_SEARCH dropped from its bounding set before exec), so ``chmod 000`` works.
* a file edited between its hash and its upload: the deploy prints its plan to a pipe whose
  buffer is smaller than the plan, so it blocks there (scan done, nothing of the site or its
  state written yet) until the test reads on; the test edits the file meanwhile.
* a file growing while it is hashed: a ``sitecustomize`` in the deploy's PYTHONPATH appends
  to one file whenever a read of it starts from its beginning (the scan's ``os.readv`` /
  ``os.preadv``), so every pass of the hasher finds it longer.
* a file changing during a managed (multipart) upload: in process, through
  ``planner.apply.apply_plan`` on the local backend.
* access denied: the moto server's IAM enforcement (``/moto-api/reset-auth``) with a user
  whose policy allows reading only.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import gzip
import json
import os
import socket
import subprocess
import sys
import textwrap
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, ContextManager, Iterator

import pytest
from e2e_helpers import (
    MANIFEST,
    SITE,
    TIMEOUT,
    body,
    history,
    inv_paths,
    invalidations,
    manifest,
    nested_key,
    one_line_error,
    run,
    site_objects,
    write_site,
)

LOCK = ".planner/lock.json"  # the deploy lock: taken and removed by every deploy
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
UTF8_FS = sys.getfilesystemencoding() == "utf-8"


# --- the world a deploy could change -------------------------------------------------------


def all_invalidations(cloudfront: Any) -> dict[str, list[tuple[str, list[str]]]]:
    """distribution id -> sorted (invalidation id, paths) of every distribution."""
    out = {}
    dists = cloudfront.list_distributions()["DistributionList"].get("Items") or []
    for d in dists:
        out[d["Id"]] = sorted((i["Id"], inv_paths(i)) for i in invalidations(cloudfront, d["Id"]))
    return out


def world(moto, site) -> dict[str, Any]:
    """Everything a deploy could change on the (moto) account."""
    s3 = moto.s3
    current = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=site.bucket):
        current.update({o["Key"]: o["ETag"] for o in page.get("Contents", [])})
    return {
        "buckets": sorted(b["Name"] for b in s3.list_buckets()["Buckets"]),
        "history": [row for row in history(s3, site.bucket) if row[1] != LOCK],
        "objects": current,
        "invalidations": all_invalidations(moto.cloudfront),
    }


# --- running the CLI -----------------------------------------------------------------------


def good_deploy(moto, root: Path, target: str, distribution: str):
    """Deploy a good build, to set a case up: the library the CLI calls, in this process and
    on the test's own clients (no interpreter to start, no session to make). Returns the plan."""
    from planner import __version__
    from planner.apply import apply_plan
    from planner.backends import make_backend
    from planner.backends.targets import parse_target
    from planner.plan.build import build_plan
    from planner.plan.compute import Options

    clients = SimpleNamespace(s3=moto.s3, cloudfront=moto.cloudfront)
    backend = make_backend(parse_target(target), clients)
    plan = build_plan(str(root), backend, Options(distribution_ids=(distribution,)), __version__)
    apply_plan(plan, backend)
    bucket, _, prefix = target[len("s3://"):].partition("/")
    assert manifest(moto.s3, bucket, prefix + "/" if prefix else "").deploy_id == plan.deploy_id
    return plan


@dataclass
class Ctx:
    """One case: the deploy it runs (changed by the case's ``introduce``) and how."""

    moto: Any
    site: Any
    tmp: Path
    build: Path  # the build folder deployed: the good one, unless the case swaps it
    target: str
    distributions: list[str]
    extra: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    runner: Callable[["Ctx"], subprocess.CompletedProcess] | None = None
    around: Callable[[], ContextManager[Any]] = contextlib.nullcontext
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def args(self) -> list[str]:
        dists = [a for d in self.distributions for a in ("--distribution", d)]
        return ["deploy", str(self.build), "--target", self.target, *dists, *self.extra]

    def run(self) -> subprocess.CompletedProcess:
        if self.runner is not None:
            return self.runner(self)
        return run(self.args, self.env, self.moto.cwd)


# --- introducing the bad input --------------------------------------------------------------


def empty_build(ctx: Ctx) -> None:
    ctx.build = ctx.tmp / "empty"
    ctx.build.mkdir()


def build_of_excluded_files_only(ctx: Ctx) -> None:
    ctx.build = write_site(ctx.tmp / "junk", {".DS_Store": "x", ".git/HEAD": "ref: main\n",
                                              "Thumbs.db": "x", ".planner/manifest.json.gz": "x"})


def missing_build(ctx: Ctx) -> None:
    ctx.build = ctx.tmp / "not-built"


_PRCTL = ctypes.CDLL(None, use_errno=True).prctl if sys.platform.startswith("linux") else None


def _drop_dac_capabilities() -> None:  # runs in the child, between fork and exec
    for cap in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if _PRCTL(24, cap, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone from the exec'd program
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def _run_without_dac(ctx: Ctx) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "planner", *ctx.args],
        env=ctx.env, cwd=ctx.moto.cwd, capture_output=True, text=True, encoding="utf-8",
        timeout=TIMEOUT, check=False,
        preexec_fn=_drop_dac_capabilities if IS_ROOT else None,
    )


def _chmod_000(ctx: Ctx, path: Path) -> None:
    mode = path.stat().st_mode & 0o7777
    path.chmod(0)
    ctx.cleanups.append(lambda: path.chmod(mode))
    if IS_ROOT:  # can this root give up its bypass? (not in every container)
        probe = subprocess.run(["true"], preexec_fn=_drop_dac_capabilities, check=False)
        if probe.returncode != 0:
            pytest.skip("cannot drop CAP_DAC_OVERRIDE here: chmod 000 does not stop root")
    ctx.runner = _run_without_dac


def unreadable_file(ctx: Ctx) -> None:
    _chmod_000(ctx, ctx.build / "css" / "site.css")


def unreadable_folder(ctx: Ctx) -> None:
    _chmod_000(ctx, ctx.build / "docs")


def symlink_loop_to_an_ancestor(ctx: Ctx) -> None:
    os.symlink("..", ctx.build / "about" / "up")


def symlink_to_itself(ctx: Ctx) -> None:
    os.symlink("ouroboros.html", ctx.build / "ouroboros.html")


def symlink_to_a_file_outside(ctx: Ctx) -> None:
    secret = ctx.tmp / "secret.txt"
    secret.write_text("not for the web\n")
    os.symlink(secret, ctx.build / "leak.txt")


def relative_symlink_to_a_folder_outside(ctx: Ctx) -> None:
    outside = write_site(ctx.tmp / "outside", {"private/key.pem": "-----BEGIN\n"})
    os.symlink(os.path.relpath(outside, ctx.build / "img"), ctx.build / "img" / "more")


def _raw_file(folder: Path, name: bytes, data: bytes = b"<p>x</p>\n") -> None:
    fd = os.open(os.path.join(os.fsencode(folder), name), os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, data)
    os.close(fd)


def non_utf8_file_name(ctx: Ctx) -> None:
    _raw_file(ctx.build / "docs", b"caf\xe9.html")  # Latin-1 e-acute


def non_utf8_folder_name(ctx: Ctx) -> None:
    folder = os.path.join(os.fsencode(ctx.build), b"\xff\xfe")
    os.mkdir(folder)
    _raw_file(Path(os.fsdecode(folder)), b"page.html")


def key_of_1025_bytes(ctx: Ctx) -> None:
    write_site(ctx.build, {nested_key(1025): "x"})


def key_of_1026_utf8_bytes_in_fewer_characters(ctx: Ctx) -> None:
    key = nested_key(1026, "é")
    assert len(key) < 1024
    write_site(ctx.build, {key: "x"})


def key_over_the_limit_only_with_the_target_prefix(ctx: Ctx) -> None:
    write_site(ctx.build, {nested_key(1020): "x"})  # + "site/" = 1025 bytes


def name_with_a_backslash(ctx: Ctx) -> None:
    write_site(ctx.build, {"a\\b.html": "<p>x</p>\n"})  # a browser asks for a/b.html


def folder_name_with_a_backslash(ctx: Ctx) -> None:
    write_site(ctx.build, {"docs\\v1/index.html": "<p>x</p>\n"})


def name_with_a_control_character(ctx: Ctx) -> None:
    write_site(ctx.build, {"docs/tab\there.html": "<p>x</p>\n"})


def _instead_of_a_page(ctx: Ctx, make: Callable[[str], None]) -> None:
    """The live page about/index.html becomes a special file in the build: skipping it would
    delete the page."""
    page = ctx.build / "about" / "index.html"
    page.unlink()
    here = os.getcwd()
    os.chdir(page.parent)  # a relative name: a socket's path is limited to 108 bytes
    try:
        make(page.name)
    finally:
        os.chdir(here)


def fifo_where_a_page_was(ctx: Ctx) -> None:
    _instead_of_a_page(ctx, os.mkfifo)


def socket_where_a_page_was(ctx: Ctx) -> None:
    def bind(name: str) -> None:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.bind(name)  # the socket file stays once the socket is closed

    _instead_of_a_page(ctx, bind)


def _rewrite_manifest(ctx: Ctx, change: Callable[[bytes], bytes]) -> None:
    s3, bucket = ctx.moto.s3, ctx.site.bucket
    prefix = ctx.target[len(f"s3://{bucket}"):].strip("/")
    key = (prefix + "/" if prefix else "") + MANIFEST
    s3.put_object(Bucket=bucket, Key=key, Body=change(body(s3, bucket, key)))
    (ctx.build / "index.html").write_text("<h1>v2</h1>\n")  # something to deploy


def _edit_manifest_doc(ctx: Ctx, edit: Callable[[dict], None]) -> None:
    def change(data: bytes) -> bytes:
        doc = json.loads(gzip.decompress(data))
        edit(doc)
        return gzip.compress(json.dumps(doc).encode())

    _rewrite_manifest(ctx, change)


def manifest_not_gzip(ctx: Ctx) -> None:
    _rewrite_manifest(ctx, lambda data: b"not gzip at all")


def manifest_truncated(ctx: Ctx) -> None:
    _rewrite_manifest(ctx, lambda data: data[: len(data) // 2])


def manifest_not_json(ctx: Ctx) -> None:
    _rewrite_manifest(ctx, lambda data: gzip.compress(b'{"format_version": 1, "entries": {'))


def manifest_of_a_newer_format(ctx: Ctx) -> None:
    _edit_manifest_doc(ctx, lambda doc: doc.update(format_version=3))


def manifest_without_a_format_version(ctx: Ctx) -> None:
    _edit_manifest_doc(ctx, lambda doc: doc.pop("format_version"))


def manifest_of_another_target(ctx: Ctx) -> None:
    _edit_manifest_doc(ctx, lambda doc: doc.update(target="s3://another-site-bucket"))


def _add_entry(key: str) -> Callable[[dict], None]:
    """One more key in a format 2 manifest's columns (NUL-joined keys; see docs/state.md)."""

    def edit(doc: dict) -> None:
        keys = doc["keys"].split("\x00") if doc["keys"] else []
        doc["keys"] = "\x00".join([*keys, key])
        doc["hashes"] += "0" * 32
        doc["sizes"].append(1)
        doc["header_of"].append(0)
        if "etags" in doc:
            doc["etags"] += "\x00"

    return edit


def manifest_key_with_dotdot(ctx: Ctx) -> None:
    _edit_manifest_doc(ctx, _add_entry("../other-site/index.html"))


def manifest_key_that_is_absolute(ctx: Ctx) -> None:
    _edit_manifest_doc(ctx, _add_entry("/etc/passwd"))


def manifest_key_not_utf8(ctx: Ctx) -> None:
    _edit_manifest_doc(ctx, _add_entry("caf\udce9.html"))  # the escape \udce9 in the JSON


def unknown_distribution(ctx: Ctx) -> None:
    ctx.distributions = ["E0NOSUCHDIST00"]
    (ctx.build / "css" / "site.css").write_text("body { color: red; }\n")  # to invalidate


def unknown_distribution_with_only_new_files(ctx: Ctx) -> None:
    ctx.distributions = ["E0NOSUCHDIST00"]
    write_site(ctx.build, {"blog/index.html": "<h1>Blog</h1>\n"})  # nothing to invalidate


def unknown_distribution_when_the_account_has_uncounted_invalidations(ctx: Ctx) -> None:
    # Someone invalidated by hand: the deploy counts it (and caches the count) while planning.
    ctx.moto.cloudfront.create_invalidation(
        DistributionId=ctx.site.distribution_id,
        InvalidationBatch={"Paths": {"Quantity": 1, "Items": ["/index.html"]},
                           "CallerReference": "by-hand-1"},
    )
    unknown_distribution(ctx)


def _invalidating_on(ctx: Ctx, distribution: str) -> None:
    """The deploy names ``distribution`` and has a changed file to invalidate there."""
    ctx.distributions = [distribution]
    (ctx.build / "css" / "site.css").write_text("body { color: red; }\n")


def distribution_empty(ctx: Ctx) -> None:
    _invalidating_on(ctx, "")  # `-d "$CLOUDFRONT_DISTRIBUTION_ID"` with the variable unset


def distribution_with_a_line_break(ctx: Ctx) -> None:
    _invalidating_on(ctx, ctx.site.distribution_id + "\n")  # pasted into a CI variable


def distribution_unknown_domain(ctx: Ctx) -> None:
    _invalidating_on(ctx, "docs.example.org")


def distribution_of_another_bucket(ctx: Ctx) -> None:
    from e2e_helpers import create_distribution

    _invalidating_on(ctx, create_distribution(ctx.moto.cloudfront, "another-site-bucket"))


def distribution_serving_another_prefix(ctx: Ctx) -> None:
    from e2e_helpers import create_distribution

    _invalidating_on(ctx, create_distribution(ctx.moto.cloudfront, ctx.site.bucket, "/blog"))


def target_in_the_state_folder(ctx: Ctx) -> None:
    ctx.target = f"s3://{ctx.site.bucket}/.planner"


def target_inside_another_target(ctx: Ctx) -> None:
    ctx.target = f"s3://{ctx.site.bucket}/docs"  # the bucket root is a target


def target_holding_another_target(ctx: Ctx) -> None:
    # The good deploy went to a/; this one goes to b/, whose docs/ is another target already.
    ctx.target = f"s3://{ctx.site.bucket}/b"
    for key in ("b/docs/.planner/manifest.json.gz", "b/docs/index.html"):
        ctx.moto.s3.put_object(Bucket=ctx.site.bucket, Key=key, Body=b"x")


def state_overlapping_the_target(ctx: Ctx) -> None:
    ctx.extra += ["--state", f"s3://{ctx.site.bucket}/planner-state"]


def state_of_another_kind(ctx: Ctx) -> None:
    ctx.extra += ["--state", str(ctx.tmp / "state")]


def _deploy_apart(ctx: Ctx, target: str, state: str) -> None:
    """Another target, deployed with its state apart (markers written), before the case."""
    proc = run(["deploy", str(ctx.build), "-t", target, "--state", state, "-q"], ctx.env,
               ctx.moto.cwd)
    assert proc.returncode == 0, proc.stderr


def _put(ctx: Ctx, objects: dict[str, bytes]) -> None:
    for key, data in objects.items():
        ctx.moto.s3.put_object(Bucket=ctx.site.bucket, Key=key, Body=data)


def state_inside_another_target(ctx: Ctx) -> None:
    # The good deploy went to a/; this one keeps the state of b/ inside a/'s site.
    ctx.target = f"s3://{ctx.site.bucket}/b"
    ctx.extra += ["--state", f"s3://{ctx.site.bucket}/a/state"]


def target_on_another_targets_state_place(ctx: Ctx) -> None:
    _deploy_apart(ctx, f"s3://{ctx.site.bucket}/b", f"s3://{ctx.site.bucket}/ops/b")
    ctx.target = f"s3://{ctx.site.bucket}/ops/b"


def target_holding_a_state_place(ctx: Ctx) -> None:
    ctx.target = f"s3://{ctx.site.bucket}/b"  # b/stateX/ holds the state of another target
    _put(ctx, {"b/stateX/.planner/state.json": b'{"planner": "state", "target": "s3://x"}',
               "b/stateX/manifest.json.gz": b"x", "b/index.html": b"x"})


def state_of_another_target(ctx: Ctx) -> None:
    _deploy_apart(ctx, f"s3://{ctx.site.bucket}/b", f"s3://{ctx.site.bucket}/ops/b")
    ctx.extra += ["--state", f"s3://{ctx.site.bucket}/ops/b"]


def state_that_is_another_target(ctx: Ctx) -> None:
    _put(ctx, {"b/.planner/manifest.json.gz": b"x", "b/index.html": b"x"})
    ctx.extra += ["--state", f"s3://{ctx.site.bucket}/b"]


def state_holding_other_objects(ctx: Ctx) -> None:
    _put(ctx, {"notes/readme.txt": b"mine"})
    ctx.extra += ["--state", f"s3://{ctx.site.bucket}/notes"]


def state_not_moved_yet(ctx: Ctx) -> None:
    ctx.extra += ["--state", f"s3://{ctx.site.bucket}/ops/new"]  # its manifest is in .planner/


def state_forgotten(ctx: Ctx) -> None:
    _deploy_apart(ctx, f"s3://{ctx.site.bucket}/b", f"s3://{ctx.site.bucket}/ops/b")
    ctx.target = f"s3://{ctx.site.bucket}/b"


def deploy_writing_under_a_nested_target(ctx: Ctx) -> None:
    # A target made inside this one by an older version, which did not look; the build
    # changes a page of this target inside it.
    _put(ctx, {"docs/.planner/manifest.json.gz": b"theirs"})
    write_site(ctx.build, {"docs/café menu.html": "<h1>Menu, v2</h1>\n"})


def lost_manifest_with_more_orphans_than_max_deletes(ctx: Ctx) -> None:
    ctx.moto.s3.delete_object(Bucket=ctx.site.bucket, Key=MANIFEST)
    (ctx.build / "about" / "index.html").unlink()  # the bucket's copy is an orphan now
    ctx.extra += ["--max-deletes", "0"]


def no_credentials(ctx: Ctx) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        ctx.env.pop(var, None)
    # AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE already name missing files and
    # AWS_EC2_METADATA_DISABLED is true: boto3 has nowhere left to look.
    assert not os.path.exists(ctx.env["AWS_SHARED_CREDENTIALS_FILE"])
    assert ctx.env["AWS_EC2_METADATA_DISABLED"] == "true"
    (ctx.build / "index.html").write_text("<h1>v2</h1>\n")


def _moto_auth(endpoint: str, after: str) -> None:
    """Make the moto server check IAM from the ``after``-th request on ('inf': never)."""
    req = urllib.request.Request(f"{endpoint}/moto-api/reset-auth", method="POST",
                                 data=after.encode(), headers={"Content-Type": "text/plain"})
    with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(req, timeout=10) as r:
        assert r.status == 200


def access_denied(ctx: Ctx) -> None:
    """A deploy user that may read the bucket, and write nothing.

    moto's server cannot check CloudFront requests once IAM is enforced (it answers every one
    with SignatureDoesNotMatch), so this deploy names no distribution and has nothing to
    invalidate (one new page): it makes no CloudFront call, and its first write is refused."""
    import boto3

    iam = boto3.client("iam", endpoint_url=ctx.moto.endpoint, region_name="us-east-1",
                       aws_access_key_id="testing", aws_secret_access_key="testing")
    iam.create_user(UserName="read-only-deployer")
    policy = {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:ListBucket", "s3:GetBucketLocation"],
            "Resource": "*",
        }],
    }
    iam.put_user_policy(UserName="read-only-deployer", PolicyName="read",
                        PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="read-only-deployer")["AccessKey"]
    ctx.env["AWS_ACCESS_KEY_ID"] = key["AccessKeyId"]
    ctx.env["AWS_SECRET_ACCESS_KEY"] = key["SecretAccessKey"]
    ctx.distributions = []
    write_site(ctx.build, {"blog/index.html": "<h1>Blog</h1>\n"})

    @contextlib.contextmanager
    def iam_enforced() -> Iterator[None]:
        _moto_auth(ctx.moto.endpoint, "0")
        try:
            yield
        finally:
            _moto_auth(ctx.moto.endpoint, "inf")

    ctx.around = iam_enforced


def missing_bucket(ctx: Ctx) -> None:
    ctx.target = "s3://no-such-bucket-here"


def endpoint_down(ctx: Ctx) -> None:
    with socket.socket() as s:  # a port nothing listens on (bound, then closed)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    ctx.env["AWS_ENDPOINT_URL"] = f"http://127.0.0.1:{port}"
    (ctx.build / "index.html").write_text("<h1>v2</h1>\n")


# A file changing while it is hashed: a sitecustomize (PYTHONPATH) that appends to one file
# whenever a read of it starts from the beginning, as a build still writing it would. (A file
# that changes during one pass only is hashed again, consistently, and deploys.)
GROW_HOOK = """
    import os

    _path = os.environ.get("BAD_INPUT_GROWING_FILE")
    if _path:
        _ino = os.stat(_path).st_ino
        _readv, _preadv = os.readv, os.preadv
        _left = [8]  # a writer that finishes, some time

        def _grow(fd, offset):
            # Each pass over the file (a read from its start) finds it longer than it was.
            if offset == 0 and _left[0] and os.fstat(fd).st_ino == _ino:
                _left[0] -= 1
                with open(_path, "ab") as f:
                    f.write(b"/* still being written */")

        def readv(fd, buffers):
            _grow(fd, os.lseek(fd, 0, os.SEEK_CUR))
            return _readv(fd, buffers)

        def preadv(fd, buffers, offset, *flags):
            _grow(fd, offset)
            return _preadv(fd, buffers, offset, *flags)

        os.readv, os.preadv = readv, preadv
"""


def file_growing_while_hashed(ctx: Ctx) -> None:
    hook = ctx.tmp / "grow-hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(GROW_HOOK))
    ctx.env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hook), ctx.env.get("PYTHONPATH")]))
    ctx.env["BAD_INPUT_GROWING_FILE"] = str(ctx.build / "css" / "site.css")
    (ctx.build / "index.html").write_text("<h1>v2</h1>\n")


def _run_paused_after_the_plan(
    ctx: Ctx, meanwhile: Callable[[], None]
) -> subprocess.CompletedProcess:
    """Run the deploy with its stdout on a pipe smaller than its plan: it blocks printing the
    plan (the build scanned and hashed, nothing of the site or its state written yet) until we
    read on. ``meanwhile`` runs while it is blocked there."""
    r, w = os.pipe()
    try:
        try:
            fcntl.fcntl(w, fcntl.F_SETPIPE_SZ, 4096)
        except OSError:
            pass
        capacity = fcntl.fcntl(w, fcntl.F_GETPIPE_SZ)
        proc = subprocess.Popen([sys.executable, "-m", "planner", *ctx.args], env=ctx.env,
                                cwd=ctx.moto.cwd, stdout=w, stderr=subprocess.PIPE)
    finally:
        os.close(w)
    try:
        chunks = [os.read(r, 1)]  # the plan has begun: the scan is over
        meanwhile()
        while chunk := os.read(r, 1 << 16):
            chunks.append(chunk)
        stderr = proc.stderr.read()
        proc.wait(timeout=TIMEOUT)
    finally:
        os.close(r)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stdout = b"".join(chunks)
    # Still printing when `meanwhile` ran: more than the pipe holds was left to write.
    assert len(stdout) > capacity + 1, (len(stdout), capacity, stderr)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout.decode(),
                                       stderr.decode())


def file_edited_after_it_was_hashed(ctx: Ctx) -> None:
    css = ctx.build / "css" / "site.css"
    css.write_text("body { color: navy; }\n")  # the one asset to upload: uploaded first
    # Pages with long names, so that the (--verbose) plan outgrows the pipe's buffer.
    write_site(ctx.build, {f"pages/{i:03}-{'x' * 200}.html": f"<p>{i}</p>\n" for i in range(40)})
    ctx.extra.append("--verbose")
    edited = "body { color: gold; }\n"  # same size, other bytes: only the hash tells
    assert len(edited) == len(css.read_text())
    ctx.runner = lambda c: _run_paused_after_the_plan(c, lambda: css.write_text(edited))


def _saved_plan(change: Callable[[bytes], bytes]) -> Callable[[Ctx], None]:
    """A change to deploy, saved with `plan --out plan.json` (against the moto server), the
    file changed by ``change``, then `deploy --plan plan.json`. Without the checks on load,
    moto takes any invalidation path, so the deploy would write the site and its manifest."""

    def introduce(ctx: Ctx) -> None:
        (ctx.build / "css" / "site.css").write_text("body { color: red; }\n")
        dists = [a for d in ctx.distributions for a in ("--distribution", d)]
        proc = run(["plan", str(ctx.build), "--target", ctx.target, *dists, "--out",
                    "plan.json"], ctx.env, ctx.moto.cwd)
        assert proc.returncode == 0, proc.stderr
        saved = Path(ctx.moto.cwd, "plan.json")
        saved.write_bytes(change(saved.read_bytes()))
        ctx.runner = lambda c: run(["deploy", "--plan", "plan.json"], c.env, c.moto.cwd)

    return introduce


def _saved_plan_cases() -> list["Case"]:
    """test_saved_plan.py's hand edits: as written (the checksum tells) where only the checksum
    can, else resealed (the content checks tell); and the file cut short."""
    from test_saved_plan import EDITED_MESSAGE, HAND_EDITS, edit_plan, truncated

    out = []
    for e in HAND_EDITS:
        resealed = e.resealed is not None
        out.append(Case(
            f"saved-plan-{e.id}" + ("-resealed" if resealed else ""),
            _saved_plan(lambda data, e=e, r=resealed: edit_plan(data, e, r)),
            e.resealed if resealed else EDITED_MESSAGE,
        ))
    out.append(Case("saved-plan-truncated", _saved_plan(truncated),
                    "plan.json is not a readable saved plan"))
    return out


@dataclass(frozen=True)
class Case:
    id: str
    introduce: Callable[[Ctx], None]
    fragment: str  # a telling part of the one-line error
    prefix: str = ""  # deploy under s3://bucket/PREFIX
    marks: tuple = ()


REFUSED = [
    # The build folder.
    Case("build-missing", missing_build, "does not exist"),
    Case("build-empty", empty_build, "no files to deploy"),
    Case("build-only-excluded-files", build_of_excluded_files_only, "no files to deploy"),
    # Unreadable (chmod 000, with root's permission bypass dropped).
    Case("unreadable-file", unreadable_file, "cannot read css/site.css: Permission denied"),
    Case("unreadable-folder", unreadable_folder, "cannot read folder"),
    # Symlinks.
    Case("symlink-loop-to-an-ancestor", symlink_loop_to_an_ancestor, "symlink loop at about/up"),
    Case("symlink-to-itself", symlink_to_itself, "ouroboros.html is broken or loops"),
    Case("symlink-to-a-file-outside", symlink_to_a_file_outside,
         "symlink leak.txt points outside the build folder"),
    Case("symlink-to-a-folder-outside", relative_symlink_to_a_folder_outside,
         "symlink img/more points outside the build folder"),
    # Files changing under the deploy.
    Case("file-growing-while-hashed", file_growing_while_hashed,
         "changed while it was being hashed"),
    Case("file-edited-between-hash-and-upload", file_edited_after_it_was_hashed,
         "css/site.css changed since it was scanned"),
    # Names.
    Case("name-not-utf8", non_utf8_file_name, "not valid UTF-8",
         marks=(pytest.mark.skipif(not UTF8_FS, reason="needs a UTF-8 file system"),)),
    Case("folder-name-not-utf8", non_utf8_folder_name, "not valid UTF-8",
         marks=(pytest.mark.skipif(not UTF8_FS, reason="needs a UTF-8 file system"),)),
    Case("key-over-1024-bytes", key_of_1025_bytes, "1024-byte"),
    Case("key-over-1024-utf8-bytes", key_of_1026_utf8_bytes_in_fewer_characters, "1024-byte"),
    Case("key-over-1024-bytes-with-the-prefix", key_over_the_limit_only_with_the_target_prefix,
         "1,025 bytes with the prefix 'site/', longer than S3's 1024-byte", prefix="site"),
    Case("name-with-a-backslash", name_with_a_backslash, "file 'a\\\\b.html' has a backslash"),
    Case("folder-name-with-a-backslash", folder_name_with_a_backslash,
         "folder 'docs\\\\v1' has a backslash"),
    Case("name-with-a-control-character", name_with_a_control_character,
         "file 'docs/tab\\there.html' has a control character"),
    # Special files (the live page stays: "objects" unchanged).
    Case("fifo-where-a-page-was", fifo_where_a_page_was,
         "'about/index.html' is a FIFO (named pipe), not a file"),
    Case("socket-where-a-page-was", socket_where_a_page_was,
         "'about/index.html' is a socket, not a file"),
    # The stored manifest.
    Case("manifest-not-gzip", manifest_not_gzip, "manifest is not valid gzip"),
    Case("manifest-truncated", manifest_truncated, "manifest is not valid gzip"),
    Case("manifest-not-json", manifest_not_json, "manifest is not valid JSON"),
    Case("manifest-newer-format", manifest_of_a_newer_format, "format version 3 is not supported"),
    Case("manifest-no-format-version", manifest_without_a_format_version, "format version"),
    Case("manifest-of-another-target", manifest_of_another_target,
         "belongs to s3://another-site-bucket, not s3://planner-e2e-site"),
    Case("manifest-of-another-target-prefix", manifest_of_another_target,
         "belongs to s3://another-site-bucket, not s3://planner-e2e-site/site", prefix="site"),
    Case("manifest-key-dotdot", manifest_key_with_dotdot, "'../other-site/index.html' escapes"),
    Case("manifest-key-absolute", manifest_key_that_is_absolute,
         "'/etc/passwd' is not a relative POSIX path"),
    Case("manifest-key-not-utf8", manifest_key_not_utf8, "'caf\\udce9.html' is not valid UTF-8"),
    # CloudFront.
    Case("unknown-distribution", unknown_distribution, "NoSuchDistribution"),
    Case("unknown-distribution-nothing-to-invalidate", unknown_distribution_with_only_new_files,
         "NoSuchDistribution"),
    Case("unknown-distribution-uncounted-invalidations",
         unknown_distribution_when_the_account_has_uncounted_invalidations, "NoSuchDistribution"),
    Case("distribution-empty", distribution_empty, "--distribution is empty"),
    Case("distribution-with-a-line-break", distribution_with_a_line_break, "has white space"),
    Case("distribution-unknown-domain", distribution_unknown_domain,
         "--distribution docs.example.org: no distribution of this account has that domain"),
    Case("distribution-of-another-bucket", distribution_of_another_bucket,
         "none of its origins is the bucket"),
    Case("distribution-serving-another-prefix", distribution_serving_another_prefix,
         "its origin paths lie outside the target's prefix", prefix="site"),
    # The target and the state's place.
    Case("target-in-the-state-folder", target_in_the_state_folder, "lies inside a state folder"),
    Case("target-inside-another-target", target_inside_another_target,
         "s3://planner-e2e-site/docs lies inside the target s3://planner-e2e-site"),
    Case("target-holding-another-target", target_holding_another_target,
         "s3://planner-e2e-site/b holds another target at docs/", prefix="a"),
    Case("state-overlapping-the-target", state_overlapping_the_target,
         "overlaps the target s3://planner-e2e-site"),
    Case("state-of-another-kind", state_of_another_kind, "must be an s3:// place"),
    Case("state-inside-another-target", state_inside_another_target,
         "--state s3://planner-e2e-site/a/state lies inside the target s3://planner-e2e-site/a,",
         prefix="a"),
    Case("target-on-another-targets-state-place", target_on_another_targets_state_place,
         "s3://planner-e2e-site/ops/b is the state place of s3://planner-e2e-site/b", prefix="a"),
    Case("target-holding-a-state-place", target_holding_a_state_place,
         "s3://planner-e2e-site/b holds the state place of another target at stateX/",
         prefix="a"),
    Case("state-of-another-target", state_of_another_target,
         "--state s3://planner-e2e-site/ops/b holds the state of s3://planner-e2e-site/b, not of "
         "s3://planner-e2e-site/a", prefix="a"),
    Case("state-that-is-another-target", state_that_is_another_target,
         "--state s3://planner-e2e-site/b is the target s3://planner-e2e-site/b", prefix="a"),
    Case("state-holding-other-objects", state_holding_other_objects,
         "--state s3://planner-e2e-site/notes holds readme.txt, which is not state of",
         prefix="a"),
    Case("state-not-moved-yet", state_not_moved_yet,
         "keeps its state in s3://planner-e2e-site/a/.planner/ (its manifest is there)",
         prefix="a"),
    Case("state-forgotten", state_forgotten,
         "s3://planner-e2e-site/b keeps its state in a place of its own", prefix="a"),
    Case("deploy-writing-under-a-nested-target", deploy_writing_under_a_nested_target,
         "holds another target at docs/ (marked by docs/.planner/), and this deploy would "
         "write docs/café menu.html there"),
    Case("takeover-orphans-over-max-deletes", lost_manifest_with_more_orphans_than_max_deletes,
         "more than --max-deletes 0"),
    # AWS access.
    Case("no-credentials", no_credentials, "no AWS credentials found"),
    Case("access-denied", access_denied, "AccessDenied"),
    Case("missing-bucket", missing_bucket, "NoSuchBucket"),
    Case("endpoint-down", endpoint_down, "Could not connect to the endpoint URL"),
    # A saved plan edited by hand (`deploy --plan`).
    *_saved_plan_cases(),
]


@pytest.mark.parametrize(
    "case", [pytest.param(c, id=c.id, marks=c.marks) for c in REFUSED]
)
def test_bad_input_is_refused_in_one_line_and_changes_nothing(moto, site, tmp_path, case):
    public = write_site(tmp_path / "public")
    target = site.target(case.prefix)
    good_deploy(moto, public, target, site.distribution_id)
    ctx = Ctx(moto=moto, site=site, tmp=tmp_path, build=public, target=target,
              distributions=[site.distribution_id], env=dict(moto.env))
    try:
        case.introduce(ctx)
        before = world(moto, site)
        with ctx.around():
            proc = ctx.run()
    finally:
        for undo in reversed(ctx.cleanups):
            undo()

    assert proc.returncode == 1, f"exit {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    after = world(moto, site)
    assert after["buckets"] == before["buckets"], "a bucket was created"
    assert after["invalidations"] == before["invalidations"], "an invalidation was created"
    assert after["objects"] == before["objects"], "an object was written, left or deleted"
    assert after["history"] == before["history"], "an object was written or deleted"
    line = one_line_error(proc)
    assert case.fragment in line, line


# --- odd but valid names: they deploy --------------------------------------------------------


@pytest.mark.parametrize(
    ("key", "url"),
    [
        ("100%.html", "/100%25.html"),
        ("a*b.js", "/a%2Ab.js"),
        ("what?.html", "/what%3F.html"),
        ("issue#12.html", "/issue%2312.html"),
        ("my page.html", "/my%20page.html"),
        ("café.html", "/caf%C3%A9.html"),
        ("docs/über uns/100% #1?.html", "/docs/%C3%BCber%20uns/100%25%20%231%3F.html"),
    ],
)
def test_odd_but_valid_name_deploys_under_its_key_and_is_invalidated_percent_encoded(
    moto, site, tmp_path, key, url
):
    public = write_site(tmp_path / "public", {**SITE, key: "<p>v1</p>\n"})
    first = good_deploy(moto, public, site.target(), site.distribution_id)
    assert key in {u.key for u in first.uploads}
    assert body(moto.s3, site.bucket, key) == b"<p>v1</p>\n"  # the key, byte for byte
    v2 = "<p>version two</p>\n"
    write_site(public, {key: v2})

    proc = run(["deploy", str(public), "--target", site.target(), "--distribution",
                site.distribution_id, "--format", "json"], moto.env, moto.cwd)

    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["uploads"] == [{"key": key, "reason": "changed", "size": len(v2), "in_place": False}]
    assert sorted(site_objects(moto.s3, site.bucket)) == sorted({*SITE, key})
    assert body(moto.s3, site.bucket, key) == v2.encode()
    assert key in manifest(moto.s3, site.bucket).entries
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv_paths(inv) == [url] == doc["invalidation"]["paths"]


# --- a file changing during a managed upload (in process) ------------------------------------


def files_under(root: Path) -> dict[str, bytes]:
    """Every file below ``root`` (the tool's state included): relative path -> bytes."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_file_changing_during_a_managed_upload_is_refused_and_never_published(
    tmp_path, monkeypatch
):
    """Files of 16 MiB or more go through the managed (multipart) transfer, which reads the
    file itself: docs/deploy.md's "the bytes sent are the bytes hashed (a file edited since the
    scan is refused)" must hold there too. There is no deterministic way to edit a file in the
    middle of a subprocess's upload, so this runs ``apply_plan`` in process, on the local
    backend, with the threshold lowered so that a small file takes that path, and a backend
    whose ``put_stream`` sees the file edited as it starts copying it."""
    import planner.apply as apply_mod
    from manifests import ScanError
    from planner import __version__
    from planner.backends import LocalBackend
    from planner.backends.targets import LocalTarget
    from planner.plan.build import build_plan
    from planner.plan.compute import Options

    public = write_site(tmp_path / "public")
    out = tmp_path / "out"
    backend = LocalBackend(LocalTarget(str(out)))
    options = Options(hash_workers=1)
    apply_mod.apply_plan(build_plan(str(public), backend, options, __version__), backend)
    css = public / "css" / "site.css"
    css.write_text("body { color: navy; }\n")
    plan = build_plan(str(public), backend, options, __version__)
    assert [u.key for u in plan.uploads] == ["css/site.css"]
    before = files_under(out)

    class EditedWhileUploaded:
        """The local backend, but the file is rewritten (same size) as its upload starts."""

        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def put_stream(self, key: str, stream: Any, content_type: str, cache_control: str) -> None:
            css.write_text("body { color: gold; }\n")
            backend.put_stream(key, stream, content_type, cache_control)

    monkeypatch.setattr(apply_mod, "MULTIPART_THRESHOLD", 0)
    with pytest.raises(ScanError, match=r"css/site\.css changed"):
        apply_mod.apply_plan(plan, EditedWhileUploaded(), workers=1)

    after = files_under(out)
    assert after["css/site.css"] == before["css/site.css"], "bytes never hashed were published"
    # Edited after the check before the first write (a build edited before it is refused with
    # nothing written at all): the deploy stopped after writing its pending record, which is
    # all it leaves; the next run re-sends what it names.
    assert {k: v for k, v in after.items() if k != ".planner/pending.json"} == before
    assert ".planner/pending.json" in after
