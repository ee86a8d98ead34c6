"""State stores: a local folder and an S3 prefix (against moto), with conditional writes."""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path
from typing import Any

import pytest
import xxhash

from manifests import (
    ConflictError,
    CorruptManifest,
    Entry,
    LocalStore,
    Manifest,
    S3Store,
    StoreError,
    WrongTarget,
    commit_manifest,
    load_manifest,
)
from manifests.stores import ABSENT, MANIFEST_NAME

H = "0123456789abcdef0123456789abcdef"
TARGET = "s3://site-bucket/blog/"


def _manifest(deploy_id: str = "d-1", target: str = TARGET, **entries: Entry) -> Manifest:
    return Manifest(
        entries or {"index.html": Entry(H, 12, "text/html", "max-age=60")},
        target=target,
        deploy_id=deploy_id,
        tool_version="0.1.0",
    )


# --- LocalStore ------------------------------------------------------------------------------


def test_local_read_of_a_missing_name_is_none(tmp_path: Path) -> None:
    assert LocalStore(str(tmp_path)).read("nothing.json") == (None, None)


def test_local_write_then_read_returns_the_data_and_its_version(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    version = store.write("pending.json", b'{"a":1}')
    assert store.read("pending.json") == (b'{"a":1}', version)
    assert (tmp_path / ".planner" / "pending.json").read_bytes() == b'{"a":1}'
    assert store.location == str(tmp_path / ".planner") + os.sep


def test_local_versions_follow_the_content(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    v1 = store.write("x", b"one")
    v2 = store.write("x", b"two")
    assert v1 != v2
    assert v1 == xxhash.xxh3_128_hexdigest(b"one")  # versions are content hashes
    assert store.read("x")[1] == v2


def test_local_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    store.write("a", b"1")
    store.write("a", b"2", expect=store.read("a")[1])
    # only the file and the lock that serialises conditional writes
    assert sorted(os.listdir(tmp_path / ".planner")) == [".lock", "a"]


def test_local_remove_deletes_and_tolerates_a_missing_name(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    store.write("a", b"1")
    store.remove("a")
    assert store.read("a") == (None, None)
    store.remove("a")  # already gone: no error


def test_local_write_absent_when_the_name_exists_is_a_conflict(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    store.write("m", b"first", expect=ABSENT)
    with pytest.raises(ConflictError, match="changed since it was read"):
        store.write("m", b"second", expect=ABSENT)
    assert store.read("m")[0] == b"first"


def test_local_write_with_a_stale_version_is_a_conflict(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    stale = store.write("m", b"v1")
    store.write("m", b"v2", expect=stale)  # someone else's deploy
    with pytest.raises(ConflictError):
        store.write("m", b"v3", expect=stale)
    assert store.read("m")[0] == b"v2"


def test_local_write_with_the_current_version_succeeds(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    current = store.write("m", b"v1")
    new = store.write("m", b"v2", expect=current)
    assert store.read("m") == (b"v2", new)


def test_local_write_expecting_a_version_of_a_missing_name_is_a_conflict(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    with pytest.raises(ConflictError):
        store.write("m", b"v1", expect=H)
    assert store.read("m") == (None, None)


def test_local_write_into_an_unwritable_place_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a folder")
    store = LocalStore(str(tmp_path / "file"))
    with pytest.raises(StoreError, match="cannot write"):
        store.write("m", b"x")


def test_local_read_of_something_unreadable_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / ".planner" / "m").mkdir(parents=True)  # a folder where a file should be
    with pytest.raises(StoreError, match="cannot read"):
        LocalStore(str(tmp_path)).read("m")


@pytest.mark.e2e
def test_local_conditional_write_is_not_lost_to_a_writer_racing_between_check_and_rename(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    ours = LocalStore(str(tmp_path))
    rival = LocalStore(str(tmp_path))  # another deploy process, unpatched
    outcomes: dict[str, str] = {}
    threads: list[threading.Thread] = []

    def attempt(store: LocalStore, who: str) -> None:
        try:
            store.write("m", who.encode(), expect=ABSENT)
            outcomes[who] = "committed"
        except ConflictError:
            outcomes[who] = "conflict"

    real_read = ours.read

    def read_then_let_the_rival_run(name: str) -> tuple[bytes | None, str | None]:
        result = real_read(name)
        if not threads:  # the rival commits right after our check
            t = threading.Thread(target=attempt, args=(rival, "theirs"), daemon=True)
            threads.append(t)
            t.start()
            t.join(2)  # a fixed store may make it wait on a lock: then go on without it
        return result

    monkeypatch.setattr(ours, "read", read_then_let_the_rival_run)
    attempt(ours, "ours")
    for t in threads:
        t.join(10)
        assert not t.is_alive()
    winners = [who for who, outcome in outcomes.items() if outcome == "committed"]
    assert len(winners) == 1, outcomes  # one first deploy wins, the other is told
    assert LocalStore(str(tmp_path)).read("m")[0] == winners[0].encode()


# --- load_manifest / commit_manifest (local) -------------------------------------------------


def test_load_manifest_before_the_first_deploy_is_none(tmp_path: Path) -> None:
    assert load_manifest(LocalStore(str(tmp_path)), TARGET) == (None, None)


def test_commit_then_load_returns_the_manifest_and_its_version(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    m = _manifest()
    version = commit_manifest(store, m, None)
    loaded, loaded_version = load_manifest(store, TARGET)
    assert loaded == m
    assert loaded_version == version
    assert (tmp_path / ".planner" / MANIFEST_NAME).read_bytes() == m.dumps()


def test_second_commit_with_the_version_read_succeeds(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    commit_manifest(store, _manifest("d-1"), None)
    _, version = load_manifest(store, TARGET)
    commit_manifest(store, _manifest("d-2"), version)
    loaded, _ = load_manifest(store, TARGET)
    assert loaded is not None and loaded.deploy_id == "d-2"


def test_first_deploy_commit_loses_to_a_concurrent_first_deploy(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    commit_manifest(store, _manifest("theirs"), None)
    with pytest.raises(ConflictError):
        commit_manifest(store, _manifest("ours"), None)
    assert load_manifest(store, TARGET)[0].deploy_id == "theirs"  # type: ignore[union-attr]


def test_commit_with_a_stale_version_is_a_conflict(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    v1 = commit_manifest(store, _manifest("d-1"), None)
    commit_manifest(store, _manifest("d-2"), v1)
    with pytest.raises(ConflictError):
        commit_manifest(store, _manifest("d-3"), v1)
    assert load_manifest(store, TARGET)[0].deploy_id == "d-2"  # type: ignore[union-attr]


def test_manifest_of_another_target_is_refused(tmp_path: Path) -> None:
    store = LocalStore(str(tmp_path))
    commit_manifest(store, _manifest(target="s3://other-bucket/"), None)
    expected = "belongs to s3://other-bucket/, not s3://site-bucket/blog/"
    with pytest.raises(WrongTarget, match=expected):
        load_manifest(store, TARGET)


@pytest.mark.parametrize(
    "garbage",
    [
        b"this is not a manifest",  # plain text
        gzip.compress(b"{not json"),  # gzip of broken JSON
        gzip.compress(b'{"format_version": 99, "entries": {}}'),  # unknown version
        b"",  # an empty file (e.g. a crash while writing without atomic rename)
    ],
)
def test_garbage_manifest_is_corrupt_and_names_its_location(tmp_path: Path, garbage: bytes) -> None:
    store = LocalStore(str(tmp_path))
    store.write(MANIFEST_NAME, garbage)
    with pytest.raises(CorruptManifest) as info:
        load_manifest(store, TARGET)
    assert f"{store.location}{MANIFEST_NAME}" in str(info.value)


# --- S3Store against moto --------------------------------------------------------------------

BUCKET = "planner-state-test"


@pytest.fixture
def s3(s3_in_process: Any) -> Any:
    """A moto-backed S3 client with one empty bucket."""
    s3_in_process.create_bucket(Bucket=BUCKET)
    return s3_in_process


class Recording:
    """Wraps a client and records the arguments of every put_object call."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.puts: list[dict[str, Any]] = []

    def put_object(self, **kwargs: Any) -> Any:
        self.puts.append(kwargs)
        return self._client.put_object(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def _all_keys(s3: Any) -> list[str]:
    return [o["Key"] for o in s3.list_objects_v2(Bucket=BUCKET).get("Contents", [])]


@pytest.mark.parametrize(
    ("prefix", "key"),
    [
        ("", ".planner/manifest.json.gz"),  # the whole bucket is the target
        ("blog/", "blog/.planner/manifest.json.gz"),  # a prefix (targets end it with '/')
        ("a/b/", "a/b/.planner/manifest.json.gz"),  # a deeper prefix
    ],
)
def test_s3_manifest_key_is_prefix_dot_planner(s3: Any, prefix: str, key: str) -> None:
    store = S3Store(s3, BUCKET, prefix)
    assert store.key(MANIFEST_NAME) == key
    assert store.location == f"s3://{BUCKET}/{prefix}.planner/"
    commit_manifest(store, _manifest(), None)
    assert _all_keys(s3) == [key]
    body = s3.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert Manifest.loads(body) == _manifest()


def test_s3_read_of_a_missing_name_is_none(s3: Any) -> None:
    assert S3Store(s3, BUCKET, "blog/").read(MANIFEST_NAME) == (None, None)
    assert load_manifest(S3Store(s3, BUCKET, "blog/"), TARGET) == (None, None)


def test_s3_read_from_a_missing_bucket_is_not_mistaken_for_a_first_deploy(s3: Any) -> None:
    store = S3Store(s3, "no-such-bucket-here", "blog/")
    with pytest.raises(Exception) as info:
        store.read(MANIFEST_NAME)
    assert info.value.response["Error"]["Code"] == "NoSuchBucket"  # type: ignore[attr-defined]


def test_s3_first_commit_is_conditional_on_absence_then_on_the_etag(s3: Any) -> None:
    rec = Recording(s3)
    store = S3Store(rec, BUCKET, "blog/")
    v1 = commit_manifest(store, _manifest("d-1"), None)
    assert rec.puts[0]["IfNoneMatch"] == "*" and "IfMatch" not in rec.puts[0]
    loaded, version = load_manifest(store, TARGET)
    head = s3.head_object(Bucket=BUCKET, Key="blog/.planner/manifest.json.gz")
    assert version == v1 == head["ETag"]
    v2 = commit_manifest(store, _manifest("d-2"), version)
    assert rec.puts[1]["IfMatch"] == v1 and "IfNoneMatch" not in rec.puts[1]
    assert v2 != v1
    assert load_manifest(store, TARGET) == (_manifest("d-2"), v2)


def test_s3_commit_with_a_stale_etag_is_a_conflict(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "blog/")
    v1 = commit_manifest(store, _manifest("d-1"), None)
    commit_manifest(store, _manifest("d-2"), v1)  # another deploy got there first
    location = re.escape(f"s3://{BUCKET}/blog/.planner/manifest.json.gz")
    with pytest.raises(ConflictError, match=f"{location} changed since it was read"):
        commit_manifest(store, _manifest("d-3"), v1)
    assert load_manifest(store, TARGET)[0].deploy_id == "d-2"  # type: ignore[union-attr]


def test_s3_second_first_deploy_is_a_conflict(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "blog/")
    commit_manifest(store, _manifest("theirs"), None)
    with pytest.raises(ConflictError):
        commit_manifest(store, _manifest("ours"), None)
    assert load_manifest(store, TARGET)[0].deploy_id == "theirs"  # type: ignore[union-attr]


def test_s3_commit_expecting_a_manifest_that_was_removed_is_a_conflict(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "blog/")
    v1 = commit_manifest(store, _manifest("d-1"), None)
    store.remove(MANIFEST_NAME)  # e.g. someone reset the target meanwhile
    with pytest.raises(ConflictError):
        commit_manifest(store, _manifest("d-2"), v1)
    assert store.read(MANIFEST_NAME) == (None, None)


def test_s3_unconditional_write_overwrites(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "")
    store.write("pending.json", b"1")
    version = store.write("pending.json", b"2")
    assert store.read("pending.json") == (b"2", version)


def test_s3_remove_deletes_and_tolerates_a_missing_name(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "blog/")
    store.write("pending.json", b"{}")
    store.remove("pending.json")
    assert store.read("pending.json") == (None, None)
    store.remove("pending.json")
    assert _all_keys(s3) == []


def test_s3_state_object_has_no_public_grant(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "")
    commit_manifest(store, _manifest(), None)
    acl = s3.get_object_acl(Bucket=BUCKET, Key=".planner/manifest.json.gz")
    owner = acl["Owner"]["ID"]
    assert acl["Grants"] == [
        {"Grantee": {"ID": owner, "Type": "CanonicalUser"}, "Permission": "FULL_CONTROL"}
    ]


def test_s3_state_object_is_never_cached(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "")
    commit_manifest(store, _manifest(), None)
    head = s3.head_object(Bucket=BUCKET, Key=".planner/manifest.json.gz")
    assert head["CacheControl"] == "no-store"
    assert head["ContentType"] == "application/octet-stream"


def test_s3_manifest_of_another_target_is_refused(s3: Any) -> None:
    store = S3Store(s3, BUCKET, "blog/")
    commit_manifest(store, _manifest(target="s3://planner-state-test/docs/"), None)
    with pytest.raises(WrongTarget, match="docs/"):
        load_manifest(store, TARGET)


def test_s3_garbage_manifest_is_corrupt_and_names_its_location(s3: Any) -> None:
    s3.put_object(Bucket=BUCKET, Key="blog/.planner/manifest.json.gz", Body=b"<html>oops</html>")
    location = re.escape(f"s3://{BUCKET}/blog/.planner/manifest.json.gz")
    with pytest.raises(CorruptManifest, match=f"{location}: manifest is not valid gzip"):
        load_manifest(S3Store(s3, BUCKET, "blog/"), TARGET)
