"""Where the engine's time goes on the embedded model, and the fastest this machine allows for it.

Runs the engine-versus-loop workload (`engine_vs_sequential.py`: the 12 demo personas, 3 turns,
greedy, an empty call cache) once on the OpenVINO runtime with the pipeline instrumented, then
measures the runtime's own rates on this machine in the same process, and prints side by side:
- the run: wall time, time inside the pipeline's steps, generated tokens, prompt tokens sent;
- prompt tokens actually computed: the prompts replayed through a prefix cache of whole blocks
  (what OpenVINO reuses), with no eviction (the peak cache use is printed to check that);
- kernel rates: prefill tokens/s on one long fresh prompt, decode tokens/s at 1, 12 and 24 rows;
- a floor: computed prompt tokens at the prefill rate + generated tokens at the 24-row decode rate
  + the model load, i.e. this work with every decode step as full as 24 rows and no time outside
  the kernels; and, given the loop's rate (`--loop-rate`, tokens/s from engine_vs_sequential.py),
  the largest engine-over-loop ratio that floor leaves.

    python benchmarks/engine_floor.py [--loop-rate 13.8] [--block 32]
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _personas import demo_personas
from engine_vs_sequential import engine

from aloe_bench.engine.task_files import load_task_settings
from aloe_bench.models.backends import openvino_runtime
from aloe_bench.models.backends.embedded import EmbeddedBackend, gguf_path


class Recorder:
    """Wraps the generator: every prompt and reply in order, and the time of each pipeline step."""

    def __init__(self) -> None:
        self.events: list[tuple[str, list[int]]] = []  # ("prompt", ids) or ("finished", ids + reply)
        self.steps: list[float] = []
        self.peak_cache = 0.0
        original = openvino_runtime.OpenVINOGenerator._run
        recorder = self

        def _run(gen: Any, prompts, decodings, max_new_tokens, eos_ids, on_step):  # type: ignore[no-untyped-def]
            pipe = gen._pipe
            if not isinstance(pipe, _TimedPipe):
                gen._pipe = _TimedPipe(pipe, recorder)
            recorder.events += [("prompt", list(p)) for p in prompts]
            out = original(gen, prompts, decodings, max_new_tokens, eos_ids, on_step)
            recorder.events += [
                ("finished", list(p) + list(g.tokens)) for p, g in zip(prompts, out, strict=True)
            ]
            return out

        openvino_runtime.OpenVINOGenerator._run = _run  # type: ignore[method-assign]

    def computed_prompt_tokens(self, block: int) -> tuple[int, int]:
        """(prompt tokens sent, prompt tokens a whole-block prefix cache leaves to compute)."""
        cached: set[tuple[int, ...]] = set()
        sent = computed = 0
        for kind, ids in self.events:
            if kind == "prompt":
                hit = 0
                for k in range(block, len(ids), block):  # the last prompt token is always computed
                    if tuple(ids[:k]) not in cached:
                        break
                    hit = k
                sent += len(ids)
                computed += len(ids) - hit
            for k in range(block, len(ids) + 1, block):
                cached.add(tuple(ids[:k]))
        return sent, computed


class _TimedPipe:
    def __init__(self, pipe: Any, recorder: Recorder):
        self._pipe, self._recorder = pipe, recorder

    def step(self) -> None:
        start = time.perf_counter()
        self._pipe.step()
        self._recorder.steps.append(time.perf_counter() - start)
        self._recorder.peak_cache = max(self._recorder.peak_cache, self._pipe.get_metrics().max_cache_usage)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)


def kernel_rates(prompt_ids: list[int]) -> dict[str, float]:
    """Prefill and decode tokens/s of a fresh pipeline on this machine (greedy, no end token)."""
    import numpy as np
    import openvino as ov
    import openvino_genai as ov_genai

    start = time.perf_counter()
    gen = openvino_runtime.OpenVINOGenerator(gguf_path())
    load = time.perf_counter() - start
    pipe, ids = gen._pipe, iter(range(10**6))

    def run(prompts: list[list[int]], new_tokens: int) -> list[float]:
        handles = []
        for p in prompts:
            config = ov_genai.GenerationConfig()
            config.max_new_tokens, config.do_sample, config.ignore_eos = new_tokens, False, True
            handles.append(pipe.add_request(next(ids), ov.Tensor(np.asarray([p], dtype=np.int64)), config))
        times = []
        while pipe.has_non_finished_requests():
            t = time.perf_counter()
            pipe.step()
            times.append(time.perf_counter() - t)
        for h in handles:
            h.read_all()
        return times

    run([prompt_ids[:16]], 2)  # warm up
    rates = {"load_s": load}
    long = [1] + (prompt_ids * (1 + 1700 // len(prompt_ids)))[:1700]
    rates["prefill"] = len(long) / sum(run([long], 1))
    for rows in (1, 12, 24):
        prompts = [[2 + i] + prompt_ids[:48] for i in range(rows)]  # fresh: no cached prefix
        decode_steps = run(prompts, 48)[2:]  # after the prefill step(s)
        rates[f"decode_{rows}"] = rows / statistics.median(decode_steps)
    return rates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--loop-rate", type=float, default=None, help="the loop's tokens/s (engine_vs_sequential.py)"
    )
    parser.add_argument(
        "--block", type=int, default=32, help="prefix-cache block size in tokens (OpenVINO CPU: 32)"
    )
    args = parser.parse_args()
    _, demo = load_task_settings("aloe_demo")
    limits = {"model": demo["max_new_tokens"], "simulator": demo["simulator_max_new_tokens"],
              "judge": demo["judge_max_new_tokens"]}  # fmt: skip
    recorder = Recorder()
    print(f"12 demo personas x {demo['turns']} turns, embedded (OpenVINO) in every role, limits {limits}")
    print(f"load average {os.getloadavg()[0]:.2f} before", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        generated, wall = engine(demo_personas(12), demo["turns"], limits, Path(tmp), "openvino")
    sent, computed = recorder.computed_prompt_tokens(args.block)
    in_steps = sum(recorder.steps)
    backend = EmbeddedBackend()
    backend.ensure_loaded()
    sample = backend.tokenizer("The person's profile: a retired fisherman who carves decoys. " * 4).input_ids
    rates = kernel_rates(sample)
    floor = computed / rates["prefill"] + generated / rates["decode_24"] + rates["load_s"]
    rows = [
        ("engine run, wall (model load included)", f"{wall:8.1f} s", f"{generated / wall:7.1f} tok/s"),
        ("  inside the pipeline's steps", f"{in_steps:8.1f} s", f"{len(recorder.steps)} steps"),
        ("  generated tokens", f"{generated:8d}", ""),
        ("  prompt tokens sent", f"{sent:8d}", ""),
        (f"  prompt tokens computed ({args.block}-token blocks)", f"{computed:8d}",
         f"{computed / sent:.0%} of sent; peak cache use {recorder.peak_cache:.0f}%"),
        ("kernel: prefill (1,700-token fresh prompt)", f"{rates['prefill']:8.0f} tok/s", ""),
        *[(f"kernel: decode, {n} rows", f"{rates[f'decode_{n}']:8.0f} tok/s", "") for n in (1, 12, 24)],
        ("kernel: model load", f"{rates['load_s']:8.1f} s", ""),
        ("floor: computed/prefill + generated/decode(24) + load", f"{floor:8.1f} s",
         f"{generated / floor:7.1f} tok/s at most"),
    ]  # fmt: skip
    for name, value, note in rows:
        print(f"{name:<56} {value:>14}  {note}")
    if args.loop_rate:
        print(f"engine over the loop ({args.loop_rate} tok/s): measured {generated / wall / args.loop_rate:.1f}x, "
              f"floor allows at most {generated / floor / args.loop_rate:.1f}x")  # fmt: skip
    print(f"load average {os.getloadavg()[0]:.2f} after; one run: the kernel rates move ~10-15% run to run")


if __name__ == "__main__":
    main()
