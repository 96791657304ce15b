"""Trainer options are TRL's own (TrlParser), presets are the papers' numbers, data is recognised by its
columns and a bad row is named. No model is loaded here."""

from __future__ import annotations

import json
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest
import yaml

from aloe_bench.errors import UserInputError

pytest.importorskip("trl")

from aloe_train.args import parse_stage  # noqa: E402
from aloe_train.data import pair_rows, read_rows  # noqa: E402

# SPEC 1.5 (ALOE) and 2.3 (Janus), transcribed number by number. Janus-RM: SPEC states none; the
# release's script does (kaistAI/Janus train/openrlhf/scripts/train_rm.sh: lr 9e-6, 1 epoch, max_len
# 2048, micro-batch 8, global batch 128 on 4 GPUs).
SPEC = {
    ("aloe", "sft"): {
        "learning_rate": 1e-5, "num_train_epochs": 1, "per_device_train_batch_size": 1,
        "gradient_accumulation_steps": 48, "max_length": 8192, "packing": True,
    },
    ("aloe", "dpo"): {
        "beta": 0.9, "learning_rate": 1e-5, "per_device_train_batch_size": 4,
        "gradient_accumulation_steps": 12, "num_train_epochs": 1, "max_length": 8192,
    },
    ("janus", "sft"): {
        "num_train_epochs": 4, "learning_rate": 5e-6, "max_length": 8192, "packing": True,
        "per_device_train_batch_size": 2, "gradient_accumulation_steps": 4,
        "lr_scheduler_type": "cosine", "warmup_steps": 10,
    },
    ("janus", "dpo"): {"num_train_epochs": 2, "learning_rate": 5e-7, "max_length": 2048},
    ("janus", "orpo"): {"beta": 0.1, "learning_rate": 5e-6, "num_train_epochs": 2},
    ("janus", "rm"): {
        "learning_rate": 9e-6, "num_train_epochs": 1, "max_length": 2048, "per_device_train_batch_size": 8,
        "gradient_accumulation_steps": 4,
    },
}  # fmt: skip
BASE = ["--model", "embedded", "--data", "x.jsonl", "--output", "/tmp/unused"]


def preset_file(name: str, kind: str) -> dict:
    return (
        yaml.safe_load((resources.files("aloe_train") / "presets" / f"{name}_{kind}.yaml").read_text()) or {}
    )


def test_every_preset_is_the_papers_table_to_the_number():
    shipped = sorted(
        p.name for p in (resources.files("aloe_train") / "presets").iterdir() if p.name.endswith(".yaml")
    )
    assert shipped == sorted(f"{n}_{k}.yaml" for n, k in SPEC)
    for (name, kind), numbers in SPEC.items():
        assert preset_file(name, kind) == numbers, (name, kind)
        # and the parsed TRL config carries them (the YAML's keys are real fields of this TRL)
        stage = parse_stage(kind, [*BASE, "--preset", name])
        for key, value in numbers.items():
            got = getattr(stage.train, key)
            assert (got.value if hasattr(got, "value") else got) == value, (name, kind, key)


def test_flags_override_config_which_overrides_the_preset(tmp_path):
    config = tmp_path / "dpo.yaml"
    config.write_text("learning_rate: 3.0e-6\nbeta: 0.5\nweight_decay: 0.05\n")
    stage = parse_stage("dpo", [*BASE, "--preset", "janus", "--config", str(config), "--beta", "0.2"])
    assert stage.train.learning_rate == 3e-6  # config over preset (janus: 5e-7)
    assert stage.train.beta == 0.2  # flag over config
    assert stage.train.max_length == 2048 and stage.train.num_train_epochs == 2  # preset kept
    assert stage.train.weight_decay == 0.05  # an option the project never mentions
    # the preset may be named in the YAML too
    config.write_text("preset: janus\nbeta: 0.5\n")
    from_yaml = parse_stage("dpo", [*BASE, "--config", str(config)])
    assert (
        from_yaml.preset == "janus" and from_yaml.train.learning_rate == 5e-7 and from_yaml.train.beta == 0.5
    )
    # TRL's defaults with --preset none
    none = parse_stage("dpo", [*BASE, "--preset", "none"])
    assert none.train.beta == 0.1 and none.train.learning_rate == 1e-6


def test_old_flag_names_and_any_trl_or_peft_option_reach_the_configs():
    stage = parse_stage(
        "sft",
        [
            "--model", "embedded", "--data", "d.jsonl", "--output", "/tmp/o", "--max-steps", "2",
            "--no-packing", "--lora", "--lora-r", "8", "--lora-target-modules", "q_proj,v_proj",
            "--weight_decay", "0.1", "--optim", "adafactor", "--eval_strategy", "no",
            "--adam_beta2", "0.95", "--gradient-accumulation-steps", "3", "--target", "rejected",
        ],
    )  # fmt: skip
    t, m = stage.train, stage.model
    assert (t.max_steps, t.packing, t.gradient_accumulation_steps) == (2, False, 3)
    assert t.weight_decay == 0.1 and t.optim.value == "adafactor" and t.adam_beta2 == 0.95
    assert m.model_name_or_path == "embedded" and m.use_peft and m.lora_r == 8
    assert m.lora_target_modules == ["q_proj", "v_proj"] and t.output_dir == "/tmp/o"
    assert stage.script.target == "rejected" and stage.preset == "aloe"


def test_bad_options_are_one_line():
    with pytest.raises(UserInputError, match="no aloe preset for orpo"):
        parse_stage("orpo", [*BASE, "--preset", "aloe"])
    with pytest.raises(UserInputError, match="--data is required"):
        parse_stage("sft", ["--model", "embedded", "--output", "/tmp/o"])
    with pytest.raises(UserInputError, match="--mix_ratio needs --mix_data"):
        parse_stage("sft", [*BASE, "--mix_ratio", "0.2"])


# -- data: released schemas (column names as on the hub) ---------------------------------------------------
SFT_ROW = {
    "main_source": "Nectar", "original_source": "sharegpt",
    "preference_set": [{"dimension": "style", "subdimension": "concise", "preference": "short", "description": "d"}],
    "system": "You answer briefly.", "prompt": "Capital of France?", "output": "Paris.",
}  # fmt: skip
PAIR_ROW = {  # -DPO / -ORPO: chosen and rejected are message lists
    "main_source": "Nectar", "original_source": "sharegpt", "system": "You answer briefly.",
    "prompt": "Capital of France?",
    "chosen": [{"content": "Capital of France?", "role": "user"}, {"content": "Paris.", "role": "assistant"}],
    "rejected": [{"content": "Capital of France?", "role": "user"}, {"content": "Lyon, I think.", "role": "assistant"}],
}  # fmt: skip
RM_ROW = {"input": "Capital of France?", "chosen": "Paris.", "rejected": "Lyon, I think."}


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_older_column_names_of_the_dpo_split_are_read(tmp_path):
    old = {
        "system": "s",
        "instruction": "Capital of France?",
        "chosen_response": "Paris.",
        "rejected_response": "Lyon.",
    }
    rows, report = read_rows(str(write_jsonl(tmp_path / "old.jsonl", [old])), "auto")
    assert (
        report.format == "pairs"
        and rows[0]["prompt"] == "Capital of France?"
        and rows[0]["chosen"] == "Paris."
    )


def test_released_schemas_are_recognised_by_their_columns(tmp_path):
    for row, kind in ((SFT_ROW, "multifaceted"), (PAIR_ROW, "pairs"), (RM_ROW, "rm")):
        rows, report = read_rows(str(write_jsonl(tmp_path / f"{kind}.jsonl", [row])), "auto")
        assert report.format == kind and rows == [row]
    # Parquet, as the hub ships them, reads the same
    import pandas as pd

    pd.DataFrame([PAIR_ROW, PAIR_ROW]).to_parquet(tmp_path / "orpo.parquet")
    rows, report = read_rows(str(tmp_path / "orpo.parquet"), "auto")
    assert report.format == "pairs" and len(rows) == 2 and report.sha256


def test_a_dataset_repository_loads_through_datasets_with_its_split(tmp_path):
    """The hub's layout (data/<split>-*.parquet) read by datasets.load_dataset, as a hub name would be."""
    import pandas as pd

    (tmp_path / "repo" / "data").mkdir(parents=True)
    pd.DataFrame([RM_ROW] * 3).to_parquet(tmp_path / "repo" / "data" / "train-00000-of-00001.parquet")
    pd.DataFrame([RM_ROW]).to_parquet(tmp_path / "repo" / "data" / "test-00000-of-00001.parquet")
    rows, report = read_rows(str(tmp_path / "repo"), "auto")
    assert report.format == "rm" and len(rows) == 3 and report.file.endswith(":train")
    rows, report = read_rows(str(tmp_path / "repo"), "auto", split="test")
    assert len(rows) == 1 and report.sha256.startswith("hub:")


def test_pairs_are_conversational_whatever_the_released_shape(tmp_path):
    from transformers import AutoTokenizer

    from aloe_bench.models.backends.embedded import embedded_checkpoint

    tok = AutoTokenizer.from_pretrained(embedded_checkpoint())
    for row in (PAIR_ROW, RM_ROW):
        pairs, _ = pair_rows(tok, str(write_jsonl(tmp_path / "p.jsonl", [row])))
        assert pairs[0]["chosen"] == [{"role": "assistant", "content": "Paris."}]
        assert pairs[0]["rejected"] == [{"role": "assistant", "content": "Lyon, I think."}]
        assert pairs[0]["prompt"][-1] == {"role": "user", "content": "Capital of France?"}


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ({**SFT_ROW, "output": ""}, "line 2: field 'output' is empty"),
        ({**SFT_ROW, "output": 3}, "line 2: field 'output' is a int"),
        ({**SFT_ROW, "system": ["x"]}, "line 2: field 'system' is a list"),
    ],
)
def test_a_malformed_row_is_named_by_file_row_and_field(tmp_path, row, message):
    path = write_jsonl(tmp_path / "sft.jsonl", [SFT_ROW, row])
    with pytest.raises(UserInputError, match=rf"{path}: {message}"):
        read_rows(str(path), "auto")


def test_malformed_pair_in_parquet_and_wrong_data_for_the_trainer(tmp_path):
    import pandas as pd

    bad = {**PAIR_ROW, "rejected": [{"content": "x", "role": "user"}]}  # no assistant reply
    pd.DataFrame([PAIR_ROW, PAIR_ROW, bad]).to_parquet(tmp_path / "dpo.parquet")
    with pytest.raises(UserInputError, match=r"dpo.parquet: row 3: field 'rejected'"):
        read_rows(str(tmp_path / "dpo.parquet"), "auto")
    rm = write_jsonl(tmp_path / "rm.jsonl", [RM_ROW])
    with pytest.raises(UserInputError, match="rm rows cannot train SFT"):
        read_rows(str(rm), "auto", use="sft")


def test_cli_malformed_row_is_one_line_and_exit_2(tmp_path):
    path = write_jsonl(tmp_path / "dpo.jsonl", [PAIR_ROW, {**PAIR_ROW, "prompt": None}])
    result = subprocess.run(
        [sys.executable, "-m", "aloe_train.cli", "dpo", "--model", "embedded", "--data", str(path),
         "--output", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("aloe-train: error:")]
    assert errors == [
        f"aloe-train: error: {path}: line 2: field 'prompt' is missing; expected a non-empty string"
    ]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


def test_pipeline_forwards_only_flags_a_trainer_knows():
    from aloe_train.cli import _unrecognized
    from aloe_train.pipeline import PipelineConfig, stage_argv, unknown_train_flag

    assert (
        unknown_train_flag(["--max-steps", "2", "--weight_decay", "0.1", "--use_peft", "--no-packing"])[0]
        is None
    )
    bad, known = unknown_train_flag(["--max-steps", "2", "--max_stesp", "2"])
    assert bad == "--max_stesp" and "did you mean --max_steps?" in _unrecognized(bad, known)
    config = PipelineConfig(
        output="o",
        model="embedded",
        recipe="janus",
        train_args=["--max-steps", "2", "--packing", "false", "--beta", "0.3"],
    )
    sft = stage_argv(config, "sft", ["--data", "d"])
    orpo = stage_argv(config, "orpo", ["--data", "d"])
    assert sft[:2] == ["--preset", "janus"] and "--packing" in sft and "--beta" not in sft
    assert "--beta" in orpo and "--packing" not in orpo
    assert parse_stage("orpo", [*orpo, "--model", "embedded", "--output", "/tmp/o"]).train.beta == 0.3


def test_sft_mixes_a_general_instruction_set_at_the_ratio(tmp_path):
    from transformers import AutoTokenizer

    from aloe_bench.models.backends.embedded import embedded_checkpoint
    from aloe_train.data import sft_rows
    from aloe_train.formatting import trained_segments

    tok = AutoTokenizer.from_pretrained(embedded_checkpoint())
    main = write_jsonl(
        tmp_path / "sft.jsonl", [SFT_ROW, {**SFT_ROW, "prompt": "Capital of Spain?", "output": "Madrid."}]
    )
    general = write_jsonl(
        tmp_path / "general.jsonl",
        [
            {
                "messages": [
                    {"role": "user", "content": "Add 2 and 2."},
                    {"role": "assistant", "content": "4."},
                ]
            },
            {"instruction": "Name a colour.", "input": "", "output": "Blue."},
            {"prompt": "Say hi.", "output": "Hi."},
            {"instruction": "Translate.", "input": "chat", "output": "cat."},
        ],
    )
    plain, _ = sft_rows(tok, str(main))
    assert len(plain) == 2  # off by default
    rows, report = sft_rows(tok, str(main), mix=str(general), mix_ratio=0.5, seed=1)
    # half of the final data: as many general rows as main examples
    assert report.mixed["wanted"] == 2 and report.mixed["used"] == 2 and len(rows) == 4
    replies = {
        trained_segments(tok, r["input_ids"], r["assistant_masks"])[0].removesuffix(tok.eos_token)
        for r in rows
    }
    assert {"Paris.", "Madrid."} <= replies and len(replies - {"Paris.", "Madrid."}) == 2
    assert replies - {"Paris.", "Madrid."} <= {"4.", "Blue.", "Hi.", "cat."}
    again, _ = sft_rows(tok, str(main), mix=str(general), mix_ratio=0.5, seed=1)
    assert again == rows  # seeded


def test_janus_pipeline_refuses_what_it_cannot_do_before_training():
    from aloe_train.pipeline import PipelineConfig

    def refused(**kw) -> str:
        with pytest.raises(UserInputError) as info:
            PipelineConfig(output="o", model="embedded", recipe="janus", **kw).validate()
        return str(info.value)

    assert "needs --data" in refused()
    assert "needs --pairs" in refused(data="sft.jsonl")
    assert "add sft to --methods" in refused(methods="dpo", pairs="p.jsonl")
    assert "unknown method(s) orpo" in str(
        pytest.raises(
            UserInputError, PipelineConfig(output="o", model="embedded", methods="sft,orpo").validate
        ).value
    )
    assert "add rm to --methods" in refused(data="s", pairs="p", bon_n=4)
    PipelineConfig(
        output="o", model="embedded", recipe="janus", data="s", pairs="p"
    ).validate()  # sft,dpo,orpo


def test_janus_format_renders_the_papers_prompt_and_trains_the_reply_only():
    import copy

    from transformers import AutoTokenizer

    from aloe_bench.models.backends.embedded import embedded_checkpoint
    from aloe_train.formatting import (
        JANUS_TEMPLATE,
        apply_prompt_format,
        tokenize_with_mask,
        trained_segments,
    )

    tok = AutoTokenizer.from_pretrained(embedded_checkpoint())
    base = copy.deepcopy(tok)
    base.chat_template = None  # a base checkpoint: no template
    with pytest.raises(UserInputError, match="--prompt_format janus"):
        apply_prompt_format(copy.deepcopy(base), "template", "base")
    assert apply_prompt_format(base, "auto", "base") == "janus" and base.chat_template == JANUS_TEMPLATE
    assert apply_prompt_format(copy.deepcopy(tok), "auto", "instruct") == "template"
    messages = [
        {"role": "system", "content": "You answer briefly."},
        {"role": "user", "content": "Capital of France?"},
        {"role": "assistant", "content": "Paris."},
    ]
    text = base.apply_chat_template(messages, tokenize=False)
    assert (
        text
        == f"{base.bos_token}[INST] You answer briefly.\nCapital of France? [/INST] Paris.{base.eos_token}"
    )
    row = tokenize_with_mask(base, messages, [True])
    assert trained_segments(base, row["input_ids"], row["assistant_masks"]) == [f" Paris.{base.eos_token}"]
