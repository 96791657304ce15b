"""Batched decoding for the `hf` backend that reuses the key/value cache of earlier prompts.

A multi-turn benchmark sends the same long prefixes again and again: the simulated user's and the
model's chats grow by one exchange per turn, and every judge prompt of a persona starts with the same
instructions and persona. Recomputing them is most of the work (on a CPU, prefill is compute-bound
and batching does not help it). Here every finished row leaves its keys and values in an LRU store;
a new prompt starts from the longest stored prefix of its tokens and only the rest is computed, as
vLLM's automatic prefix caching does. Rows with different cached lengths share one batch: the
cached part is right-aligned and padded on the left, the new part likewise, and the attention mask
and position ids say which positions are real.

Only plain decoder models whose layers all use full attention take this path; others use
`generate()`.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from aloe_bench.models.backends.sampling import PerRowSampler

# Families whose cache is a plain per-layer (key, value) stack with full attention everywhere.
_FULL_ATTENTION_FAMILIES = {
    "llama",
    "mistral",
    "qwen2",
    "qwen3",
    "olmo",
    "olmo2",
    "phi3",
    "granite",
    "smollm3",
}


def supports_prefix_reuse(model: Any) -> bool:
    config = model.config
    if getattr(config, "model_type", None) not in _FULL_ATTENTION_FAMILIES or config.is_encoder_decoder:
        return False
    if getattr(config, "sliding_window", None) and getattr(config, "use_sliding_window", True):
        return False  # Mistral v0.1-style windows: a cached prefix would be attended past the window
    layer_types = getattr(config, "layer_types", None)
    return not layer_types or all(t == "full_attention" for t in layer_types)


@dataclass
class _Entry:
    ids: np.ndarray  # the tokens whose keys/values are stored
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: (heads, tokens, dim) keys and values


class PrefixStore:
    """Least-recently-used store of token sequences with their per-layer keys and values."""

    def __init__(self, max_tokens: int):
        self.max_tokens = max_tokens
        self._entries: OrderedDict[int, _Entry] = OrderedDict()
        self._tokens = 0
        self._next = 0
        self.stats = {"prompt_tokens": 0, "reused_tokens": 0}

    def longest_prefix(self, ids: list[int]) -> tuple[_Entry | None, int]:
        """The entry sharing the most leading tokens with `ids`, and how many it shares."""
        target = np.asarray(ids)
        best, best_len, best_key = None, 0, None
        for key, entry in self._entries.items():
            n = min(len(entry.ids), len(target))
            if n <= best_len:
                continue
            diff = np.flatnonzero(entry.ids[:n] != target[:n])
            shared = int(diff[0]) if diff.size else n
            if shared > best_len:
                best, best_len, best_key = entry, shared, key
        if best_key is not None:
            self._entries.move_to_end(best_key)
        return best, best_len

    def add(self, ids: list[int], kv: list[tuple[torch.Tensor, torch.Tensor]]) -> None:
        if not ids or len(ids) > self.max_tokens:
            return
        new = np.asarray(ids)
        # An entry that is a prefix of the new one (the same chat one turn earlier) is now redundant.
        for key in [
            k
            for k, e in self._entries.items()
            if len(e.ids) <= len(new) and np.array_equal(e.ids, new[: len(e.ids)])
        ]:
            self._tokens -= len(self._entries.pop(key).ids)
        self._entries[self._next] = _Entry(new, kv)
        self._next += 1
        self._tokens += len(new)
        while self._tokens > self.max_tokens and self._entries:
            _, old = self._entries.popitem(last=False)
            self._tokens -= len(old.ids)


@dataclass
class RowResult:
    tokens: list[int]  # generated tokens, the end-of-turn token excluded
    stopped: bool  # True: ended at an end-of-turn token; False: hit max_new_tokens


def generate_reusing_prefixes(
    model: Any,
    prompts: list[list[int]],
    sampler: PerRowSampler,
    *,
    max_new_tokens: int,
    eos_ids: list[int],
    pad_id: int,
    store: PrefixStore,
    repetition_penalty: float | None = None,
    on_step: Callable[[int], None] | None = None,
) -> list[RowResult]:
    """`on_step(n)` is told after every decoding step how many rows produced a token (progress)."""
    device = model.device
    batch = len(prompts)
    _share_common_prefix(model, prompts, store)
    cached, found = [], []
    for ids in prompts:
        entry, shared = store.longest_prefix(ids)
        shared = min(shared, len(ids) - 1)  # at least one new token, to get the next-token logits
        cached.append(shared)
        found.append(entry)
        store.stats["prompt_tokens"] += len(ids)
        store.stats["reused_tokens"] += shared
    past_len = max(cached)
    suffixes = [ids[c:] for ids, c in zip(prompts, cached, strict=True)]
    new_len = max(len(s) for s in suffixes)

    input_ids = torch.full((batch, new_len), pad_id, dtype=torch.long)
    mask = torch.zeros((batch, past_len + new_len), dtype=torch.long)
    positions = torch.ones((batch, new_len), dtype=torch.long)
    for i, (suffix, c) in enumerate(zip(suffixes, cached, strict=True)):
        input_ids[i, new_len - len(suffix) :] = torch.tensor(suffix)
        mask[i, past_len - c : past_len] = 1
        mask[i, past_len + new_len - len(suffix) :] = 1
        positions[i, new_len - len(suffix) :] = torch.arange(c, c + len(suffix))
    cache = _new_cache(model, past_len + new_len + max_new_tokens, found, cached, past_len, batch)

    input_ids, mask, positions = input_ids.to(device), mask.to(device), positions.to(device)
    eos = set(eos_ids)
    history = [list(ids) for ids in prompts]  # for the repetition penalty
    generated: list[list[int]] = [[] for _ in range(batch)]
    stopped = [False] * batch
    next_pos = positions[:, -1] + 1
    with_cache = {_cache_argument(model): cache}
    with torch.inference_mode():
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, **with_cache,
                    use_cache=True, logits_to_keep=1)  # fmt: skip
        for step in range(max_new_tokens):
            scores = out.logits[:, -1, :].float()
            if repetition_penalty and repetition_penalty != 1.0:
                scores = _penalize(scores, history, repetition_penalty)
            chosen = sampler.apply(scores, step).argmax(dim=-1)
            live_rows = batch - sum(stopped)
            for i, token in enumerate(chosen.tolist()):  # one device-to-host copy per step
                if not stopped[i]:
                    generated[i].append(token)
                    history[i].append(token)
                    stopped[i] = token in eos
            if on_step is not None:
                on_step(live_rows)
            if all(stopped) or step == max_new_tokens - 1:
                break
            # Finished rows feed a masked pad: their cache positions stay exactly their real tokens.
            live = torch.tensor([not s for s in stopped], device=device)
            feed = torch.where(live, chosen, torch.full_like(chosen, pad_id)).unsqueeze(1)
            mask = torch.cat([mask, live.long().unsqueeze(1)], dim=1)
            out = model(input_ids=feed, attention_mask=mask, position_ids=next_pos.unsqueeze(1),
                        **with_cache, use_cache=True)  # fmt: skip
            next_pos = next_pos + 1
        _keep(store, cache, mask, prompts, generated)
    return [RowResult(tokens=g[:-1] if s else g, stopped=s) for g, s in zip(generated, stopped, strict=True)]


def _share_common_prefix(model: Any, prompts: list[list[int]], store: PrefixStore, minimum: int = 32) -> None:
    """Rows of one batch often open alike (the same instructions, the same system prompt): compute
    that shared opening once and store it, so that every row starts from it."""
    if len(prompts) < 2:
        return
    shortest = min(len(p) for p in prompts) - 1
    first = np.asarray(prompts[0][:shortest])
    common = shortest
    for other in prompts[1:]:
        diff = np.flatnonzero(first[:common] != np.asarray(other[:common]))
        common = int(diff[0]) if diff.size else common
    if common < minimum or store.longest_prefix(prompts[0][:common])[1] >= common:
        return
    from transformers import DynamicCache

    ids, cache = prompts[0][:common], DynamicCache()
    with torch.inference_mode():
        model(input_ids=torch.tensor([ids], device=model.device), **{_cache_argument(model): cache},
              use_cache=True, logits_to_keep=1)  # fmt: skip
    # DynamicLayer objects at runtime; transformers types the list as a union of every layer kind.
    layers: list[Any] = list(cache.layers)
    store.add(ids, [(layer.keys[0].clone(), layer.values[0].clone()) for layer in layers])


def _cache_argument(model: Any) -> str:
    """transformers 5.24 renamed forward()'s `past_key_values` to `cache` (the old name warns, and
    goes in 5.40)."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def _reserved_layer_class():
    from transformers.cache_utils import DynamicLayer

    class ReservedLayer(DynamicLayer):
        """A DynamicLayer that writes into a buffer reserved for the whole generation instead of
        concatenating a new copy of the cache at every step (a fifth of a CPU decoding step)."""

        def __init__(self, capacity: int):
            super().__init__()
            self.capacity, self.length = capacity, 0

        def reserve(self, like_keys: torch.Tensor, like_values: torch.Tensor) -> None:
            self.lazy_initialization(like_keys, like_values)
            batch, heads = like_keys.shape[:2]
            self._keys = like_keys.new_zeros((batch, heads, self.capacity, like_keys.shape[-1]))
            self._values = like_values.new_zeros((batch, heads, self.capacity, like_values.shape[-1]))
            self.keys, self.values = self._keys[:, :, :0], self._values[:, :, :0]

        def update(self, key_states, value_states, *args, **kwargs):
            if not self.is_initialized:
                self.reserve(key_states, value_states)
            end = self.length + key_states.shape[-2]
            if end > self.capacity:  # not expected (capacity covers prompt + max_new_tokens): grow
                return self._grow_and_update(key_states, value_states)
            self._keys[:, :, self.length : end] = key_states
            self._values[:, :, self.length : end] = value_states
            self.length = end
            self.keys, self.values = self._keys[:, :, :end], self._values[:, :, :end]
            return self.keys, self.values

        def _grow_and_update(self, key_states, value_states):
            self._keys = torch.cat([self._keys[:, :, : self.length], key_states], dim=-2)
            self._values = torch.cat([self._values[:, :, : self.length], value_states], dim=-2)
            self.length = self.capacity = self._keys.shape[-2]
            self.keys, self.values = self._keys, self._values
            return self.keys, self.values

    return ReservedLayer


def _new_cache(model: Any, capacity: int, found: list, cached: list[int], past_len: int, batch: int):
    """A cache with room for the whole generation, holding each row's reused prefix right-aligned."""
    from transformers import DynamicCache

    reserved = _reserved_layer_class()
    cache = DynamicCache()
    layers = [reserved(capacity) for _ in range(model.config.num_hidden_layers)]
    cache.layers = layers
    reference = next((e for e in found if e is not None), None)
    if reference is None or not past_len:
        return cache
    for layer, (k_ref, v_ref) in zip(layers, reference.kv, strict=True):
        layer.reserve(k_ref.new_empty((batch, k_ref.shape[0], 0, k_ref.shape[-1])),
                      v_ref.new_empty((batch, v_ref.shape[0], 0, v_ref.shape[-1])))  # fmt: skip
    for index, layer in enumerate(layers):
        for i, (entry, c) in enumerate(zip(found, cached, strict=True)):
            if entry is not None and c:
                k, v = entry.kv[index]
                layer._keys[i, :, past_len - c : past_len] = k[:, :c]
                layer._values[i, :, past_len - c : past_len] = v[:, :c]
        layer.length = past_len
        layer.keys, layer.values = layer._keys[:, :, :past_len], layer._values[:, :, :past_len]
    return cache


def _keep(
    store: PrefixStore, cache: Any, mask: torch.Tensor, prompts: list[list[int]], generated: list[list[int]]
) -> None:
    """Store every row's real positions: its prompt and the generated tokens that were fed back."""
    real = mask.bool()
    for i, (prompt, gen) in enumerate(zip(prompts, generated, strict=True)):
        ids = prompt + gen[:-1]  # the last sampled token was never fed, so it has no keys/values
        columns = real[i, : cache.layers[0].keys.shape[2]].nonzero().squeeze(1)
        if columns.numel() != len(ids):
            continue  # should not happen; never store a misaligned entry
        kv = [
            (layer.keys[i][:, columns].clone(), layer.values[i][:, columns].clone()) for layer in cache.layers
        ]
        store.add(ids, kv)


def _penalize(scores: torch.Tensor, history: list[list[int]], penalty: float) -> torch.Tensor:
    for i, ids in enumerate(history):
        index = torch.tensor(sorted(set(ids)), device=scores.device)
        picked = scores[i, index]
        scores[i, index] = torch.where(picked < 0, picked * penalty, picked / penalty)
    return scores
