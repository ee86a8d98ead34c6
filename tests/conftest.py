"""Shared fixtures. The moto server fixtures serve the end-to-end tests (``test_e2e_s3.py``),
which run ``python -m planner`` in a subprocess against a moto server on 127.0.0.1; nothing
here is autouse but a guard of a few microseconds, so other test files pay nothing for it.

Fast inner loop (unit tests only: no server, no CLI in a subprocess, no real waiting):

    .venv/bin/python -m pytest -m "not e2e" -q

The whole suite (CI, ``.ci/run``) runs the end-to-end tests too: ``.venv/bin/python -m pytest -q``.

Which tests are ``e2e``: those that use a server fixture below (``moto_endpoint``, hence
``moto_clients``, ``moto``, ``site`` and any fixture built on them) are marked by
``pytest_collection_modifyitems``; files that are end to end throughout say
``pytestmark = pytest.mark.e2e``; any other test that runs the CLI in a subprocess, sleeps for
real or uses a fault proxy carries ``@pytest.mark.e2e`` itself. Helper processes that are not
the CLI (a fresh interpreter checking imports, a child that only lends a dead pid) stay unit.
A test not marked ``e2e`` that starts the CLI fails and says so (``_cli_subprocess_needs_e2e``).
"""

from __future__ import annotations

import os
import subprocess
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator

import pytest
from e2e_helpers import create_distribution

REGION = "us-east-1"

# A test whose fixtures include one of these starts (or shares) the session's moto server.
SERVER_FIXTURES = frozenset({"moto_endpoint"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark ``e2e`` every test that needs the moto server, directly or through a fixture
    (``fixturenames`` is the closure of the fixtures a test uses)."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


def _runs_the_cli(args: Any) -> bool:
    """Whether a Popen argument list is ``python -m planner ...`` or the ``planner`` script."""
    if isinstance(args, (str, bytes, os.PathLike)):
        args = [args]
    words = [os.fsdecode(a) for a in args]
    return (
        any(a == "-m" and b == "planner" for a, b in zip(words, words[1:]))
        or bool(words) and os.path.basename(words[0]) == "planner"
    )


@pytest.fixture(autouse=True)
def _cli_subprocess_needs_e2e(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch):
    """Keep ``-m "not e2e"`` honest: a test not marked ``e2e`` may not run the CLI in a
    subprocess (helper processes such as a fresh interpreter checking imports are allowed)."""
    if request.node.get_closest_marker("e2e") is not None:
        return
    popen_init = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        if _runs_the_cli(args):
            pytest.fail(
                f"{request.node.nodeid} runs the CLI in a subprocess: mark it "
                "@pytest.mark.e2e (see tests/conftest.py)",
                pytrace=False,
            )
        popen_init(self, args, *rest, **kwargs)

    monkeypatch.setattr(subprocess.Popen, "__init__", guarded)


@dataclass
class Moto:
    """One reset moto server, seen from the test process and from a subprocess."""

    endpoint: str
    env: dict[str, str]  # environment for `python -m planner` subprocesses
    cwd: str  # an empty folder to run them in, so the tool never depends on the caller's
    s3: Any
    cloudfront: Any


@dataclass(frozen=True)
class Site:
    """A bucket and a CloudFront distribution whose origin is that bucket."""

    bucket: str
    distribution_id: str

    def target(self, prefix: str = "") -> str:
        return f"s3://{self.bucket}/{prefix.rstrip('/')}" if prefix else f"s3://{self.bucket}"


@pytest.fixture
def s3_in_process(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """An S3 client on moto in process (no server); fake credentials, and no endpoint,
    profile or role of the machine."""
    import boto3
    from moto import mock_aws

    for var in (
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ROLE_ARN",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
    ):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "testing")
    monkeypatch.setenv("AWS_SECURITY_TOKEN", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        yield boto3.client("s3", region_name="us-east-1")


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """A moto server for the whole session, on a free port of 127.0.0.1, over HTTP."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def _subprocess_env(endpoint: str, tmp_path) -> dict[str, str]:
    """os.environ without AWS_* and PLANNER_* settings, pointed at moto with fake keys.

    Config and credentials files point at files that do not exist, so no profile, region,
    credential or endpoint of the machine leaks into the tool under test.
    """
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.upper().startswith(("AWS_", "PLANNER_", "BOTO_"))
    }
    missing = tmp_path / "no-aws-config"
    env.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": str(missing / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(missing / "credentials"),
            "AWS_EC2_METADATA_DISABLED": "true",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
    )
    return env


def _empty_dir(path):
    path.mkdir()
    return path


@pytest.fixture(scope="session")
def moto_clients(moto_endpoint: str, tmp_path_factory) -> tuple[Any, Any]:
    """(s3, cloudfront) clients of the test process, made once: a reset keeps them valid.
    They read no AWS config file of the machine either."""
    import boto3
    import botocore.session
    from botocore.config import Config

    missing = tmp_path_factory.mktemp("no-aws-config")
    core = botocore.session.Session()
    core.set_config_variable("config_file", str(missing / "config"))
    core.set_config_variable("credentials_file", str(missing / "credentials"))
    session = boto3.Session(
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name=REGION,
        botocore_session=core,
    )
    config = Config(retries={"mode": "standard", "max_attempts": 2})
    return (
        session.client("s3", endpoint_url=moto_endpoint, config=config),
        session.client("cloudfront", endpoint_url=moto_endpoint, config=config),
    )


@pytest.fixture
def moto(moto_endpoint: str, moto_clients: tuple[Any, Any], tmp_path) -> Moto:
    """The session's moto server, reset to empty, with clients and a subprocess environment."""
    req = urllib.request.Request(f"{moto_endpoint}/moto-api/reset", method="POST", data=b"")
    no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with no_proxy.open(req, timeout=10) as resp:
        assert resp.status == 200
    s3, cloudfront = moto_clients
    return Moto(
        endpoint=moto_endpoint,
        env=_subprocess_env(moto_endpoint, tmp_path),
        cwd=str(_empty_dir(tmp_path / "cwd")),
        s3=s3,
        cloudfront=cloudfront,
    )


@pytest.fixture
def site(moto: Moto) -> Site:
    """A versioned bucket (every PUT and delete leaves a trace the tests can count) and a
    CloudFront distribution in front of it."""
    bucket = "planner-e2e-site"
    moto.s3.create_bucket(Bucket=bucket)
    moto.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    return Site(bucket=bucket, distribution_id=create_distribution(moto.cloudfront, bucket))
