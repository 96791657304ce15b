"""Conversations per minute of `aloe-train conversations` (every conversation advancing together, the
in-process backend batching their calls) vs a one-call-at-a-time loop (one conversation after the
other, batch size 1: how the original release generated its data), on the embedded model, no cache.

    OMP_NUM_THREADS=1 python benchmarks/conversations_throughput.py [--conversations 8] [--turns 2]

Both timings include loading the model once. Measure on a quiet machine (check `uptime`): other processes on the cores change both figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path

from aloe_train.conversations import (
    ConversationConfig,
    TreeGenerator,
    generate_conversations,
    plan_conversations,
    role_bindings,
)
from aloe_train.generation import bound_roles

PERSONAS = Path(__file__).resolve().parents[1] / "tests" / "data" / "short_personas.jsonl"


def config(args: argparse.Namespace, output: str, generator_args: str | None = None) -> ConversationConfig:
    personas = sum(1 for line in PERSONAS.read_text().splitlines() if line.strip())
    return ConversationConfig(
        output=output,
        personas=str(PERSONAS),
        passes=-(-args.conversations // personas),
        limit=args.conversations,
        turns=args.turns,
        generator="embedded",
        generator_args=generator_args,
        simulator_max_new_tokens=args.max_new_tokens,
        responder_max_new_tokens=args.max_new_tokens,
        judge_max_new_tokens=8,
        extractor_max_new_tokens=64,
        cache="",
    )


def timed(fn):
    """(wall seconds, CPU seconds of this process, result): CPU time barely moves when other processes
    share the cores, so it backs up a wall-clock figure taken on a busy machine."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def batched(args: argparse.Namespace, folder: str) -> dict:
    return generate_conversations(config(args, os.path.join(folder, "batched.jsonl")), progress=False)


async def _one_at_a_time(cfg: ConversationConfig) -> dict:
    conversations, _ = plan_conversations(cfg)
    bindings = role_bindings(cfg)
    async with bound_roles(list(bindings.values()), cfg.cache) as roles:
        generator = TreeGenerator(roles, bindings, cfg)
        for conv in conversations:
            await generator.converse(conv, lambda *a, **k: None)
    return {
        "complete": sum(c.status == "complete" for c in conversations),
        "failed": sum(c.status == "failed" for c in conversations),
    }


def one_at_a_time(args: argparse.Namespace, folder: str) -> dict:
    cfg = config(args, os.path.join(folder, "sequential.jsonl"), "batch_size=1")
    return asyncio.run(_one_at_a_time(cfg))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=8)
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    print(
        f"load average before: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}, "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')})"
    )
    with tempfile.TemporaryDirectory() as folder:
        t_seq, cpu_seq, seq = timed(lambda: one_at_a_time(args, folder))
        t_bat, cpu_bat, bat = timed(lambda: batched(args, folder))
    n = args.conversations
    print(f"{n} conversations x {args.turns} turns, embedded model (5 roles), no cache")
    for name, wall, cpu, outcome in (
        ("one call at a time", t_seq, cpu_seq, seq),
        ("aloe-train batched", t_bat, cpu_bat, bat),
    ):
        print(
            f"  {name}: {wall:7.1f} s wall ({cpu:6.1f} s CPU)  {60 * n / wall:6.2f} conversations/min  "
            f"({outcome['complete']} complete, {outcome['failed']} failed)"
        )
    print(f"  speed-up: {t_seq / t_bat:.2f}x wall, {cpu_seq / cpu_bat:.2f}x CPU")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
