"""A run at API scale on one driver: every role behind an OpenAI-compatible server on 127.0.0.1 in
another process, with log-normal latency (median 0.5 s). Prints the wall time against the bound
(requests x median latency / concurrency), peak RSS, bytes written to the run directory against
the final output size, and requests per second.

Targets (10,000 conversations x 10 turns at --concurrency 512): wall within 1.3x of the bound,
peak RSS under 2 GB, bytes written under 3x the final output.

    python benchmarks/scale.py [--conversations 10000] [--turns 10] [--concurrency 512]
                               [--latency 0.5] [--sigma 0.3]
    python benchmarks/scale.py --conversations 300 --turns 3 --latency 0    # one driver's requests/s
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from pathlib import Path

from _personas import demo_personas, write_personas
from api_concurrency import latency_server

from aloe_bench.engine.config import RoleConfig, RunConfig
from aloe_bench.engine.runner import run_benchmark


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10000)
    parser.add_argument("--turns", type=int, default=10)
    parser.add_argument("--concurrency", type=int, default=512)
    parser.add_argument("--latency", type=float, default=0.5, help="median request latency, seconds")
    parser.add_argument("--sigma", type=float, default=0.3, help="sigma of the log-normal latency")
    args = parser.parse_args()
    server: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp, latency_server(args.latency, args.sigma, server) as base_url:
        role = RoleConfig("openai/fake-model", args={"base_url": base_url})
        out = Path(tmp) / "run"
        config = RunConfig(
            model=role,
            simulator=role,
            judge=role,
            personas=str(write_personas(demo_personas(args.conversations), Path(tmp) / "p.jsonl")),
            turns=args.turns,
            concurrency=args.concurrency,
            output=str(out),
            cache=str(Path(tmp) / "calls.sqlite"),  # outside the run directory
        )
        start = time.perf_counter()
        _, run = run_benchmark(config, progress=False)
        results = run.to_dict()  # the typed RunResults, as results.json holds it
        wall = time.perf_counter() - start
        final = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    assert results["status"] == "complete", results.get("failures")
    requests = sum(u["calls"] for u in results["usage"].values())
    written = results["io"]["bytes_written"]
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak_rss = usage.ru_maxrss * 1024  # Linux: KiB
    driver_cpu = usage.ru_utime + usage.ru_stime
    bound = requests * args.latency / args.concurrency
    print(
        f"{args.conversations} conversations x {args.turns} turns, --concurrency {args.concurrency}, "
        f"latency log-normal median {args.latency}s sigma {args.sigma}"
    )
    print(f"requests:          {requests}")
    print(f"wall time:         {wall:8.1f} s")
    if args.latency > 0:
        print(f"bound:             {bound:8.1f} s  (requests x median latency / concurrency)")
        print(f"wall / bound:      {wall / bound:8.2f}   (target <= 1.3)")
    print(f"requests/s:        {requests / wall:8.1f}")
    # CPU near wall time: that process is the limit (one core each; both share the machine's).
    print(f"driver CPU:        {driver_cpu:8.1f} s  ({driver_cpu / wall:.0%} of wall; startup included)")
    print(
        f"fake server CPU:   {server['server_cpu_s']:8.1f} s  ({server['server_cpu_s'] / wall:.0%} of wall)"
    )
    print(f"peak RSS:          {peak_rss / 2**20:8.1f} MiB (target < 2048)")
    print(f"bytes written:     {written / 2**20:8.1f} MiB to the run directory")
    print(f"final output:      {final / 2**20:8.1f} MiB")
    print(f"written / final:   {written / final:8.2f}   (target < 3)")


if __name__ == "__main__":
    main()
