"""The upload benchmark's S3 stand-in (tests/bench/s3_standin.py) answers as S3 does the
calls a deploy makes: checked with boto3, and by a real deploy of the CLI against it."""

from __future__ import annotations

import calendar
import os
import subprocess
import sys
import time
import urllib.parse

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "bench"))

from s3_standin import StandIn, decode_aws_chunked  # noqa: E402

from e2e_helpers import write_site  # noqa: E402


@pytest.fixture()
def standin():
    with StandIn(latency=0.0) as server:
        yield server


def client(url: str):
    return boto3.client("s3", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="k", aws_secret_access_key="s",
                        config=Config(retries={"max_attempts": 1}))


def test_objects_headers_and_listing(standin):
    s3 = client(standin.url)
    s3.create_bucket(Bucket="b")
    for key in ("a/1.html", "a/2.html", "b.css", "c/d/e.js"):
        s3.put_object(Bucket="b", Key=key, Body=key.encode(), ContentType="text/x",
                      CacheControl="max-age=60", Metadata={"m": "1"})
    head = s3.head_object(Bucket="b", Key="a/1.html")
    assert (head["ContentType"], head["CacheControl"], head["Metadata"]) == \
        ("text/x", "max-age=60", {"m": "1"})
    assert head["ETag"] == '"' + __import__("hashlib").md5(b"a/1.html").hexdigest() + '"'
    assert s3.get_object(Bucket="b", Key="b.css")["Body"].read() == b"b.css"
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="b",
                                                         PaginationConfig={"PageSize": 1})
    assert [o["Key"] for p in pages for o in p.get("Contents", [])] == \
        ["a/1.html", "a/2.html", "b.css", "c/d/e.js"]
    top = s3.list_objects_v2(Bucket="b", Delimiter="/")
    assert [o["Key"] for o in top["Contents"]] == ["b.css"]
    assert [p["Prefix"] for p in top["CommonPrefixes"]] == ["a/", "c/"]
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="b", Prefix="a/")["Contents"]] == \
        ["a/1.html", "a/2.html"]
    s3.copy_object(Bucket="b", Key="b.css", CopySource={"Bucket": "b", "Key": "b.css"},
                   MetadataDirective="REPLACE", ContentType="text/css")
    assert s3.head_object(Bucket="b", Key="b.css")["ContentType"] == "text/css"
    s3.delete_objects(Bucket="b", Delete={"Objects": [{"Key": "a/1.html"}, {"Key": "b.css"}]})
    s3.delete_object(Bucket="b", Key="c/d/e.js")
    assert [o["Key"] for o in s3.list_objects_v2(Bucket="b")["Contents"]] == ["a/2.html"]
    with pytest.raises(ClientError) as err:
        s3.get_object(Bucket="b", Key="gone")
    assert err.value.response["Error"]["Code"] == "NoSuchKey"


def test_conditional_writes_and_expired_signatures_as_s3(standin):
    s3 = client(standin.url)
    s3.create_bucket(Bucket="b")
    etag = s3.put_object(Bucket="b", Key="lock", Body=b"1", IfNoneMatch="*")["ETag"]
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="b", Key="lock", Body=b"2", IfNoneMatch="*")
    assert err.value.response["Error"]["Code"] == "PreconditionFailed"
    with pytest.raises(ClientError) as err:
        s3.put_object(Bucket="b", Key="lock", Body=b"2", IfMatch='"other"')
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 412
    s3.put_object(Bucket="b", Key="lock", Body=b"2", IfMatch=etag)
    assert s3.get_object(Bucket="b", Key="lock")["Body"].read() == b"2"
    import urllib.error
    import urllib.request

    v4 = boto3.client("s3", endpoint_url=standin.url, region_name="us-east-1",
                      aws_access_key_id="k", aws_secret_access_key="s",
                      config=Config(signature_version="s3v4"))
    urls = [c.generate_presigned_url("put_object", Params={"Bucket": "b", "Key": "late"},
                                     ExpiresIn=1) for c in (s3, v4)]
    assert "X-Amz-Expires" in urls[1]
    # Past both expiry times (at most a second away: signing times are whole seconds), not a
    # fixed 2 s.
    time.sleep(max(0.0, max(map(expiry, urls)) - time.time()) + 0.05)
    for url in urls:
        with pytest.raises(urllib.error.HTTPError) as late:
            urllib.request.urlopen(urllib.request.Request(url, data=b"x", method="PUT"))
        assert late.value.code == 403 and b"Request has expired" in late.value.read()
    assert "late" not in standin.store.buckets["b"]


def expiry(url: str) -> float:
    """When a query-signed URL expires: SigV2's ``Expires`` (an epoch time), or SigV4's
    ``X-Amz-Date`` plus ``X-Amz-Expires``."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query)
    if "Expires" in query:
        return float(query["Expires"][0])
    start = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
    return float(start + int(query["X-Amz-Expires"][0]))


def test_aws_chunked_bodies_are_decoded():
    body = b"5;chunk-signature=ab\r\nhello\r\n6\r\n world\r\n0\r\nx-amz-checksum-crc32:AA==\r\n\r\n"
    assert decode_aws_chunked(body) == b"hello world"


def test_latency_is_per_request_and_requests_overlap():
    with StandIn(latency=0.2) as server:
        s3 = client(server.url)
        started = time.perf_counter()
        s3.create_bucket(Bucket="b")
        assert time.perf_counter() - started >= 0.2
        from concurrent.futures import ThreadPoolExecutor

        started = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda i: s3.put_object(Bucket="b", Key=f"k{i}", Body=b"x"), range(8)))
        assert time.perf_counter() - started < 8 * 0.2 / 2  # in flight together, not in turn
        assert server.store.requests["PutObject"] == 8


@pytest.mark.e2e
def test_a_real_deploy_and_its_rerun_against_the_standin(standin, tmp_path):
    site = write_site(tmp_path / "public")
    standin.store.buckets["site"] = {}
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(("AWS_", "PLANNER_"))}
    env.update(AWS_ENDPOINT_URL=standin.url, AWS_ACCESS_KEY_ID="k", AWS_SECRET_ACCESS_KEY="s",
               AWS_DEFAULT_REGION="us-east-1", AWS_CONFIG_FILE=str(tmp_path / "none"),
               AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "none"))
    cmd = [sys.executable, "-m", "planner", "deploy", str(site), "--target", "s3://site", "-q"]
    first = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    files = {str(p.relative_to(site)) for p in site.rglob("*") if p.is_file()}
    assert files <= set(standin.store.buckets["site"])
    page = standin.store.buckets["site"]["index.html"]
    assert page.headers["content-type"].startswith("text/html")
    puts = standin.store.requests["PutObject"]
    again = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert standin.store.requests["PutObject"] == puts  # nothing changed: nothing uploaded
