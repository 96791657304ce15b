"""`vllm/<path or hub id>`: vLLM's async engine in-process, one engine kept alive for the whole run.

Optional (`pip install "aloe-bench[vllm]"`, CUDA machines only; see docs/gpu.md for the tested
versions). Continuous batching: every request is its own `AsyncLLM.generate` call, so the engine
schedules model turns and judge calls together as they arrive, a short reply returns as soon as it
is done (not when the longest of its batch is), and a cancelled request is aborted in the engine.
The project's priorities (critical path 0, judging 1) are vLLM's `priority` scheduling values
(lower first). Prompts are rendered with the same chat-template helper and tokenizer as `hf/` and
handed over as token ids; decoding follows the same rule as `hf/` (see `decoding.py`).

A request vLLM would refuse (a prompt that leaves no room in `max_model_len`) fails alone, before
submission; engine aborts and errors are failures (never cached); only a dead engine ends the run.

Arguments (`--model-args k=v,...`): dtype, tensor_parallel_size, data_parallel_size,
gpu_memory_utilization (or gpu_memory, the role's share of the device, see gpu_budget.py),
max_model_len, max_num_seqs (batch_size, its old name here), revision, trust_remote_code,
enforce_eager, enable_prefix_caching, batch_invariant (1: VLLM_BATCH_INVARIANT, replies independent of the batch; recorded in the identity).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.backends.base import PRIORITY_CRITICAL, Backend, ChatRequest, Completion
from aloe_bench.models.backends.chat_template import render_prompt, system_role_mode
from aloe_bench.models.backends.decoding import vllm_sampling_kwargs
from aloe_bench.models.backends.hf import checkpoint_fingerprint, hub_fingerprint, looks_like_path


def _flag(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on")


# Model arguments handed to vLLM's engine, with their types.
_ENGINE_ARGS: dict[str, Callable[[Any], Any]] = {
    "dtype": str,
    "tensor_parallel_size": int,
    "data_parallel_size": int,
    "gpu_memory_utilization": float,
    "max_model_len": int,
    "max_num_seqs": int,
    "revision": str,
    "trust_remote_code": _flag,
    "enforce_eager": _flag,
    "enable_prefix_caching": _flag,
}
# Arguments this backend reads itself.
_OWN_ARGS = {"gpu_memory", "batch_invariant", "batch_size"}  # batch_size: the old name of max_num_seqs
# Arguments that change replies (the cache key); parallelism, memory and scheduling do not, except
# through batch composition, which `batch_invariant` records.
_IDENTITY_ARGS = ("dtype", "revision", "max_model_len")

# vLLM's finish reasons (vllm/v1/engine/__init__.py FinishReason): only these two are replies.
_REPLY_FINISH = {"stop": "stop", "length": "length"}


class VLLMBackend(Backend):
    provider = "vllm"
    takes_repetition_penalty = True  # SamplingParams.repetition_penalty (decoding.py), as hf/ applies it

    def __init__(self, name: str, args: dict[str, Any] | None = None):
        super().__init__(name, args)
        unknown = sorted(set(self.args) - set(_ENGINE_ARGS) - _OWN_ARGS)
        if unknown:
            known = ", ".join(sorted(set(_ENGINE_ARGS) | _OWN_ARGS))
            raise UserInputError(
                f"{self.spec}: unknown model argument(s) {', '.join(unknown)}; known: {known}"
            )
        self.source = str(Path(name).expanduser()) if looks_like_path(name) else name
        self.engine: Any = None  # vllm's AsyncLLM (vllm ships no type stubs)
        self.tokenizer: Any = None
        self.generation_config: Any = None
        self.max_model_len = 0
        self.gpu_share: float | None = None  # set by gpu_budget.plan_gpu_budgets before loading
        self._start_lock: asyncio.Lock | None = None
        self._ids = itertools.count()
        self.batch_stats = {"requests": 0, "rejected": 0, "failed": 0, "in_flight_peak": 0}
        self._in_flight = 0

    # -- checks and identity --------------------------------------------------------------------
    def check(self) -> None:
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserInputError(
                f'{self.spec} needs vLLM, which is not installed: `pip install "aloe-bench[vllm]"` on a CUDA '
                "machine, or use hf/<model> instead"
            ) from None
        if looks_like_path(self.name) and not (Path(self.source) / "config.json").is_file():
            raise UserInputError(f"model path {self.name} is not a checkpoint folder (no config.json)")

    @property
    def batch_invariant(self) -> bool:
        return _flag(self.args.get("batch_invariant", os.environ.get("VLLM_BATCH_INVARIANT", "0")))

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["checkpoint"] = (
            checkpoint_fingerprint(Path(self.source).resolve())
            if looks_like_path(self.name)
            else hub_fingerprint(self.name, self.args.get("revision"))
        )
        ident["args"] = {k: v for k, v in ident["args"].items() if k in _IDENTITY_ARGS}
        # Without batch invariance a reply depends on what else was scheduled with it.
        ident["batch_invariant"] = self.batch_invariant
        return ident

    def uses_gpu(self) -> bool:
        return True

    def system_role(self) -> str:
        """From the checkpoint's tokenizer (transformers), without starting the engine."""
        return system_role_mode(self._load_tokenizer())

    # -- loading --------------------------------------------------------------------------------
    def _load_tokenizer(self) -> Any:
        if self.tokenizer is None:
            from transformers import AutoTokenizer

            try:
                self.tokenizer = AutoTokenizer.from_pretrained(
                    self.source,
                    revision=self.args.get("revision"),
                    trust_remote_code=_flag(self.args.get("trust_remote_code")),
                )
            except (OSError, ValueError) as exc:
                raise BackendFatalError(
                    f"could not load the tokenizer of {self.name}: {_first_line(exc)}"
                ) from exc
        return self.tokenizer

    def _load_generation_config(self) -> Any:
        """The checkpoint's generation config as transformers reads it for `hf/` (defaults if none)."""
        from transformers import GenerationConfig

        try:
            return GenerationConfig.from_pretrained(self.source, revision=self.args.get("revision"))
        except OSError:  # no generation_config.json: transformers' defaults, as hf/ would use
            return GenerationConfig()

    def engine_kwargs(self) -> dict[str, Any]:
        kwargs = {k: conv(self.args[k]) for k, conv in _ENGINE_ARGS.items() if k in self.args}
        if "batch_size" in self.args and "max_num_seqs" not in kwargs:  # sequences scheduled at once
            kwargs["max_num_seqs"] = int(self.args["batch_size"])
        share = self.args.get("gpu_memory", self.gpu_share)
        if share is not None and "gpu_memory_utilization" not in kwargs:
            kwargs["gpu_memory_utilization"] = float(share)
        # The project's priorities become vLLM's (lower value first); the default policy ignores them.
        kwargs["scheduling_policy"] = "priority"
        kwargs["disable_log_stats"] = True
        return kwargs

    def _start(self) -> None:
        """Blocking: loads the weights and profiles memory (runs in a worker thread)."""
        self._load_tokenizer()
        self.generation_config = self._load_generation_config()
        if self.batch_invariant:
            os.environ["VLLM_BATCH_INVARIANT"] = "1"  # read by vLLM when the engine is built
        from vllm import AsyncEngineArgs, AsyncLLMEngine

        try:
            engine = AsyncLLMEngine.from_engine_args(
                AsyncEngineArgs(model=self.source, **self.engine_kwargs())
            )
        except Exception as exc:  # noqa: BLE001 - vLLM raises many types for a bad model or too little memory
            raise BackendFatalError(f"could not start vLLM for {self.name}: {_first_line(exc)}") from exc
        self.max_model_len = int(engine.model_config.max_model_len)
        self.engine = engine

    async def ensure_started(self) -> None:
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self.engine is None:
                await asyncio.to_thread(self._start)

    # -- generation -----------------------------------------------------------------------------
    def prompt_ids(self, request: ChatRequest) -> list[int]:
        tok = self.tokenizer
        return list(tok(render_prompt(tok, request.messages), add_special_tokens=False).input_ids)

    def rejection(self, prompt_len: int) -> str | None:
        """vLLM refuses a prompt that leaves no room for one new token (input_processor.py's
        `_validate_prompt_len`): say so for this row, with the fix, before it is submitted."""
        if prompt_len == 0:
            return "the rendered prompt is empty"
        if prompt_len >= self.max_model_len:
            return (
                f"prompt of {prompt_len} tokens does not fit vLLM's max_model_len of {self.max_model_len} "
                "(prompt plus at least one new token); raise max_model_len in the model arguments "
                "if the checkpoint allows it, or use fewer turns"
            )
        return None

    def sampling_params(self, request: ChatRequest) -> Any:
        from vllm import SamplingParams

        return SamplingParams(**vllm_sampling_kwargs(request, self.generation_config))

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        if not requests:
            return []
        await self.ensure_started()
        return list(await asyncio.gather(*(self._generate_one(r, priority) for r in requests)))

    async def _generate_one(self, request: ChatRequest, priority: int) -> Completion:
        self.batch_stats["requests"] += 1
        ids = self.prompt_ids(request)
        reason = self.rejection(len(ids))
        if reason is not None:
            self.batch_stats["rejected"] += 1
            return Completion.failure(reason)
        request_id = f"aloe-{next(self._ids)}"
        final = None
        self._in_flight += 1
        self.batch_stats["in_flight_peak"] = max(self.batch_stats["in_flight_peak"], self._in_flight)
        try:
            stream = self.engine.generate(
                {"prompt_token_ids": ids}, self.sampling_params(request), request_id, priority=priority
            )
            async for output in stream:
                final = output
        except asyncio.CancelledError:
            # vLLM aborts a cancelled generate() itself; asking again is harmless and covers a
            # cancellation that lands between two outputs.
            await asyncio.shield(self.engine.abort(request_id))
            raise
        except Exception as exc:  # noqa: BLE001 - sorted below: a dead engine ends the run
            if type(exc).__name__ == "EngineDeadError":
                raise BackendFatalError(f"vLLM's engine for {self.name} died: {_first_line(exc)}") from exc
            self.batch_stats["failed"] += 1
            return Completion.failure(f"vLLM refused the request: {type(exc).__name__}: {_first_line(exc)}")
        finally:
            self._in_flight -= 1
        return self._completion(final, len(ids))

    def _completion(self, final: Any, prompt_len: int) -> Completion:
        if final is None or not final.outputs:
            self.batch_stats["failed"] += 1
            return Completion.failure("vLLM returned no output for the request")
        best = final.outputs[0]
        reason = str(best.finish_reason) if best.finish_reason is not None else "unfinished"
        if reason not in _REPLY_FINISH:  # abort, error, repetition: not a reply, never cached
            self.batch_stats["failed"] += 1
            detail = f" ({best.stop_reason})" if getattr(best, "stop_reason", None) is not None else ""
            return Completion.failure(f"vLLM ended the request with finish reason {reason!r}{detail}")
        return Completion(
            text=best.text.strip(),
            finish_reason=_REPLY_FINISH[reason],
            prompt_tokens=prompt_len,
            completion_tokens=len(best.token_ids),  # the end-of-turn token included, as hf/ counts it
        )

    async def aclose(self) -> None:
        engine, self.engine = self.engine, None
        if engine is not None:
            await asyncio.to_thread(engine.shutdown)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
