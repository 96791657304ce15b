"""The engine against API backends: every role behind an OpenAI-compatible server on 127.0.0.1 that
takes a fixed time per request (the fault-injection server, latency only). Prints the wall time
against the sum of all request latencies.

    python benchmarks/api_concurrency.py [--conversations 100] [--turns 3] [--latency 0.2] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

from _personas import demo_personas, write_personas

from aloe_bench.models.role_config import RoleConfig
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_bench.tasks.aloe.run import run_benchmark


@contextmanager
def latency_server(latency: float, sigma: float = 0.0, stats: dict[str, float] | None = None):
    """The fault-injection server in its own process, as a real server would be. `stats`, when
    given, receives the server's CPU seconds (`server_cpu_s`) as it stops: a server near one
    core's worth of CPU is itself the limit, and the driver's figures would not be its own."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "aloe_bench.testing.fake_openai",
            "--port",
            str(port),
            "--latency",
            str(latency),
            "--latency-sigma",
            str(sigma),
            "--no-record",
        ],
        stdout=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"{base}/models", timeout=1).read()
                break
            except OSError:
                time.sleep(0.1)
        yield base
    finally:
        if stats is not None:
            stats["server_cpu_s"] = _cpu_seconds(proc.pid)
        proc.terminate()
        proc.wait(10)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a live process (Linux /proc; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=100)
    parser.add_argument("--turns", type=int, default=3)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, latency_server(args.latency) as base_url:
        role = RoleConfig("openai/fake-model", args={"base_url": base_url})
        config = RunConfig(
            model=role,
            simulator=role,
            judge=role,
            personas=str(write_personas(demo_personas(args.conversations), Path(tmp) / "p.jsonl")),
            turns=args.turns,
            concurrency=args.concurrency,
            output=str(Path(tmp) / "run"),
            cache=str(Path(tmp) / "calls.sqlite"),
        )
        start = time.perf_counter()
        _, run = run_benchmark(config, progress=False)
        results = run.to_dict()  # the typed RunResults, as results.json holds it
        wall = time.perf_counter() - start
        requests = sum(u["calls"] for u in results["usage"].values())
    assert results["status"] == "complete", results.get("failures")
    serial = requests * args.latency
    print(
        f"{args.conversations} conversations x {args.turns} turns, {args.latency * 1000:.0f} ms per request, "
        f"--concurrency {args.concurrency}"
    )
    print(f"requests: {requests}")
    print(f"sum of request latencies: {serial:7.1f} s")
    print(f"wall time:                {wall:7.1f} s")
    print(f"speed-up: {serial / wall:.1f}x")


if __name__ == "__main__":
    main()
