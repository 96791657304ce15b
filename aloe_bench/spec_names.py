"""Portable names for model specs: what a table, a plot legend or a run label may show.

A spec that points at a local checkpoint folder (`hf//work/train-demo/sft`, `./ckpt/sft`,
`~/models/x`) names a folder on one machine; published, it leaks that machine's layout and means
nothing elsewhere. Reports show the provider and the folder's own name instead (`hf/sft`); the full
spec stays in results.json `config`, where provenance belongs.
"""

from __future__ import annotations

from pathlib import PurePosixPath

_PROVIDERS = ("hf", "vllm", "lmeval", "openai")
_LOCAL = ("/", "./", "../", "~")
# Spec prefixes that wrap another spec (models/strategies STRATEGIES; a test checks they agree: this
# module sits below every layer and imports none).
_WRAPPERS = ("reminder", "self-critic", "cot", "recall")


def portable_spec(spec: str | None) -> str:
    """`hf//abs/path/sft` -> `hf/sft`; `/abs/ckpt` -> `ckpt`; hub ids and API models unchanged."""
    if not spec:
        return str(spec)
    wrapper, slash, wrapped = spec.partition("/")
    if slash and wrapper in _WRAPPERS:  # `cot/hf//abs/sft` -> `cot/hf/sft`
        return f"{wrapper}/{portable_spec(wrapped)}"
    if spec.startswith("bon/") and ":" in spec and "@" in spec:  # best-of-N: its parts, each portable
        count, _, rest = spec[len("bon/") :].partition(":")
        policy, _, reward = rest.rpartition("@")
        return f"bon/{count}:{portable_spec(policy)}@{portable_spec(reward) if reward.startswith(_LOCAL) else reward}"
    provider, sep, name = spec.partition("/")
    if sep and provider in _PROVIDERS and name.startswith(_LOCAL):
        return f"{provider}/{_folder_name(name)}"
    if spec.startswith(_LOCAL):
        return _folder_name(spec)
    return spec


def _folder_name(path: str) -> str:
    name = PurePosixPath(path.rstrip("/")).name
    return name if name not in ("", ".", "..", "~") else "local-checkpoint"
