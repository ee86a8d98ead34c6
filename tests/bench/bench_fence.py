"""What fencing costs a deploy's writes: PutObject with the signature in the query string,
expiring with the lease (planner.backends.fence), against the same calls signed in the Authorization
header (no lock held), on one client against a moto server on 127.0.0.1.

The two are run alternately, several rounds, and the medians compared: on a shared machine
a figure without its anchor says little. moto's own time per request dominates both; the
difference is the signing.

    .venv/bin/python tests/bench/bench_fence.py [--puts 500] [--rounds 5] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import logging
import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

from planner.backends.fence import Fence, attach


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--puts", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        client = boto3.client(
            "s3", region_name="us-east-1", endpoint_url=f"http://{host}:{port}",
            aws_access_key_id="bench", aws_secret_access_key="bench",
            config=Config(max_pool_connections=64),
        )
        fence = Fence()
        attach(client, fence)
        client.create_bucket(Bucket="bench")
        body = b"<!doctype html><p>" + b"x" * 2000 + b"</p>\n"

        def puts(tag: str) -> float:
            started = time.perf_counter()
            with ThreadPoolExecutor(args.workers) as pool:
                list(pool.map(
                    lambda i: client.put_object(Bucket="bench", Key=f"{tag}/{i}.html", Body=body,
                                                ContentType="text/html; charset=utf-8",
                                                CacheControl="public, max-age=60"),
                    range(args.puts),
                ))
            return time.perf_counter() - started

        times: dict[str, list[float]] = {"header-signed": [], "fenced (query-signed)": []}
        puts("warm-up")
        for r in range(args.rounds):
            fence.drop("bench")
            times["header-signed"].append(puts(f"h{r}"))
            fence.hold("bench", fence.now() + 3600)
            times["fenced (query-signed)"].append(puts(f"f{r}"))
        fence.drop("bench")
    finally:
        server.stop()

    print(f"{args.puts} PutObject of {len(body)} B, {args.workers} threads, "
          f"{args.rounds} alternating rounds; median (min-max):")
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"  {name:24s} {med:6.3f} s ({min(ts):.3f}-{max(ts):.3f})  "
              f"{args.puts / med:6.0f} PUT/s")
    ratio = statistics.median(times["fenced (query-signed)"]) / statistics.median(
        times["header-signed"])
    print(f"  fenced / header-signed: {ratio:.2f}")
    print(json.dumps({"puts": args.puts, "bytes": len(body), "workers": args.workers,
                      "rounds": args.rounds,
                      "median_s": {k: round(statistics.median(v), 4) for k, v in times.items()},
                      "ratio_median": round(ratio, 3)}))


if __name__ == "__main__":
    main()
