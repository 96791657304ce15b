"""A collection this command wrote trains, unconverted, with `aloe-train sft` (sft.jsonl) and
`aloe-train dpo` (dpo.jsonl, the released -DPO/-ORPO schema), and the loss moves."""

import json

import pytest

from aloe_train.multifaceted.run import MultifacetedDataConfig, build_collection
from aloe_train.multifaceted.scripted import ScriptedServer

INSTRUCTIONS = ["Explain tides.", "Write a haiku about rain.", "Plan a picnic.", "Name three rivers."]


@pytest.fixture(scope="module")
def collection(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mft")
    ins = tmp / "ins.jsonl"
    ins.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in INSTRUCTIONS))
    with ScriptedServer() as server:
        config = MultifacetedDataConfig(
            instructions=str(ins),
            output=str(tmp / "out"),
            generator="openai/fake",
            generator_args=f"base_url={server.base_url}",
            cache="",
            embedder="tfidf",
        )
        summary = build_collection(config, progress=False)
    assert summary["counts"]["sft_rows"] == 12 and summary["counts"]["dpo_rows"] == 12
    return tmp / "out"


def _losses(record: dict, key: str = "loss") -> list[float]:
    return [h[key] for h in record["log_history"] if key in h]


def test_sft_trains_on_sft_jsonl_and_the_loss_falls(collection, tmp_path):
    from aloe_train.cli import main

    code = main(["sft", "--model", "embedded", "--data", str(collection / "sft.jsonl"),
                 "--output", str(tmp_path / "sft"), "--max-steps", "6", "--learning-rate", "1e-3",
                 "--logging-steps", "1", "--per-device-train-batch-size", "4",
                 "--gradient-accumulation-steps", "1", "--max-length", "256", "--no-packing"])  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "sft" / "aloe_train.json").read_text())
    assert record["data"]["format"] == "multifaceted" and record["data"]["examples"] == 12
    losses = _losses(record)
    assert len(losses) == 6 and losses[-1] < losses[0]


def test_dpo_trains_on_dpo_jsonl_and_the_loss_falls(collection, tmp_path):
    from aloe_train.cli import main

    code = main(["dpo", "--model", "embedded", "--data", str(collection / "dpo.jsonl"),
                 "--output", str(tmp_path / "dpo"), "--max-steps", "4", "--learning-rate", "5e-4",
                 "--logging-steps", "1", "--per-device-train-batch-size", "4", "--beta", "0.1",
                 "--gradient-accumulation-steps", "1", "--max-length", "256"])  # fmt: skip
    assert code == 0
    record = json.loads((tmp_path / "dpo" / "aloe_train.json").read_text())
    assert record["data"]["format"] == "pairs" and record["data"]["examples"] == 12
    losses = _losses(record)
    assert len(losses) == 4 and losses[-1] < losses[0]
