"""OpenVINO GenAI's continuous-batching pipeline, driven with token ids the project's tokenizer made.

Why this runtime (measured in `benchmarks/embedded_runtime.py`, figures in benchmarks/README.md): it
reads the shipped 4-bit GGUF file directly (no fp32 copy), its CPU kernels are built for int4 weights,
it keeps the key/value blocks of finished requests and reuses them for later prompts with the same
prefix (a multi-turn benchmark resends each conversation's history every turn), and it installs as
prebuilt wheels in seconds, where llama.cpp's Python binding compiles for minutes on a fresh machine.

The prompt is rendered and tokenized by the checkpoint's own transformers tokenizer and chat
template, exactly as `hf/` does, and the reply is decoded by the same tokenizer, so the two runtimes
differ only in the arithmetic (checked by tests/test_embedded_runtime.py: greedy agreement with the
torch reference). Decoding parameters come from `decoding.resolve_decoding`, the rule `hf/` and
`vllm/` share; a sampled row is seeded per request, so its reply does not depend on its batch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_bench.errors import BackendFatalError
from aloe_bench.models.backends.decoding import Decoding

RUNTIME = "openvino-genai"


def runtime_version() -> str | None:
    """The installed OpenVINO GenAI version, or None when it is not installed."""
    from importlib import metadata

    try:
        return metadata.version("openvino-genai")
    except metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class Generated:
    tokens: list[int]  # the reply's tokens, the end-of-turn token excluded
    stopped: bool  # True: ended at an end-of-turn token; False: hit max_new_tokens


class OpenVINOGenerator:
    """One pipeline (one copy of the weights) serving every request given to it.

    `cache_gb`: the key/value cache, shared by the running requests and
    the finished prefixes kept for reuse; `threads`: 0 lets OpenVINO use every core."""

    def __init__(
        self, model: Path, *, cache_gb: float = 2.0, threads: int = 0, compile_cache: Path | None = None
    ):
        try:
            import openvino_genai as ov_genai
        except ImportError as exc:
            raise BackendFatalError(
                "the embedded runtime needs OpenVINO GenAI: pip install 'openvino-genai>=2026.4' "
                "(or run the torch runtime: --model-args runtime=torch)"
            ) from exc
        scheduler = ov_genai.SchedulerConfig()
        scheduler.enable_prefix_caching = True
        scheduler.cache_size = max(1, round(cache_gb))  # whole GB: the unit OpenVINO takes
        # Prefill in chunks of up to 2,048 tokens (the default 256 leaves the matmuls small). Keys and
        # values in f32: with the CPU default (u8) or f16, a prompt continued from cached blocks gets
        # other logits than the same prompt computed afresh, so a reply would depend on what the
        # process ran before (a resumed run would diverge, sampled or greedy); in f32 it does not
        # (tests/test_embedded_runtime.py).
        scheduler.max_num_batched_tokens = 2048
        properties: dict[str, Any] = {"KV_CACHE_PRECISION": "f32"}
        if threads > 0:
            properties["INFERENCE_NUM_THREADS"] = threads
        if compile_cache is not None:
            compile_cache.mkdir(parents=True, exist_ok=True)
            properties["CACHE_DIR"] = str(compile_cache)
        try:
            self._pipe = ov_genai.ContinuousBatchingPipeline(str(model), scheduler, "CPU", properties)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendFatalError(f"OpenVINO could not load {model}: {first}") from exc
        self._ov_genai = ov_genai
        self._next_id = 0

    def generate(
        self,
        prompts: list[list[int]],
        decodings: list[Decoding],
        *,
        max_new_tokens: int,
        eos_ids: list[int],
        on_step: Callable[[int], None] | None = None,
    ) -> list[Generated]:
        """`on_step(n)` hears after each scheduler step how many rows are live.

        Greedy rows run together. A row's logits change in their last bits with the rows beside it
        (the CPU kernels block a batch differently from a single row): an argmax does not notice, a
        sampled draw near a tie does (measured: 1 of 8 seeded rows gave another reply when batched,
        the same one every time). So each sampled row runs alone, from its own seed, and its reply
        does not depend on the rows that happened to arrive with it."""
        greedy = [i for i, d in enumerate(decodings) if d.temperature <= 0]
        groups = ([greedy] if greedy else []) + [[i] for i, d in enumerate(decodings) if d.temperature > 0]
        out: list[Generated | None] = [None] * len(prompts)
        for group in groups:
            results = self._run([prompts[i] for i in group], [decodings[i] for i in group],
                                max_new_tokens, eos_ids, on_step)  # fmt: skip
            for i, result in zip(group, results, strict=True):
                out[i] = result
        return [g for g in out if g is not None]

    def _run(
        self,
        prompts: list[list[int]],
        decodings: list[Decoding],
        max_new_tokens: int,
        eos_ids: list[int],
        on_step: Callable[[int], None] | None,
    ) -> list[Generated]:
        import numpy as np
        import openvino as ov

        # One new request per step. Two requests that start in the same step from the same cached,
        # partly filled key/value block (e.g. two prompts extending one earlier prompt whose length is
        # not a multiple of the block size) get wrong keys and values in OpenVINO GenAI 2026.4.1: their
        # replies differ from the same prompts computed afresh. Started a step apart they are right
        # (tests/test_embedded_runtime.py). Prefill costs the same tokens either way.
        waiting = list(zip(prompts, decodings, strict=True))
        handles = []
        while waiting or self._pipe.has_non_finished_requests():
            if waiting:
                ids, decoding = waiting.pop(0)
                tensor = ov.Tensor(np.asarray([ids], dtype=np.int64))
                config = self._config(decoding, max_new_tokens, eos_ids)
                handles.append(self._pipe.add_request(self._next_id, tensor, config))
                self._next_id += 1
            self._pipe.step()
            if on_step is not None:
                on_step(_live(handles))
        eos = set(eos_ids)
        out = []
        for handle in handles:
            (result,) = handle.read_all()
            tokens = list(result.generated_ids)
            stopped = result.finish_reason == self._ov_genai.GenerationFinishReason.STOP
            if stopped and tokens and tokens[-1] in eos:  # the end-of-turn token is not the reply's
                tokens = tokens[:-1]
            out.append(Generated(tokens, stopped))
        return out

    def _config(self, d: Decoding, max_new_tokens: int, eos_ids: list[int]) -> Any:
        config = self._ov_genai.GenerationConfig()
        config.max_new_tokens = max_new_tokens
        config.stop_token_ids = set(eos_ids)
        config.eos_token_id = eos_ids[0]
        config.include_stop_str_in_output = False
        config.repetition_penalty = d.repetition_penalty
        if d.temperature > 0:
            config.do_sample = True
            config.temperature = d.temperature
            config.top_p = d.top_p
            config.top_k = d.top_k if d.top_k > 0 else 0
            config.min_p = d.min_p
            config.rng_seed = d.seed
        else:
            config.do_sample = False
        return config


def _live(handles: list[Any]) -> int:
    import openvino_genai as ov_genai

    running = ov_genai.GenerationStatus.RUNNING
    return sum(1 for h in handles if h.get_status() == running)
