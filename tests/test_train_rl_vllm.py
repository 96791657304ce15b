"""`aloe-train rl --use_vllm`: the multi-turn rollout's policy turns go through TRL's vLLM engine.

vLLM needs CUDA and cannot be installed here, so TRL's `VLLMGeneration` (the engine TRL builds and
syncs; `trainer.vllm_generation`) is replaced by a stand-in that samples from the very model TRL hands
it and reports each sampled token's log-probability in vLLM's shape. Everything else is real: TRL's
GRPOTrainer with `use_vllm=True` (its weight syncs, its importance-sampling correction on the
log-probabilities the rollout returns), the embedded model, the simulated user on the fake OpenAI
server (real HTTP), the rule judge.
"""

from __future__ import annotations

import json

import pytest

import aloe_bench.testing.rule_judge  # noqa: F401  (registers rule-word/WORD)
from aloe_bench.errors import UserInputError
from aloe_bench.testing.fake_openai import FakeOpenAIServer

pytest.importorskip("trl")


class FakeVLLMGeneration:
    """Stands in for trl.generation.vllm_generation.VLLMGeneration: same constructor keywords, same
    `generate()` contract (token-id prompts in; prompt ids, completion ids, per-token [logprob] lists
    out), sampling from the trainer's model with TRL's settings."""

    instances: list[FakeVLLMGeneration] = []

    def __init__(self, *, model, processing_class, mode, temperature, max_completion_length, **_):
        self.model, self.tok, self.mode = model, processing_class, mode
        self.temperature, self.max_tokens = temperature, max_completion_length
        self.calls: list[dict] = []  # every generate(): prompts, num_generations, what came back
        self.syncs = 0
        FakeVLLMGeneration.instances.append(self)

    def sync_weights(self) -> None:
        self.syncs += 1

    def generate(self, prompts, images, num_generations, profiler=None):
        import torch

        completions, logprobs = [], []
        eos = self.tok.eos_token_id
        for ids in prompts:
            with torch.no_grad():
                out = self.model.generate(
                    input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                    do_sample=True, temperature=self.temperature, top_k=0, top_p=1.0,
                    max_new_tokens=self.max_tokens, pad_token_id=eos,
                    output_scores=True, return_dict_in_generate=True,
                )  # fmt: skip
            scores = self.model.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)[0]
            row = out.sequences[0, len(ids) :].tolist()
            cut = next((i + 1 for i, t in enumerate(row) if t == eos), len(row))
            completions.append(row[:cut])
            logprobs.append([[float(lp)] for lp in scores[:cut]])  # vLLM: [sampled token's, top-k...]
        self.calls.append({"prompts": [list(p) for p in prompts], "n": num_generations, "out": completions})
        return [list(p) for p in prompts], completions, logprobs, None


def _argv(out, server, aloe_data_dir, *extra):
    return [str(a) for a in [
        "--model", "embedded", "--output", out,
        "--simulator", "openai/fake-model", "--simulator_args", f"base_url={server.base_url}",
        "--judge", "rule-word/a", "--personas", "demo", "--limit", "2", "--data_dir", aloe_data_dir,
        "--turns", "2", "--num_generations", "2", "--per_device_train_batch_size", "4",
        "--max_completion_length", "8", "--temperature", "1.0", "--seed", "1", "--cache", "",
        "--use_vllm", "--vllm_mode", "colocate", *extra,
    ]]  # fmt: skip


def test_use_vllm_without_vllm_is_one_clear_line(tmp_path):
    from aloe_train.rl import parse_rl, vllm_importable

    if vllm_importable():
        pytest.skip("vLLM is installed here")
    with pytest.raises(UserInputError, match=r"--use_vllm needs vLLM.*pip install -e '\.\[train,vllm\]'"):
        parse_rl(["--model", "embedded", "--output", str(tmp_path / "o"), "--use_vllm"])


@pytest.mark.slow
def test_policy_turns_generate_through_trls_vllm_engine(tmp_path, aloe_data_dir, monkeypatch):
    import trl
    from transformers import AutoTokenizer

    from aloe_train.rl import run_rl

    monkeypatch.setattr("trl.trainer.grpo_trainer.VLLMGeneration", FakeVLLMGeneration)
    monkeypatch.setattr("aloe_train.rl.vllm_importable", lambda: True)
    FakeVLLMGeneration.instances.clear()
    returned: list[dict] = []  # what rollout_func hands TRL

    class SpyTrainer(trl.GRPOTrainer):
        def __init__(self, *args, rollout_func, **kwargs):
            def spy(prompts, trainer):
                returned.append(rollout_func(prompts, trainer))
                return returned[-1]

            super().__init__(*args, rollout_func=spy, **kwargs)

    monkeypatch.setattr(trl, "GRPOTrainer", SpyTrainer)
    out = tmp_path / "rl"
    with FakeOpenAIServer() as server:
        record = run_rl(_argv(out, server, aloe_data_dir, "--max_steps", "2"))

    (engine,) = FakeVLLMGeneration.instances
    assert engine.mode == "colocate" and engine.max_tokens == 8  # TRL's engine, built from GRPOConfig
    assert engine.syncs == 2  # TRL pushed the weights before each step's rollout
    # one generate() per turn per step, one sample per conversation (4 = 2 personas x 2 generations)
    assert [(len(c["prompts"]), c["n"]) for c in engine.calls] == [(4, 1)] * 4
    tok = AutoTokenizer.from_pretrained(out)
    rollouts = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    for step in range(2):
        turn1, turn2 = engine.calls[2 * step], engine.calls[2 * step + 1]
        convs = [r for r in rollouts if r["step"] == step]
        for i, conv in enumerate(convs):
            first_user = [{"role": "user", "content": conv["turns"][0]["user"]}]
            opening = tok.apply_chat_template(first_user, tokenize=False, add_generation_prompt=True)
            assert tok.decode(turn1["prompts"][i]) == opening  # turn 1: the chat up to the user's message
            # turn 2: exactly the ids so far, the sampled reply included, then the user's next message
            assert turn2["prompts"][i][: len(turn1["prompts"][i]) + len(turn1["out"][i])] == (
                turn1["prompts"][i] + turn1["out"][i]
            )
            assert conv["turns"][0]["assistant"] == tok.decode(turn1["out"][i], skip_special_tokens=True)
            assert conv["turns"][1]["user"] in tok.decode(turn2["prompts"][i][len(turn1["prompts"][i]) :])

    # what TRL got back: per conversation, one log-probability per completion token, vLLM's for the
    # replies (in order), 0.0 for the user's tokens (masked out of the loss by env_mask)
    assert len(returned) == 2
    for step, batch in enumerate(returned):
        for i in range(4):
            ids, logprobs, mask = batch["completion_ids"][i], batch["logprobs"][i], batch["env_mask"][i]
            assert len(ids) == len(logprobs) == len(mask)
            assert all(lp == 0.0 for lp, m in zip(logprobs, mask, strict=True) if not m)
            replies = [c["out"][i] for c in engine.calls[2 * step : 2 * step + 2]]
            assert [t for t, m in zip(ids, mask, strict=True) if m] == replies[0] + replies[1]
            assert all(lp is not None and lp <= 0 for lp, m in zip(logprobs, mask, strict=True) if m)
    # and TRL used them: its importance-sampling correction compares them with its own forward pass;
    # sampled from the same weights, they agree (a shifted or misassigned log-probability would not)
    logged = [e for e in record["log_history"] if "sampling/sampling_logp_difference/mean" in e]
    assert len(logged) == 2
    assert all(e["sampling/sampling_logp_difference/mean"] < 1e-3 for e in logged), logged
    assert all(abs(e["sampling/importance_sampling_ratio/mean"] - 1) < 1e-2 for e in logged), logged


class _Recorder:
    """A policy that records what it is asked; `collective` as VLLMPolicyGenerator declares it."""

    def __init__(self, collective: bool):
        self.collective = collective
        self.asked: list[list[list[int]]] = []

    def __call__(self, id_lists):
        from aloe_train.rl_rollout import Generated

        self.asked.append(id_lists)
        return Generated([[] for _ in id_lists], [[] for _ in id_lists])


@pytest.mark.parametrize("collective", [True, False])
def test_a_collective_policy_is_called_every_turn_even_when_every_conversation_ended(
    collective, embedded_checkpoint
):
    """vLLM's server mode gathers every process's prompts in one call per turn: a process whose
    conversations all ended (here the simulated user fails at once) must still make that call, or the
    others wait forever. The torch policy has no such partner and is not called for nothing."""
    import contextlib

    from transformers import AutoTokenizer

    from aloe_bench.engine.session import open_backends
    from aloe_bench.models.backends import GenerationSettings
    from aloe_bench.models.roles import Role
    from aloe_bench.prompts import load_prompt
    from aloe_bench.scorers.judge import get_protocol
    from aloe_bench.testing.fake_openai import FakeBehaviour
    from aloe_train.rl_rollout import ChatTokens, Conversation, ConversationRollout, LoopThread, RolloutRoles

    tok = AutoTokenizer.from_pretrained(embedded_checkpoint)
    loop, stack = LoopThread(), contextlib.AsyncExitStack()
    failing = FakeBehaviour(fail_first=10**6, fail_status=400)  # every request refused, not retried
    with FakeOpenAIServer(failing) as server:
        api = {"base_url": server.base_url, "max_retries": "0"}

        async def open_roles():
            run_engine = await stack.enter_async_context(open_backends(""))
            return Role("simulator", run_engine.pool.get("openai/fake-model", api), None)

        try:
            simulator = loop.run(open_roles())
            roles = RolloutRoles(
                simulator, simulator, load_prompt("simulator.yaml"), GenerationSettings(8),
                get_protocol("aloe-v1"), GenerationSettings(8), simulator_retries=0,
            )  # fmt: skip
            policy = _Recorder(collective)
            rollout = ConversationRollout(
                roles, loop, ChatTokens(tok, "embedded"), policy, turns=3, seed=0,
                profile=None,
            )  # fmt: skip
            convs = [
                Conversation(f"persona:{i}", {"profile": "p", "personality": "q"}, f"c{i}") for i in range(2)
            ]
            rollout.run(convs)
        finally:
            loop.run(stack.aclose())
            loop.close()
    assert all(c.error is not None for c in convs)
    assert policy.asked == ([[]] * 3 if collective else [])  # one (empty) call per turn, or none
    # what TRL still gets: one masked-out token, its log-probability 0.0 (no advantage, no loss)
    assert all(c.completion_ids and c.env_mask == [0] and c.logprobs == [0.0] for c in convs)
