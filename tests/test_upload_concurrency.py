"""How many uploads a deploy keeps in flight: --workers small files at once, and files of a
mebibyte or more at most BIG_AT_ONCE at once whatever --workers says (each is held in
memory, or streamed in parts, while it is sent). Local backend, each write slowed down so
that the requests overlap as they do against S3."""

from __future__ import annotations

import threading
import time

import pytest

from planner.apply import BIG_AT_ONCE, BIG_UPLOAD, WORKERS, apply_plan
from planner.backends import LocalBackend
from planner.backends.targets import LocalTarget
from planner.plan.build import build_plan
from planner.plan.compute import Options


class Slow(LocalBackend):
    """The local backend, each write taking 20 ms, counting the writes in flight by size."""

    def __init__(self, target: LocalTarget) -> None:
        super().__init__(target)
        self.mutex = threading.Lock()
        self.now = {"big": 0, "small": 0}
        self.most = {"big": 0, "small": 0}

    def _count(self, size: int, write):
        kind = "big" if size >= BIG_UPLOAD else "small"
        with self.mutex:
            self.now[kind] += 1
            self.most[kind] = max(self.most[kind], self.now[kind])
        try:
            time.sleep(0.02)
            return write()
        finally:
            with self.mutex:
                self.now[kind] -= 1

    def put_bytes(self, key, data, *rest):
        return self._count(len(data), lambda: super(Slow, self).put_bytes(key, data, *rest))


@pytest.mark.parametrize("workers", [4, 32])
def test_big_files_go_a_few_at_a_time_and_small_ones_as_many_as_the_workers(tmp_path, workers):
    site = tmp_path / "site"
    site.mkdir()
    for i in range(3 * BIG_AT_ONCE):
        (site / f"big-{i}.bin").write_bytes(bytes([i]) * BIG_UPLOAD)
    for i in range(4 * workers):
        (site / f"page-{i}.html").write_text(f"<p>{i}</p>")
    backend = Slow(LocalTarget(str(tmp_path / "out")))
    plan = build_plan(str(site), backend, Options(), "test")
    result = apply_plan(plan, backend, workers=workers)
    assert result.uploaded == 3 * BIG_AT_ONCE + 4 * workers
    assert backend.most["big"] == min(BIG_AT_ONCE, workers)
    assert backend.most["small"] == workers  # every worker busy with pages at some point
    assert WORKERS >= BIG_AT_ONCE
