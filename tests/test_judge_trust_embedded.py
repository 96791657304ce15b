"""The persona-swap control on the embedded model, offline: in a run and on a finished run."""

from __future__ import annotations

import json

import pytest


@pytest.mark.slow
def test_embedded_run_with_swap_control_reports_the_judge_auc(cli, tmp_path):
    out = tmp_path / "swap"
    args = ["run", "--task", "aloe_demo", "--model", "embedded", "--limit", 2, "--turns", 1]
    args += ["--max-new-tokens", 16, "--simulator-max-new-tokens", 24, "--judge-max-new-tokens", 8]
    args += ["--controls", "swap", "--no-cache", "--output", out, "--no-progress"]
    code, stdout, err = cli(*args)
    assert code == 0, err
    assert "judge calls planned: 2 (one judge, once per turn)" in err and "+ 2 swap control" in err
    results = json.loads((out / "results.json").read_text())
    swap = results["validity"]["swap"]["embedded"]
    if swap["n"]:  # the 135M judge may leave a turn unscored; then there is no pair to report
        assert 0 <= swap["auc"] <= 1 and swap["n"] <= 2
        assert "swap AUC" in stdout
    else:  # no pair: nothing shows the judge discriminates, and the run says so
        assert swap["auc"] is None
        assert "judge-no-discrimination" in {w["code"] for w in results["warnings"]}
    usage = results["usage"]
    assert usage["judge:embedded:swap"]["calls"] >= 2  # one per turn, plus re-asks
    conv = [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines()]
    other = {c["id"]: c["turns"][0]["swap_judgements"][0]["persona_id"] for c in conv}
    assert set(other) == set(other.values()) and all(k != v for k, v in other.items())  # a derangement


@pytest.mark.slow
def test_swap_control_on_a_finished_run_calls_only_the_judge(cli, tiny_hf_run, tmp_path):
    source, cache = tiny_hf_run
    out = tmp_path / "rejudged"
    args = ["judge", source, "--judge", "embedded", "--controls", "swap", "--judge-max-new-tokens", 8]
    code, stdout, err = cli(*args, "--cache", cache, "--output", out, "--no-progress")
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    for role in ("model", "simulator"):
        assert results["usage"][role]["calls"] == 0
    assert results["usage"]["judge:embedded:swap"]["calls"] >= 4  # 2 conversations x 2 turns
    assert results["config"]["controls"] == ["swap"]
    conv = [json.loads(line) for line in (out / "conversations.jsonl").read_text().splitlines()]
    assert all(len(t["swap_judgements"]) == 1 and t["judgements"] for c in conv for t in c["turns"])
