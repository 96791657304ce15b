"""Throughput of `aloe-train multifaceted-data` against the project's fake OpenAI server (scripted
answers, every call taking --latency seconds, as a remote API does): the generator at concurrency
64 (every call of a stage in flight together, up to 64) vs one call at a time (concurrency=1: each
call waits for the one before), the same instructions, side by side in one run, no call cache.

    python benchmarks/multifaceted_synthesis.py [--instructions 12] [--latency 0.5] [--concurrency 64]

The server runs in this process's background thread; what it measures is how well the synthesis
overlaps calls, not a model's speed. A small unmeasured run first pays the one-time imports. The
stages run one after the other (a stage's calls go out together), so the concurrent run's floor is
one round trip per stage (4 x latency) plus the run's fixed work. Measure on a quiet machine
(check `uptime`).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from aloe_bench.testing.fake_openai import FakeBehaviour
from aloe_train.multifaceted.run import MultifacetedDataConfig, build_collection
from aloe_train.multifaceted.scripted import ScriptedServer


def run(folder: Path, instructions: Path, base_url: str, concurrency: int) -> tuple[float, dict]:
    config = MultifacetedDataConfig(
        instructions=str(instructions),
        output=str(folder / f"c{concurrency}"),
        generator="openai/fake",
        generator_args=f"base_url={base_url},concurrency={concurrency}",
        cache="",
        embedder="tfidf",
    )
    start = time.perf_counter()
    summary = build_collection(config, progress=False)
    return time.perf_counter() - start, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instructions", type=int, default=12)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds per call at the server")
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    print(f"uptime: {os.popen('uptime').read().strip()}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        instructions = folder / "instructions.jsonl"
        instructions.write_text(
            "".join(
                json.dumps({"instruction": f"Instruction number {i}: explain topic {i} briefly."}) + "\n"
                for i in range(args.instructions)
            )
        )
        warm = folder / "warm.jsonl"
        warm.write_text(json.dumps({"instruction": "Warm-up."}) + "\n")
        with ScriptedServer(FakeBehaviour(latency_s=args.latency), record=False) as server:
            # one small run first, not measured: the imports a process pays once (scikit-learn for
            # the similarity gate, package versions for the provenance) are not throughput
            run(folder / "warm", warm, server.base_url, args.concurrency)
            results = {}
            for concurrency in (args.concurrency, 1):
                seconds, summary = run(folder, instructions, server.base_url, concurrency)
                calls = sum(u["calls"] for u in summary["usage"].values())
                results[concurrency] = (seconds, calls, summary["counts"]["sft_rows"])
            peak = server.max_in_flight
    print(
        f"{args.instructions} instructions x 3 preference sets, {args.latency}s per call at the server; "
        f"peak calls in flight {peak}"
    )
    print(f"{'generator':<22} {'seconds':>8} {'calls':>6} {'calls/s':>8} {'instr/min':>10} {'SFT rows':>9}")
    for concurrency, (seconds, calls, rows) in results.items():
        label = f"concurrency {concurrency}" if concurrency > 1 else "one call at a time"
        print(
            f"{label:<22} {seconds:>8.1f} {calls:>6} {calls / seconds:>8.1f} "
            f"{args.instructions / seconds * 60:>10.1f} {rows:>9}"
        )
    fast, slow = results[args.concurrency][0], results[1][0]
    print(f"speed-up: {slow / fast:.1f}x (one measurement each; the calls are identical in both runs)")


if __name__ == "__main__":
    main()
