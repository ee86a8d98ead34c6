"""S3Backend against moto (in process): uploads, multipart, batched deletes, invalidations."""

from __future__ import annotations

import os

import boto3
import pytest
from moto import mock_aws

from planner.backends import MULTIPART_THRESHOLD, S3Backend
from planner.backends.aws import Clients
from planner.backends.targets import S3Target
from planner.errors import AwsError


@pytest.fixture
def aws(monkeypatch):
    for name in list(os.environ):
        if name.startswith("AWS_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="site")
        yield s3


def backend(prefix: str = "") -> S3Backend:
    return S3Backend(S3Target("site", prefix), Clients())


def test_put_bytes_sets_headers_under_the_prefix(aws):
    backend("p/").put_bytes("a/b.css", b"x{}", "text/css; charset=utf-8", "no-cache")
    head = aws.head_object(Bucket="site", Key="p/a/b.css")
    assert head["ContentType"] == "text/css; charset=utf-8"
    assert head["CacheControl"] == "no-cache"


def test_large_file_goes_through_multipart_transfer(aws, tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(MULTIPART_THRESHOLD + 1024))
    with open(big, "rb") as stream:
        backend().put_stream("media/big.bin", stream, "application/octet-stream", "cc")
    head = aws.head_object(Bucket="site", Key="media/big.bin")
    assert head["ContentLength"] == MULTIPART_THRESHOLD + 1024
    assert "-" in head["ETag"]  # multipart ETags end in -<parts>
    assert head["CacheControl"] == "cc"


def test_delete_batches_more_than_a_thousand_keys(aws):
    b = backend()
    keys = [f"k{i}" for i in range(1003)]
    for k in keys:
        aws.put_object(Bucket="site", Key=k, Body=b"")
    aws.put_object(Bucket="site", Key="stay", Body=b"")
    b.delete(keys)
    left = aws.list_objects_v2(Bucket="site")["Contents"]
    assert [o["Key"] for o in left] == ["stay"]


def test_invalidation_is_created_with_the_reference(aws):
    cf = boto3.client("cloudfront", region_name="us-east-1")
    dist = cf.create_distribution(
        DistributionConfig={
            "CallerReference": "d",
            "Comment": "",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "o",
                        "DomainName": "site.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "o",
                "ViewerProtocolPolicy": "allow-all",
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
                "MinTTL": 0,
                "TrustedSigners": {"Enabled": False, "Quantity": 0},
            },
        }
    )["Distribution"]["Id"]
    inv_id = backend().invalidate(dist, ["/a.css", "/"], "planner-abc")
    got = cf.get_invalidation(DistributionId=dist, Id=inv_id)["Invalidation"]["InvalidationBatch"]
    assert got["CallerReference"] == "planner-abc"
    assert got["Paths"]["Items"] == ["/a.css", "/"]


def test_unknown_distribution_is_an_aws_error_with_its_code(aws):
    with pytest.raises(AwsError, match="NoSuchDistribution"):
        backend().invalidate("ENOPE", ["/a"], "r")


def test_missing_bucket_is_an_aws_error_with_its_code(aws):
    b = S3Backend(S3Target("no-such-bucket", ""), Clients())
    with pytest.raises(AwsError, match="NoSuchBucket"):
        b.store.read("manifest.json.gz")
