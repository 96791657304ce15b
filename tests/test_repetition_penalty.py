"""Repetition penalty as a generation setting: hf/ and embedded apply transformers' own penalty,
openai/ sends it to servers that take it (vLLM, TGI) only when set, a backend that cannot apply it
refuses with one line; and the Janus generation preset of the multifaceted task."""

import argparse
import asyncio

import pytest

from aloe_bench.cli.main import build_parser
from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import BackendPool, ChatRequest, GenerationSettings
from aloe_bench.models.cache import call_key
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

CHAT = [{"role": "user", "content": "Say the word cat five times, then the word dog five times."}]


def test_an_unset_penalty_leaves_the_cache_key_as_before():
    """Old call caches still answer runs that never set a penalty."""
    plain = GenerationSettings(max_new_tokens=8, temperature=0.0, seed=1)
    assert "repetition_penalty" not in plain.to_dict()
    assert plain.to_dict() == {"max_new_tokens": 8, "temperature": 0.0, "top_p": None, "seed": 1}
    penalised = GenerationSettings(max_new_tokens=8, temperature=0.0, seed=1, repetition_penalty=1.03)
    assert penalised.to_dict()["repetition_penalty"] == 1.03
    ident = {"spec": "embedded"}
    assert call_key("model", ident, ChatRequest(CHAT, plain), None) != call_key(
        "model", ident, ChatRequest(CHAT, penalised), None
    )
    assert plain.batch_key() != penalised.batch_key()  # never decoded in one batch


@pytest.mark.parametrize("prefix_cache_gb", ["2", "0"])  # the prefix-reuse loop, and generate()
def test_embedded_applies_transformers_repetition_penalty(embedded_checkpoint, prefix_cache_gb):
    """Greedy replies with a strong penalty are exactly what transformers' generate() gives with the
    same penalty, and differ from the replies without it."""
    import torch

    settings = GenerationSettings(max_new_tokens=16, temperature=0.0, seed=3)

    async def replies():
        pool = BackendPool()
        try:
            backend = pool.get("embedded", {"runtime": "torch", "prefix_cache_gb": prefix_cache_gb})
            plain = (await backend.generate([ChatRequest(CHAT, settings)]))[0]
            penalised = (
                await backend.generate(
                    [
                        ChatRequest(
                            CHAT, GenerationSettings(**{**settings.to_dict(), "repetition_penalty": 2.0})
                        )
                    ]
                )
            )[0]
            return backend, plain, penalised
        finally:
            await pool.aclose()

    backend, plain, penalised = asyncio.run(replies())
    assert plain.ok and penalised.ok
    assert plain.text != penalised.text
    tok, model = backend.tokenizer, backend.model
    ids = tok(tok.apply_chat_template(CHAT, tokenize=False, add_generation_prompt=True), return_tensors="pt",
              add_special_tokens=False).input_ids  # fmt: skip
    with torch.inference_mode():
        out = model.generate(
            ids, do_sample=False, max_new_tokens=16, repetition_penalty=2.0, pad_token_id=tok.pad_token_id
        )
    expected = tok.decode(out[0, ids.shape[1] :], skip_special_tokens=True).strip()
    assert penalised.text == expected


def test_embedded_openvino_runtime_applies_the_penalty():
    """The OpenVINO runtime hands the penalty to its own sampler (the same definition as transformers':
    logits of tokens already in the prompt or reply divided, or multiplied when negative)."""
    pytest.importorskip("openvino_genai")
    settings = GenerationSettings(max_new_tokens=16, temperature=0.0, seed=3)

    async def replies():
        pool = BackendPool()
        try:
            backend = pool.get("embedded", {})
            plain = (await backend.generate([ChatRequest(CHAT, settings)]))[0]
            strong = GenerationSettings(**{**settings.to_dict(), "repetition_penalty": 2.0})
            penalised = (await backend.generate([ChatRequest(CHAT, strong)]))[0]
            return plain, penalised
        finally:
            await pool.aclose()

    plain, penalised = asyncio.run(replies())
    assert plain.ok and penalised.ok and plain.text != penalised.text


def test_openai_sends_the_penalty_only_when_set():
    with FakeOpenAIServer(FakeBehaviour()) as server:

        async def send():
            pool = BackendPool()
            try:
                api = pool.get("openai/served-model", {"base_url": server.base_url})
                await api.generate([ChatRequest(CHAT, GenerationSettings(max_new_tokens=8, seed=1))])
                await api.generate(
                    [ChatRequest(CHAT, GenerationSettings(max_new_tokens=8, seed=1, repetition_penalty=1.03))]
                )
            finally:
                await pool.aclose()

        asyncio.run(send())
        plain, penalised = server.requests
    assert "repetition_penalty" not in plain
    assert penalised["repetition_penalty"] == 1.03


def test_backends_that_cannot_apply_it_refuse_in_one_line(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    settings = GenerationSettings(repetition_penalty=1.03)
    pool = BackendPool()
    hosted = pool.get("openai/gpt-4o-mini-2024-07-18")  # the OpenAI API: no such parameter
    with pytest.raises(UserInputError) as refused:
        hosted.check_settings(settings)
    assert "cannot apply a repetition penalty" in str(refused.value) and "\n" not in str(refused.value)
    hosted.check_settings(GenerationSettings())  # unset: nothing to refuse


def test_vllm_sends_the_requests_penalty_else_the_checkpoints():
    from types import SimpleNamespace

    from aloe_bench.models.backends.base import ChatRequest
    from aloe_bench.models.backends.decoding import vllm_sampling_kwargs
    from aloe_bench.models.backends.vllm_backend import VLLMBackend

    VLLMBackend("some/model").check_settings(GenerationSettings(repetition_penalty=1.03))  # accepted
    checkpoint = SimpleNamespace(do_sample=False, repetition_penalty=1.2)
    messages = [{"role": "user", "content": "hi"}]
    given = ChatRequest(messages, GenerationSettings(repetition_penalty=1.03))
    assert vllm_sampling_kwargs(given, checkpoint)["repetition_penalty"] == 1.03
    assert vllm_sampling_kwargs(ChatRequest(messages), checkpoint)["repetition_penalty"] == 1.2


def test_a_run_refuses_before_any_call(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    code, _, err = cli(
        "run", "--task", "aloe_demo", "--model", "control/generic", "--simulator", "control/generic",
        "--judge", "openai/gpt-4o-mini-2024-07-18", "--judge-repetition-penalty", "1.1",
        "--output", tmp_path / "run", "--no-cache", "--no-progress",
    )  # fmt: skip
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot apply a repetition penalty" in lines[0], err
    assert not (tmp_path / "run" / "results.json").exists()


def _run_args(*argv: str) -> argparse.Namespace:
    return build_parser().parse_args(["run", *argv])


def test_janus_preset_of_multifaceted_matches_spec_2_4():
    """SPEC 2.4: 1,024 new tokens, temperature 1.0, top-p 0.9, repetition penalty 1.03."""
    from aloe_bench.cli.run import build_config

    config = build_config(_run_args("--task", "multifaceted", "--generation", "janus", "--model", "embedded"))
    assert config.model.settings(2048) == GenerationSettings(
        max_new_tokens=1024, temperature=1.0, top_p=0.9, repetition_penalty=1.03
    )
    assert config.model.record()["repetition_penalty"] == 1.03
    # Without the preset the task is what it was (and its config hash with it).
    plain = build_config(_run_args("--task", "multifaceted", "--model", "embedded"))
    assert plain.model.settings(2048) == GenerationSettings(max_new_tokens=2048)
    assert "repetition_penalty" not in plain.model.record()
    # Flags override the preset.
    mixed = build_config(
        _run_args("--task", "multifaceted", "--generation", "janus", "--model", "embedded",
                  "--temperature", "0.7", "--repetition-penalty", "1.2")
    )  # fmt: skip
    assert (mixed.model.temperature, mixed.model.repetition_penalty, mixed.model.max_new_tokens) == (
        0.7,
        1.2,
        1024,
    )


def test_an_unknown_preset_is_named_with_the_known_ones():
    from aloe_bench.cli.run import build_config

    with pytest.raises(UserInputError, match="no generation preset 'jaunus'; its presets: janus"):
        build_config(_run_args("--task", "multifaceted", "--generation", "jaunus", "--model", "embedded"))
    with pytest.raises(UserInputError, match="has none"):
        build_config(_run_args("--task", "aloe_demo", "--generation", "janus", "--model", "embedded"))


def test_a_judge_takes_its_own_penalty():
    from aloe_bench.models.role_settings import judge_panel

    flags = argparse.Namespace(
        judge=["openai/x@repetition_penalty=1.05", "embedded"], judge_repetition_penalty=None
    )
    first, second = judge_panel(flags, {}, None)
    assert first.repetition_penalty == 1.05 and second.repetition_penalty is None


def test_lm_eval_requests_carry_the_penalty():
    """Through lm-eval the task's penalty (or --gen_kwargs repetition_penalty=R) reaches the model."""
    from aloe_bench.integrations.lm_eval.requests import model_role

    assert model_role("embedded", {"repetition_penalty": 1.03}, {}).repetition_penalty == 1.03
    assert (
        model_role("embedded", {"repetition_penalty": 1.03}, {"repetition_penalty": "1.2"}).repetition_penalty
        == 1.2
    )
    assert model_role("embedded", {}, {}).repetition_penalty is None
