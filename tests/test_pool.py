"""The hashing pool (manifests.pool) on its own: forked workers hash what this process would,
a worker that dies costs nothing but time, and a file that cannot be read is reported by index.

Each test runs in a fresh interpreter: forking needs a single-threaded process, which pytest
with a moto server thread running is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import xxhash

POOL = """
import json, os, signal, sys
from manifests import pool

root, kill, missing = sys.argv[1], sys.argv[2] == "kill", sys.argv[3] == "missing"
keys = sorted(os.listdir(root))
if missing:
    keys.insert(7, "gone.bin")
paths = [os.path.join(root, k) for k in keys]
forks = []
real_fork = os.fork
def counting_fork():
    pid = real_fork()
    if pid:
        forks.append(pid)
    return pid
os.fork = counting_fork
assert pool.can_fork()
out, errors = [], []
helpers = pool.Helpers(1, paths, keys, out, errors)
helpers.add(len(paths))
helpers.pump()
if kill:
    for pid in forks:
        os.kill(pid, signal.SIGKILL)
helpers.finish()
print(json.dumps({"forks": len(forks), "out": out, "keys": keys,
                  "errors": [[i, str(e)] for i, e in errors]}))
"""


def _tree(root: Path, count: int) -> None:
    for i in range(count):
        # Sizes around the 1 MiB buffer too: a file larger than it is streamed.
        size = (1 << 20) + 3 if i == 5 else i * 37
        (root / f"f{i:03}.bin").write_bytes(bytes([i % 251]) * size)


def _run(root: Path, *flags: str) -> dict:
    out = subprocess.run([sys.executable, "-c", POOL, str(root), *flags],
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout)


def _expected(root: Path, key: str) -> list:
    data = (root / key).read_bytes()
    return [xxhash.xxh3_128_hexdigest(data), len(data)]


def test_helpers_hash_every_file_as_this_process_would(tmp_path):
    _tree(tmp_path, 150)
    doc = _run(tmp_path, "-", "-")
    assert doc["forks"] >= 1  # a helper really ran
    assert doc["errors"] == []
    assert doc["out"] == [_expected(tmp_path, k) for k in doc["keys"]]


def test_the_work_of_a_killed_helper_is_done_here(tmp_path):
    _tree(tmp_path, 150)
    doc = _run(tmp_path, "kill", "-")
    assert doc["forks"] >= 1
    assert doc["errors"] == []
    assert doc["out"] == [_expected(tmp_path, k) for k in doc["keys"]]


def test_a_file_that_cannot_be_read_is_reported_with_its_index(tmp_path):
    _tree(tmp_path, 150)
    doc = _run(tmp_path, "-", "missing")
    assert doc["errors"] == [[7, "cannot read gone.bin: No such file or directory"]]
    assert doc["keys"][7] == "gone.bin" and doc["out"][7] is None
    assert all(o == _expected(tmp_path, k) for k, o in zip(doc["keys"], doc["out"])
               if k != "gone.bin")
