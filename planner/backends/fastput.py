"""Small PUTs without botocore's per-call work: a deploy that rewrites every page sends
thousands of them, and there each botocore call's own CPU (about 1.3 ms: parameter checks,
the endpoint rules, event hooks, checksums, the signer, urllib3) is the ceiling, not the
network: on 2 cores it tops out near 700 PUTs a second whatever the workers.

:class:`FastPut` sends a PutObject itself on ``http.client`` (kept-alive connections, as many
as requests in flight, about 0.2 ms of CPU a request) and signs it as :mod:`planner.backends.fence`
does every write under a lock: SigV4 *query* signing (``X-Amz-Date`` + ``X-Amz-Expires``,
expiring when the lease ends by S3's clock; 15 minutes when no lock is held), the payload
unsigned and its ``Content-MD5`` signed, so S3 itself refuses bytes that were not sent whole.
Every response's ``Date`` sets the fence's clock; an expired signature is LockLost.

It takes from botocore what botocore decides once per run: the URL a key of the bucket has
(endpoint, ``AWS_ENDPOINT_URL``, addressing style: from one pre-signed URL of a probe key,
made without a request), the region, the credentials (``get_frozen_credentials()`` per
request, so refreshed ones are picked up), the CA bundle. Where botocore would do more than
this path knows, :func:`open_fast_put` returns None and botocore sends every PUT: a proxy
(``HTTPS_PROXY``/``HTTP_PROXY`` or the client's), a client certificate, ``--retry-mode
adaptive`` (client-side rate limiting), or anything hooked into botocore's sending
(``before-send`` handlers: moto's in-process mock, a stubber). A bucket in another region
than the client's (S3 answers a redirect) raises :class:`Redirected`, and the backend sends
that PUT and the rest through botocore, which follows it.

Retries follow botocore's standard mode: up to ``attempts`` in all, on a lost or reset
connection, a 5xx, ``SlowDown``, ``RequestTimeout`` or ``InternalError``, after a random
back-off of up to 2^(attempt-1) seconds (at most 20).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.client
import math
import random
import re
import ssl
import threading
import time
import urllib.parse
from typing import Any, Callable

from planner.backends.fence import Fence, lease_over
from planner.errors import AwsError

PROBE = "planner-probe"  # the key whose pre-signed URL gives every key's (never requested)
UNFENCED_EXPIRES = 900  # seconds a signature lives when no lock bounds it
TIMEOUT = 60  # seconds, botocore's connect and read timeouts
RETRY_CODES = frozenset({"SlowDown", "RequestTimeout", "InternalError", "ServiceUnavailable"})
REDIRECT_CODES = frozenset({
    "PermanentRedirect", "TemporaryRedirect", "AuthorizationHeaderMalformed",
    "IllegalLocationConstraintException",
})
_XML_FIELD = re.compile(rb"<(Code|Message)>([^<]*)</\1>")


class Redirected(Exception):
    """S3 sends this bucket's requests elsewhere (another region): botocore knows how."""


def _quote(text: str) -> str:
    return urllib.parse.quote(text, safe="-_.~")


def _error(data: bytes) -> tuple[str, str]:
    """(Code, Message) of an S3 error body ('' when it has none)."""
    fields = {m.group(1): m.group(2) for m in _XML_FIELD.finditer(data[:4096])}
    unescape = {b"&lt;": b"<", b"&gt;": b">", b"&quot;": b'"', b"&apos;": b"'", b"&amp;": b"&"}

    def text(raw: bytes) -> str:
        for old, new in unescape.items():
            raw = raw.replace(old, new)
        return raw.decode("utf-8", "replace")

    return text(fields.get(b"Code", b"")), text(fields.get(b"Message", b""))


class FastPut:
    """PutObject into one bucket at ``base`` (``scheme://host[:port]/path/``, the URL of the
    bucket's keys), signed for ``region`` with ``credentials`` (botocore's), on connections
    kept per thread."""

    def __init__(
        self,
        base: str,
        region: str,
        credentials: Any,
        fence: Fence,
        attempts: int = 5,
        ca_bundle: str | None = None,
        sleep: Callable[[float], None] = time.sleep,
        user_agent: str = "",
    ) -> None:
        parts = urllib.parse.urlsplit(base)
        self.https = parts.scheme == "https"
        self.host = parts.netloc
        self.prefix = parts.path
        self.region = region
        self.credentials = credentials
        self.fence = fence
        self.attempts = max(1, attempts)
        self.sleep = sleep
        self.user_agent = user_agent or user_agent_of("")
        self._ca_bundle = ca_bundle
        self._ssl: ssl.SSLContext | None = None
        self._idle: list[http.client.HTTPConnection] = []  # kept alive, free for a request
        self._mutex = threading.Lock()
        self._keys: dict[tuple[str, str], bytes] = {}

    # --- signing ------------------------------------------------------------------------------

    def _signing_key(self, secret: str, day: str) -> bytes:
        found = self._keys.get((secret, day))
        if found is None:
            found = hmac.new(("AWS4" + secret).encode(), day.encode(), hashlib.sha256).digest()
            for part in (self.region, "s3", "aws4_request"):
                found = hmac.new(found, part.encode(), hashlib.sha256).digest()
            self._keys[(secret, day)] = found
        return found

    def signed_target(self, path: str, headers: dict[str, str], validity: tuple[int, int]) -> str:
        """The request target (path and query) of a PUT of ``path`` with ``headers`` (lower-case
        names, every one signed), valid from ``validity[0]`` for ``validity[1]`` seconds."""
        creds = self.credentials.get_frozen_credentials()
        signed_at, expires = validity
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(signed_at))
        scope = f"{stamp[:8]}/{self.region}/s3/aws4_request"
        names = sorted(headers)
        signed_names = ";".join(names)
        query = (
            "X-Amz-Algorithm=AWS4-HMAC-SHA256"
            f"&X-Amz-Credential={_quote(creds.access_key + '/' + scope)}"
            f"&X-Amz-Date={stamp}&X-Amz-Expires={expires}"
        )
        if creds.token:
            query += f"&X-Amz-Security-Token={_quote(creds.token)}"
        query += f"&X-Amz-SignedHeaders={_quote(signed_names)}"
        canonical = "\n".join((
            "PUT", path, query,
            "".join(f"{n}:{' '.join(headers[n].split())}\n" for n in names),
            signed_names, "UNSIGNED-PAYLOAD",
        ))
        to_sign = "\n".join((
            "AWS4-HMAC-SHA256", stamp, scope, hashlib.sha256(canonical.encode()).hexdigest()
        ))
        key = self._signing_key(creds.secret_key, stamp[:8])
        signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
        return f"{path}?{query}&X-Amz-Signature={signature}"

    # --- connections --------------------------------------------------------------------------

    def _connection(self) -> http.client.HTTPConnection:
        with self._mutex:
            if self._idle:
                return self._idle.pop()
        if self.https:
            if self._ssl is None:
                self._ssl = ssl.create_default_context(cafile=self._ca_bundle)
            return http.client.HTTPSConnection(self.host, timeout=TIMEOUT, context=self._ssl)
        return http.client.HTTPConnection(self.host, timeout=TIMEOUT)

    def close(self) -> None:
        """Close the idle connections (those in use are closed by their request's end)."""
        with self._mutex:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()

    def _send(self, target: str, headers: dict[str, str], body: bytes) -> tuple[int, Any, bytes]:
        """One request on a kept-alive connection (a new one when none is idle); a connection
        that failed or that the server closes is not kept."""
        conn = self._connection()
        try:
            conn.putrequest("PUT", target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                conn.putheader(name, value)
            conn.putheader("user-agent", self.user_agent)  # not signed: proxies may change it
            conn.putheader("content-length", str(len(body)))
            conn.endheaders(body)
            resp = conn.getresponse()
            data = resp.read()
        except BaseException:
            conn.close()
            raise
        if resp.will_close:
            conn.close()
        else:
            with self._mutex:
                self._idle.append(conn)
        return resp.status, resp.headers, data

    # --- PutObject ----------------------------------------------------------------------------

    def put(self, key: str, body: bytes, headers: dict[str, str], what: str) -> str:
        """PutObject ``key`` (relative to the bucket) with ``body`` and ``headers`` (lower-case
        names: content-type, cache-control, content-encoding, x-amz-acl); the ETag S3 returns,
        as it returns it. Errors are AwsError("<what>: <Code>: <message>")."""
        path = self.prefix + urllib.parse.quote(key, safe="/~")
        headers = {
            **headers,
            "host": self.host,
            "content-md5": base64.b64encode(hashlib.md5(body).digest()).decode(),
        }
        failure = ""
        for attempt in range(1, self.attempts + 1):
            if attempt > 1:
                self.sleep(random.random() * min(20.0, 2.0 ** (attempt - 2)))
            validity = self.fence.validity()  # LockLost when the lease is over: nothing sent
            fenced = validity is not None
            if validity is None:
                validity = (math.floor(self.fence.now()), UNFENCED_EXPIRES)
            target = self.signed_target(path, headers, validity)
            try:
                status, got, data = self._send(target, headers, body)
            except (OSError, http.client.HTTPException) as exc:
                failure = f"{what}: {type(exc).__name__}: {exc}".rstrip(": ")
                continue  # a lost or reset connection: a fresh one next time
            date = got.get("Date")
            if date:
                self.fence.observe(date)
            if 200 <= status < 300:
                return str(got.get("ETag") or "")
            code, message = _error(data)
            if fenced and status == 403 and "expired" in message.lower():
                raise lease_over(validity[0] + validity[1])
            if status in (301, 307) or code in REDIRECT_CODES:
                raise Redirected(code or f"HTTP {status}")
            code = code or f"HTTP {status}"
            failure = f"{what}: {code}: {message or f'HTTP {status}'}"
            if status >= 500 or code in RETRY_CODES:
                continue
            raise AwsError(failure, code=code)
        raise AwsError(failure)


def user_agent_of(app_id: str | None) -> str:
    """What the lean path says it is: this tool, the botocore it stands in for, and the
    application id botocore would add (``AWS_SDK_UA_APP_ID``, ``sdk_ua_app_id``)."""
    import platform

    import botocore

    from planner import __version__

    agent = (f"invalidation-planner/{__version__} Botocore/{botocore.__version__} "
             f"lang/python#{platform.python_version()}")
    return f"{agent} app/{app_id}" if app_id else agent


def _intercepted(client: Any) -> bool:
    """Whether something in this process hooks botocore's sending (moto's mock, a stubber):
    then every request must go through botocore for it to see."""
    try:
        emitter = client.meta.events._emitter  # botocore's HierarchicalEmitter
        return bool(list(emitter._handlers.prefix_search("before-send.s3.PutObject")))
    except AttributeError:
        return True  # a botocore this code does not know: keep to botocore


def _proxied(client: Any, url: str) -> bool:
    if client.meta.config.proxies:
        return True
    parts = urllib.parse.urlsplit(url)
    proxies = urllib.request.getproxies_environment()
    return parts.scheme in proxies and not urllib.request.proxy_bypass_environment(
        parts.hostname or "", proxies
    )


def open_fast_put(
    client: Any, session: Any, bucket: str, fence: Fence, attempts: int, retry_mode: str
) -> FastPut | None:
    """A FastPut for ``bucket`` through botocore ``client`` (of botocore ``session``), or None
    where botocore must send every PUT itself (see the module's text)."""
    import urllib.request  # noqa: F401 - used by _proxied; imported only when uploading

    if retry_mode != "standard" or _intercepted(client):
        return None
    config = client.meta.config
    if getattr(config, "client_cert", None):
        return None
    credentials = session.get_credentials()
    if credentials is None:
        return None  # botocore says NoCredentialsError, as everywhere else
    # (a GetObject URL: the same as a PutObject one, and no write for the fence to sign)
    url = client.generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": PROBE})
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.path.endswith("/" + PROBE):
        return None
    if _proxied(client, url):
        return None
    base = f"{parts.scheme}://{parts.netloc}{parts.path[: -len(PROBE)]}"
    ca_bundle = None
    if parts.scheme == "https":
        ca_bundle = session.get_config_variable("ca_bundle")
        if not ca_bundle:
            from botocore.httpsession import get_cert_path

            ca_bundle = get_cert_path(True)
    region = client.meta.region_name or "us-east-1"
    agent = user_agent_of(getattr(config, "user_agent_appid", None))
    return FastPut(base, region, credentials, fence, attempts, ca_bundle, user_agent=agent)
