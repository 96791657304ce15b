"""The Janus recipe end to end on CPU, the embedded model everywhere: SFT on Multifaceted rows, DPO and
ORPO from the SFT checkpoint, a two-stage reward model, all in Janus's [INST] format; base, SFT, DPO
and ORPO scored on the same Multifaceted Bench instance by the same judge; one comparison row per
checkpoint; the same command again redoes nothing."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("trl")

from aloe_train.formatting import JANUS_TEMPLATE  # noqa: E402

SFT_ROW = {
    "main_source": "Nectar", "original_source": "sharegpt",
    "preference_set": [{"dimension": "style", "subdimension": "concise", "preference": "short", "description": "d"}],
    "system": "You answer in one short sentence.", "prompt": "What is the capital of France?",
    "output": "Paris is the capital of France.",
}  # fmt: skip
PAIR_ROW = {
    "main_source": "Nectar", "original_source": "sharegpt", "system": "You answer in one short sentence.",
    "prompt": "What is the capital of France?",
    "chosen": [{"content": "What is the capital of France?", "role": "user"}, {"content": "Paris.", "role": "assistant"}],
    "rejected": [{"content": "What is the capital of France?", "role": "user"},
                 {"content": "It is a long story.", "role": "assistant"}],
}  # fmt: skip
RM_ROW = {"input": "What is the capital of France?", "chosen": "Paris.", "rejected": "It is a long story."}
# One Multifaceted Bench instance in the release's schema (two rubrics, short texts): every checkpoint is
# judged rubric by rubric as on the shipped sample, at a quarter of the 135M judge's prompt tokens.
BENCH = Path(__file__).parent / "data" / "multifaceted_small.jsonl"


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run_pipeline(tmp_path: Path, work: Path) -> subprocess.CompletedProcess:
    sft = write_jsonl(tmp_path / "sft.jsonl", [SFT_ROW, {**SFT_ROW, "system": "You are terse."}])
    pairs = write_jsonl(tmp_path / "pairs.jsonl", [PAIR_ROW, {**PAIR_ROW, "system": "You are terse."}])
    rm = write_jsonl(tmp_path / "rm.jsonl", [RM_ROW, RM_ROW])
    args = [
        "pipeline", "--recipe", "janus", "--model", "embedded", "--methods", "sft,dpo,orpo,rm",
        "--data", sft, "--pairs", pairs, "--rm-data", rm, "--rm-stage2-data", pairs,
        "--prompt-format", "janus", "--bench", BENCH, "--eval-limit", "1", "--max-new-tokens", "16",
        "--bon-n", "2",  # best-of-2 of the SFT model under the trained reward model
        # forwarded to every training stage that knows them (TRL's own flags)
        "--max-steps", "1", "--max-length", "256", "--per-device-train-batch-size", "2",
        "--gradient-accumulation-steps", "1", "--learning_rate", "1e-4", "--warmup_steps", "0",
        "--output", work, "--cache", work / "calls.sqlite",
    ]  # fmt: skip
    return subprocess.run(
        [sys.executable, "-m", "aloe_train.cli", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=1200,
        env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
    )


def first_tensor(folder: Path, name: str = "model.layers.0.self_attn.q_proj.weight"):
    from safetensors import safe_open

    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        return f.get_tensor(name)


@pytest.mark.slow
def test_janus_pipeline_trains_scores_and_compares_every_checkpoint(tmp_path, embedded_checkpoint):
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    work = tmp_path / "work"
    result = run_pipeline(tmp_path, work)
    assert result.returncode == 0, result.stderr[-3000:]

    base = first_tensor(embedded_checkpoint)
    for method, loader in (
        ("sft", AutoModelForCausalLM),
        ("dpo", AutoModelForCausalLM),
        ("orpo", AutoModelForCausalLM),
        ("rm", AutoModelForSequenceClassification),
    ):
        folder = work / method
        record = json.loads((folder / "aloe_train.json").read_text())
        assert record["config"]["kind"] == method and record["train"]["steps"] == 1
        assert record["config"]["preset"] == "janus"
        assert loader.from_pretrained(folder) is not None  # a loadable checkpoint
        assert not (first_tensor(folder) == base).all(), f"{method} did not change the weights"
        assert AutoTokenizer.from_pretrained(folder).chat_template == JANUS_TEMPLATE
    # DPO and ORPO started from the SFT checkpoint; the reward model from the base, in two stages
    for method in ("dpo", "orpo"):
        assert json.loads((work / method / "aloe_train.json").read_text())["base"]["spec"] == str(
            work / "sft"
        )
    rm = json.loads((work / "rm" / "aloe_train.json").read_text())
    assert rm["base"]["spec"] == str(work / "rm.stage1") and rm["stage1"]["data"]["format"] == "rm"

    # the base is scored in the format the checkpoints were trained with: its weights, Janus's template
    view = work / "base_view"
    assert AutoTokenizer.from_pretrained(view).chat_template == JANUS_TEMPLATE
    assert (view / "model.safetensors").resolve() == (embedded_checkpoint / "model.safetensors").resolve()

    # base and every policy checkpoint: the same instance, the same judge
    labels = ["base", "sft", "dpo", "orpo"]
    seen = set()
    for label in labels:
        results = json.loads((work / "eval" / label / "results.json").read_text())
        assert results["status"] == "complete" and results["config"]["kind"] == "multifaceted"
        convs = [
            json.loads(x) for x in (work / "eval" / label / "conversations.jsonl").read_text().splitlines()
        ]
        seen.add((tuple(c["id"] for c in convs), json.dumps(results["config"]["judge"], sort_keys=True)))
    assert len(seen) == 1
    with open(work / "comparison.csv") as f:
        table = list(csv.DictReader(f))
    assert sorted(r["label"] for r in table) == sorted([*labels, "bon2"])  # one row per checkpoint
    html = (work / "comparison.html").read_text()
    assert all(label in html for label in labels)
    # best-of-2: its two candidates and their rewards kept, the chosen one the reward model's first
    bon = [json.loads(x) for x in (work / "eval" / "bon2" / "conversations.jsonl").read_text().splitlines()]
    for conv in bon:
        for turn in conv["turns"]:
            kept = turn["best_of_n"]
            rewards = [c["reward"] for c in kept["candidates"]]
            assert len(rewards) == 2 and kept["candidates"][kept["chosen"]]["reward"] == max(rewards)
    assert "paired Δ" in result.stdout and "comparison.csv" in result.stdout

    # the same command again: every stage is finished, nothing is trained or generated again
    def eval_calls():
        return {
            label: {
                role: u["calls"]
                for role, u in json.loads((work / "eval" / label / "results.json").read_text())[
                    "usage"
                ].items()
            }
            for label in labels
        }

    calls_before = eval_calls()
    again = run_pipeline(tmp_path, work)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stderr.count("already holds this training") == 5  # sft, dpo, orpo, rm stage 1 and 2
    assert eval_calls() == calls_before
