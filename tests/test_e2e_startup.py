"""A deploy with nothing to do reads what it needs at once: the lock, the manifest, the
pending record and the target's surroundings are four round trips in flight together (on S3
each is 20 to 50 ms), so the rerun of an unchanged build costs one round trip, not four."""

from __future__ import annotations

import time

from e2e_helpers import run, write_site
from fault_proxy import FaultProxy, Hook, Rule


def test_a_deploy_with_nothing_to_do_sends_its_reads_together(moto, site, tmp_path):
    root = write_site(tmp_path / "build")
    args = ["deploy", str(root), "--target", site.target(), "-q"]
    assert run(args, moto.env, moto.cwd).returncode == 0
    with FaultProxy(moto.endpoint) as proxy:
        # Every S3 request waits 0.3 s before it goes on: reads sent one after another
        # would each start after the one before was answered.
        proxy.add(Rule(Hook(lambda _: time.sleep(0.3), then=None), path=f"^/{site.bucket}"))
        again = run(args, proxy.env(moto.env), moto.cwd)
        assert again.returncode == 0, again.stderr
        assert "Nothing to deploy" in again.stdout + again.stderr
        proxy.wait_idle()
        reads = [e for e in proxy.since() if e.bucket == site.bucket]
    assert sorted((e.method, e.key or "") for e in reads) == [
        ("GET", ""), ("GET", ".planner/lock.json"), ("GET", ".planner/manifest.json.gz"),
        ("GET", ".planner/pending.json")]
    assert max(e.arrived for e in reads) < min(e.done for e in reads), proxy.dump()
