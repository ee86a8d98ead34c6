"""A small fault-injecting HTTP/1.1 reverse proxy for the end-to-end tests.

It listens on 127.0.0.1 (a free port) in front of the moto server and forwards every request
unchanged: method, path and query, headers (Host included: botocore signed them for the
proxy's address, and moto does not check signatures) and the exact body bytes; it returns
moto's status, headers and body. It keeps an ordered log of every request and, by rules,
answers some of them itself instead:

- with an AWS error (``S3_INTERNAL_ERROR``, ``S3_SLOW_DOWN``, ``CF_THROTTLING``,
  ``CF_TOO_MANY_INVALIDATIONS``, or any ``Error(...)``);
- by closing the connection without a response, before forwarding (``DROP``: the request
  never reaches moto) or after it (``DROP_AFTER``: moto applied it, the answer is lost);
- by calling a hook first (``Hook(fn)``, e.g. to SIGKILL the client), then dropping (or
  doing what ``then`` says).
- by forwarding and handing the client another body (``Rewrite(fn)``: ``fn(entry, body)``
  gives it; e.g. ``cf_invalidation_status("InProgress")`` makes GetInvalidation answer as AWS
  does, which moto cannot).

With ``strict=True`` it also enforces what moto does not (see /work/shared/CLOUDFRONT.md), as
S3 does: a pre-signed request (``X-Amz-Date`` and ``X-Amz-Expires`` in the query) whose
expiry is past when its headers arrive is refused (403 AccessDenied, "Request has expired"),
by this machine's clock; and a request whose body stalls for ``body_timeout`` seconds is
dropped with 400 RequestTimeout. Neither reaches moto.

A rule picks requests by number (``at``: 1 is the first request after the rule was added),
or by method and a regular expression searched in the decoded path (``method``, ``path``),
the first ``times`` of them (every one when ``times`` is None) or the ``nth`` ones, or both.
The first rule that takes a request decides; a request no rule takes is forwarded.

    with FaultProxy(moto.endpoint) as proxy:
        proxy.add(Rule(S3_SLOW_DOWN, method="PUT", path=r"/css/site\\.css$", times=1))
        run(args, proxy.env(moto.env))
        assert [e.status for e in proxy.requests(method="PUT", key="css/site.css")] == [503, 200]

Every request gets a number in the order it arrived; ``arrived`` and ``done`` are ticks of one
counter, so "moto had finished A before B arrived" is ``a.done < b.arrived``.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import itertools
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable

# Bodies kept in the log: all of them up to this size, CloudFront's POSTs whatever their size.
SMALL_BODY = 64 * 1024

HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "expect",  # the proxy itself answered "100 Continue"; moto gets the whole body at once
}

CLOUDFRONT_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/")
INVALIDATION_PATH = re.compile(r"^/20\d\d-\d\d-\d\d/distribution/([^/]+)/invalidation$")


# --- actions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Error:
    """Answer with an AWS error document instead of forwarding."""

    status: int
    code: str
    message: str
    service: str = "s3"  # "s3": <Error>; "cloudfront": <ErrorResponse><Error><Type>...
    type: str = "Sender"  # CloudFront's Sender / Receiver

    def body(self) -> bytes:
        request_id = uuid.uuid4().hex.upper()[:16]
        if self.service == "cloudfront":
            return (
                '<?xml version="1.0"?>\n'
                '<ErrorResponse xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">'
                f"<Error><Type>{self.type}</Type><Code>{self.code}</Code>"
                f"<Message>{self.message}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>"
            ).encode()
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            f"<RequestId>{request_id}</RequestId><HostId>fault-proxy</HostId></Error>"
        ).encode()

    @property
    def name(self) -> str:
        return f"error:{self.status}:{self.code}"


@dataclass(frozen=True)
class Drop:
    """Close the connection without an answer; ``after``: forward first (moto applies it)."""

    after: bool = False

    @property
    def name(self) -> str:
        return "drop-after" if self.after else "drop"


@dataclass(frozen=True)
class Hook:
    """Call ``fn(entry)`` when the request arrives (before it is forwarded), then ``then``
    (default: drop the connection without forwarding; None: forward as usual)."""

    fn: Callable[["Entry"], None]
    then: "Error | Drop | None" = Drop()

    @property
    def name(self) -> str:
        return "hook" + (f"+{self.then.name}" if self.then is not None else "")


@dataclass(frozen=True)
class Rewrite:
    """Forward, then send the client ``fn(entry, body)`` instead of moto's body (moto's status
    and headers kept, Content-Length recomputed)."""

    fn: Callable[["Entry", bytes], bytes]

    @property
    def name(self) -> str:
        return "rewrite"


Action = Error | Drop | Hook | Rewrite

S3_INTERNAL_ERROR = Error(500, "InternalError", "We encountered an internal error. Please try again.")
S3_SLOW_DOWN = Error(503, "SlowDown", "Please reduce your request rate.")
CF_THROTTLING = Error(400, "Throttling", "Rate exceeded", service="cloudfront")
CF_TOO_MANY_INVALIDATIONS = Error(
    400,
    "TooManyInvalidationsInProgress",
    "Your request contains too many invalidations.",
    service="cloudfront",
)
DROP = Drop()
DROP_AFTER = Drop(after=True)

# GetInvalidation: GET /2020-05-31/distribution/<id>/invalidation/<invalidation id>
GET_INVALIDATION = r"^/20\d\d-\d\d-\d\d/distribution/[^/]+/invalidation/[^/]+$"


def cf_invalidation_status(status: str) -> Rewrite:
    """GetInvalidation answered with ``status`` (AWS spells ``InProgress`` and ``Completed``;
    moto always says ``COMPLETED``)."""

    def rewrite(entry: "Entry", data: bytes) -> bytes:
        if entry.upstream_status != 200:
            return data
        new, n = re.subn(rb"<Status>[^<]*</Status>", f"<Status>{status}</Status>".encode(), data)
        assert n == 1, data
        return new

    return Rewrite(rewrite)


# --- rules and the log -----------------------------------------------------------------------


@dataclass
class Rule:
    action: Action
    at: frozenset[int] | set[int] | tuple[int, ...] = ()  # request numbers, 1 = next request
    method: str | None = None
    path: str | None = None  # regex, searched in the percent-decoded path
    times: int | None = None  # the first K matching requests; None: every one
    nth: frozenset[int] | set[int] | tuple[int, ...] = ()  # only these matches (1 = first)
    base: int = 0  # set by FaultProxy.add: the request count when the rule was added
    seen: int = 0  # matching requests so far
    hits: list[int] = field(default_factory=list)  # numbers of the requests it acted on

    def take(self, number: int, method: str, path: str) -> bool:
        """Whether the rule acts on this request (called once per request, in order)."""
        if self.at and number - self.base not in self.at:
            return False
        if self.method is not None and method.upper() != self.method.upper():
            return False
        if self.path is not None and not re.search(self.path, path):
            return False
        self.seen += 1
        if self.nth and self.seen not in self.nth:
            return False
        if self.times is not None and len(self.hits) >= self.times:
            return False
        self.hits.append(number)
        return True


@dataclass
class Entry:
    number: int  # 1, 2, ... in order of arrival (over the proxy's whole life)
    method: str
    raw_path: str  # as sent, percent-encoded, without the query
    query: dict[str, list[str]]  # decoded; keys without a value map to [""]
    headers: dict[str, str]  # lower-case names
    body: bytes | None  # kept for small bodies and CloudFront POSTs
    body_size: int
    arrived: int  # tick
    action: str = "forward"
    upstream_status: int | None = None  # moto's status; None: not forwarded (or it failed)
    status: int | None = None  # what the client got; None: no answer (connection dropped)
    done: int | None = None  # tick when moto's answer was in

    @property
    def path(self) -> str:
        return urllib.parse.unquote(self.raw_path)

    @property
    def service(self) -> str:
        return "cloudfront" if CLOUDFRONT_PATH.match(self.raw_path) else "s3"

    @property
    def bucket(self) -> str | None:
        if self.service != "s3":
            return None
        return self.path.lstrip("/").split("/", 1)[0] or None

    @property
    def key(self) -> str | None:
        """The S3 object key (path-style addressing), or None for a bucket-level request."""
        if self.service != "s3":
            return None
        parts = self.path.lstrip("/").split("/", 1)
        return parts[1] if len(parts) == 2 and parts[1] else None

    @property
    def applied(self) -> bool:
        """moto answered it with success (whether or not the client got the answer)."""
        return self.upstream_status is not None and 200 <= self.upstream_status < 300

    @property
    def is_put_object(self) -> bool:
        return self.service == "s3" and self.method == "PUT" and self.key is not None and not (
            {"uploadId", "partNumber", "tagging", "acl", "retention", "legal-hold"} & set(self.query)
        )

    @property
    def invalidation_distribution(self) -> str | None:
        m = INVALIDATION_PATH.match(self.raw_path)
        return m.group(1) if m and self.method == "POST" else None

    def invalidation_batch(self) -> tuple[list[str], str]:
        """(paths, CallerReference) of a CreateInvalidation request."""
        assert self.invalidation_distribution is not None and self.body is not None, self
        root = ET.fromstring(self.body)
        paths = [el.text or "" for el in root.iter() if _local(el.tag) == "Path"]
        refs = [el.text or "" for el in root.iter() if _local(el.tag) == "CallerReference"]
        return paths, (refs[0] if refs else "")

    def describe(self) -> str:
        status = "-" if self.status is None else self.status
        return f"#{self.number} {self.method} {self.path} -> {status} ({self.action})"


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --- the server ------------------------------------------------------------------------------


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, and "100 Continue" for botocore's Expect
    timeout = 60  # an idle keep-alive connection of a killed client does not hold a thread
    server: "_Server"

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - quiet
        return

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self) -> None:
        proxy = self.server.proxy
        arrived = time.time()  # S3 judges a pre-signed request's expiry as its headers arrive
        raw_path, _, query = self.path.partition("?")
        if proxy.strict:
            self.connection.settimeout(proxy.body_timeout)
        try:
            body = self._read_body()
        except (socket.timeout, TimeoutError):
            entry, _ = proxy._arrive(self.command, raw_path, query, dict(self.headers.items()), b"")
            try:
                entry.action = "request timeout"
                self.close_connection = True
                self._send(entry, REQUEST_TIMEOUT.status, [("Content-Type", "application/xml")],
                           REQUEST_TIMEOUT.body())
            finally:
                proxy._finished()
            return
        finally:
            if proxy.strict:
                self.connection.settimeout(self.timeout)
        entry, action = proxy._arrive(self.command, raw_path, query, dict(self.headers.items()), body)
        if proxy.strict and presigned_expired(entry.query, arrived):
            action = EXPIRED
        try:
            if isinstance(action, Hook):
                entry.action = action.name
                action.fn(entry)
                action = action.then
            if isinstance(action, Error):
                entry.action = action.name
                self._send(entry, action.status, [("Content-Type", "text/xml")], action.body())
                return
            if isinstance(action, Drop) and not action.after:
                entry.action = action.name if entry.action == "forward" else entry.action
                self._drop()
                return
            status, headers, data = proxy._forward(entry, self.command, self.path, self.headers, body)
            if isinstance(action, Rewrite):
                entry.action = action.name
                data = action.fn(entry, data)
            if isinstance(action, Drop):
                entry.action = action.name
                self._drop()
                return
            self._send(entry, status, headers, data)
        finally:
            proxy._finished()

    def _send(self, entry: Entry, status: int, headers: list[tuple[str, str]], data: bytes) -> None:
        self.send_response_only(status)
        has_length = False
        for name, value in headers:
            low = name.lower()
            if low in HOP_BY_HOP:
                continue
            if low == "content-length":
                if self.command != "HEAD":
                    continue  # ours, below
                has_length = True
            self.send_header(name, value)
        no_body = self.command == "HEAD" or status in (204, 304) or 100 <= status < 200
        if not no_body:
            self.send_header("Content-Length", str(len(data)))
        elif not has_length and self.command != "HEAD":
            self.send_header("Content-Length", "0")
        self.end_headers()
        if not no_body:
            self.wfile.write(data)
        self.wfile.flush()
        entry.status = status

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _safely(self) -> None:
        try:
            self._handle()
        except (BrokenPipeError, ConnectionResetError, socket.timeout):
            self.close_connection = True  # the client went away (killed): nothing to answer

    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = _safely


EXPIRED = Error(403, "AccessDenied", "Request has expired")
REQUEST_TIMEOUT = Error(400, "RequestTimeout", "Your socket connection to the server was not "
                        "read from or written to within the timeout period.")


def presigned_expired(query: dict[str, list[str]], at: float) -> bool:
    """Whether a query-signed request is past ``X-Amz-Date + X-Amz-Expires`` at time ``at``."""
    if "X-Amz-Expires" not in query or "X-Amz-Date" not in query:
        return False
    signed = _dt.datetime.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ").replace(
        tzinfo=_dt.UTC
    )
    return at > signed.timestamp() + int(query["X-Amz-Expires"][0])


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    proxy: "FaultProxy"


class FaultProxy:
    """The proxy; a context manager that starts it on 127.0.0.1 (a free port) and stops it."""

    def __init__(self, upstream: str, strict: bool = False, body_timeout: float = 20.0) -> None:
        self.strict, self.body_timeout = strict, body_timeout
        parsed = urllib.parse.urlsplit(upstream)
        assert parsed.scheme == "http", upstream
        self.upstream_host = parsed.hostname or "127.0.0.1"
        self.upstream_port = parsed.port or 80
        self.log: list[Entry] = []
        self.rules: list[Rule] = []
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._in_flight = 0
        self._ticks = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    # --- life ---------------------------------------------------------------------------------

    def start(self) -> "FaultProxy":
        server = _Server(("127.0.0.1", 0), _Handler)
        server.proxy = self
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="fault-proxy",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """A copy of ``base`` (a subprocess environment) whose AWS endpoint is the proxy."""
        env = {k: v for k, v in base.items() if not k.startswith("AWS_ENDPOINT_URL_")}
        env["AWS_ENDPOINT_URL"] = self.url
        return env

    # --- rules --------------------------------------------------------------------------------

    def add(self, rule: Rule) -> Rule:
        with self._lock:
            rule.base = len(self.log)
            rule.at = frozenset(rule.at)
            rule.nth = frozenset(rule.nth)
            self.rules.append(rule)
        return rule

    def clear_rules(self) -> None:
        with self._lock:
            self.rules.clear()

    # --- the log ------------------------------------------------------------------------------

    def mark(self) -> int:
        """The number of requests so far: ``since(mark)`` lists those after this point."""
        with self._lock:
            return len(self.log)

    def since(self, mark: int = 0) -> list[Entry]:
        with self._lock:
            return list(self.log[mark:])

    def requests(
        self,
        mark: int = 0,
        method: str | None = None,
        key: str | None = None,
        path: str | None = None,
    ) -> list[Entry]:
        """Logged requests after ``mark``, by method, S3 key and/or path regex."""
        return [
            e
            for e in self.since(mark)
            if (method is None or e.method == method.upper())
            and (key is None or e.key == key)
            and (path is None or re.search(path, e.path))
        ]

    def invalidation_requests(self, mark: int = 0) -> list[Entry]:
        return [e for e in self.since(mark) if e.invalidation_distribution is not None]

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Until no request is being handled (a killed client's requests still in flight to
        moto have landed)."""
        deadline = time.monotonic() + timeout
        with self._idle:
            while self._in_flight:
                left = deadline - time.monotonic()
                assert left > 0, f"{self._in_flight} requests still in flight"
                self._idle.wait(left)

    def dump(self, mark: int = 0) -> str:
        return "\n".join(e.describe() for e in self.since(mark))

    # --- used by the handler ------------------------------------------------------------------

    def _arrive(
        self, method: str, raw_path: str, query: str, headers: dict[str, str], body: bytes
    ) -> tuple[Entry, Action | None]:
        keep = len(body) <= SMALL_BODY or (
            method == "POST" and CLOUDFRONT_PATH.match(raw_path) is not None
        )
        with self._lock:
            self._in_flight += 1
            number = len(self.log) + 1
            entry = Entry(
                number=number,
                method=method,
                raw_path=raw_path,
                query=urllib.parse.parse_qs(query, keep_blank_values=True),
                headers={k.lower(): v for k, v in headers.items()},
                body=body if keep else None,
                body_size=len(body),
                arrived=next(self._ticks),
            )
            self.log.append(entry)
            action: Action | None = None
            for rule in self.rules:
                if rule.take(number, method, entry.path):
                    action = rule.action
                    break
        return entry, action

    def _finished(self) -> None:
        with self._idle:
            self._in_flight -= 1
            self._idle.notify_all()

    def _forward(
        self, entry: Entry, method: str, target: str, headers, body: bytes
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        conn = http.client.HTTPConnection(self.upstream_host, self.upstream_port, timeout=60)
        try:
            conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
            for name, value in headers.items():
                if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                    continue
                conn.putheader(name, value)
            if body or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(body)))
            conn.endheaders(body if body else None)
            resp = conn.getresponse()
            data = resp.read()
            status, resp_headers = resp.status, resp.getheaders()
        finally:
            conn.close()
        with self._lock:
            entry.upstream_status = status
            entry.done = next(self._ticks)
        return status, resp_headers, data


class Killer:
    """A proxy hook that SIGKILLs the CLI (its whole process group) when its request arrives;
    the request is then dropped."""

    def __init__(self) -> None:
        self.pid: int | None = None
        self.started = threading.Event()
        self.fired: Entry | None = None

    def __call__(self, entry: Entry) -> None:
        self.started.wait(10)
        assert self.pid is not None
        self.fired = entry
        os.killpg(self.pid, signal.SIGKILL)


def kill_run(
    args: list[str], env: dict[str, str], cwd: str, proxy: FaultProxy, **when: Any
) -> tuple[int, Entry | None, str]:
    """Run the CLI through ``proxy``, killing it when the request ``when`` describes (a
    ``Rule``'s matching arguments: ``at={n}``, ``method=..., path=..., times=1``) arrives.
    (exit code, the request it was killed at or None, stderr)"""
    killer = Killer()
    proxy.add(Rule(Hook(killer), **when))
    proc = subprocess.Popen(
        [sys.executable, "-m", "planner", *args], env=env, cwd=cwd, stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, start_new_session=True,
    )
    killer.pid = proc.pid
    killer.started.set()
    try:
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    proxy.clear_rules()
    proxy.wait_idle()
    return proc.returncode, killer.fired, err.decode("utf-8", "replace")
