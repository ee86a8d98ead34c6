"""End to end under faults: ``python -m planner deploy`` in a subprocess, talking to the moto
server through ``fault_proxy.FaultProxy``, which answers chosen requests with AWS errors, drops
connections, or SIGKILLs the CLI when a chosen request arrives. The bucket, the manifest and
the invalidations are then checked with boto3 directly against moto, and the order of what
happened is read from the proxy's log (every request, in order of arrival, with moto's answer).

What must hold:

- transient faults that botocore's retries absorb change nothing: exit 0, the bucket equals
  the build, the manifest matches the bucket, one invalidation;
- a fault that outlasts ``--max-attempts`` fails the deploy with one ``Error:`` line and no
  manifest commit, and a rerun converges;
- ``TooManyInvalidationsInProgress`` past ``--wait-timeout`` leaves the deploy committed and
  its invalidation pending, and the rerun submits it with the same CallerReference;
- a deploy killed (SIGKILL) at any request converges when run again: bucket == build,
  manifest == bucket, every changed URL invalidated by a CreateInvalidation that arrived after
  moto had stored the key's last PUT, no lock left.

moto does not de-duplicate CallerReference (see /work/shared/CLOUDFRONT.md), so invalidation
counts are asserted only where no request was repeated.

To keep the file fast, the state a real v1 deploy leaves in the bucket is recorded once (the
first test that needs it runs that deploy) and put back object by object (same keys, bytes and
headers) after each reset of moto.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import urllib.parse
import urllib.request
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xxhash
from conftest import Site
from e2e_helpers import (
    MANIFEST,
    SITE,
    body,
    create_distribution,
    invalidations,
    manifest,
    objects,
    one_line_error,
    run,
    site_objects,
    write_site,
)
from fault_proxy import (
    CF_THROTTLING,
    CF_TOO_MANY_INVALIDATIONS,
    DROP,
    DROP_AFTER,
    S3_INTERNAL_ERROR,
    S3_SLOW_DOWN,
    Entry,
    FaultProxy,
    Rule,
    kill_run,
)

pytestmark = pytest.mark.e2e

PENDING = ".planner/pending.json"
LOCK = ".planner/lock.json"
CAFE = "docs/café menu.html"
INVALIDATION = r"^/20\d\d-\d\d-\d\d/distribution/[^/]+/invalidation$"

# v2: two assets and three pages edited or added, one asset removed.
V1: dict[str, str] = dict(SITE)
V2: dict[str, str] = {
    **{k: v for k, v in SITE.items() if k != "img/logo.svg"},
    "css/site.css": "body { font-family: serif; color: #111; }\n",
    "about/index.html": "<!doctype html><h1>About us, v2</h1>\n",
    CAFE: "<!doctype html><h1>Menu du café, v2</h1>\n",
    "index.html": "<!doctype html><h1>Home v2</h1><link rel=stylesheet href=/css/site.css>\n",
    "js/extra.js": "console.log('extra');\n",
    "new/page.html": "<!doctype html><h1>New</h1>\n",
}
MODIFIED = sorted(k for k in V2 if k in V1 and V2[k] != V1[k])
DELETED = sorted(set(V1) - set(V2))
ADDED = sorted(set(V2) - set(V1))


# --- building, running -----------------------------------------------------------------------


def build(root: Path, files: dict[str, str]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    return write_site(root, files)


def deploy_args(root: Path, site: Site, *extra: str) -> list[str]:
    return ["deploy", str(root), "--target", site.target(), "--distribution",
            site.distribution_id, *extra]


def planner(args: list[str], env: dict[str, str], cwd: str) -> subprocess.CompletedProcess:
    return run(args, env, cwd)


def ok(proc: subprocess.CompletedProcess, proxy: FaultProxy | None = None, mark: int = 0) -> None:
    log = f"\nproxy log:\n{proxy.dump(mark)}" if proxy is not None else ""
    assert proc.returncode == 0, (
        f"exit {proc.returncode}\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}{log}"
    )


# --- the v1 state: one real deploy, then put back after each reset ---------------------------

_V1_STATE: list[tuple[str, bytes, str, str]] = []  # key, body, Content-Type, Cache-Control


def deploy_v1(moto, site: Site, tmp_path: Path) -> None:
    """Bring the (empty) bucket to the state a deploy of V1 leaves: the first time by running
    that deploy, then by writing back the very objects it left (keys, bytes, headers)."""
    if not _V1_STATE:
        v1 = build(tmp_path / "v1", V1)
        ok(planner(deploy_args(v1, site, "--format", "json"), moto.env, moto.cwd))
        for key in sorted(objects(moto.s3, site.bucket)):
            obj = moto.s3.get_object(Bucket=site.bucket, Key=key)
            _V1_STATE.append((key, obj["Body"].read(), obj["ContentType"], obj["CacheControl"]))
        assert any(k == MANIFEST for k, *_ in _V1_STATE)
        return
    for key, data, content_type, cache_control in _V1_STATE:
        moto.s3.put_object(Bucket=site.bucket, Key=key, Body=data, ContentType=content_type,
                           CacheControl=cache_control)


def v1_deploy_id() -> str:
    from manifests import Manifest

    (data,) = [d for k, d, *_ in _V1_STATE if k == MANIFEST]
    return Manifest.loads(data).deploy_id


def reset_site(moto) -> Site:
    """moto emptied (as the ``moto`` fixture does), then the ``site`` fixture's bucket and a new
    distribution: one kill-and-rerun iteration of its own."""
    req = urllib.request.Request(f"{moto.endpoint}/moto-api/reset", method="POST", data=b"")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(req, timeout=10) as resp:
        assert resp.status == 200
    bucket = "planner-e2e-site"
    moto.s3.create_bucket(Bucket=bucket)
    moto.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return Site(bucket=bucket, distribution_id=create_distribution(moto.cloudfront, bucket))


# --- what the bucket, the manifest and the CDN must be ---------------------------------------


def check_bucket_is(moto, site: Site, files: dict[str, str]) -> None:
    objs = site_objects(moto.s3, site.bucket)
    assert sorted(objs) == sorted(files), "bucket keys differ from the build"
    for key, text in files.items():
        assert body(moto.s3, site.bucket, key) == text.encode("utf-8"), key


def check_manifest_matches_bucket(moto, site: Site):
    m = manifest(moto.s3, site.bucket)
    assert m is not None, "no manifest committed"
    objs = site_objects(moto.s3, site.bucket)
    assert sorted(m.entries) == sorted(objs), "manifest keys differ from the bucket"
    for key, entry in m.entries.items():
        obj = moto.s3.get_object(Bucket=site.bucket, Key=key)
        data = obj["Body"].read()
        assert entry.size == len(data), key
        assert entry.hash == xxhash.xxh3_128_hexdigest(data), key
        assert obj["ContentType"] == entry.content_type, key
        assert obj["CacheControl"] == entry.cache_control, key
    return m


def state_keys(moto, site: Site) -> set[str]:
    return {k for k in objects(moto.s3, site.bucket, ".planner/")}


def check_converged(moto, site: Site, files: dict[str, str]) -> None:
    check_bucket_is(moto, site, files)
    check_manifest_matches_bucket(moto, site)
    left = state_keys(moto, site)
    assert "pending.json" not in left, "pending record left behind"
    assert "lock.json" not in left, "lock left behind"


def urls_of_key(key: str) -> list[str]:
    """The URLs a key is served at (docs/urls.md, "URLs and invalidation paths"), for the keys
    of this file's sites: percent-encoded, and both forms of an index page."""
    url = "/" + urllib.parse.quote(key, safe="/")
    if url.endswith("/index.html"):
        return [url[: -len("index.html")], url]
    return [url]


def covers(path: str, url: str) -> bool:
    return url.startswith(path[:-1]) if path.endswith("*") else path == url


def made_invalidations(proxy: FaultProxy, mark: int, dist: str) -> list[tuple[Entry, list[str], str]]:
    """(request, paths, CallerReference) of every CreateInvalidation moto accepted."""
    out = []
    for e in proxy.invalidation_requests(mark):
        if e.invalidation_distribution == dist and e.applied:
            paths, ref = e.invalidation_batch()
            out.append((e, paths, ref))
    return out


def as_cloudfront_made_them(
    made: list[tuple[Entry, list[str], str]],
) -> list[tuple[int, list[str]]]:
    """(tick it was created, paths) of each invalidation as CloudFront would have made them:
    a repeated CallerReference returns the first invalidation made with it, created when that
    one arrived (moto makes a new one each time)."""
    first: dict[str, int] = {}
    for e, _, ref in made:
        first.setdefault(ref, e.arrived)
    return [(first[ref], paths) for _, paths, ref in made]


def deletes_applied(proxy: FaultProxy, mark: int, bucket: str, key: str) -> list[Entry]:
    """DeleteObject of ``key``, or DeleteObjects naming it, that moto carried out."""
    out = []
    for e in proxy.since(mark):
        if not e.applied or e.bucket != bucket:
            continue
        if e.method == "DELETE" and e.key == key:
            out.append(e)
        elif e.method == "POST" and "delete" in e.query and e.body is not None:
            names = [el.text for el in ET.fromstring(e.body).iter() if el.tag.endswith("Key")]
            if key in names:
                out.append(e)
    return out


def check_changed_urls_invalidated_after_upload(
    proxy: FaultProxy, mark: int, site: Site, modified: list[str], deleted: list[str]
) -> None:
    """Every URL of a modified key is covered by a CreateInvalidation that arrived after moto
    had stored the key's last PUT; every URL of a deleted key by an invalidation CloudFront
    would have created after moto had deleted the object (see ``as_cloudfront_made_them``)."""
    made = made_invalidations(proxy, mark, site.distribution_id)
    problems = []
    for key in modified:
        puts = [e for e in proxy.requests(mark, method="PUT", key=key)
                if e.is_put_object and e.bucket == site.bucket and e.applied]
        assert puts, f"{key} was never uploaded\n{proxy.dump(mark)}"
        last = puts[-1]  # in order of arrival; the one moto finished last:
        last_done = max(e.done for e in puts if e.done is not None)
        for url in urls_of_key(key):
            if not any(e.arrived > last_done and any(covers(p, url) for p in paths)
                       for e, paths, _ in made):
                problems.append(f"{url} ({key}, last PUT #{last.number}) not invalidated after it")
    created = as_cloudfront_made_them(made)
    for key in deleted:
        gone = [e.done for e in deletes_applied(proxy, mark, site.bucket, key) if e.done]
        if not gone:
            problems.append(f"{key} was never deleted")
            continue
        for url in urls_of_key(key):
            # Created once the object was gone: no request can cache it again after that.
            if not any(tick > min(gone) and any(covers(p, url) for p in paths)
                       for tick, paths in created):
                problems.append(f"{url} (deleted {key}) not invalidated after its object was gone")
    assert not problems, "\n".join(problems) + "\nproxy log:\n" + proxy.dump(mark)


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture
def proxy(moto):
    with FaultProxy(moto.endpoint) as p:
        yield p


def v1_then_v2(moto, site, tmp_path) -> Path:
    deploy_v1(moto, site, tmp_path)
    return build(tmp_path / "v2", V2)


# --- 1. transient faults within botocore's retries --------------------------------------------

# id -> (rule, (method, S3 key or "^path regex") of the requests it hits, their statuses in order)
TRANSIENT: dict[str, tuple[Rule, tuple[str, str], list[int | None]]] = {
    "500-on-an-asset-put": (
        Rule(S3_INTERNAL_ERROR, method="PUT", path=r"/css/site\.css$", times=1),
        ("PUT", "css/site.css"), [500, 200],
    ),
    "503-slowdown-on-a-page-put": (
        Rule(S3_SLOW_DOWN, method="PUT", path=r"/about/index\.html$", times=1),
        ("PUT", "about/index.html"), [503, 200],
    ),
    "throttling-on-create-invalidation": (
        Rule(CF_THROTTLING, method="POST", path=INVALIDATION, times=1),
        ("POST", INVALIDATION), [400, 201],
    ),
    "dropped-connection-on-a-put": (
        Rule(DROP, method="PUT", path=r"/docs/café menu\.html$", times=1),
        ("PUT", CAFE), [None, 200],
    ),
    "dropped-connection-on-the-manifest-put": (
        Rule(DROP, method="PUT", path=r"/\.planner/manifest\.json\.gz$", times=1),
        ("PUT", MANIFEST), [None, 200],
    ),
    # Only in the "all at once" case:
    "503-slowdown-on-the-pending-record": (
        Rule(S3_SLOW_DOWN, method="PUT", path=r"/\.planner/pending\.json$", times=1),
        ("PUT", PENDING), [503, 200],
    ),
    "500-on-reading-the-manifest": (
        Rule(S3_INTERNAL_ERROR, method="GET", path=r"/\.planner/manifest\.json\.gz$", times=1),
        ("GET", MANIFEST), [500, 200, 200],  # read to plan, then again under the lock
    ),
    "dropped-connection-on-delete-objects": (
        Rule(DROP, method="POST", path=r"^/planner-e2e-site/?$", times=1),
        ("POST", r"^/planner-e2e-site/?$"), [None, 200],
    ),
}
SINGLE = list(TRANSIENT)[:5]


def fresh(rule: Rule) -> Rule:
    """A copy of a template rule, with no hits yet."""
    return Rule(rule.action, at=rule.at, method=rule.method, path=rule.path, times=rule.times,
                nth=rule.nth)


def attempts(proxy: FaultProxy, mark: int, method: str, what: str) -> list[Entry]:
    if what.startswith("^"):
        return proxy.requests(mark, method=method, path=what)
    return proxy.requests(mark, method=method, key=what)


def deploy_with_faults(moto, site, proxy, tmp_path, cases: list[str], *extra: str) -> None:
    v2 = v1_then_v2(moto, site, tmp_path)
    mark = proxy.mark()
    rules = [proxy.add(fresh(TRANSIENT[c][0])) for c in cases]

    proc = planner(deploy_args(v2, site, "--format", "json", *extra), proxy.env(moto.env), moto.cwd)

    ok(proc, proxy, mark)
    doc = json.loads(proc.stdout)
    check_converged(moto, site, V2)
    assert manifest(moto.s3, site.bucket).deploy_id == doc["manifest"]["deploy_id"]
    # The log shows each fault and the attempt after it that got through.
    for case, rule in zip(cases, rules):
        _, (method, what), statuses = TRANSIENT[case]
        assert len(rule.hits) == 1, f"{case}: {rule.hits}\n{proxy.dump(mark)}"
        seen = [e.status for e in attempts(proxy, mark, method, what)]
        assert seen == statuses, f"{case}: {seen}\n{proxy.dump(mark)}"
    # One invalidation, with the plan's paths and reference, after the uploads.
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv["InvalidationBatch"]["CallerReference"] == doc["invalidation"]["caller_reference"]
    assert sorted(inv["InvalidationBatch"]["Paths"]["Items"]) == sorted(doc["invalidation"]["paths"])
    assert len(made_invalidations(proxy, mark, site.distribution_id)) == 1
    check_changed_urls_invalidated_after_upload(proxy, mark, site, MODIFIED, DELETED)


@pytest.mark.parametrize("case", SINGLE)
def test_a_transient_fault_within_retries_leaves_a_complete_deploy_with_one_invalidation(
    moto, site, proxy, tmp_path, case
):
    deploy_with_faults(moto, site, proxy, tmp_path, [case])


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
def test_many_transient_faults_in_one_deploy_are_all_absorbed_by_retries(
    moto, site, proxy, tmp_path, retry_mode
):
    deploy_with_faults(moto, site, proxy, tmp_path, list(TRANSIENT), "--retry-mode", retry_mode)


# --- answers lost after moto applied the request ---------------------------------------------

LOST_ANSWERS = {
    # A conditional write whose answer is lost: botocore sends it again, and S3 now answers
    # 412 (the first attempt did the write). The deploy must not take its own write for
    # another deploy's (nor another deploy's lock).
    "manifest-commit": Rule(DROP_AFTER, method="PUT", path=r"/\.planner/manifest\.json\.gz$",
                            times=1),
    "lock-create": Rule(DROP_AFTER, method="PUT", path=r"/\.planner/lock\.json$", nth={1}),
    "lock-renewal": Rule(DROP_AFTER, method="PUT", path=r"/\.planner/lock\.json$", nth={2}),
    "ledger-record": Rule(DROP_AFTER, method="PUT", path=r"/\.planner/ledger/", times=1),
    "create-invalidation": Rule(DROP_AFTER, method="POST", path=INVALIDATION, times=1),
}


@pytest.mark.parametrize("where", list(LOST_ANSWERS))
def test_a_write_whose_answer_is_lost_is_retried_without_failing_the_deploy(
    moto, site, proxy, tmp_path, where
):
    v2 = v1_then_v2(moto, site, tmp_path)
    env = proxy.env(moto.env)
    mark = proxy.mark()
    rule = proxy.add(fresh(LOST_ANSWERS[where]))

    proc = planner(deploy_args(v2, site, "--format", "json"), env, moto.cwd)
    first_log = proxy.dump(mark)
    assert rule.hits, first_log
    # Whatever the first run did, a rerun without faults converges...
    proxy.clear_rules()
    rerun = planner(deploy_args(v2, site, "--format", "json"), env, moto.cwd)
    ok(rerun, proxy, mark)
    check_converged(moto, site, V2)
    check_changed_urls_invalidated_after_upload(proxy, mark, site, MODIFIED, DELETED)
    # ...but the first run should not have needed it: the fault was within botocore's retries.
    assert proc.returncode == 0, (
        f"exit {proc.returncode}: {proc.stderr.strip()}\nproxy log:\n{first_log}"
    )


# --- 2. persistent faults beyond --max-attempts ----------------------------------------------


def test_a_put_failing_beyond_max_attempts_fails_before_the_commit_and_a_rerun_converges(
    moto, site, proxy, tmp_path
):
    v2 = v1_then_v2(moto, site, tmp_path)
    env = proxy.env(moto.env)
    mark = proxy.mark()
    rule = proxy.add(Rule(S3_INTERNAL_ERROR, method="PUT", path=r"/css/site\.css$"))

    proc = planner(deploy_args(v2, site, "--format", "json", "--max-attempts", "2"), env, moto.cwd)

    line = one_line_error(proc)
    assert proc.returncode == 1
    assert "css/site.css" in line and "InternalError" in line, line
    assert len(rule.hits) >= 2, proxy.dump(mark)  # retried (exact count: the test below)
    # Nothing committed: the manifest is still v1's; no invalidation; the lock was given back;
    # the pending record names what may have been written.
    assert manifest(moto.s3, site.bucket).deploy_id == v1_deploy_id()
    assert invalidations(moto.cloudfront, site.distribution_id) == []
    assert not any(e.method == "PUT" and e.key == MANIFEST for e in proxy.since(mark))
    assert "lock.json" not in state_keys(moto, site)
    pending = json.loads(body(moto.s3, site.bucket, PENDING))
    assert "css/site.css" in pending["touched"]

    proxy.clear_rules()
    rerun = planner(deploy_args(v2, site, "--format", "json"), env, moto.cwd)

    ok(rerun, proxy, mark)
    check_converged(moto, site, V2)
    check_changed_urls_invalidated_after_upload(proxy, mark, site, MODIFIED, DELETED)
    # Keys the failed run may have written, unchanged since, are sent again and invalidated.
    doc = json.loads(rerun.stdout)
    assert {u["key"] for u in doc["uploads"]} >= set(MODIFIED) | set(ADDED)


@pytest.mark.parametrize("max_attempts", [1, 2])
def test_max_attempts_counts_every_attempt_the_first_included(
    moto, site, proxy, tmp_path, max_attempts
):
    """``--max-attempts N``: "Attempts per AWS request (botocore's retries), the first
    included" (planner deploy --help)."""
    v2 = v1_then_v2(moto, site, tmp_path)
    mark = proxy.mark()
    rule = proxy.add(Rule(S3_INTERNAL_ERROR, method="PUT", path=r"/css/site\.css$"))

    proc = planner(
        deploy_args(v2, site, "--format", "json", "--max-attempts", str(max_attempts)),
        proxy.env(moto.env), moto.cwd,
    )

    one_line_error(proc)
    sent = [e.headers.get("amz-sdk-request") for e in proxy.requests(mark, "PUT", "css/site.css")]
    assert len(rule.hits) == max_attempts, f"{len(rule.hits)} attempts: {sent}"


# --- 3. CloudFront busy past --wait-timeout --------------------------------------------------


def test_too_many_invalidations_past_wait_timeout_leaves_it_pending_and_the_rerun_submits_it(
    moto, site, proxy, tmp_path
):
    v2 = v1_then_v2(moto, site, tmp_path)
    env = proxy.env(moto.env)
    mark = proxy.mark()
    busy = proxy.add(Rule(CF_TOO_MANY_INVALIDATIONS, method="POST", path=INVALIDATION))

    proc = planner(deploy_args(v2, site, "--format", "json", "--wait-timeout", "0"), env, moto.cwd)

    line = one_line_error(proc)
    assert proc.returncode == 1
    assert "TooManyInvalidationsInProgress" in line and "pending" in line, line
    assert busy.hits, proxy.dump(mark)
    refused = [e.invalidation_batch() for e in proxy.invalidation_requests(mark)]
    (first_paths, reference), *_ = refused
    assert {r for _, r in refused} == {reference}
    # The site and the manifest are deployed; the invalidation (and the deletes after it)
    # stay in the pending record.
    m = manifest(moto.s3, site.bucket)
    assert m.deploy_id != v1_deploy_id() and reference == f"planner-{m.deploy_id}"
    assert sorted(m.entries) == sorted(V2)
    for key in V2:
        assert body(moto.s3, site.bucket, key) == V2[key].encode(), key
    pending = json.loads(body(moto.s3, site.bucket, PENDING))
    assert pending["deploy_id"] == m.deploy_id
    assert pending["caller_reference"] == reference
    assert sorted(pending["paths"]) == sorted(first_paths)
    assert invalidations(moto.cloudfront, site.distribution_id) == []
    assert "lock.json" not in state_keys(moto, site)

    proxy.clear_rules()
    rerun_mark = proxy.mark()
    rerun = planner(deploy_args(v2, site, "--format", "json"), env, moto.cwd)

    ok(rerun, proxy, rerun_mark)
    check_converged(moto, site, V2)
    made = made_invalidations(proxy, rerun_mark, site.distribution_id)
    assert [(sorted(p), r) for _, p, r in made] == [(sorted(first_paths), reference)]
    (inv,) = invalidations(moto.cloudfront, site.distribution_id)
    assert inv["InvalidationBatch"]["CallerReference"] == reference
    doc = json.loads(rerun.stdout)
    assert doc["resume"] is not None and doc["result"]["resumed"] == m.deploy_id
    assert doc["uploads"] == []  # nothing uploaded again
    assert not any(e.is_put_object and not e.key.startswith(".planner/")
                   for e in proxy.since(rerun_mark))
    check_changed_urls_invalidated_after_upload(proxy, mark, site, MODIFIED, DELETED)


# --- 4. kill -9 at every point of a deploy ---------------------------------------------------


def test_a_deploy_killed_at_any_request_converges_when_run_again(moto, tmp_path):
    cwd = moto.cwd
    v2 = build(tmp_path / "v2", V2)

    # One full v2 deploy through the proxy: how many requests it makes.
    site = reset_site(moto)
    deploy_v1(moto, site, tmp_path)
    with FaultProxy(moto.endpoint) as proxy:
        ok(planner(deploy_args(v2, site, "--format", "json"), proxy.env(moto.env), cwd), proxy)
        total = len(proxy.log)
        names = [e.describe() for e in proxy.log]
    assert total >= 15, names

    # Each iteration: a killed run and a rerun (~2 deploys), at every request (E2E_KILL_STEP=N:
    # every N-th, for a quicker run by hand).
    step = int(os.environ.get("E2E_KILL_STEP") or 1)
    points = sorted(set(range(1, total + 1, step)) | {total})
    failures: list[str] = []
    killed_at: list[str] = []
    for n in points:
        site = reset_site(moto)
        deploy_v1(moto, site, tmp_path)
        with FaultProxy(moto.endpoint) as proxy:
            env = proxy.env(moto.env)
            code, fired, err = kill_run(deploy_args(v2, site, "--format", "json"), env, cwd,
                                        proxy, at={n})
            what = fired.describe() if fired else "(finished first)"
            killed_at.append(f"N={n}: {what}")
            try:
                assert fired is not None and code == -signal.SIGKILL, (code, err[-2000:])
                mark_rerun = proxy.mark()
                rerun = planner(deploy_args(v2, site, "--format", "json"), env, cwd)
                ok(rerun, proxy, mark_rerun)
                check_converged(moto, site, V2)
                check_changed_urls_invalidated_after_upload(proxy, 0, site, MODIFIED, DELETED)
            except AssertionError as exc:
                failures.append(f"killed at N={n} {what}:\n{exc}")
    assert not failures, (
        f"{len(failures)} of {len(points)} kill points did not converge:\n\n"
        + "\n\n".join(failures)
        + f"\n\n{total} requests per v2 deploy; killed at:\n" + "\n".join(killed_at)
    )
    print(f"{total} requests per v2 deploy; killed at:\n" + "\n".join(killed_at))
