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


def batched(args: argparse.Namespace, folder: str) -> tuple[float, dict]:
    start = time.perf_counter()
    meta = generate_conversations(config(args, os.path.join(folder, "batched.jsonl")), progress=False)
    return time.perf_counter() - start, meta


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


def one_at_a_time(args: argparse.Namespace, folder: str) -> tuple[float, dict]:
    start = time.perf_counter()
    outcome = asyncio.run(
        _one_at_a_time(config(args, os.path.join(folder, "sequential.jsonl"), "batch_size=1"))
    )
    return time.perf_counter() - start, outcome


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
        t_seq, seq = one_at_a_time(args, folder)
        t_bat, bat = batched(args, folder)
    n = args.conversations
    print(f"{n} conversations x {args.turns} turns, embedded model (5 roles), no cache")
    print(
        f"  one call at a time : {t_seq:7.1f} s  {60 * n / t_seq:6.2f} conversations/min  "
        f"({seq['complete']} complete, {seq['failed']} failed)"
    )
    print(
        f"  aloe-train batched : {t_bat:7.1f} s  {60 * n / t_bat:6.2f} conversations/min  "
        f"({bat['complete']} complete, {bat['failed']} failed)"
    )
    print(f"  speed-up           : {t_seq / t_bat:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
