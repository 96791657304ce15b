"""The hf backend's prefix reuse gives exactly what transformers' generate() gives, only faster."""

import pytest
import torch

from aloe_bench.datasets.personas import load_persona_set
from aloe_bench.models.backends import ChatRequest, GenerationSettings
from aloe_bench.models.backends.hf import HFBackend
from aloe_bench.models.backends.hf_decoding import PrefixStore, supports_prefix_reuse
from aloe_bench.prompts import load_prompt


def _two_turns(backend: HFBackend, temperature: float) -> list[str]:
    """A batch of simulated-user openings, then a second batch that extends each of those chats."""
    sim = load_prompt("simulator.yaml")
    settings = GenerationSettings(max_new_tokens=24, temperature=temperature, seed=7)
    chats = []
    for p in load_persona_set("demo").personas[:4]:
        messages = sim.render(profile=p.profile, personality=p.personality)
        chats.append([*messages, {"role": "user", "content": sim.text("opening")}])
    first = backend._generate_batch([ChatRequest(c, settings) for c in chats])
    chats = [
        [*c, {"role": "assistant", "content": o.text}, {"role": "user", "content": "Ha, tell me more!"}]
        for c, o in zip(chats, first, strict=True)
    ]
    second = backend._generate_batch([ChatRequest(c, settings) for c in chats])
    return [o.text for o in first + second]


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_prefix_reuse_gives_the_same_replies_as_generate(embedded_checkpoint, temperature):
    reuse = HFBackend(str(embedded_checkpoint))
    plain = HFBackend(str(embedded_checkpoint), {"prefix_cache_gb": "0"})
    reuse.ensure_loaded()
    plain.ensure_loaded()
    assert reuse.prefix_store is not None and plain.prefix_store is None
    assert _two_turns(reuse, temperature) == _two_turns(plain, temperature)
    stats = reuse.prefix_store.stats
    # the second turn starts from the first turn's keys and values; the shared instructions are computed once
    assert stats["reused_tokens"] > stats["prompt_tokens"] / 2


def test_store_keeps_the_longest_chat_and_evicts_the_oldest():
    kv = [(torch.zeros(1, 1, 1), torch.zeros(1, 1, 1))]

    def entry(n):
        return [(torch.zeros(1, n, 1), torch.zeros(1, n, 1))]

    store = PrefixStore(max_tokens=10)
    store.add([1, 2, 3], entry(3))
    assert store.longest_prefix([1, 2, 9])[1] == 2
    store.add([1, 2, 3, 4, 5], entry(5))  # the same chat, one turn later: replaces [1, 2, 3]
    assert len(store._entries) == 1 and store.longest_prefix([1, 2, 3, 4, 5, 6])[1] == 5
    store.add([7, 8, 9, 10], entry(4))
    store.add([11, 12, 13], entry(3))  # 5 + 4 + 3 > 10 tokens: the least recently used goes
    assert store.longest_prefix([1, 2])[1] == 0 and store.longest_prefix([11, 12])[1] == 2
    store.add(list(range(20)), kv)  # larger than the whole budget: not stored
    assert store.longest_prefix(list(range(20)))[1] == 0


def test_only_full_attention_decoders_reuse_prefixes(embedded_checkpoint):
    from transformers import AutoConfig

    class Model:
        def __init__(self, **changes):
            self.config = AutoConfig.from_pretrained(embedded_checkpoint)
            for key, value in changes.items():
                setattr(self.config, key, value)

    assert supports_prefix_reuse(Model())
    assert not supports_prefix_reuse(Model(model_type="gemma2"))
    assert not supports_prefix_reuse(Model(model_type="mistral", sliding_window=4096))
    assert not supports_prefix_reuse(Model(layer_types=["full_attention", "sliding_attention"]))
