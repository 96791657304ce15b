"""Backends by name, the way users already write them: `hf/...`, `openai/...`, `vllm/...`,
`lmeval/<lm-eval model name>`, `embedded`, `control/generic` (a fixed reply policy, no model),
`bon/N:POLICY@RM` (best-of-N under a reward model, docs/best-of-n.md), or a bare local checkpoint
folder (read as `hf/<dir>`)."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.base import (
    PRIORITY_BACKGROUND,
    PRIORITY_CRITICAL,
    Backend,
    BatchingBackend,
    ChatRequest,
    Completion,
    GenerationSettings,
    Message,
)
from aloe_bench.models.strategies import STRATEGIES, wraps_nothing

__all__ = [
    "PRIORITY_BACKGROUND",
    "PRIORITY_CRITICAL",
    "Backend",
    "BackendPool",
    "BatchingBackend",
    "ChatRequest",
    "Completion",
    "GenerationSettings",
    "Message",
    "normalize_spec",
    "parse_args",
    "parse_spec",
    "register_provider",
]


def _hf(name, args):
    from aloe_bench.models.backends.hf import HFBackend

    return HFBackend(name, args)


def _openai(name, args):
    from aloe_bench.models.backends.openai_api import OpenAIBackend

    return OpenAIBackend(name, args)


def _vllm(name, args):
    from aloe_bench.models.backends.vllm_backend import VLLMBackend

    return VLLMBackend(name, args)


def _embedded(name, args):
    from aloe_bench.models.backends.embedded import EmbeddedBackend

    return EmbeddedBackend(name, args)


def _control(name, args):
    from aloe_bench.models.backends.control import ControlBackend

    return ControlBackend(name, args)


def _best_of_n(name, args):
    from aloe_bench.models.backends.best_of_n import BestOfNBackend

    def make_backend(spec: str, backend_args: dict[str, Any]) -> Backend:
        provider, policy_name = parse_spec(spec)
        return PROVIDERS[provider](policy_name, backend_args)

    return BestOfNBackend(name, args, make_backend=make_backend)


def _lmeval(name, args):
    from aloe_bench.models.backends.lmeval_backend import LMEvalBackend

    return LMEvalBackend(name, args)


BackendFactory = Callable[[str, dict[str, Any]], Backend]

PROVIDERS: dict[str, BackendFactory] = {
    "hf": _hf,
    "openai": _openai,
    "vllm": _vllm,
    "embedded": _embedded,
    "lmeval": _lmeval,
    "control": _control,  # control/generic: the persona-blind floor, no model
    "bon": _best_of_n,  # bon/N:POLICY@RM: the policy's best of N samples under a reward model
}


# Inference-time strategies wrapping any spec: reminder/SPEC, self-critic/SPEC, cot/SPEC, recall/SPEC
# (aloe_bench/models/strategies, docs/strategies.md).
def _strategy(strategy: str) -> BackendFactory:
    def factory(name: str, args: dict[str, Any]) -> Backend:
        from aloe_bench.models.strategies.registry import strategy_backend

        if not name.strip():
            raise UserInputError(wraps_nothing(strategy))
        provider, inner_name = parse_spec(name)  # the wrapped spec, any provider (or strategy)
        return strategy_backend(strategy, name, args, PROVIDERS[provider](inner_name, dict(args)))

    return factory


PROVIDERS.update({name: _strategy(name) for name in STRATEGIES})


def register_provider(name: str, factory: BackendFactory | None = None) -> Any:
    """Make `name/<model>` a backend spec, as Inspect's `@modelapi` does: `factory(model, args)` returns
    the Backend. Import heavy dependencies inside the factory (as the built-in providers above do), so
    an unused provider costs nothing and a missing extra is named only when that provider is used.

        @register_provider("myapi")
        def _myapi(name, args):
            from mypkg.backend import MyBackend  # a Backend subclass: generate(requests) -> completions
            return MyBackend(name, args)

    Usable as a decorator or called directly; registering a name twice is refused (it would silently
    change what an existing spec means)."""

    def register(fn: BackendFactory) -> BackendFactory:
        if not name or "/" in name or name in PROVIDERS:
            raise ValueError(f"backend provider {name!r}: the name is empty, has a '/', or is taken")
        PROVIDERS[name] = fn
        return fn

    return register(factory) if factory is not None else register


def parse_spec(spec: str) -> tuple[str, str]:
    """`provider/name` -> (provider, name). A bare existing folder is `hf/<folder>`."""
    spec = spec.strip()
    if not spec:
        raise UserInputError(
            "empty model spec; write provider/model, e.g. hf/HuggingFaceTB/SmolLM2-135M-Instruct"
        )
    if spec == "embedded":
        return "embedded", ""
    if spec.startswith(("/", "./", "../", "~")) or (
        os.path.isdir(os.path.expanduser(spec)) and not spec.startswith(tuple(f"{p}/" for p in PROVIDERS))
    ):
        return "hf", spec  # a checkpoint folder (its existence is checked when the backend is made)
    provider, sep, name = spec.partition("/")
    if provider not in PROVIDERS or (not sep and provider != "embedded"):
        known = ", ".join(f"{p}/..." for p in PROVIDERS if p != "embedded") + ", embedded"
        raise UserInputError(
            f"unknown model provider in {spec!r}: use one of {known}, or a local checkpoint folder"
        )
    return provider, name


def normalize_spec(spec: str) -> str:
    provider, name = parse_spec(spec)
    return f"{provider}/{name}" if name else provider


def parse_args(text: str | None, what: str = "--model-args") -> dict[str, str]:
    """`k=v,k2=v2` (lm-eval's style) -> dict."""
    out: dict[str, str] = {}
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise UserInputError(f"{what}: expected key=value pairs separated by commas, got {part!r}")
        out[key.strip()] = value.strip()
    return out


class BackendPool:
    """One backend instance per (spec, arguments): roles with the same spec share one loaded model."""

    def __init__(self) -> None:
        self._backends: dict[tuple, Backend] = {}

    def get(self, spec: str, args: Mapping[str, Any] | None = None) -> Backend:
        provider, name = parse_spec(spec)
        key = (provider, name, tuple(sorted((args or {}).items())))
        if key not in self._backends:
            backend = PROVIDERS[provider](name, dict(args or {}))
            backend.check()
            self._backends[key] = backend
        return self._backends[key]

    async def aclose(self) -> None:
        for backend in self._backends.values():
            await backend.aclose()
        self._backends.clear()
