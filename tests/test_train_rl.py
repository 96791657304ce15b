"""`aloe-train rl`: GRPO over whole conversations with the simulated user, on the embedded model.

The learning test uses a judge whose reward is known by construction (`rule-word/WORD`: more of one
word, higher score), so a rising mean reward shows that simulator -> policy -> judge -> gradient is
wired right. The simulated user is the fake OpenAI server (real HTTP on 127.0.0.1) to keep the CPU
time on the policy; the checkpoint is then scored by `aloe-bench run` like any other model.
"""

from __future__ import annotations

import json

import pytest
from conftest import read_run

import aloe_bench.testing.rule_judge  # noqa: F401  (registers rule-word/WORD)
from aloe_bench.errors import UserInputError
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from aloe_train.rl import parse_rl, run_rl
from aloe_train.rl_rollout import ChatTokens, Conversation

WORD = "a"  # in ~40% of the 135M model's short replies at the start: a reward that varies inside a group
# What the simulated user says every turn: short, so that the sequences GRPO trains on (and the CPU
# time of every step) stay small; the rule judge reads only the replies.
USER_SAYS = "What should I cook tonight?"


def _server() -> FakeOpenAIServer:
    return FakeOpenAIServer(FakeBehaviour(model_answers=[USER_SAYS]))


def _argv(out, server, aloe_data_dir, *extra):
    return [
        "--model", "embedded", "--output", out,
        "--simulator", "openai/fake-model", "--simulator_args", f"base_url={server.base_url}",
        "--judge", f"rule-word/{WORD}",
        "--personas", "demo", "--limit", "2", "--data_dir", aloe_data_dir, "--turns", "2",
        "--num_generations", "3", "--per_device_train_batch_size", "6",
        "--max_completion_length", "12", "--temperature", "1.0",
        "--learning_rate", "2e-4", "--lr_scheduler_type", "constant", "--seed", "1",
        "--cache", "", *extra,
    ]  # fmt: skip


@pytest.mark.slow
def test_reward_rises_and_the_checkpoint_is_scored(cli, tmp_path, aloe_data_dir):
    out = tmp_path / "rl"
    with _server() as server:
        record = run_rl([str(a) for a in _argv(out, server, aloe_data_dir, "--max_steps", "6")])
        rewards = [e["reward"] for e in record["log_history"] if "reward" in e]
        assert len(rewards) == 6 and all(r is not None for r in rewards)
        # each step: 2 personas x 3 conversations x 2 turns, every reply judged
        assert record["usage"]["judge"]["calls"] == 6 * 6 * 2
        first, last = sum(rewards[:3]) / 3, sum(rewards[-3:]) / 3  # steps 1-3 against steps 4-6
        assert last > first + 0.3, rewards

        lines = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
        assert len(lines) == 6 * 6 and {x["step"] for x in lines} == set(range(6))
        for line in lines:
            assert [t["score"] for t in line["turns"]] == [
                aloe_bench.testing.rule_judge.word_score(t["assistant"], WORD) for t in line["turns"]
            ]

        code, stdout, err = cli(
            "run", "--model", f"hf/{out}", "--simulator", "openai/fake-model", "--simulator-base-url",
            server.base_url, "--judge", "openai/fake-model", "--judge-base-url", server.base_url,
            "--personas", "demo", "--limit", "2", "--turns", "2", "--max-new-tokens", "8",
            "--no-progress", "--output", tmp_path / "eval", "--cache", tmp_path / "eval.sqlite",
        )  # fmt: skip
        assert code == 0, stdout + err
        results, convs = read_run(tmp_path / "eval")
        assert results["status"] == "complete" and len(results["metrics"]["al"]) == 2
        assert all(t["assistant"] for c in convs for t in c["turns"])


def test_overlap_with_the_evaluation_set_is_refused(tmp_path, aloe_data_dir):
    official = [json.loads(x) for x in (aloe_data_dir / "profile_eval.jsonl").read_text().splitlines()[:1]]
    persona_file = tmp_path / "mine.jsonl"
    persona_file.write_text(json.dumps({"profile": official[0], "personality": "Calm."}) + "\n")
    stage = parse_rl(
        ["--model", "embedded", "--output", str(tmp_path / "o"), "--personas", str(persona_file),
         "--data_dir", str(aloe_data_dir)]
    )  # fmt: skip
    from aloe_train.rl import training_personas

    with pytest.raises(UserInputError, match="evaluation set"):
        training_personas(stage.script, 0)


def test_every_grpo_option_is_a_flag_and_bad_input_is_one_line(tmp_path):
    stage = parse_rl(
        ["--model", "embedded", "--output", str(tmp_path / "o"), "--beta", "0.02", "--num_generations", "4",
         "--use_peft", "--lora_r", "4", "--preset", "rlpa"]
    )  # fmt: skip
    assert stage.train.beta == 0.02 and stage.train.num_generations == 4  # flags over the preset
    assert stage.train.warmup_steps == 10 and stage.model.use_peft and stage.model.lora_r == 4
    with pytest.raises(UserInputError, match="reward_weights"):
        parse_rl(["--model", "embedded", "--output", str(tmp_path / "o"), "--reward_weights", "1", "2"])
    with pytest.raises(UserInputError, match="--output is required"):
        parse_rl(["--model", "embedded"])


@pytest.fixture(scope="module")
def tokenizer(embedded_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(embedded_checkpoint)


def test_a_conversation_is_one_token_sequence_with_replies_masked_in(tokenizer):
    chat = ChatTokens(tokenizer, "embedded")
    conv = Conversation("persona:0", {"profile": "p", "personality": "q"}, "c")
    chat.open(conv, "hello there")
    conv.turns.append({"user": "hello there", "assistant": None})
    reply_ids = tokenizer("Hi! How are you?", add_special_tokens=False)["input_ids"] + [
        tokenizer.eos_token_id
    ]
    conv.turns[-1]["assistant"] = chat.reply(conv, reply_ids)
    chat.next_user(conv, "fine, thanks")
    full = tokenizer.apply_chat_template(
        [
            {"role": "user", "content": "hello there"},
            {"role": "assistant", "content": "Hi! How are you?"},
            {"role": "user", "content": "fine, thanks"},
        ],
        tokenize=False,
        add_generation_prompt=True,
    )
    # the pieces are exactly the template's text, and only the reply is trained
    assert tokenizer.decode(conv.prompt_ids + conv.completion_ids) == full
    trained = [t for t, m in zip(conv.completion_ids, conv.env_mask, strict=True) if m]
    assert trained == reply_ids
    assert sum(conv.env_mask) == len(reply_ids) < len(conv.env_mask)


@pytest.mark.slow
def test_lora_and_profile_reward_through_the_cli(tmp_path, aloe_data_dir, capsys):
    """LoRA (peft) merged into the saved checkpoint; RLPA's profile reward as a second reward function."""
    from transformers import AutoModelForCausalLM

    from aloe_train.cli import main

    out = tmp_path / "rl"
    with _server() as server:
        argv = _argv(out, server, aloe_data_dir, "--max_steps", "1", "--use_peft", "--lora_r", "4",
                     "--profile_reward", "--reward_weights", "1.0", "0.5")  # fmt: skip
        assert main(["rl", *map(str, argv)]) == 0
    printed = capsys.readouterr().out
    assert "1 GRPO steps" in printed and "judge: " in printed
    record = json.loads((out / "aloe_train.json").read_text())
    (step,) = [e for e in record["log_history"] if "reward" in e]
    assert step["rewards/profile_reward/mean"] is not None and step["rewards/aloe_reward/mean"] is not None
    lines = [json.loads(x) for x in (out / "rollouts.jsonl").read_text().splitlines()]
    for line in lines:
        assert line["profile_score"] == aloe_bench.testing.rule_judge.word_score(
            line["profile_statement"], WORD
        )
    # per conversation: 2 reply judgements + 1 profile judgement
    assert record["usage"]["judge"]["calls"] == len(lines) * 3
    assert not (out / "adapter_config.json").exists()  # merged: a plain checkpoint
    AutoModelForCausalLM.from_pretrained(out)


@pytest.mark.slow
def test_killed_run_resumes_from_its_last_checkpoint(tmp_path, aloe_data_dir):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "rl"
    with _server() as server:
        # the rule judge registers itself on import; the child process imports it first
        entry = "import sys, aloe_bench.testing.rule_judge; from aloe_train.cli import main; sys.exit(main())"
        argv = [sys.executable, "-c", entry, "rl", *map(str, _argv(out, server, aloe_data_dir)),
                "--max_steps", "3", "--num_generations", "2", "--per_device_train_batch_size", "2",
                "--max_completion_length", "8", "--save_strategy", "steps", "--save_steps", "1"]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        first = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        state = tmp_path / ".rl.trainer" / "checkpoint-1" / "trainer_state.json"
        deadline = time.time() + 600
        while not state.is_file() and first.poll() is None and time.time() < deadline:
            time.sleep(0.5)
        time.sleep(1)
        first.send_signal(signal.SIGKILL)
        first.wait()
        assert state.is_file() and not (out / "aloe_train.json").exists()

        again = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
        assert again.returncode == 0, again.stderr[-2000:]
        assert "resuming from" in again.stderr
    record = json.loads((out / "aloe_train.json").read_text())
    assert record["resumed_from"].endswith(("checkpoint-1", "checkpoint-2")) and record["train"]["steps"] == 3
    steps = [json.loads(x)["step"] for x in (out / "rollouts.jsonl").read_text().splitlines()]
    assert sorted(steps) == [0, 0, 1, 1, 2, 2]  # each step's conversations once: none lost, none twice
    assert not (tmp_path / ".rl.trainer").exists()
