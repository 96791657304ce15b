"""A task written from scratch (tests/example_tasks/short_answers.py + .yaml, under 80 lines: its own
questions, a one-turn solver, a rule scorer with its own metric) runs end to end on the embedded
model with journaling on, and the leaderboard, the viewer and the lm-eval bridge take it as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import read_run

from aloe_bench.engine.task_api import get_task
from aloe_bench.integrations.lm_eval.requests import decode_request, encode_request
from aloe_bench.log.journal import JOURNAL_FILE
from aloe_bench.log.results import load_run

TASK_DIR = Path(__file__).parent / "example_tasks"
YAML = TASK_DIR / "short_answers.yaml"
MODULE = "example_tasks.short_answers"


def test_the_task_is_one_module_and_one_yaml_under_80_lines():
    lines = len((TASK_DIR / "short_answers.py").read_text().splitlines()) + len(YAML.read_text().splitlines())
    assert lines < 80, lines
    source = (TASK_DIR / "short_answers.py").read_text()
    assert "tasks.aloe" not in source and "multifaceted" not in source  # not a copy of a built-in task


def test_its_items_travel_through_the_lm_eval_bridge():
    task = get_task(MODULE)
    [first, _] = task.dataset(task.config("short_answers", {"limit": 2, "model": "embedded"}))
    request = decode_request(encode_request("short_answers", first, {"kind": MODULE, "limit": 2}))
    assert request is not None and request.item == first and request.kind == MODULE


@pytest.mark.slow
def test_a_task_from_scratch_runs_journaled_and_shows_everywhere(cli, tmp_path, embedded_checkpoint):
    out = tmp_path / "run"
    code, stdout, err = cli("run", "--task", YAML, "--model", "embedded", "--no-progress", "--output", out,
                            "--cache", tmp_path / "c.sqlite")  # fmt: skip
    assert code == 0, err
    results, convs = read_run(out)
    assert results["status"] == "complete" and results["config"]["max_words"] == 12
    assert not (out / JOURNAL_FILE).exists()  # journaled: compacted into conversations.jsonl at the end
    assert results["usage"]["model"]["calls"] == 2 and set(results["usage"]) == {"model"}
    turns = [c["turns"][0] for c in convs]
    short = [len(t["assistant"].split()) <= 12 for t in turns]
    assert [t["score"] for t in turns] == [5 if s else 1 for s in short]
    # The task's own metric, computed over scored samples: the journaled recorder released every
    # finished conversation's transcript from memory and still counts both.
    assert results["metrics"]["short_n"] == 2 and results["metrics"]["short_rate"] == sum(short) / 2
    assert results["metrics"]["al"] == [sum(t["score"] for t in turns) / 2]
    assert len(load_run(out).to_dataframe()) == 2
    code, table, err = cli("leaderboard", out)
    assert code == 0 and "embedded" in table, err
    code, _, err = cli("view", out, "--output", tmp_path / "page.html")
    assert code == 0 and "short_answers" in (tmp_path / "page.html").read_text(), err


@pytest.mark.slow
def test_lm_eval_runs_the_task_from_scratch(cli, tmp_path, embedded_checkpoint):
    pytest.importorskip("lm_eval")
    out = tmp_path / "OUT"
    code, _, err = cli("lm-eval", "--model", "hf", "--model_args", f"pretrained={embedded_checkpoint}",
                       "--tasks", "short_answers", "--include_path", TASK_DIR, "--output_path", out,
                       "--log_samples")  # fmt: skip
    assert code == 0, err[-3000:]
    [results_file] = out.rglob("results_*.json")
    task = json.loads(results_file.read_text())["results"]["short_answers"]
    assert task["failed,none"] == 0 and 1 <= task["al_avg,none"] <= 5
    [samples_file] = out.rglob("samples_short_answers_*.jsonl")
    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    transcripts = [json.loads(s["resps"][0][0]) for s in samples]
    assert [t["id"] for t in transcripts] == ["q0", "q1"]
    assert all(t["turns"][0]["judge_raw"].endswith("words") for t in transcripts)
