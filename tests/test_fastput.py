"""The lean PutObject path (planner/backends/fastput.py): its signature is botocore's, byte
for byte; against a moto server through the fault proxy it writes what botocore would,
retries what botocore's standard mode retries, gives up where it gives up, hands a redirect
back to botocore, and under a lock never sends a write its lease does not cover; and it is
used only where botocore would send nothing more than it knows."""

from __future__ import annotations

import base64
import hashlib
import time
import urllib.parse

import pytest

from planner.backends.fastput import (
    PROBE,
    FastPut,
    Redirected,
    _error,
    open_fast_put,
    user_agent_of,
)
from planner.backends.fence import Fence
from planner.errors import AwsError, LockLost
from fault_proxy import DROP, DROP_AFTER, S3_SLOW_DOWN, Error, FaultProxy, Rule

BUCKET = "fastput-bucket"
KEYS = [
    "index.html",
    "a b/c d.html",  # spaces
    "ünïcode/páge.html",  # UTF-8
    "plus+equals=and&amp;.html",  # characters a query would mean otherwise
    "per%cent/~tilde/(paren)/'quote'/*star.html",
    "double//slash.html",
]


class Frozen:
    """Static credentials as botocore's get_frozen_credentials() gives them."""

    def __init__(self, token: str | None = None) -> None:
        self.access_key, self.secret_key, self.token = "AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG", token

    def get_frozen_credentials(self) -> "Frozen":
        return self


# --- signing: botocore's own query signer is the reference ----------------------------------


def botocore_signed(monkeypatch, url: str, headers: dict[str, str], creds: Frozen, region: str,
                    signed_at: int, expires: int) -> str:
    import datetime as dt

    import botocore.auth
    from botocore.auth import S3SigV4QueryAuth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    req = AWSRequest(method="PUT", url=url, headers={k: v for k, v in headers.items()
                                                     if k != "host"}, data=b"")
    at = dt.datetime.fromtimestamp(signed_at, dt.UTC).replace(tzinfo=None)
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda *_, **__: at)
    auth = S3SigV4QueryAuth(Credentials(creds.access_key, creds.secret_key, creds.token), "s3",
                            region, expires=expires)
    auth.add_auth(req)
    return req.url


@pytest.mark.parametrize("token", [None, "FQoGZXIvYXdzE+/session=token"])
@pytest.mark.parametrize("key", KEYS)
def test_the_signature_is_the_one_botocore_makes(monkeypatch, key, token):
    creds = Frozen(token)
    fast = FastPut("http://127.0.0.1:9000/bucket/", "eu-west-3", creds, Fence())
    headers = {
        "content-type": "text/html; charset=utf-8",
        "cache-control": "public,  max-age=60,   s-maxage=86400",  # runs of spaces
        "content-md5": base64.b64encode(hashlib.md5(b"x").digest()).decode(),
        "x-amz-acl": "public-read",
        "host": "127.0.0.1:9000",
    }
    path = "/bucket/" + urllib.parse.quote(key, safe="/~")
    ours = fast.signed_target(path, headers, (1_796_000_000, 117))
    theirs = botocore_signed(monkeypatch, "http://127.0.0.1:9000" + path, headers, creds, "eu-west-3",
                             1_796_000_000, 117)
    mine, reference = urllib.parse.urlsplit(ours), urllib.parse.urlsplit(theirs)
    assert mine.path == reference.path
    assert urllib.parse.parse_qs(mine.query) == urllib.parse.parse_qs(reference.query)


def test_error_bodies_give_code_and_message():
    body = (b'<?xml version="1.0"?><Error><Code>AccessDenied</Code>'
            b"<Message>Access &lt;Denied&gt; &amp; more</Message></Error>")
    assert _error(body) == ("AccessDenied", "Access <Denied> & more")
    assert _error(b"<html>gateway</html>") == ("", "")


# --- which path a deploy takes --------------------------------------------------------------


def client_for(monkeypatch, endpoint: str | None = None, **config):
    """A botocore session and S3 client as planner's Clients makes them (no request made)."""
    import botocore.session
    from botocore.config import Config

    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY",
                "no_proxy", "AWS_CA_BUNDLE"):
        monkeypatch.delenv(var, raising=False)
    session = botocore.session.Session()
    session.set_credentials("a", "b")
    session.set_config_variable("region", "eu-west-1")
    client = session.create_client("s3", endpoint_url=endpoint, config=Config(**config))
    # Once moto is imported (other test files do), every new client carries its stubber on
    # before-send, which rightly keeps the lean path away: take it off, as in the CLI's process.
    for handler in client.meta.events._emitter._handlers.prefix_search("before-send.s3"):
        client.meta.events.unregister("before-send", handler)
    return client, session


def test_the_url_of_every_key_comes_from_botocore_without_a_request(monkeypatch):
    client, session = client_for(monkeypatch)
    fast = open_fast_put(client, session, BUCKET, Fence(), 5, "standard")
    assert fast is not None and fast.https and fast.region == "eu-west-1"
    probe = client.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": PROBE})
    assert probe.split("?")[0] == f"https://{fast.host}{fast.prefix}{PROBE}"
    assert fast._ca_bundle  # botocore's (certifi's) bundle, for TLS

    client, session = client_for(monkeypatch, "http://127.0.0.1:9")
    fast = open_fast_put(client, session, BUCKET, Fence(), 5, "standard")
    assert fast is not None and not fast.https
    assert (fast.host, fast.prefix) == ("127.0.0.1:9", f"/{BUCKET}/")  # path style


def test_a_ca_bundle_of_the_configuration_is_used(monkeypatch, tmp_path):
    client, session = client_for(monkeypatch)
    monkeypatch.setenv("AWS_CA_BUNDLE", str(tmp_path / "corp.pem"))
    fast = open_fast_put(client, session, BUCKET, Fence(), 5, "standard")
    assert fast is not None and fast._ca_bundle == str(tmp_path / "corp.pem")


@pytest.mark.parametrize("case", ["proxy", "proxy-of-the-client", "adaptive", "client-cert",
                                  "intercepted", "no-credentials"])
def test_botocore_sends_every_put_where_it_knows_more(monkeypatch, case):
    retry_mode = "standard"
    if case == "proxy-of-the-client":
        client, session = client_for(monkeypatch, proxies={"https": "http://proxy.corp:3128"})
    elif case == "client-cert":
        client, session = client_for(monkeypatch, client_cert="/etc/ssl/me.pem")
    else:
        client, session = client_for(monkeypatch)
    if case == "proxy":
        monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    elif case == "adaptive":
        retry_mode = "adaptive"  # client-side rate limiting is botocore's
    elif case == "intercepted":
        client.meta.events.register("before-send.s3", lambda **_: None)  # a stubber, a mock
    elif case == "no-credentials":
        monkeypatch.setattr(session, "get_credentials", lambda: None)
    assert open_fast_put(client, session, BUCKET, Fence(), 5, retry_mode) is None


def test_a_proxy_the_endpoint_bypasses_leaves_the_lean_path(monkeypatch):
    client, session = client_for(monkeypatch, "http://127.0.0.1:9")
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    assert open_fast_put(client, session, BUCKET, Fence(), 5, "standard") is not None


def test_the_user_agent_names_the_tool_and_the_application():
    assert user_agent_of("deploy-a").startswith("invalidation-planner/")
    assert user_agent_of("deploy-a").endswith(" app/deploy-a")
    assert "app/" not in user_agent_of(None)


# --- against a moto server, through the fault proxy -----------------------------------------


@pytest.fixture
def proxied(moto):
    moto.s3.create_bucket(Bucket=BUCKET)
    with FaultProxy(moto.endpoint, strict=True) as proxy:
        yield moto, proxy


def lean(proxy: FaultProxy, fence: Fence | None = None, attempts: int = 5,
         sleeps: list[float] | None = None) -> FastPut:
    record = sleeps if sleeps is not None else []
    return FastPut(f"{proxy.url}/{BUCKET}/", "us-east-1", Frozen(), fence or Fence(), attempts,
                   sleep=record.append)


HEADERS = {"content-type": "text/html; charset=utf-8", "cache-control": "max-age=60"}


def test_puts_write_the_bytes_and_headers_and_return_the_etag(proxied):
    moto, proxy = proxied
    fast = lean(proxy)
    for i, key in enumerate(KEYS):
        body = f"<p>{i}</p>".encode()
        etag = fast.put(key, body, {**HEADERS, "content-encoding": "identity"}, "upload")
        got = moto.s3.get_object(Bucket=BUCKET, Key=key)
        assert got["Body"].read() == body
        assert (got["ContentType"], got["CacheControl"], got["ContentEncoding"]) == (
            "text/html; charset=utf-8", "max-age=60", "identity")
        assert etag == got["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    puts = proxy.requests(method="PUT")
    assert len(puts) == len(KEYS)
    for entry in puts:
        assert "authorization" not in entry.headers and "X-Amz-Expires" in entry.query
        assert entry.headers["content-md5"] == base64.b64encode(
            hashlib.md5(entry.body or b"").digest()).decode()
    assert fast.fence._offset is not None  # S3's Date set the fence's clock
    fast.close()


def test_an_acl_is_sent_and_signed(proxied):
    moto, proxy = proxied
    lean(proxy).put("acl.html", b"x", {**HEADERS, "x-amz-acl": "public-read"}, "upload")
    (entry,) = proxy.requests(method="PUT")
    assert entry.headers["x-amz-acl"] == "public-read"
    assert "x-amz-acl" in entry.query["X-Amz-SignedHeaders"][0].split(";")
    grants = moto.s3.get_object_acl(Bucket=BUCKET, Key="acl.html")["Grants"]
    assert any(g["Grantee"].get("URI", "").endswith("/AllUsers") for g in grants)


@pytest.mark.parametrize("fault", [S3_SLOW_DOWN, Error(500, "InternalError", "try again"),
                                   Error(400, "RequestTimeout", "idle"), DROP, DROP_AFTER])
def test_what_botocore_retries_is_retried_after_a_back_off(proxied, fault):
    moto, proxy = proxied
    proxy.add(Rule(fault, method="PUT", times=2))
    sleeps: list[float] = []
    lean(proxy, sleeps=sleeps).put("page.html", b"body", HEADERS, "upload")
    proxy.wait_idle()  # the proxy logs an answer's status once it is sent
    assert [e.status for e in proxy.requests(method="PUT")][-1] == 200
    assert len(proxy.requests(method="PUT")) == 3
    assert len(sleeps) == 2 and 0 <= sleeps[0] <= 1 and 0 <= sleeps[1] <= 2
    assert moto.s3.get_object(Bucket=BUCKET, Key="page.html")["Body"].read() == b"body"


def test_it_gives_up_after_its_attempts_with_the_last_error(proxied):
    moto, proxy = proxied
    proxy.add(Rule(S3_SLOW_DOWN, method="PUT"))
    with pytest.raises(AwsError) as err:
        lean(proxy, attempts=3).put("page.html", b"body", HEADERS, "upload s3://b/page.html")
    assert str(err.value) == "upload s3://b/page.html: SlowDown: Please reduce your request rate."
    assert len(proxy.requests(method="PUT")) == 3


def test_a_refusal_is_not_retried_and_shows_no_credentials(proxied):
    moto, proxy = proxied
    proxy.add(Rule(Error(403, "AccessDenied", "Access Denied"), method="PUT"))
    with pytest.raises(AwsError) as err:
        lean(proxy).put("page.html", b"body", HEADERS, "upload s3://b/page.html")
    assert (err.value.code, str(err.value)) == (
        "AccessDenied", "upload s3://b/page.html: AccessDenied: Access Denied")
    assert len(proxy.requests(method="PUT")) == 1
    for secret in ("AKIDEXAMPLE", "wJalrXUtnFEMI", "Signature"):
        assert secret not in str(err.value)


@pytest.mark.parametrize("fault", [
    Error(301, "PermanentRedirect", "The bucket is in another region"),
    Error(400, "AuthorizationHeaderMalformed", "the region 'us-east-1' is wrong"),
])
def test_a_bucket_elsewhere_is_handed_back_to_botocore(proxied, fault):
    moto, proxy = proxied
    proxy.add(Rule(fault, method="PUT"))
    with pytest.raises(Redirected):
        lean(proxy).put("page.html", b"body", HEADERS, "upload")


def test_under_a_lock_a_write_is_signed_to_the_leases_end(proxied):
    moto, proxy = proxied
    fence = Fence()
    fence.hold("lock", time.time() + 30)
    lean(proxy, fence).put("page.html", b"body", HEADERS, "upload")
    (entry,) = proxy.requests(method="PUT")
    assert 25 <= int(entry.query["X-Amz-Expires"][0]) <= 31


def test_a_lease_that_is_over_sends_nothing(proxied):
    moto, proxy = proxied
    fence = Fence()
    fence.hold("lock", time.time() - 1)
    with pytest.raises(LockLost):
        lean(proxy, fence).put("page.html", b"body", HEADERS, "upload")
    assert proxy.requests(method="PUT") == []


def test_an_expired_write_is_the_lock_lost_not_a_retry(proxied):
    moto, proxy = proxied
    fence = Fence()
    fence.hold("lock", time.time() + 30)
    proxy.add(Rule(Error(403, "AccessDenied", "Request has expired"), method="PUT"))
    with pytest.raises(LockLost):
        lean(proxy, fence).put("page.html", b"body", HEADERS, "upload")
    assert len(proxy.requests(method="PUT")) == 1


# --- the real CLI -----------------------------------------------------------------------------


@pytest.mark.parametrize("retry_mode", ["standard", "adaptive"])
def test_a_deploy_sends_its_pages_on_the_lean_path_unless_botocore_must(
    moto, site, tmp_path, retry_mode
):
    from e2e_helpers import body, run, site_objects, write_site

    files = {f"p{i}/index.html": f"<p>{i}</p>" for i in range(20)}
    root = write_site(tmp_path / "build", files)
    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(S3_SLOW_DOWN, method="PUT", path=r"/p3/index\.html$", times=1))
        done = run(["deploy", str(root), "--target", site.target(), "-d", site.distribution_id,
                    "--retry-mode", retry_mode], proxy.env(moto.env), moto.cwd)
        assert done.returncode == 0, done.stderr
        proxy.wait_idle()
        pages = [e for e in proxy.requests(method="PUT") if e.key in files]
    held = {k: body(moto.s3, site.bucket, k).decode() for k in site_objects(moto.s3, site.bucket)}
    assert held == files
    assert len(pages) == len(files) + 1  # the SlowDown was retried
    lean_puts = ["authorization" not in e.headers and "content-md5" in e.headers for e in pages]
    assert all(lean_puts) if retry_mode == "standard" else not any(lean_puts)



def test_a_redirect_hands_this_put_and_the_rest_to_botocore(moto, monkeypatch):
    """The backend, not only the lean path: S3 answers the first lean PUT with a redirect
    (the bucket in another region); botocore sends that object and every later one."""
    from planner.backends.aws import Clients
    from planner.backends.s3 import S3Backend
    from planner.backends.targets import S3Target

    moto.s3.create_bucket(Bucket=BUCKET)
    with FaultProxy(moto.endpoint) as proxy:
        for name, value in proxy.env(moto.env).items():
            if name.startswith("AWS_") or name.lower().endswith("_proxy"):
                monkeypatch.setenv(name, value)
        clients = Clients()
        for handler in clients.s3.meta.events._emitter._handlers.prefix_search("before-send.s3"):
            clients.s3.meta.events.unregister("before-send", handler)  # moto's stubber, as above
        backend = S3Backend(S3Target(BUCKET, ""), clients)
        proxy.add(Rule(Error(301, "PermanentRedirect", "elsewhere"), method="PUT", times=1))
        for key in ("a.html", "b.html"):
            backend.put_bytes(key, key.encode(), "text/html", "max-age=60")
        proxy.wait_idle()
        puts = proxy.requests(method="PUT")
    assert [("authorization" in e.headers, e.status) for e in puts] == [
        (False, 301), (True, 200), (True, 200)]
    for key in ("a.html", "b.html"):
        assert moto.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read() == key.encode()
