"""A run at API scale on one driver: every role behind an OpenAI-compatible server on 127.0.0.1 in
another process, with log-normal latency (median 0.5 s). Prints the wall time against the bound
(requests x median latency / concurrency), peak RSS, the bytes the process sent to storage (Linux
`/proc/self/io` write_bytes: the call cache, the run directory and anything else) beside the run
directory's own count, both against what is kept (run directory + call cache), and requests per second.

Targets (10,000 conversations x 10 turns at --concurrency 512): wall within 1.3x of the bound,
peak RSS under 2 GB, bytes written (write_bytes, the cache included) under 3x what is kept.

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

from aloe_bench.models.role_config import RoleConfig
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_bench.tasks.aloe.run import run_benchmark


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
        io_before = process_io()
        start = time.perf_counter()
        _, run = run_benchmark(config, progress=False)
        results = run.to_dict()  # the typed RunResults, as results.json holds it
        wall = time.perf_counter() - start
        io_after = process_io()  # before the temp folder is removed (its deletion cancels writes)
        final = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
        cache_files = [Path(tmp) / f"calls.sqlite{s}" for s in ("", "-wal", "-shm")]
        cache_size = sum(f.stat().st_size for f in cache_files if f.is_file())
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
    print(f"bytes written:     {written / 2**20:8.1f} MiB to the run directory (its own count)")
    print(f"final output:      {final / 2**20:8.1f} MiB run directory")
    print(f"written / final:   {written / final:8.2f}   (run directory only)")
    kept = final + cache_size
    print(f"call cache:        {cache_size / 2**20:8.1f} MiB (calls.sqlite with its -wal/-shm)")
    if io_before is None or io_after is None:
        print("write_bytes:       n/a (no /proc/self/io on this system)")
        return
    sent = io_after["write_bytes"] - io_before["write_bytes"]
    cancelled = io_after["cancelled_write_bytes"] - io_before["cancelled_write_bytes"]
    print(
        f"write_bytes:       {sent / 2**20:8.1f} MiB sent to storage by the process during the run "
        f"(cache included; {cancelled / 2**20:.1f} MiB of it cancelled)"
    )
    print(f"write_bytes / kept:{sent / kept:8.2f}   (kept = run directory + call cache; target <= 3)")


def process_io() -> dict[str, int] | None:
    """This process's I/O counters (Linux): write_bytes counts what it sent to the storage layer
    (page-cache pages it dirtied), whatever file they belong to."""
    try:
        text = Path("/proc/self/io").read_text()
    except OSError:
        return None
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines())}


if __name__ == "__main__":
    main()
