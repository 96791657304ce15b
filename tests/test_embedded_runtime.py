"""The embedded model's OpenVINO runtime, checked against the torch reference rather than assumed.

The two runtimes share the tokenizer, chat template and decoding rule; they differ in arithmetic
(OpenVINO runs the GGUF's 4-bit weights with its own int4 kernels, the reference runs their fp32
dequantization). The agreement test measures how often OpenVINO picks the reference's greedy token
when both are given the same text (teacher forcing), over several prompts and positions."""

from __future__ import annotations

import asyncio

import pytest

from aloe_bench.datasets.personas import load_persona_set
from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import ChatRequest, GenerationSettings
from aloe_bench.models.backends.decoding import Decoding
from aloe_bench.models.backends.embedded import EmbeddedBackend
from aloe_bench.prompts import load_prompt

# Measured: 82% on 8 prompts x 32 positions (tests below print theirs). A wrong weight layout, rope
# or tokenization gives far less; a faithful int4 kernel gives more. Below this, something is broken.
TEACHER_FORCED_AGREEMENT_MIN = 0.70


def _prompts(n: int = 6) -> list[list[dict[str, str]]]:
    sim = load_prompt("simulator.yaml")
    chats = []
    for p in load_persona_set("demo").personas[:n]:
        messages = sim.render(profile=p.profile, personality=p.personality)
        chats.append([*messages, {"role": "user", "content": sim.text("opening")}])
        chats.append([{"role": "user", "content": f"I am {p.profile.split('.')[0].lower()}. Any advice?"}])
    return chats[:n]


@pytest.fixture(scope="module")
def openvino_backend():
    pytest.importorskip("openvino_genai")
    backend = EmbeddedBackend()
    backend.ensure_loaded()
    return backend


def test_greedy_tokens_agree_with_the_torch_reference(openvino_backend):
    reference = EmbeddedBackend(args={"runtime": "torch"})
    reference.ensure_loaded()
    tok = openvino_backend.tokenizer
    settings = GenerationSettings(max_new_tokens=24, temperature=0.0)
    requests = [ChatRequest(m, settings) for m in _prompts()]
    expected = reference._generate_batch(requests)
    agree = total = 0
    first_agree = 0
    for request, completion in zip(requests, expected, strict=True):
        from aloe_bench.models.backends.chat_template import render_prompt

        prompt = tok(render_prompt(tok, request.messages), add_special_tokens=False).input_ids
        ref = tok(completion.text, add_special_tokens=False).input_ids[:16]
        # every prefix of the reference's continuation, one greedy token each (teacher forcing); the
        # bare prompt first, so that the other prefixes find its blocks cached instead of each of them
        # computing it again in the same step
        prefixes = [prompt + ref[:i] for i in range(len(ref))]
        got = [
            g
            for batch in (prefixes[:1], prefixes[1:])
            for g in openvino_backend._pipeline.generate(
                batch, [Decoding(0.0)] * len(batch), max_new_tokens=1, eos_ids=openvino_backend._eos_ids
            )
        ]
        picks = [g.tokens[0] if g.tokens else -1 for g in got]
        agree += sum(p == r for p, r in zip(picks, ref, strict=True))
        first_agree += picks[:1] == ref[:1]
        total += len(ref)
    share = agree / total
    print(f"teacher-forced greedy agreement with torch: {agree}/{total} = {share:.0%}; "
          f"first token {first_agree}/{len(requests)}")  # fmt: skip
    assert total >= 60
    assert share >= TEACHER_FORCED_AGREEMENT_MIN, (
        f"OpenVINO agrees with the torch reference on only {share:.0%}"
    )


def test_a_reply_does_not_depend_on_its_batch_or_on_what_ran_before(openvino_backend):
    chats = _prompts(4) + [[{"role": "user", "content": "A prompt this process has never seen: the sea?"}]]
    seeded = GenerationSettings(max_new_tokens=16, temperature=1.0, seed=11)
    fresh = openvino_backend._generate_batch([ChatRequest(chats[-1], seeded)])[0]  # nothing cached
    cached = openvino_backend._generate_batch([ChatRequest(chats[-1], seeded)])[0]  # its prefix cached
    assert fresh.text == cached.text
    chats = chats[:4]
    alone = openvino_backend._generate_batch([ChatRequest(chats[0], seeded)])[0]
    together = openvino_backend._generate_batch([ChatRequest(c, seeded) for c in chats])
    again = openvino_backend._generate_batch([ChatRequest(c, seeded) for c in reversed(chats)])
    assert together[0].text == alone.text == again[-1].text
    other_seed = openvino_backend._generate_batch([ChatRequest(chats[0], seeded.with_seed(12))])[0]
    greedy = openvino_backend._generate_batch([ChatRequest(chats[0], GenerationSettings(16, 0.0))])[0]
    assert len({alone.text, other_seed.text, greedy.text}) >= 2  # the seed and the temperature act
    plain = GenerationSettings(max_new_tokens=16, temperature=0.0)
    batched = openvino_backend._generate_batch([ChatRequest(c, plain) for c in chats])
    assert [openvino_backend._generate_batch([ChatRequest(c, plain)])[0].text for c in chats] == [
        b.text for b in batched
    ]


def test_prompts_extending_a_cached_prompt_together_get_what_they_get_afresh(openvino_backend):
    """OpenVINO GenAI 2026.4.1 gives wrong keys and values to two requests that start in the same
    step from the same cached, partly filled block (a cached prompt whose length is not a multiple of
    the block size); the generator starts one request per step. Without that, this test fails."""
    from aloe_bench.models.backends.chat_template import render_prompt
    from aloe_bench.models.backends.embedded import gguf_path
    from aloe_bench.models.backends.openvino_runtime import OpenVINOGenerator

    tok, eos = openvino_backend.tokenizer, openvino_backend._eos_ids
    ids = tok(render_prompt(tok, _prompts(2)[1]), add_special_tokens=False).input_ids
    cached = ids[: len(ids) // 32 * 32 + 1]  # ends one token into a block
    endings = [" Paris", " Rome is", " The sea", " Tell me about"]
    prompts = [cached + tok(e, add_special_tokens=False).input_ids for e in endings]
    greedy = [Decoding(0.0)] * len(prompts)
    afresh = OpenVINOGenerator(gguf_path(), threads=1)  # nothing cached: each prompt computed whole
    expected = [afresh.generate([p], greedy[:1], max_new_tokens=8, eos_ids=eos)[0] for p in prompts]
    gen = openvino_backend._pipeline
    gen.generate(
        [cached], greedy[:1], max_new_tokens=1, eos_ids=eos
    )  # now cached, its last block part-filled
    assert gen.generate(prompts, greedy, max_new_tokens=8, eos_ids=eos) == expected


def test_completions_follow_the_hf_contract(openvino_backend):
    out = asyncio.run(
        openvino_backend.generate([ChatRequest(c, GenerationSettings(8, 0.0)) for c in _prompts(3)])
    )
    for c in out:
        assert c.ok and c.text and c.prompt_tokens > 20
        assert c.finish_reason in ("stop", "length")
        assert c.completion_tokens <= 8 + 1
    long_chat = [{"role": "user", "content": "word " * 9000}]
    (refused,) = asyncio.run(openvino_backend.generate([ChatRequest(long_chat, GenerationSettings(8, 0.0))]))
    assert not refused.ok and "exceeds the embedded model's context" in (refused.error or "")


def test_roles_with_different_arguments_share_one_copy_of_the_weights(openvino_backend):
    other = EmbeddedBackend(args={"batch_size": "4"})
    other.ensure_loaded()
    assert other._pipeline is openvino_backend._pipeline  # the registry answered, not a second load


def test_identity_names_the_runtime_and_the_torch_runtime_keeps_the_old_one(openvino_backend):
    ident = openvino_backend.identity()
    assert ident["runtime"].startswith("openvino-genai ")
    assert ident["weights"].startswith("SmolLM2-135M-Instruct.Q4_1.gguf:")
    torch_ident = EmbeddedBackend(args={"runtime": "torch"}).identity()
    assert "runtime" not in torch_ident and "weights" not in torch_ident and torch_ident["spec"] == "embedded"
    assert "runtime" not in torch_ident["args"]


def test_bad_runtime_arguments_are_refused_with_the_fix():
    with pytest.raises(UserInputError, match=r"use openvino \(the default\) or torch"):
        EmbeddedBackend(args={"runtime": "onnx"})
    with pytest.raises(UserInputError, match="threads must be a whole number"):
        from aloe_bench.models.backends.embedded import _threads

        _threads({"threads": "many"})
