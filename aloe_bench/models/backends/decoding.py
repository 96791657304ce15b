"""One rule for turning a request's generation settings plus a checkpoint's generation config into
decoding parameters, so that `hf/` and `vllm/` decode the same way for the same settings.

The rule is the one `HFBackend._row_sampling` applies (tested for parity in tests/test_vllm_backend.py):
temperature unset means the checkpoint decides: greedy when its `do_sample` is off (whatever
temperature it lists), its temperature/top_p/top_k/min_p when on; an explicit temperature replaces
the checkpoint's sampling fields (top_p only if given). The request's repetition penalty, else the
checkpoint's, applies either way, as transformers applies it. vLLM's own `get_default_sampling_params()` is not
used: it ignores `do_sample` and falls back to temperature 1.0, so it samples where `hf/` is greedy.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Any

from aloe_bench.models.backends.base import ChatRequest
from aloe_bench.seeds import seed32


@dataclass(frozen=True)
class Decoding:
    temperature: float  # 0 = greedy
    top_p: float = 1.0
    top_k: int = 0  # 0 = off (vLLM 0.34 and transformers agree on 0)
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int = 0  # per row: the same request gets the same seed in any batch

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def row_seed(request: ChatRequest) -> int:
    s = request.settings
    return seed32("row", s.seed if s.seed is not None else 0, json.dumps(request.messages))


def resolve_decoding(request: ChatRequest, generation_config: Any) -> Decoding:
    """`generation_config`: a transformers GenerationConfig (or anything with its attributes)."""
    s, g = request.settings, generation_config
    do_sample = bool(getattr(g, "do_sample", False))
    if s.temperature is None:
        temperature = (getattr(g, "temperature", None) or 1.0) if do_sample else 0.0
        top_p = s.top_p if s.top_p is not None else (getattr(g, "top_p", None) or 1.0)
        top_k = (getattr(g, "top_k", None) or 0) if do_sample else 0
        min_p = (getattr(g, "min_p", None) or 0.0) if do_sample else 0.0
    else:
        temperature, top_p, top_k, min_p = s.temperature, (s.top_p if s.top_p is not None else 1.0), 0, 0.0
    return Decoding(
        temperature=float(temperature),
        top_p=float(top_p),
        top_k=int(top_k),
        min_p=float(min_p),
        # the request's own penalty when set, else the checkpoint's (HFBackend._repetition_penalty)
        repetition_penalty=float(
            s.repetition_penalty
            if s.repetition_penalty is not None
            else (getattr(g, "repetition_penalty", None) or 1.0)
        ),
        seed=row_seed(request),
    )


def vllm_sampling_kwargs(request: ChatRequest, generation_config: Any) -> dict[str, Any]:
    """Every field a `vllm.SamplingParams` is built with: nothing is left to vLLM's defaults."""
    d = resolve_decoding(request, generation_config)
    return {
        "max_tokens": request.settings.max_new_tokens,
        "temperature": d.temperature,
        "top_p": d.top_p,
        "top_k": d.top_k,
        "min_p": d.min_p,
        "repetition_penalty": d.repetition_penalty,
        "presence_penalty": 0.0,  # transformers has no such penalties: off, as in hf/
        "frequency_penalty": 0.0,
        "seed": d.seed,
        "skip_special_tokens": True,
        "n": 1,
    }
