"""Sharing one GPU between roles: an explicit memory share per backend, checked before anything loads.

vLLM takes a fixed fraction of the device when it starts (0.9 by default), while `hf/` and `embedded`
(the default simulator and judge) allocate as they go on the same device. Whichever comes second
could run out of memory; two `vllm/` roles would each ask for 0.9. So each role may say what it gets
(`--model-args gpu_memory=0.6`, a fraction of the device; for vLLM `gpu_memory_utilization` counts the
same), and roles that say nothing share the rest: an in-process transformers backend is assumed to
need `HF_DEFAULT_SHARE`, the vLLM engines split what is left of `USABLE`. Budgets that add up to more
than the device are refused with one line before any model loads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aloe_bench.errors import UserInputError

USABLE = 0.92  # of the device: the CUDA context and the allocator's slack need the rest
HF_DEFAULT_SHARE = 0.10  # an unbudgeted transformers backend (the embedded 135M model needs far less)
MIN_VLLM_SHARE = 0.05


def _explicit_share(backend: Any) -> float | None:
    args = getattr(backend, "args", {})
    raw = args.get("gpu_memory", args.get("gpu_memory_utilization"))
    if raw is None:
        return None
    try:
        share = float(raw)
    except ValueError:
        raise UserInputError(
            f"{backend.spec}: gpu_memory must be a fraction of the device, got {raw!r}"
        ) from None
    if not 0 < share <= 1:
        raise UserInputError(
            f"{backend.spec}: gpu_memory must be in (0, 1] (a fraction of the device), got {share}"
        )
    return share


def _on_gpu(backend: Any) -> bool:
    uses = getattr(backend, "uses_gpu", None)
    if callable(uses):
        return bool(uses())
    if getattr(backend, "provider", "") in ("hf", "embedded"):
        device = str(getattr(backend, "args", {}).get("device", "auto"))
        if device == "auto":
            import torch

            return bool(torch.cuda.is_available())
        return device.startswith("cuda")
    return False


def plan_gpu_budgets(backends: Iterable[Any]) -> dict[str, float]:
    """Give every GPU backend its share (sets `gpu_share` on vLLM backends); returns spec -> share."""
    unique = {id(b): b for b in backends}.values()
    on_gpu = [b for b in unique if _on_gpu(b)]
    if not any(getattr(b, "provider", "") == "vllm" for b in on_gpu):
        return {}  # transformers alone grows as it needs: nothing reserves memory up front
    shares: dict[int, float] = {}
    for b in on_gpu:
        explicit = _explicit_share(b)
        if explicit is not None:
            shares[id(b)] = explicit
        elif getattr(b, "provider", "") != "vllm":
            shares[id(b)] = HF_DEFAULT_SHARE
    unset = [b for b in on_gpu if id(b) not in shares]
    left = USABLE - sum(shares.values())
    if unset:
        for b in unset:
            shares[id(b)] = round(left / len(unset), 3)
    if sum(shares.values()) > USABLE + 1e-9 or (unset and left / len(unset) < MIN_VLLM_SHARE):
        listing = ", ".join(f"{b.spec} {shares.get(id(b), 0):.2f}" for b in on_gpu)
        raise UserInputError(
            f"GPU memory budgets exceed the device ({listing}; at most {USABLE} in all): lower gpu_memory "
            "in the roles' model arguments (e.g. --model-args gpu_memory=0.6), or put a role on another device"
        )
    for b in on_gpu:
        if getattr(b, "provider", "") == "vllm":
            b.gpu_share = shares[id(b)]
    return {b.spec: shares[id(b)] for b in on_gpu}
