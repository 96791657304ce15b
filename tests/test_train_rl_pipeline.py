"""`aloe-train pipeline --recipe rl` end to end on CPU: training personas -> preference conversations
-> SFT warm start -> GRPO against the simulated user from the SFT checkpoint (the embedded model is
the policy) -> base, SFT and RL checkpoints scored by aloe-bench on held-out personas -> the
comparison; then the same command resumes without training or calling anything again.

Every other role (simulated user, extractor, responders, judges) is the fake OpenAI server (real
HTTP on 127.0.0.1): its one scripted answer reads as an extraction ("Profile: / Personality:") and as
a preference ("B"), and its 1-5 judge scores vary with the reply (`judge_by_content`), so rewards
differ inside a GRPO group, GRPO has a gradient and the checkpoint's weights move.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from aloe_bench.errors import UserInputError
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

pytest.importorskip("trl")

PERSONAS = Path(__file__).parent / "data" / "short_personas.jsonl"  # short texts: a 135M model copes


def _split_personas(tmp_path: Path) -> tuple[Path, Path]:
    """Two training personas and two held-out ones (disjoint)."""
    lines = PERSONAS.read_text().splitlines(keepends=True)
    train, held_out = tmp_path / "train.jsonl", tmp_path / "held_out.jsonl"
    train.write_text("".join(lines[:2]))
    held_out.write_text("".join(lines[2:4]))
    return train, held_out


def _argv(work: Path, server: FakeOpenAIServer, train: Path, held_out: Path) -> list[str]:
    return [str(a) for a in [
        "pipeline", "--recipe", "rl", "--methods", "sft,rl", "--model", "embedded", "--output", work,
        "--generator", "openai/fake-model", "--generator-args", f"base_url={server.base_url}",
        "--personas", train, "--passes", "1", "--turns", "2", "--max-new-tokens", "8",
        "--eval-personas", held_out, "--eval-limit", "2", "--eval-turns", "1",
        "--cache", work / "calls.sqlite", "--seed", "1",
        # forwarded to the stages that know them (SFT and RL; GRPO's own to RL only), over the presets
        "--max_steps", "2", "--num_generations", "2", "--per_device_train_batch_size", "4",
        "--gradient_accumulation_steps", "1", "--max_completion_length", "8",
        "--learning_rate", "1e-4", "--lr_scheduler_type", "constant",
    ]]  # fmt: skip


def _first_tensor(folder: Path, name: str = "model.layers.0.self_attn.q_proj.weight"):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return f.get_tensor(name)


def _eval_calls(work: Path) -> dict:
    """Calls per role of each evaluation (a run's usage counts every invocation of it)."""
    out = {}
    for label in ("base", "sft", "rl"):
        usage = json.loads((work / "eval" / label / "results.json").read_text())["usage"]
        out[label] = {role: u["calls"] for role, u in usage.items()}
    return out


@pytest.mark.slow
def test_rl_recipe_trains_scores_compares_and_resumes(tmp_path, capsys, embedded_checkpoint):
    from aloe_train.cli import main

    train, held_out = _split_personas(tmp_path)
    work = tmp_path / "work"
    answer = "B\nProfile: He bakes.\nPersonality: Calm."  # a choice and an extraction, in 8 words
    with FakeOpenAIServer(FakeBehaviour(judge_by_content=True, model_answers=[answer])) as server:
        assert main(_argv(work, server, train, held_out)) == 0
        first = capsys.readouterr()

        # the warm start: SFT on the generated conversations, weights moved
        sft = json.loads((work / "sft" / "aloe_train.json").read_text())
        assert sft["train"]["steps"] == 2 and sft["data"]["trained_replies"] > 0
        assert not (_first_tensor(work / "sft") == _first_tensor(embedded_checkpoint)).all(), "SFT: no change"
        # RL from the SFT checkpoint: the rlpa preset under the pipeline's settings and forwarded flags
        record = json.loads((work / "rl" / "aloe_train.json").read_text())
        assert record["kind"] == "rl" and record["train"]["steps"] == 2
        assert record["config"]["model"]["model_name_or_path"] == f"hf/{work / 'sft'}"
        assert record["config"]["grpo"]["num_generations"] == 2
        assert record["config"]["grpo"]["beta"] == 0.04  # from the rlpa preset, not overridden
        assert record["config"]["script"]["turns"] == 2
        assert record["personas"]["held_out"] == {"set": str(held_out), "checked": 2}  # the held-out file
        rollouts = (work / "rl" / "rollouts.jsonl").read_text().splitlines()
        assert len(rollouts) == 2 * 4  # 2 steps x (2 personas x 2 generations)
        assert not (_first_tensor(work / "rl") == _first_tensor(work / "sft")).all(), "RL: no change"

        # base and both checkpoints scored on the same held-out personas, compared with n
        persona_sets = set()
        for label, spec in (("base", "embedded"), ("sft", f"hf/{work / 'sft'}"), ("rl", f"hf/{work / 'rl'}")):
            results = json.loads((work / "eval" / label / "results.json").read_text())
            assert results["status"] == "complete" and results["config"]["model"]["spec"] == spec
            persona_sets.add(results["config"]["personas"]["sha256"])
        assert len(persona_sets) == 1
        with open(work / "comparison.csv") as f:
            table = {row["label"]: row for row in csv.DictReader(f)}
        assert {label: row["model"] for label, row in table.items()} == {
            "base": "embedded", "sft": "hf/sft", "rl": "hf/rl"
        }  # fmt: skip
        # each AVG with its interval and n; each checkpoint paired against the base on the same 2 personas
        assert all(int(r["conversations"]) == 2 and r["avg_lo"] and r["avg_hi"] for r in table.values())
        assert all(float(table[m]["paired_n"]) == 2 and table[m]["paired_diff"] != "" for m in ("sft", "rl"))
        assert "paired Δ" in first.out and "comparison.csv" in first.out

        calls_before, weights_before = (
            _eval_calls(work),
            (work / "rl" / "model.safetensors").stat().st_mtime_ns,
        )
        requests_before = len(server.requests)
        assert main(_argv(work, server, train, held_out)) == 0
        again = capsys.readouterr()
    assert again.err.count("already holds this training") == 2  # SFT and RL
    assert (work / "rl" / "model.safetensors").stat().st_mtime_ns == weights_before  # not retrained
    assert (work / "rl" / "rollouts.jsonl").read_text().splitlines() == rollouts
    assert _eval_calls(work) == calls_before and len(server.requests) == requests_before  # no new call


def test_rl_recipe_refuses_held_out_personas_and_bad_methods(tmp_path, capsys):
    from aloe_train.pipeline import PipelineConfig, run_pipeline

    config = PipelineConfig(
        output=str(tmp_path / "w"), model="embedded", recipe="rl", personas=str(PERSONAS),
        eval_personas=str(PERSONAS), max_new_tokens=8,
    )  # fmt: skip
    with pytest.raises(UserInputError, match="evaluation set"):  # before any model is loaded
        run_pipeline(config)
    with pytest.raises(UserInputError, match="must include rl"):
        PipelineConfig(output="w", model="embedded", recipe="rl", methods="sft").validate()
    with pytest.raises(UserInputError, match="unknown method"):
        PipelineConfig(output="w", model="embedded", recipe="rl", methods="rl,dpo").validate()


def test_rl_stage_is_composed_like_the_others(tmp_path):
    """preset rlpa < --rl-config < the pipeline's settings < forwarded flags the RL trainer knows."""
    from aloe_train.pipeline import PipelineConfig, stage_argv, unknown_train_flag
    from aloe_train.pipeline_rl import rl_settings
    from aloe_train.rl import parse_rl

    stage_file = tmp_path / "rl.yaml"
    stage_file.write_text("beta: 0.1\nnum_generations: 4\n")
    config = PipelineConfig(
        output=str(tmp_path / "w"), model="embedded", recipe="rl", rl_config=str(stage_file), turns=3,
        generator="openai/m", generator_args="base_url=http://127.0.0.1:1/v1",
        train_args=["--num_generations", "2", "--max-length", "64", "--judge", "openai/other"],
    )  # fmt: skip
    assert unknown_train_flag(config.train_args)[0] is None  # RL's flags are the pipeline's too
    stage = parse_rl(stage_argv(config, "rl", rl_settings(config, tmp_path / "w", "embedded")))
    assert stage.train.beta == 0.1  # the stage file over the preset (rlpa: 0.04)
    assert stage.train.num_generations == 2  # the command line over the stage file
    assert stage.train.warmup_steps == 10  # the rlpa preset
    assert stage.script.turns == 3 and stage.script.simulator == "openai/m"
    assert stage.script.judge == "openai/other"  # a forwarded RL flag wins over --generator
    assert stage.script.judge_args == "base_url=http://127.0.0.1:1/v1"
    assert stage.train.save_strategy == "steps"  # resumable: TRL checkpoints beside the output
