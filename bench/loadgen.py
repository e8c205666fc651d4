"""Closed-loop HTTP load: N concurrent clients, each sends its next request when the last one answered.

Usage: python bench/loadgen.py URL REQUESTS.json CONCURRENCY SECONDS [aiohttp|httpx]  -> prints one JSON line.
REQUESTS.json holds a list of request bodies, cycled through (encoded once, before the clock starts).
With AIRLOOP_SERVING_TOKEN in the environment, every request carries it as a bearer token.

The client shares the machine with the server (2 cores here), so its own CPU time is taken from the
server's: aiohttp (default) spends ~0.4 ms of CPU per request, httpx ~1.3 ms (measured against a no-op
BentoML endpoint); ``httpx`` is kept to compare with earlier runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from collections.abc import Awaitable, Callable


async def main(
    url: str, bodies: list[dict], concurrency: int, seconds: float, client: str = "aiohttp"
) -> dict:
    latencies: list[float] = []
    rows = errors = 0
    payloads = [json.dumps(b).encode() for b in bodies]
    counts = [len(b.get("flights") or b.get("rows")) for b in bodies]
    headers = {"Content-Type": "application/json"}
    if os.environ.get("AIRLOOP_SERVING_TOKEN"):  # a service that requires its bearer token
        headers["Authorization"] = f"Bearer {os.environ['AIRLOOP_SERVING_TOKEN']}"

    async def run(post: Callable[[bytes], Awaitable[bool]]) -> float:
        deadline = time.perf_counter() + seconds

        async def worker(offset: int) -> None:
            nonlocal rows, errors
            i = offset
            while time.perf_counter() < deadline:
                k = i % len(payloads)
                i += concurrency
                t = time.perf_counter()
                ok = await post(payloads[k])
                latencies.append(time.perf_counter() - t)
                if ok:
                    rows += counts[k]
                else:
                    errors += 1

        started = time.perf_counter()
        await asyncio.gather(*(worker(k) for k in range(concurrency)))
        return time.perf_counter() - started

    if client == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=30)
        ) as session:

            async def post(body: bytes) -> bool:
                try:
                    async with session.post(url, data=body, headers=headers) as r:
                        await r.read()
                        return r.status == 200
                except (TimeoutError, aiohttp.ClientError):
                    return False

            elapsed = await run(post)
    elif client == "httpx":
        import httpx

        async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as session:

            async def post(body: bytes) -> bool:  # type: ignore[misc]
                try:
                    return (await session.post(url, content=body, headers=headers)).status_code == 200
                except httpx.HTTPError:
                    return False

            elapsed = await run(post)
    else:
        raise ValueError(f"unknown client {client!r}")
    latencies.sort()

    def q(p: float) -> float:
        return latencies[min(len(latencies) - 1, int(p * (len(latencies) - 1)))] * 1000 if latencies else 0.0

    return {
        "requests": len(latencies),
        "errors": errors,
        "rows_per_s": rows / elapsed,
        "p50_ms": q(0.5),
        "p95_ms": q(0.95),
        "p99_ms": q(0.99),
        "client": client,
    }


if __name__ == "__main__":
    url, path, concurrency, seconds = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    client = sys.argv[5] if len(sys.argv) > 5 else "aiohttp"
    with open(path) as f:
        print(json.dumps(asyncio.run(main(url, json.load(f), concurrency, seconds, client))))
