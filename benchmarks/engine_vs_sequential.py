"""Throughput of the engine vs a one-call-at-a-time loop (like the original release), same work.

Both ways run the same personas, turns, prompts and token limits (by default those of the
`aloe_demo` task: the 12 demo personas, 3 turns, 128/64/16 new tokens for model/simulated user/judge)
with the embedded model in every role, greedy decoding and an empty call cache. The loop calls
transformers' generate() once per message, as the original release did; the engine batches the
conversations and reuses cached prefixes, once per embedded runtime (`openvino`, the default, and
`torch`, the one it replaced). The figure is generated tokens per second of wall time.

    python benchmarks/engine_vs_sequential.py [--personas 12] [--turns 3] [--runtimes openvino,torch] ...
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from _personas import demo_personas, write_personas

from aloe_bench.engine.task_files import load_task_settings
from aloe_bench.models.backends import ChatRequest, GenerationSettings
from aloe_bench.models.backends.embedded import embedded_checkpoint
from aloe_bench.models.backends.hf import HFBackend
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.judge import get_protocol, parse_score
from aloe_bench.solvers.rollout import clean_user_message
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_bench.tasks.aloe.run import run_benchmark


def sequential_loop(personas, turns: int, limits: dict[str, int]) -> tuple[int, float]:
    """The original release's shape: one conversation, one call at a time, nothing batched."""
    backend = HFBackend(
        str(embedded_checkpoint()), {"prefix_cache_gb": "0"}
    )  # plain generate(), as the original
    backend.ensure_loaded()
    sim_prompt, judge = load_prompt("simulator.yaml"), get_protocol("aloe-v1")

    def call(messages, max_new_tokens):
        (out,) = backend._generate_batch(
            [ChatRequest(messages, GenerationSettings(max_new_tokens, temperature=0.0))]
        )
        return out

    tokens, start = 0, time.perf_counter()
    for persona in personas:
        history: list[dict[str, str]] = []
        for k in range(turns):
            sim = sim_prompt.render(profile=persona.profile, personality=persona.personality)
            sim.append({"role": "user", "content": sim_prompt.text("opening")})
            for turn in history:
                sim += [
                    {"role": "assistant", "content": turn["user"]},
                    {"role": "user", "content": turn["assistant"]},
                ]
            user = call(sim, limits["simulator"])
            chat = [
                m
                for t in history
                for m in (
                    {"role": "user", "content": t["user"]},
                    {"role": "assistant", "content": t["assistant"]},
                )
            ]
            chat.append({"role": "user", "content": clean_user_message(user.text)})
            reply = call(chat, limits["model"])
            history.append({"user": chat[-1]["content"], "assistant": reply.text})
            verdict = call(judge.messages(persona.to_dict(), history, k), limits["judge"])
            parse_score(verdict.text)
            tokens += user.completion_tokens + reply.completion_tokens + verdict.completion_tokens
    return tokens, time.perf_counter() - start


def engine(
    personas: list, turns: int, limits: dict[str, int], workdir: Path, runtime: str
) -> tuple[int, float]:
    args = {"runtime": runtime}
    config = RunConfig(
        model=RoleConfig("embedded", args, max_new_tokens=limits["model"], temperature=0.0),
        simulator=RoleConfig("embedded", args, max_new_tokens=limits["simulator"], temperature=0.0),
        judge=RoleConfig("embedded", args, max_new_tokens=limits["judge"], temperature=0.0),
        personas=str(write_personas(personas, workdir / "personas.jsonl")),
        turns=turns,
        output=str(workdir / "run"),
        cache=str(workdir / "calls.sqlite"),
        n_bootstrap=0,
    )
    start = time.perf_counter()
    _, run = run_benchmark(config, progress=False)
    results = run.to_dict()  # the typed RunResults, as results.json holds it
    elapsed = time.perf_counter() - start
    return sum(u["completion_tokens"] for u in results["usage"].values()), elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    _, demo = load_task_settings("aloe_demo")
    parser.add_argument("--personas", type=int, default=12, help="12: the demo set; more: numbered variants")
    parser.add_argument("--turns", type=int, default=demo["turns"])
    parser.add_argument("--model-tokens", type=int, default=demo["max_new_tokens"])
    parser.add_argument("--simulator-tokens", type=int, default=demo["simulator_max_new_tokens"])
    parser.add_argument("--judge-tokens", type=int, default=demo["judge_max_new_tokens"])
    parser.add_argument("--runtimes", default="openvino,torch", help="embedded runtimes the engine runs on")
    args = parser.parse_args()
    limits = {"model": args.model_tokens, "simulator": args.simulator_tokens, "judge": args.judge_tokens}
    personas = demo_personas(args.personas)
    embedded_checkpoint()  # convert once, outside both timings
    print(f"{len(personas)} personas x {args.turns} turns, embedded model in every role, limits {limits}")
    print(f"load average {os.getloadavg()[0]:.2f} before the first measurement", flush=True)
    rates = {}
    for runtime in [r.strip() for r in args.runtimes.split(",") if r.strip()]:
        with tempfile.TemporaryDirectory() as tmp:
            e_tokens, e_time = engine(personas, args.turns, limits, Path(tmp), runtime)
        rates[runtime] = e_tokens / e_time
        print(f"engine ({runtime}): {e_tokens:6d} tokens in {e_time:7.1f} s = {rates[runtime]:7.1f} tokens/s "
              "(model load included)", flush=True)  # fmt: skip
    s_tokens, s_time = sequential_loop(personas, args.turns, limits)
    loop = s_tokens / s_time
    print(f"sequential (torch, one call at a time): {s_tokens:6d} tokens in {s_time:7.1f} s = {loop:7.1f} tokens/s "
          "(model load excluded)")  # fmt: skip
    for runtime, rate in rates.items():
        print(f"speed-up, engine ({runtime}) over the loop: {rate / loop:.1f}x")
    print(
        f"load average {os.getloadavg()[0]:.2f} after; one run each: re-run before quoting a difference under ~10%"
    )


if __name__ == "__main__":
    main()
