"""`aloe-bench lm-eval ...`: the ALOE suite run by lm-eval itself, writing lm-eval's own files."""

from __future__ import annotations

import json

import pytest
from conftest import run_cli_subprocess

pytest.importorskip("lm_eval")

# The task's own settings, shrunk for a test (lm-eval's --metadata; merged into metadata.aloe).
SMALL = {"turns": 2, "max_new_tokens": 24, "simulator_max_new_tokens": 32, "judge_max_new_tokens": 8}


@pytest.mark.slow
def test_the_documented_command_writes_lmeval_results_and_samples(embedded_checkpoint, tmp_path):
    out = tmp_path / "OUT"
    # A call cache of its own (the second command below is replayed from it); the simulated user and
    # judge are the embedded model on its torch runtime (see the note below).
    cache = tmp_path / "calls.sqlite"
    command = [
        "lm-eval", "--model", "hf", "--model_args", f"pretrained={embedded_checkpoint}",
        "--tasks", "aloe_demo", "--limit", "2", "--output_path", out, "--log_samples",
        "--metadata", json.dumps({"aloe": {**SMALL, "cache": str(cache)}}),
    ]  # fmt: skip
    # Judged by the 135M embedded model, whose answers parse by luck: these assertions were written
    # against the torch runtime's answers (docs/embedded.md), so they run on it.
    proc = run_cli_subprocess(*command, env={"ALOE_EMBEDDED_RUNTIME": "torch"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "ALOE aloe_demo: 2 conversations scored, 0 failed" in proc.stderr
    assert "model 4 calls/0 cached" in proc.stderr  # the lm-eval model really generated
    [results_file] = out.rglob("results_*.json")
    [samples_file] = out.rglob("samples_aloe_demo_*.jsonl")

    results = json.loads(results_file.read_text())
    task = results["results"]["aloe_demo"]
    metrics = ["al_avg", "ir", "n_ir", "n_r2", "al_t1", "al_t2"]
    for m in metrics:
        assert f"{m},none" in task, m
        assert results["higher_is_better"]["aloe_demo"][m] is True, m
    assert task["failed,none"] == 0
    assert 1 <= task["al_avg,none"] <= 5 and 1 <= task["al_t1,none"] <= 5
    assert "al_t3,none" not in task  # 2 turns were asked for

    samples = [json.loads(line) for line in samples_file.read_text().splitlines()]
    assert len(samples) == 2
    for sample in samples:
        transcript = json.loads(sample["resps"][0][0])
        assert transcript["id"] == sample["doc"]["id"] and transcript["status"] == "complete"
        assert transcript["run"]["model"]["spec"] == "lmeval/hf"
        assert transcript["run"]["simulator"]["spec"] == "embedded" and transcript["run"]["turns"] == 2
        turns = transcript["turns"]
        assert len(turns) == 2
        assert all(t["user"] and t["assistant"] and t["judge_raw"] is not None for t in turns)
        scores = [t["score"] for t in turns]
        assert sample["al_avg"]["scores"] == scores
        assert [sample.get(f"al_t{k}") for k in (1, 2)] == [None if s is None else float(s) for s in scores]
    # lm-eval's AL(1) is the mean turn-1 score of the samples it logged
    firsts = [json.loads(s["resps"][0][0])["turns"][0]["score"] for s in samples]
    firsts = [s for s in firsts if s is not None]
    if firsts:
        assert task["al_t1,none"] == pytest.approx(sum(firsts) / len(firsts))

    # The same command again is replayed from the ALOE call cache: no model call at all.
    again = run_cli_subprocess(*command, env={"ALOE_EMBEDDED_RUNTIME": "torch"})
    assert again.returncode == 0, again.stderr[-3000:]
    assert "model 0 calls/4 cached" in again.stderr
    newest = sorted(out.rglob("samples_aloe_demo_*.jsonl"))[-1]
    assert [json.loads(line)["resps"] for line in newest.read_text().splitlines()] == [
        s["resps"] for s in samples
    ]
