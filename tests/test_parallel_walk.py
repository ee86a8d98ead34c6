"""The walk in parts (manifests.parts): a large build walked, hashed and given its headers
by the forked helpers gives exactly what one process gives, refuses what it refuses, and
raises the same first error.

Each test runs the scan in a fresh interpreter: forking needs a single-threaded process,
which pytest (with a moto server thread) may not be. The thresholds are lowered there so
that a tree of a few hundred files is walked in many parts, with folders handed back.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

# argv: root, what ("same" | "error"); prints one JSON line.
SCRIPT = r"""
import json, os, sys
scan_mod = __import__("manifests.scan", fromlist=["scan"])
parts = __import__("manifests.parts", fromlist=["Walk"])
root, what = sys.argv[1], sys.argv[2]
walks = []
real_init = parts.Walk.__init__
def counted(self, *a, **kw):
    real_init(self, *a, **kw)
    walks.append(self)
parts.Walk.__init__ = counted
overlaps = []
real_assemble = parts.assemble
def checked(ps):
    runs = sorted((p for p in ps if p.count), key=lambda p: p.first)
    overlaps.extend((a.last, b.first) for a, b in zip(runs, runs[1:]) if not a.last < b.first)
    return real_assemble(ps)
parts.assemble = checked
bad_open = os.environ.get("DENY")
if bad_open:
    real_open = os.open
    def deny(path, *a, **kw):
        if str(path).endswith(tuple(bad_open.split(","))):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *a, **kw)
    os.open = deny
bad_head = os.environ.get("BAD_HEADERS")
def headers(key):
    if bad_head and key.endswith(tuple(bad_head.split(","))):
        raise ValueError(f"no headers for {key}")
    return ("text/html" if key.endswith(".html") else "x/y", "c" if "0" in key else "d", "")
meanwhile_calls = []
def meanwhile():
    meanwhile_calls.append(1)
    if os.environ.get("BAD_MEANWHILE"):
        raise RuntimeError("the state could not be read")
progress = []
def result(workers):
    try:
        entries = scan_mod.scan_meanwhile(root, headers, workers=workers, meanwhile=meanwhile,
                                          progress=lambda *a: progress.append(a))
        return {"entries": [[k, e.hash, e.size, e.content_type, e.cache_control]
                            for k, e in entries.items()], "keys": list(entries)}
    except Exception as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
one = result(1)
one_calls, one_progress = len(meanwhile_calls), list(progress)
scan_mod.PROCESS_MIN_FILES = 10
scan_mod.PARALLEL_WALK_MIN_FILES = 30
parts.BUDGET = 25
parts.SLICE = 3
meanwhile_calls.clear(); progress.clear()
two = result(2)
print(json.dumps({"one": one, "two": two, "meanwhile": [one_calls, len(meanwhile_calls)],
                  "parts": sum(len(w.parts) for w in walks), "progress": progress,
                  "overlaps": overlaps}))
"""


def _run(root: Path, **env: str) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(root), "x"], capture_output=True, text=True,
        timeout=120, env={**os.environ, **env},
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def _tree(root: Path, seed: int, n: int = 400) -> None:
    """Files and folders side by side at every depth, with names that sort around '/'
    ('a-b', 'a.b', 'a', 'a0'), so that parts overlap and are sorted together."""
    rng = random.Random(seed)
    names = ["a", "a-b", "a.b", "a0", "b", "index.html", "z"]
    for i in range(n):
        depth = rng.randrange(0, 5)
        parts = [rng.choice(names) + (str(rng.randrange(3)) if rng.random() < 0.5 else "")
                 for _ in range(depth)]
        leaf = f"{rng.choice(names)}-{i}.html" if rng.random() < 0.7 else f"f{i}"
        path = root.joinpath(*parts, leaf)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(rng.randbytes(rng.randrange(0, 2000)))
        except (FileExistsError, NotADirectoryError, IsADirectoryError):
            continue  # a name already taken by a file or a folder


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_walk_in_parts_gives_what_one_process_gives(tmp_path: Path, seed: int) -> None:
    _tree(tmp_path, seed)
    doc = _run(tmp_path)
    assert "error" not in doc["two"], doc["two"]
    assert doc["parts"] > 3  # the tree really went out in parts
    assert doc["two"]["entries"] == doc["one"]["entries"]
    assert doc["two"]["keys"] == sorted(doc["two"]["keys"])
    # Every part walked a range of keys of its own (files after a folder of theirs wait on
    # the stack): the parts are put end to end, never sorted together.
    assert doc["overlaps"] == []
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(doc["two"]["keys"]) == len(files)
    assert doc["meanwhile"] == [1, 1]
    # Progress: "so far" reports (0 files in all) while walking, then the totals, last.
    calls = doc["progress"]
    total_bytes = sum(p.stat().st_size for p in files)
    assert calls[-1] == [len(files), total_bytes, len(files)]
    assert all(c[2] in (0, len(files)) for c in calls)
    assert [c[0] for c in calls] == sorted(c[0] for c in calls)


def test_a_part_that_meets_a_bad_name_refuses_the_build_as_one_process_does(
    tmp_path: Path,
) -> None:
    _tree(tmp_path, 4)
    deep = tmp_path / "z" / "y" / "x"
    deep.mkdir(parents=True)
    (deep / "page\x0b.html").write_text("x")
    doc = _run(tmp_path)
    assert doc["parts"] >= 1
    assert doc["two"]["error"] == doc["one"]["error"]
    assert "has a control character" in doc["two"]["error"], doc
    assert doc["meanwhile"] == [1, 1]  # called once, also when the walk is refused


def test_a_fifo_found_by_a_part_is_refused_by_name(tmp_path: Path) -> None:
    _tree(tmp_path, 5)
    (tmp_path / "z").mkdir(exist_ok=True)
    os.mkfifo(tmp_path / "z" / "feed.xml")
    doc = _run(tmp_path)
    assert doc["two"]["error"] == doc["one"]["error"]
    assert "'z/feed.xml' is a FIFO (named pipe)" in doc["two"]["error"]


def test_the_first_unreadable_file_in_key_order_is_reported(tmp_path: Path) -> None:
    _tree(tmp_path, 6)
    keys = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    denied = [keys[len(keys) // 3], keys[-2]]
    doc = _run(tmp_path, DENY=",".join(denied))
    assert doc["two"]["error"] == doc["one"]["error"]
    assert denied[0] in doc["two"]["error"] and "Permission denied" in doc["two"]["error"]


def test_a_headers_error_is_raised_as_the_caller_raised_it(tmp_path: Path) -> None:
    # The helpers cannot send every exception back (it may not pickle): the part is walked
    # again here, which raises the caller's own exception, for the first key in order.
    _tree(tmp_path, 7)
    keys = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    bad = [keys[len(keys) // 2], keys[-1]]
    doc = _run(tmp_path, BAD_HEADERS=",".join(bad))
    assert doc["two"]["error"] == doc["one"]["error"] == f"ValueError: no headers for {bad[0]}"


def test_the_error_of_meanwhile_comes_first(tmp_path: Path) -> None:
    _tree(tmp_path, 8)
    (tmp_path / "zz").mkdir()
    (tmp_path / "zz" / "a\\b.html").write_text("x")
    doc = _run(tmp_path, BAD_MEANWHILE="1")
    assert doc["one"]["error"] == doc["two"]["error"] == "RuntimeError: the state could not be read"
