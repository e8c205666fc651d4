"""Closed-loop HTTP load: N concurrent clients, each sends its next request when the last one answered.

Usage: python bench/loadgen.py URL REQUESTS.json CONCURRENCY SECONDS  -> prints one JSON line.
REQUESTS.json holds a list of request bodies, cycled through.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

import httpx


async def main(url: str, bodies: list[dict], concurrency: int, seconds: float) -> dict:
    latencies: list[float] = []
    rows = errors = 0
    deadline = time.perf_counter() + seconds
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:
        async def worker(offset: int) -> None:
            nonlocal rows, errors
            i = offset
            while time.perf_counter() < deadline:
                body = bodies[i % len(bodies)]
                i += concurrency
                t = time.perf_counter()
                try:
                    r = await client.post(url, json=body)
                    ok = r.status_code == 200
                except httpx.HTTPError:
                    ok = False
                latencies.append(time.perf_counter() - t)
                if ok:
                    rows += len(body.get("flights") or body.get("rows"))
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * (len(latencies) - 1)))] * 1000 if latencies else 0.0

    return {"requests": len(latencies), "errors": errors, "rows_per_s": rows / elapsed, "p50_ms": q(0.5),
            "p95_ms": q(0.95), "p99_ms": q(0.99)}


if __name__ == "__main__":
    url, path, concurrency, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    print(json.dumps(asyncio.run(main(url, json.loads(open(path).read()), concurrency, seconds))))
