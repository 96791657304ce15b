"""`vllm/<path or hub id>`: vLLM's offline engine, one engine kept alive for the whole run.

Optional (`pip install "aloe-bench[vllm]"`, CUDA machines only). Prompts are rendered with the same
chat-template helper as the hf backend and handed over as token ids, so both backends see identical
inputs. vLLM schedules everything it is given at once (continuous batching), so the batch size here is
large. Arguments: dtype, tensor_parallel_size, gpu_memory_utilization, max_model_len, batch_size,
revision, trust_remote_code, enforce_eager.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.backends.base import BatchingBackend, ChatRequest, Completion
from aloe_bench.models.backends.chat_template import render_prompt, system_role_mode
from aloe_bench.models.backends.hf import checkpoint_fingerprint, hub_fingerprint, looks_like_path

_ENGINE_ARGS: dict[str, Callable[[Any], Any]] = {
    "dtype": str,
    "tensor_parallel_size": int,
    "gpu_memory_utilization": float,
    "max_model_len": int,
    "revision": str,
    "trust_remote_code": lambda v: str(v).lower() in ("1", "true", "yes"),
    "enforce_eager": lambda v: str(v).lower() in ("1", "true", "yes"),
}


class VLLMBackend(BatchingBackend):
    provider = "vllm"
    default_batch_size = 4096

    def __init__(self, name: str, args: dict[str, Any] | None = None):
        super().__init__(name, args)
        self.llm: Any = None  # the vLLM engine, started on first use (vllm ships no type stubs)

    def check(self) -> None:
        try:
            import vllm  # noqa: F401
        except ImportError:
            raise UserInputError(
                f'{self.spec} needs vLLM, which is not installed: `pip install "aloe-bench[vllm]"` on a CUDA '
                "machine, or use hf/<model> instead"
            ) from None
        if looks_like_path(self.name):
            from pathlib import Path

            if not (Path(self.name).expanduser() / "config.json").is_file():
                raise UserInputError(f"model path {self.name} is not a checkpoint folder (no config.json)")

    def identity(self) -> dict[str, Any]:
        from pathlib import Path

        ident = super().identity()
        ident["checkpoint"] = (
            checkpoint_fingerprint(Path(self.name).expanduser().resolve())
            if looks_like_path(self.name)
            else hub_fingerprint(self.name, self.args.get("revision"))
        )
        ident["args"] = {
            k: v for k, v in ident["args"].items() if k in ("dtype", "revision", "max_model_len")
        }
        return ident

    def system_role(self) -> str:
        """From the checkpoint's tokenizer (transformers), without starting the engine."""
        tokenizer = getattr(self, "tokenizer", None)
        if tokenizer is None:
            from transformers import AutoTokenizer

            try:
                tokenizer = AutoTokenizer.from_pretrained(
                    self.name,
                    revision=self.args.get("revision"),
                    trust_remote_code=_ENGINE_ARGS["trust_remote_code"](self.args.get("trust_remote_code")),
                )
            except (OSError, ValueError) as exc:
                raise BackendFatalError(f"could not load the tokenizer of {self.name}: {exc}") from exc
        return system_role_mode(tokenizer)

    def _load(self) -> None:
        from vllm import LLM

        kwargs = {k: conv(self.args[k]) for k, conv in _ENGINE_ARGS.items() if k in self.args}
        try:
            self.llm = LLM(model=self.name, **kwargs)
        except Exception as exc:  # noqa: BLE001 - vLLM raises many types for a bad model
            raise BackendFatalError(
                f"could not start vLLM for {self.name}: {str(exc).splitlines()[0]}"
            ) from exc
        self.tokenizer = self.llm.get_tokenizer()
        get_defaults = getattr(self.llm, "get_default_sampling_params", None)
        self._defaults = get_defaults() if get_defaults else None

    def _sampling_params(self, request: ChatRequest):
        from vllm import SamplingParams

        s = request.settings
        params: dict[str, Any] = {"max_tokens": s.max_new_tokens, "seed": s.seed}
        if self._defaults is not None:  # the checkpoint's generation config, as vLLM reads it
            for field in ("temperature", "top_p", "top_k", "repetition_penalty"):
                params.setdefault(field, getattr(self._defaults, field))
        if s.temperature is not None:
            params["temperature"] = s.temperature
        if s.top_p is not None:
            params["top_p"] = s.top_p
        return SamplingParams(**params)

    def _generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        prompts = [
            {
                "prompt_token_ids": self.tokenizer(
                    render_prompt(self.tokenizer, r.messages), add_special_tokens=False
                ).input_ids
            }
            for r in requests
        ]
        outputs = self.llm.generate(prompts, [self._sampling_params(r) for r in requests], use_tqdm=False)
        results = []
        for out in outputs:
            best = out.outputs[0]
            results.append(
                Completion(
                    text=best.text.strip(),
                    finish_reason="length" if best.finish_reason == "length" else "stop",
                    prompt_tokens=len(out.prompt_token_ids or []),
                    completion_tokens=len(best.token_ids),
                )
            )
        return results
