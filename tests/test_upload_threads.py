"""The upload threads of a deploy (planner.apply._each_on_threads): each upload once, no new
upload after the first error, and the error of the first failing upload in list order."""

from __future__ import annotations

import threading
import time

import pytest

from planner.apply import _each_on_threads
from planner.plan.compute import Upload


def _ups(n: int) -> list[Upload]:
    return [Upload(f"k{i:03d}", "new", 1, "0" * 32, "text/html", "cc") for i in range(n)]


def test_every_upload_runs_once_on_the_threads_given():
    seen: list[str] = []
    threads: set[str] = set()
    lock = threading.Lock()

    def work(up: Upload) -> None:
        time.sleep(0.001)
        with lock:
            seen.append(up.key)
            threads.add(threading.current_thread().name)

    ups = _ups(200)
    _each_on_threads(work, ups, 8)
    assert sorted(seen) == [u.key for u in ups]
    assert 1 < len(threads) <= 8


def test_the_first_failing_upload_in_list_order_is_raised():
    # k030 fails first in time, k010 a little later: k010's error is raised, as the upload
    # order decides, not the threads' timing.
    def work(up: Upload) -> None:
        if up.key == "k030":
            raise OSError("k030 failed")
        if up.key == "k010":
            time.sleep(0.05)
            raise OSError("k010 failed")

    with pytest.raises(OSError, match="k010 failed"):
        _each_on_threads(work, _ups(100), 40)


def test_no_upload_starts_after_the_first_error():
    started: list[str] = []
    lock = threading.Lock()

    def work(up: Upload) -> None:
        with lock:
            started.append(up.key)
        if up.key == "k000":
            raise OSError("refused")
        time.sleep(0.01)

    with pytest.raises(OSError, match="refused"):
        _each_on_threads(work, _ups(500), 4)
    assert len(started) <= 8  # those already taken when the error came, not 500


def test_no_uploads_start_no_threads():
    _each_on_threads(lambda up: pytest.fail("called"), [], 8)
