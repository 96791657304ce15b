"""Human labels, the reliability command, judge panels on the command line, and old runs."""

from __future__ import annotations

import argparse
import csv
import json
import shutil
from pathlib import Path

import pytest

from aloe_bench.cli._common import judge_panel, split_judge_spec
from aloe_bench.errors import UserInputError
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import load_run
from aloe_bench.reports.run_summary import summary_table
from aloe_bench.testing.persona_world import PersonaWorldServer, world_personas

REPO = Path(__file__).resolve().parents[1]
# Published runs made before judgements were recorded (embedded-demo-swap, made since, holds them).
BOARD_RUNS = [
    REPO / "leaderboard" / "runs" / name
    for name in ("embedded-demo", "embedded-demo-t0.7", "embedded-dpo-demo", "embedded-sft-demo")
]


@pytest.fixture(scope="module")
def world_run(tmp_path_factory):
    """A small panel run in the synthetic world (two judges, swap control, two epochs)."""
    from aloe_bench.cli.main import main

    tmp = tmp_path_factory.mktemp("trust")
    personas = tmp / "p.jsonl"
    personas.write_text("".join(json.dumps(p) + "\n" for p in world_personas(6)))
    out = tmp / "run"
    with PersonaWorldServer() as server:
        url = server.base_url
        code = main(
            [
                *("run", "--model", "openai/world-model", "--simulator", "openai/world-user"),
                *("--judge", "openai/world-judge-a", "--judge", "openai/world-judge-blind@temperature=0"),
                *("--model-base-url", url, "--simulator-base-url", url, "--judge-base-url", url),
                *("--personas", str(personas), "--turns", "3", "--epochs", "2", "--controls", "swap"),
                *("--no-cache", "--output", str(out), "--no-progress"),
            ]
        )
    assert code == 0
    return out


def test_label_export_is_stratified_and_import_reports_agreement(cli, world_run, tmp_path):
    labels = tmp_path / "labels.csv"
    code, stdout, err = cli("label", "export", world_run, "--n", 12, "--output", labels)
    assert code == 0, err
    rows = list(csv.DictReader(labels.open()))
    assert len(rows) == 12 and {r["turn"] for r in rows} == {"1", "2", "3"}  # every turn covered
    assert {"score[openai/world-judge-a]", "score[openai/world-judge-blind]", "human_score"} <= set(rows[0])
    assert all(r["human_score"] == "" for r in rows)
    again = tmp_path / "again.csv"
    cli("label", "export", world_run, "--n", 12, "--output", again)
    assert again.read_text() == labels.read_text()  # deterministic

    # The "human" agrees exactly with judge A: A's agreement is perfect, the blind judge's is not.
    for r in rows:
        r["human_score"] = str(round(float(r["score[openai/world-judge-a]"])))
    with labels.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code, stdout, err = cli("label", "import", world_run, labels)
    assert code == 0, err
    results = json.loads((world_run / "results.json").read_text())
    human = results["validity"]["human"]
    a = human["judges"]["openai/world-judge-a"]
    assert a["exact"] == 1.0 and a["n"] == 12 and sum(map(sum, a["confusion"])) == 12
    assert human["judges"]["openai/world-judge-blind"]["exact"] < 1.0
    assert (world_run / "human_labels.json").is_file()
    assert "human labels vs openai/world-judge-a" in summary_table(RunResults.from_dict(results))
    assert results["warnings"]  # the run's own warnings are kept


def test_label_import_names_every_malformed_row(cli, world_run, tmp_path):
    labels = tmp_path / "bad.csv"
    cli("label", "export", world_run, "--n", 4, "--output", labels)
    rows = list(csv.DictReader(labels.open()))
    rows[0]["human_score"], rows[1]["human_score"], rows[2]["id"] = "7", "good", "nope:1"
    rows[2]["human_score"] = "3"
    with labels.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    code, _, err = cli("label", "import", world_run, labels)
    assert code == 2
    assert "3 malformed row(s)" in err
    assert (
        "row 2: human_score '7'" in err and "row 3: human_score 'good'" in err and "row 4: id 'nope:1'" in err
    )


def test_reliability_command_on_replicates(cli, world_run, tmp_path):
    code, stdout, err = cli("reliability", world_run, "--json", tmp_path / "r.json")
    assert code == 0, err
    report = json.loads((tmp_path / "r.json").read_text())
    floor = report["noise_floor"]
    assert floor["personas"] == 6 and floor["replicates_per_persona"] == 2 and not floor["mdd_is_upper_bound"]
    assert "minimal detectable difference" in stdout and "to detect an AVG difference of 0.1" in stdout
    assert report["between_judges"]["n"] == 6 * 2 * 3


def test_compare_marks_a_difference_below_the_noise_floor(cli, world_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(world_run, copy)
    code, stdout, err = cli("compare", world_run, copy)
    assert code == 0, err
    assert "minimal detectable difference" in stdout and "not distinguishable from noise" in stdout
    assert "persona-swap AUC" in err and "world-judge-blind" in err  # the blind judge's warning


def test_judge_panel_flags_and_task_lists():
    assert split_judge_spec("openai/x@base_url=http://h/v1,temperature=0.5") == (
        "openai/x",
        {"base_url": "http://h/v1", "temperature": "0.5"},
    )
    assert split_judge_spec("hf/org/model") == ("hf/org/model", {})
    assert split_judge_spec("openai/x@base_url=http://u:p@host/v1") == (
        "openai/x",
        {"base_url": "http://u:p@host/v1"},
    )
    args = argparse.Namespace(
        judge=["openai/a", "openai/b@temperature=0.7,max_new_tokens=9"],
        judge_args="api_key_env=K",
        judge_base_url=None,
        judge_max_new_tokens=None,
        judge_temperature=0.2,
        judge_top_p=None,
    )
    a, b = judge_panel(args, {}, None)
    assert (a.spec, a.temperature, a.args) == ("openai/a", 0.2, {"api_key_env": "K"})
    assert (b.spec, b.temperature, b.max_new_tokens, b.args) == ("openai/b", 0.7, 9, {"api_key_env": "K"})
    task = {"judge": ["embedded", {"spec": "openai/c", "temperature": 1.0, "args": {"base_url": "u"}}]}
    first, second = judge_panel(argparse.Namespace(), task, None)
    assert first.spec == "embedded" and (second.temperature, second.args) == (1.0, {"base_url": "u"})
    with pytest.raises(UserInputError, match="temperature must be a number"):
        judge_panel(argparse.Namespace(judge=["openai/x@temperature=hot"]), {}, None)


def test_greedy_repeats_are_named_and_bad_controls_refused(cli, tmp_path):
    code, _, err = cli("run", "--model", "embedded", "--controls", "nope", "--output", tmp_path / "x")
    assert code == 2 and "unknown control(s) nope" in err
    code, _, err = cli("run", "--model", "embedded", "--epochs", "0", "--output", tmp_path / "y")
    assert code == 2 and "--epochs must be at least 1" in err


@pytest.mark.parametrize("run_dir", BOARD_RUNS, ids=[p.name for p in BOARD_RUNS])
def test_old_runs_still_load_and_report(cli, run_dir, tmp_path):
    results = json.loads((run_dir / "results.json").read_text())
    assert "reliability" not in results  # made before judgements were recorded
    table = summary_table(RunResults.from_dict(results))
    assert "AVG" in table and "judge-no-discrimination" not in table and "judge-unreliable" not in table
    code, stdout, err = cli("reliability", run_dir)
    assert code == 0, err
    # One epoch: the MDD can only be an upper bound; a run whose judge scored one persona or none
    # (the re-judged SFT/DPO runs: the embedded judge's answers are mostly unreadable) has none.
    assert "upper bound" in stdout or "one persona: nothing to estimate" in stdout
    code, _, err = cli("label", "export", run_dir, "--n", 5, "--output", tmp_path / "l.csv")
    assert code == 0, err
    assert len(load_run(run_dir).conversations) == 12


def test_compare_pairs_epochs_by_persona(world_run):
    from aloe_bench.reports.compare import persona_turn_scores

    run = load_run(world_run)
    scores = persona_turn_scores(run)
    assert sorted(scores) == [f"P{i:02d}" for i in range(6)]  # 12 conversations, 6 personas
    both = [c for c in run.conversations if c.meta["persona_id"] == "P00"]
    expected = [sum(c.turns[k].score for c in both) / 2 for k in range(3)]
    assert scores["P00"] == pytest.approx(expected)


def test_multifaceted_repeats_get_a_test_retest_alpha():
    import krippendorff
    import numpy as np

    from aloe_bench.log.results import ConversationRecord, TurnRecord
    from aloe_bench.metrics.trust import trust_sections

    samples = [[4, 4], [2, 3], [5, 5], [1, None], [3, 3]]
    rubric_scores = [{"samples": [{"score": s} for s in pair]} for pair in samples]
    turn = TurnRecord.from_dict({"user": "u", "assistant": "a", "score": 3, "rubric_scores": rubric_scores})
    conv = ConversationRecord(
        id="x", persona={"profile": "p", "personality": "q"}, turns=[turn], status="complete"
    )
    judge = trust_sections([conv], 1)["reliability"]["judges"]["judge"]
    data = np.array(
        [[np.nan if v is None else v for v in col] for col in zip(*samples, strict=True)], dtype=float
    )
    expected = krippendorff.alpha(
        reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]
    )
    assert judge["test_retest_alpha"] == pytest.approx(expected, abs=1e-6) and judge["n"] == 5
    assert judge["invalid"] == 1 and judge["repeats"] == 2
    from aloe_bench.reports.run_summary import rubric_summary

    assert f"alpha {judge['test_retest_alpha']:.2f} (R=2, n=5)" in rubric_summary(
        RunResults.from_dict(trust_sections([conv], 1))
    )


def test_greedy_repeats_are_named(cli, tmp_path):
    personas = tmp_path / "p.jsonl"
    personas.write_text("".join(json.dumps(p) + "\n" for p in world_personas(2)))
    with PersonaWorldServer() as server:
        url = server.base_url
        code, stdout, err = cli(
            *("run", "--model", "openai/world-model", "--simulator", "openai/world-user"),
            *("--judge", "openai/world-judge-blind", "--judge-repeats", 2, "--judge-temperature", 0),
            *("--model-base-url", url, "--simulator-base-url", url, "--judge-base-url", url),
            *(
                "--personas",
                personas,
                "--turns",
                1,
                "--no-cache",
                "--output",
                tmp_path / "g",
                "--no-progress",
            ),
        )
    assert code == 0, err
    assert "greedy repeats give identical answers" in err
    assert "judge calls planned: 2 (one judge, once per turn) + 0 panel + 2 repeats" in err


def test_no_spread_between_personas_gives_no_detectable_difference(tmp_path):
    """Two personas scored 5 at every turn (the embedded judge's few readable answers): a zero spread
    is no estimate of the noise, so no MDD is claimed (0 would say any difference is real)."""
    from aloe_bench.log.results import load_run
    from aloe_bench.metrics.reliability import run_noise_floor
    from aloe_bench.testing.runs import write_synthetic_run

    flat = write_synthetic_run(tmp_path / "flat", {"p1": [5, 5, 5], "p2": [5, 5, 5]})
    floor = run_noise_floor(load_run(flat))
    assert floor["mdd"] == {"avg": None, "ir": None} and "no estimate" in floor["mdd_basis"]
    varied = write_synthetic_run(tmp_path / "varied", {"p1": [5, 4, 5], "p2": [2, 3, 1], "p3": [4, 4, 3]})
    assert run_noise_floor(load_run(varied))["mdd"]["avg"] > 0
