"""S3 ETags of build files (manifests.etags): what proves an object holds a file's bytes."""

from __future__ import annotations

import hashlib
import os

import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

from manifests import ScanError
from manifests.etags import etag_of, normal, parts_of, proves, stored_etag


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


# --- ETags -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("etag", "parts"),
    [
        ('"9e107d9d372bb6826bd81d3542a419d6"', 1),  # single request, quoted as S3 sends it
        ("9E107D9D372BB6826BD81D3542A419D6", 1),  # upper case from some stores
        ('W/"9e107d9d372bb6826bd81d3542a419d6"', 1),  # a weak ETag from a proxy
        ('"f1d0ec4681788378b727e4d7cc76dfa1-3"', 3),  # multipart, 3 parts
        ('"f1d0ec4681788378b727e4d7cc76dfa1-10000"', 10000),  # S3's most parts
        ('"f1d0ec4681788378b727e4d7cc76dfa1-0"', None),  # no upload has 0 parts
        ("", None),  # a store that gives none
        ('"not-an-md5"', None),
        ('"9e107d9d372bb6826bd81d3542a419d"', None),  # 31 digits
    ],
)
def test_etag_parts(etag, parts):
    assert parts_of(etag) == parts


def test_single_request_etag_is_the_md5_of_the_bytes():
    assert etag_of(b"hello") == md5(b"hello")
    assert proves('"' + md5(b"hello").upper() + '"', etag_of(b"hello"))


def test_multipart_etag_is_the_md5_of_the_part_md5s_and_the_part_count():
    data = bytes(range(256)) * 50  # 12,800 bytes: parts of 5,000, 5,000, 2,800
    parts = [data[:5000], data[5000:10000], data[10000:]]
    want = md5(b"".join(hashlib.md5(p).digest() for p in parts)) + "-3"
    assert etag_of(data, 5000) == want
    assert etag_of(data, 6400) == md5(b"".join(hashlib.md5(p).digest()
                                                for p in (data[:6400], data[6400:]))) + "-2"
    # One part: still the multipart form, which is not the plain MD5.
    assert etag_of(data, len(data)).endswith("-1")
    assert etag_of(data, len(data)) != etag_of(data)


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=3000), part=st.one_of(st.none(), st.integers(1, 1500)))
def test_stored_etag_of_a_file_is_the_etag_of_its_bytes(tmp_path_factory, data, part):
    path = tmp_path_factory.mktemp("f") / "f.bin"
    path.write_bytes(data)
    scanned = (xxhash.xxh3_128_hexdigest(data), len(data))
    if not data and part is not None:
        return  # no multipart upload is empty
    assert stored_etag(str(path), "f.bin", scanned, None, part) == etag_of(data, part)
    # Read whole (a content encoding's transform) or in pieces: the same.
    assert stored_etag(str(path), "f.bin", scanned, lambda b: b, part) == etag_of(data, part)


def test_stored_etag_applies_the_stored_form(tmp_path):
    path = tmp_path / "a.css"
    path.write_bytes(b"body{}")
    scanned = (xxhash.xxh3_128_hexdigest(b"body{}"), 6)
    assert stored_etag(str(path), "a.css", scanned, lambda b: b.upper()) == md5(b"BODY{}")


def test_stored_etag_refuses_a_file_changed_since_the_scan(tmp_path):
    """A proof is never made from other bytes than those deployed: a file edited (even to
    the same size) between the scan and the proof is refused."""
    path = tmp_path / "a.html"
    path.write_bytes(b"<p>one</p>")
    scanned = (xxhash.xxh3_128_hexdigest(b"<p>one</p>"), 10)
    path.write_bytes(b"<p>two</p>")
    with pytest.raises(ScanError, match="a.html changed since it was scanned"):
        stored_etag(str(path), "a.html", scanned)
    os.unlink(path)
    with pytest.raises(ScanError, match="cannot read a.html"):
        stored_etag(str(path), "a.html", scanned)


def test_normal_strips_quotes_and_case():
    assert normal(' "ABC-2" ') == "abc-2"


