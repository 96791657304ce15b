"""The trainers on the embedded model (real TRL, CPU, a few steps): learning, every TRL option reaching
the trainer, Janus's raw prompt format, ORPO and the two-stage reward model on rows in the released
schemas, and a SIGKILL in the middle of training resumed by the same command."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("trl")

from aloe_train.formatting import JANUS_TEMPLATE  # noqa: E402
from aloe_train.train import ARGS_FILE, RECORD_FILE, run  # noqa: E402

SFT_ROWS = [
    {
        "main_source": "Nectar", "original_source": "sharegpt",
        "preference_set": [{"dimension": "style", "subdimension": "concise", "preference": "short", "description": "d"}],
        "system": "You answer in one short sentence.", "prompt": "What is the capital of France?",
        "output": "Paris is the capital of France.",
    },
    {
        "main_source": "OpenHermesPreferences", "original_source": "glaive",
        "preference_set": [{"dimension": "style", "subdimension": "vivid", "preference": "analogies", "description": "d"}],
        "system": "You are a patient teacher who uses analogies.", "prompt": "Explain voltage.",
        "output": "Voltage is like water pressure in a pipe.",
    },
]  # fmt: skip


def pair(system, prompt, chosen, rejected):  # the -ORPO/-DPO splits: replies as message lists
    return {
        "main_source": "Nectar", "original_source": "sharegpt", "system": system, "prompt": prompt,
        "chosen": [{"content": prompt, "role": "user"}, {"content": chosen, "role": "assistant"}],
        "rejected": [{"content": prompt, "role": "user"}, {"content": rejected, "role": "assistant"}],
    }  # fmt: skip


PAIR_ROWS = [
    pair(
        "You answer in one short sentence.", "What is the capital of France?", "Paris.", "It is a long story."
    ),
    pair("You are a patient teacher who uses analogies.", "Explain voltage.", "Like water pressure.", "V."),
]
RM_ROWS = [  # the -RM split
    {"input": "What is the capital of France?", "chosen": "Paris.", "rejected": "It is a long story."},
    {"input": "Explain voltage.", "chosen": "Like water pressure in a pipe.", "rejected": "V."},
]
TINY = ["--per-device-train-batch-size", "2", "--gradient-accumulation-steps", "1", "--max-length", "256"]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def losses(record: dict) -> list[float]:
    return [h["loss"] for h in record["log_history"] if "loss" in h]


def test_sft_learns_and_every_trl_option_reaches_the_trainer(tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)
    out = tmp_path / "sft"
    argv = [
        "--model", "embedded", "--data", str(data), "--output", str(out), *TINY, "--max-steps", "5",
        "--learning_rate", "1e-4", "--logging_steps", "1", "--save_strategy", "no", "--no-packing",
        "--weight_decay", "0.1", "--optim", "adafactor",
    ]  # fmt: skip
    record = run("sft", argv)
    curve = losses(record)
    assert len(curve) == 5 and curve[-1] < 0.5 * curve[0], curve  # it learns the two replies
    saved = json.loads((out / ARGS_FILE).read_text())  # what the TRL trainer ran with
    assert saved["weight_decay"] == 0.1 and saved["optim"] == "adafactor" and saved["learning_rate"] == 1e-4
    assert record["config"]["preset"] == "aloe" and saved["gradient_accumulation_steps"] == 1
    assert record["base"]["prompt_format"] == "template"  # the embedded model has a chat template
    # the same command again: nothing to do
    started = time.perf_counter()
    assert run("sft", argv)["config_hash"] == record["config_hash"]
    assert time.perf_counter() - started < 30


def test_janus_format_orpo_and_two_stage_reward_model_on_released_schemas(tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    pairs = write_jsonl(tmp_path / "orpo.jsonl", PAIR_ROWS)
    rm = write_jsonl(tmp_path / "rm.jsonl", RM_ROWS)
    common = [
        "--model",
        "embedded",
        "--prompt_format",
        "janus",
        *TINY,
        "--logging_steps",
        "1",
        "--save_strategy",
        "no",
    ]
    orpo = run("orpo", [*common, "--data", str(pairs), "--output", str(tmp_path / "orpo"), "--max-steps", "3",
                        "--learning_rate", "1e-4"])  # fmt: skip
    margins = [h["rewards/margins"] for h in orpo["log_history"] if "rewards/margins" in h]
    assert margins[-1] > margins[0], margins  # ORPO moves the chosen reply above the rejected one
    tok = AutoTokenizer.from_pretrained(tmp_path / "orpo")
    assert tok.chat_template == JANUS_TEMPLATE  # saved: evaluation renders what training rendered
    text = tok.apply_chat_template(
        [{"role": "system", "content": "S"}, {"role": "user", "content": "I"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert text.endswith("[INST] S\nI [/INST]")

    record = run("rm", [*common, "--data", str(rm), "--output", str(tmp_path / "rm"), "--max-steps", "3",
                        "--stage2_data", str(pairs), "--learning_rate", "1e-4"])  # fmt: skip
    stage1 = tmp_path / "rm.stage1"
    assert json.loads((stage1 / RECORD_FILE).read_text())["data"]["format"] == "rm"
    assert record["data"]["format"] == "pairs" and record["stage1"]["train"]["steps"] == 3
    assert record["base"]["spec"] == str(stage1)  # stage 2 starts from stage 1's weights
    accuracy = [h["accuracy"] for h in record["log_history"] if "accuracy" in h]
    assert accuracy and max(accuracy) == 1.0
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm")  # loadable reward model
    assert model.config.num_labels == 1
    with safe_open(str(tmp_path / "rm" / "model.safetensors"), "pt") as f:
        assert any(k.startswith("score") for k in f.keys())  # noqa: SIM118 - safe_open is not iterable


def test_sigkill_in_the_middle_of_training_resumes_from_the_last_checkpoint(tmp_path):
    data = write_jsonl(tmp_path / "sft.jsonl", SFT_ROWS)
    out = tmp_path / "sft"
    steps = 4  # killed once checkpoint 2 is on disk, so 1 or 2 steps remain for the second run
    cmd = [
        sys.executable, "-m", "aloe_train.cli", "sft", "--model", "embedded", "--data", str(data),
        "--output", str(out), *TINY, "--max-steps", str(steps), "--save_steps", "1", "--logging_steps", "1",
        "--save_total_limit", "2", "--no-packing",
    ]  # fmt: skip
    env = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 600
    while time.time() < deadline and not (out / "checkpoint-2" / "trainer_state.json").is_file():
        assert proc.poll() is None, "training ended before it could be killed"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / RECORD_FILE).exists()  # killed before the end

    again = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
    assert again.returncode == 0, again.stderr[-3000:]
    resumed = [line for line in again.stderr.splitlines() if "resuming from" in line]
    assert len(resumed) == 1, again.stderr[-2000:]
    record = json.loads((out / RECORD_FILE).read_text())
    start = int(Path(record["train"]["resumed_from"]).name.split("-")[1])
    assert start >= 2 and record["train"]["steps"] == steps
    # only the steps after the checkpoint ran again: the second run logged those, and the history
    # (the checkpoint's, continued) has every step once
    assert (again.stdout + again.stderr).count("'loss':") == steps - start
    assert [h["step"] for h in record["log_history"] if "loss" in h] == list(range(1, steps + 1))
    assert not list(out.glob("checkpoint-*")) and (out / "model.safetensors").is_file()
