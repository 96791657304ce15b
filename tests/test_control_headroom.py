"""The control/generic floor (no model, normal judge) and headroom used between floor and ceiling."""

from __future__ import annotations

import json

import pytest
from conftest import read_run

from aloe_bench.metrics.headroom import MIN_SPAN, headroom_of
from aloe_bench.models.backends import PROVIDERS
from aloe_bench.models.backends.control import _load_policy, pick_reply
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer
from aloe_bench.testing.runs import write_synthetic_run


def test_control_generic_runs_with_no_model_and_is_scored_by_the_judge(cli, tmp_path, monkeypatch):
    def no_model(name, args):
        raise AssertionError(f"a model backend was created ({name}): control/generic must need none")

    for provider in ("hf", "embedded", "vllm", "lmeval"):
        monkeypatch.setitem(PROVIDERS, provider, no_model)
    replies, policy = _load_policy()
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["2", "3", "1"])) as server:
        roles = []
        for role in ("simulator", "judge"):
            roles += [f"--{role}", "openai/fake", f"--{role}-base-url", server.base_url]
        args = ["run", "--model", "control/generic", *roles, "--personas", "demo", "--limit", "3"]
        args += [
            "--turns",
            "2",
            "--no-progress",
            "--output",
            tmp_path / "floor",
            "--cache",
            tmp_path / "c.sqlite",
        ]
        code, stdout, err = cli(*args)
        judge_requests = sum("judge" in json.dumps(r).lower() for r in server.requests)
    assert code == 0, err
    results, convs = read_run(tmp_path / "floor")
    assert results["config"]["model"]["backend"]["policy"] == policy
    assert results["usage"]["model"]["calls"] == 6 and results["usage"]["judge"]["calls"] == 6
    assert judge_requests >= 6  # every reply went through the normal judge
    for conv in convs:
        for turn in conv["turns"]:
            assert turn["assistant"] == pick_reply(replies, turn["user"])  # fixed, persona-blind
            assert turn["score"] in (1, 2, 3) and turn["judged"]
    assert results["metrics"]["n"] == [3, 3]


def test_control_policy_refuses_unknown_names(cli):
    code, _, err = cli("run", "--model", "control/clever", "--limit", "1", "--no-progress")
    assert code == 2 and "control/generic" in err


def test_headroom_is_the_share_of_the_floor_to_ceiling_span():
    ids = [f"p{i}" for i in range(6)]
    floor = dict.fromkeys(ids, 1.0)
    ceiling = dict.fromkeys(ids, 5.0)
    model = {pid: 2.0 + (i % 3) for i, pid in enumerate(ids)}  # mean 3: half-way
    h = headroom_of(model, floor, ceiling, n_bootstrap=500)
    assert h.n == 6 and h.used == pytest.approx(0.5) and h.span == 4.0
    assert h.ci[0] < 0.5 < h.ci[1] and h.ci[0] >= 0.25 and h.ci[1] <= 0.75
    flat = headroom_of(model, floor, {pid: 1.0 + MIN_SPAN / 2 for pid in ids})
    assert flat.used is None and flat.ci is None and "no headroom" in flat.note


def _world(tmp_path):
    ids = ["a", "b", "c", "d"]
    write_synthetic_run(tmp_path / "floor", dict.fromkeys(ids, [1, 1]), model="control/generic")
    write_synthetic_run(tmp_path / "ceiling", dict.fromkeys(ids, [5, 5]), model="m", disclosure="system")
    write_synthetic_run(tmp_path / "model", {"a": [3, 2], "b": [3, 4], "c": [2, 3], "d": [4, 3]}, model="m")
    return [tmp_path / n for n in ("floor", "ceiling", "model")]


def test_compare_prints_headroom_per_turn_and_overall(cli, tmp_path):
    floor, ceiling, model = _world(tmp_path)
    out = tmp_path / "cmp.json"
    code, stdout, err = cli("compare", floor, model, "--floor", floor, "--ceiling", ceiling, "--json", out)
    assert code == 0, err
    assert "headroom used by m" in stdout and "->  0.50" in stdout
    data = json.loads(out.read_text())["headroom"]
    by_label = {r["label"]: r for r in data["runs"]}
    assert by_label["m"]["used"] == 0.5 and [t["used"] for t in by_label["m"]["per_turn"]] == [0.5, 0.5]
    assert by_label["control/generic"]["used"] == 0.0
    code, _, err = cli("compare", floor, model, "--floor", floor)
    assert code == 2 and "go together" in err


def test_leaderboard_finds_floor_and_ceiling_and_shows_disclosure(cli, tmp_path):
    floor, ceiling, model = _world(tmp_path)
    assert cli("audit", model, "--embedder", "none")[0] == 0
    code, table, err = cli("leaderboard", floor, ceiling, model)
    assert code == 0, err
    header = [c.strip() for c in table.splitlines()[0].split("|")]
    row = next(line for line in table.splitlines() if "| m (model) |" in line)
    cells = dict(zip(header, [c.strip() for c in row.split("|")], strict=True))
    assert cells["headroom used [95% CI]"].startswith("0.50")
    assert cells["disclosed@1"] == "0.00" and cells["disclosed@2"] == "0.00"
    csv = cli("leaderboard", floor, ceiling, model, "--format", "csv")[1]
    assert "headroom" in csv.splitlines()[0] and "disclosed_1" in csv.splitlines()[0]
