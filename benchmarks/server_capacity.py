"""How many chat requests per second the fake server (in its own process) answers, driven by a bare
aiohttp client with no benchmark engine around it: the ceiling any driver figure is measured under.

    python benchmarks/server_capacity.py [--requests 20000] [--concurrency 512] [--latency 0]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import aiohttp
from api_concurrency import latency_server


async def drive(base_url: str, requests: int, concurrency: int) -> float:
    body = json.dumps({
        "model": "fake-model",
        "messages": [{"role": "user", "content": "Hello there, how is your day going so far? " * 20}],
        "max_tokens": 64,
    }).encode()  # fmt: skip
    connector = aiohttp.TCPConnector(limit=concurrency)
    left = requests
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal left
            while left > 0:
                left -= 1
                async with session.post(f"{base_url}/chat/completions", data=body) as resp:
                    await resp.read()
                    assert resp.status == 200, resp.status

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20000)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.0)
    args = parser.parse_args()
    with latency_server(args.latency) as base_url:
        wall = asyncio.run(drive(base_url, args.requests, args.concurrency))
    print(
        f"{args.requests} requests at {args.concurrency} in flight: {wall:.1f} s, {args.requests / wall:.0f} requests/s"
    )


if __name__ == "__main__":
    main()
