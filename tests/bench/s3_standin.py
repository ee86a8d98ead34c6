"""A local S3 stand-in that answers after a fixed latency, for the upload benchmark (issue 15).

moto answers a few hundred PUTs a second at most, so against it every tool measures moto.
Real S3 answers a small PUT in 20 to 50 ms and takes thousands at once: what limits a tool
there is how many requests it keeps in flight and what each costs it. This server keeps the
objects in memory, answers each request after ``latency`` seconds (slept in the request's
own thread, so requests in flight overlap as on S3), and speaks the part of the S3 REST API
that a deploy, ``s5cmd cp`` and ``aws s3 sync`` use on small files, path-style:

- CreateBucket, HeadBucket, GetBucketLocation;
- PutObject (``If-None-Match: *`` and ``If-Match`` as S3 does them; ``aws-chunked`` bodies;
  CopyObject with ``x-amz-copy-source``, metadata copied or replaced); GetObject,
  HeadObject (``If-Match``, ``If-None-Match``), DeleteObject, DeleteObjects;
- ListObjectsV2 (prefix, delimiter, start-after, continuation, max-keys) and ListObjects.

Signatures are not checked (header or query signed alike); an expired query-signed request
is refused as S3 does (``X-Amz-Date`` + ``X-Amz-Expires``, or SigV2's ``Expires``, past),
so fenced writes behave.
Run it alone with ``python tests/bench/s3_standin.py --latency 0.02`` (prints its URL).
"""

from __future__ import annotations

import argparse
import calendar
import hashlib
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from xml.sax.saxutils import escape

KEPT_HEADERS = ("content-type", "cache-control", "content-encoding", "content-disposition",
                "content-language", "expires", "x-amz-website-redirect-location")


@dataclass
class Obj:
    body: bytes
    etag: str  # with its quotes
    modified: float
    headers: dict[str, str] = field(default_factory=dict)  # kept headers and x-amz-meta-*


class Store:
    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, Obj]] = {}
        self.lock = threading.RLock()
        self.requests: dict[str, int] = {}

    def count(self, op: str) -> None:
        with self.lock:
            self.requests[op] = self.requests.get(op, 0) + 1


def _iso(t: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(t))


def _xml(tag: str, inner: str) -> bytes:
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<{tag} '
            f'xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{inner}</{tag}>').encode()


def decode_aws_chunked(data: bytes) -> bytes:
    """The payload of an ``aws-chunked`` body: chunks of ``hex-size[;chunk-signature=..]``,
    CRLF, data, CRLF, up to a chunk of size 0 and the trailers."""
    out, i = [], 0
    while True:
        end = data.index(b"\r\n", i)
        size = int(data[i:end].split(b";")[0], 16)
        i = end + 2
        if size == 0:
            return b"".join(out)
        out.append(data[i:i + size])
        i += size + 2


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: "StandIn"

    def log_message(self, *args) -> None:  # quiet
        pass

    # --- plumbing ---

    def _answer(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None,
                head: bool = False) -> None:
        time.sleep(self.server.latency)
        self.send_response(status)  # with Date
        self.send_header("x-amz-request-id", "standin")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if "Content-Length" not in (headers or {}):
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if body and not head:
            self.wfile.write(body)

    def _error(self, status: int, code: str, message: str = "", head: bool = False) -> None:
        body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                f"<Message>{escape(message or code)}</Message></Error>").encode()
        self._answer(status, body, {"Content-Type": "application/xml"}, head=head)

    def _target(self) -> tuple[str, str, dict[str, list[str]]]:
        parsed = urllib.parse.urlsplit(self.path)
        parts = parsed.path.lstrip("/").split("/", 1)
        bucket = urllib.parse.unquote(parts[0])
        key = urllib.parse.unquote(parts[1]) if len(parts) > 1 else ""
        return bucket, key, urllib.parse.parse_qs(parsed.query, keep_blank_values=True)

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            out = []
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                out.append(self.rfile.read(size))
                self.rfile.readline()
            data = b"".join(out)
        else:
            data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        encodings = [e.strip() for e in self.headers.get("Content-Encoding", "").split(",")]
        if "aws-chunked" in encodings or self.headers.get("x-amz-decoded-content-length"):
            if self.headers.get("x-amz-content-sha256", "").startswith("STREAMING"):
                data = decode_aws_chunked(data)
        return data

    def _expired(self, query: dict[str, list[str]]) -> bool:
        if "Expires" in query and "Signature" in query:  # SigV2 query auth: an epoch time
            return time.time() > int(query["Expires"][0])
        if "X-Amz-Date" not in query or "X-Amz-Expires" not in query:
            return False
        start = calendar.timegm(time.strptime(query["X-Amz-Date"][0], "%Y%m%dT%H%M%SZ"))
        return time.time() > start + int(query["X-Amz-Expires"][0])

    def _bucket(self, name: str) -> dict[str, Obj] | None:
        return self.server.store.buckets.get(name)

    @staticmethod
    def _object_headers(obj: Obj) -> dict[str, str]:
        h = {"ETag": obj.etag, "Last-Modified": formatdate(obj.modified, usegmt=True),
             "Accept-Ranges": "bytes"}
        for k, v in obj.headers.items():
            h[k if k.startswith("x-amz-meta-") else k.title()] = v
        h.setdefault("Content-Type", "binary/octet-stream")
        return h

    def _write(self):
        """(bucket, key, query, body, the bucket's objects) of a write, or None once it is
        answered: a query signature past its expiry is refused, as S3 does, and a write into
        a bucket that does not exist (but CreateBucket)."""
        bucket, key, query = self._target()
        body = self._body()
        if self._expired(query):
            self._error(403, "AccessDenied", "Request has expired")
            return None
        objects = self._bucket(bucket)
        if objects is None and not (self.command == "PUT" and not key):
            self._error(404, "NoSuchBucket")
            return None
        return bucket, key, query, body, objects

    # --- verbs ---

    def do_PUT(self) -> None:
        write = self._write()
        if write is None:
            return
        bucket, key, _, body, objects = write
        store = self.server.store
        if not key:
            store.count("CreateBucket")
            with store.lock:
                store.buckets.setdefault(bucket, {})
            return self._answer(200, headers={"Location": f"/{bucket}"})
        headers = {k.lower(): v for k, v in self.headers.items()
                   if k.lower() in KEPT_HEADERS or k.lower().startswith("x-amz-meta-")}
        encodings = [e.strip() for e in headers.get("content-encoding", "").split(",")
                     if e.strip() and e.strip() != "aws-chunked"]
        if "content-encoding" in headers:
            if encodings:
                headers["content-encoding"] = ",".join(encodings)
            else:
                del headers["content-encoding"]
        source = self.headers.get("x-amz-copy-source")
        with store.lock:
            current = objects.get(key)
            if self.headers.get("If-None-Match") == "*" and current is not None:
                return self._error(412, "PreconditionFailed", "At least one of the "
                                   "pre-conditions you specified did not hold")
            match = self.headers.get("If-Match")
            if match is not None and (current is None or current.etag != match):
                if current is None:
                    return self._error(404, "NoSuchKey")
                return self._error(412, "PreconditionFailed", "At least one of the "
                                   "pre-conditions you specified did not hold")
            if source:
                store.count("CopyObject")
                src_bucket, _, src_key = urllib.parse.unquote(source).lstrip("/").partition("/")
                src = store.buckets.get(src_bucket, {}).get(src_key.split("?")[0])
                if src is None:
                    return self._error(404, "NoSuchKey")
                if self.headers.get("x-amz-metadata-directive", "COPY").upper() != "REPLACE":
                    headers = dict(src.headers)
                new = Obj(src.body, src.etag, time.time(), headers)
                objects[key] = new
                result = _xml("CopyObjectResult", f"<LastModified>{_iso(new.modified)}"
                              f"</LastModified><ETag>{escape(new.etag)}</ETag>")
                return self._answer(200, result, {"Content-Type": "application/xml"})
            store.count("PutObject")
            new = Obj(body, f'"{hashlib.md5(body).hexdigest()}"', time.time(), headers)
            objects[key] = new
        self._answer(200, headers={"ETag": new.etag})

    def do_GET(self, head: bool = False) -> None:
        bucket, key, query = self._target()
        store = self.server.store
        objects = self._bucket(bucket)
        if not bucket:
            store.count("ListBuckets")
            names = "".join(f"<Bucket><Name>{escape(b)}</Name><CreationDate>{_iso(0)}"
                            f"</CreationDate></Bucket>" for b in sorted(store.buckets))
            return self._answer(200, _xml("ListAllMyBucketsResult",
                                          f"<Buckets>{names}</Buckets>"),
                                {"Content-Type": "application/xml"}, head=head)
        if objects is None:
            return self._error(404, "NoSuchBucket", head=head)
        if not key:
            if head:
                store.count("HeadBucket")
                return self._answer(200, head=True)
            if "location" in query:
                store.count("GetBucketLocation")
                return self._answer(200, _xml("LocationConstraint", ""),
                                    {"Content-Type": "application/xml"})
            return self._list(objects, query)
        store.count("HeadObject" if head else "GetObject")
        with store.lock:
            obj = objects.get(key)
        if obj is None:
            return self._error(404, "NoSuchKey", head=head)
        match = self.headers.get("If-Match")
        if match is not None and match != obj.etag:
            return self._error(412, "PreconditionFailed", head=head)
        if self.headers.get("If-None-Match") in (obj.etag, "*"):
            return self._answer(304, headers={"ETag": obj.etag}, head=True)
        headers = self._object_headers(obj)
        headers["Content-Length"] = str(len(obj.body))
        self._answer(200, obj.body, headers, head=head)

    def do_HEAD(self) -> None:
        self.do_GET(head=True)

    def do_DELETE(self) -> None:
        write = self._write()
        if write is None:
            return
        _, key, _, _, objects = write
        store = self.server.store
        store.count("DeleteObject")
        with store.lock:
            objects.pop(key, None)
        self._answer(204)

    def do_POST(self) -> None:
        write = self._write()
        if write is None:
            return
        _, _, query, body, objects = write
        store = self.server.store
        if "delete" not in query:
            return self._error(501, "NotImplemented", "only DeleteObjects is served")
        store.count("DeleteObjects")
        import xml.etree.ElementTree as ET

        root = ET.fromstring(body)
        keys = [el.text or "" for el in root.iter() if el.tag.endswith("Key")]
        quiet = any((el.text or "").lower() == "true" for el in root.iter()
                    if el.tag.endswith("Quiet"))
        with store.lock:
            for k in keys:
                objects.pop(k, None)
        deleted = "" if quiet else "".join(f"<Deleted><Key>{escape(k)}</Key></Deleted>"
                                           for k in keys)
        self._answer(200, _xml("DeleteResult", deleted), {"Content-Type": "application/xml"})

    def _list(self, objects: dict[str, Obj], query: dict[str, list[str]]) -> None:
        v2 = query.get("list-type", [""])[0] == "2"
        self.server.store.count("ListObjectsV2" if v2 else "ListObjects")
        q = {k: v[0] for k, v in query.items()}
        prefix, delimiter = q.get("prefix", ""), q.get("delimiter", "")
        limit = min(1000, int(q.get("max-keys", "1000")))
        after = q.get("continuation-token") or q.get("start-after") or q.get("marker") or ""
        truncated = False
        with self.server.store.lock:
            keys = sorted(k for k in objects if k.startswith(prefix) and k > after
                          and not (delimiter and after.endswith(delimiter)
                                   and k.startswith(after)))
            items, prefixes = [], []
            for k in keys:
                p = ""
                if delimiter:
                    cut = k.find(delimiter, len(prefix))
                    p = k[:cut + len(delimiter)] if cut >= 0 else ""
                if p and prefixes and prefixes[-1] == p:
                    continue
                if len(items) + len(prefixes) >= limit:
                    truncated = True
                    break
                if p:
                    prefixes.append(p)
                else:
                    items.append((k, objects[k]))
        last = max([items[-1][0]] if items else [], default="")
        last = max(last, prefixes[-1] if prefixes else "")
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><LastModified>{_iso(o.modified)}</LastModified>"
            f"<ETag>{escape(o.etag)}</ETag><Size>{len(o.body)}</Size>"
            f"<StorageClass>STANDARD</StorageClass></Contents>" for k, o in items)
        common = "".join(f"<CommonPrefixes><Prefix>{escape(p)}</Prefix></CommonPrefixes>"
                         for p in prefixes)
        bucket = self._target()[0]
        inner = (f"<Name>{escape(bucket)}</Name><Prefix>{escape(prefix)}</Prefix>"
                 f"<MaxKeys>{limit}</MaxKeys><IsTruncated>{str(truncated).lower()}</IsTruncated>"
                 f"{contents}{common}")
        if delimiter:
            inner += f"<Delimiter>{escape(delimiter)}</Delimiter>"
        if v2:
            inner += f"<KeyCount>{len(items) + len(prefixes)}</KeyCount>"
            if truncated:
                inner += f"<NextContinuationToken>{escape(last)}</NextContinuationToken>"
        elif truncated:
            inner += f"<NextMarker>{escape(last)}</NextMarker>"
        self._answer(200, _xml("ListBucketResult", inner), {"Content-Type": "application/xml"})


class StandIn(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self, latency: float = 0.02, port: int = 0):
        super().__init__(("127.0.0.1", port), Handler)
        self.latency = latency
        self.store = Store()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> "StandIn":
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)  # stop() waits at most a poll
        self._thread.start()
        return self

    def stop(self) -> None:
        self.shutdown()
        self.server_close()

    def __enter__(self) -> "StandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latency", type=float, default=0.02, help="seconds before each answer")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    server = StandIn(args.latency, args.port)
    print(server.url, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
