"""The leaderboard: values are the runs' metrics, mismatched setups are flagged, the board regenerates."""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from aloe_bench.log.results import load_run
from aloe_bench.reports.compare import compare_runs
from aloe_bench.reports.leaderboard import build_leaderboard, publish, render
from aloe_bench.reports.runinfo import load_runs
from aloe_bench.testing.runs import write_synthetic_run

REPO = Path(__file__).resolve().parents[1]
IDS = [f"p{i:02d}" for i in range(30)]


def scores(seed: int, bonus: float = 0.0, turns: int = 3) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    return {pid: [int(np.clip(round(v + bonus), 1, 5)) for v in rng.normal(3, 1, size=turns)] for pid in IDS}


@pytest.fixture
def runs(tmp_path) -> dict[str, Path]:
    base = scores(0)
    better = {pid: [min(5, s + (i % 2)) for s in row] for i, (pid, row) in enumerate(base.items())}
    return {
        "base": write_synthetic_run(tmp_path / "base", base, model="hf/base"),
        "better": write_synthetic_run(tmp_path / "better", better, model="hf/better", failed=["p07"]),
        "worse": write_synthetic_run(tmp_path / "worse", scores(1, bonus=-1), model="hf/worse"),
        "other_judge": write_synthetic_run(
            tmp_path / "other_judge", scores(2, bonus=1.5), model="hf/other", judge="openai/another-judge"
        ),
    }


def test_table_values_equal_the_runs_metrics(runs, cli):
    dirs = [runs["worse"], runs["base"], runs["better"]]
    code, out, err = cli("leaderboard", *dirs, "--format", "csv")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert list(table["label"]) == ["hf/better", "hf/base", "hf/worse"]  # sorted by AVG
    assert list(table["rank"]) == [1, 2, 3]
    for _, row in table.iterrows():
        m = json.loads((Path(row["run"]) / "results.json").read_text())["metrics"]
        assert row["avg"] == m["avg"] and [row["avg_lo"], row["avg_hi"]] == m["ci"]["avg"]
        assert row["al_1"] == m["al"][0] and row["al_k"] == m["al"][-1]
        assert row["ir"] == m["ir"] and [row["ir_lo"], row["ir_hi"]] == m["ci"]["ir"]
        assert row["n_ir"] == m["n_ir"] and row["n_r2"] == m["n_r2"]
        assert row["conversations"] == m["conversations"] and row["failed"] == m["failed"]
        assert row["invalid"] == sum(m["invalid"])
        assert row["judge"] == "synthetic/judge" and row["personas"] == "synthetic (30)"
    assert table.loc[table["label"] == "hf/better", "conversations"].item() == 29  # one failed
    assert table["setup"].isna().all()  # one setup: nothing flagged
    assert "warning" not in err


def test_mismatched_judge_is_flagged_and_ranked_apart(runs, cli):
    # The other-judge run has the highest AVG, but it must not top the others' ranking.
    code, out, err = cli("leaderboard", runs["base"], runs["other_judge"], runs["better"])
    assert code == 0
    rows = [line for line in out.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[1] for r in rows] == ["hf/better", "hf/base", "hf/other"]
    assert [r.split(" | ")[0] for r in rows] == ["| A1", "| A2", "| B1"]  # its own group, named
    assert rows[2].rstrip(" |").endswith("differs: judge") and "differs" not in rows[0] + rows[1]
    # The reference is the largest run of the common setup ('hf/base': 30 scored; 'hf/better': 29).
    assert "> **warning:** 1 of 3 runs ('hf/other') differ in judge from the setup of 'hf/base'" in out
    assert "warning" not in err  # printed once: the table on stdout carries it
    code, _, err = cli("leaderboard", runs["base"], runs["other_judge"], "--format", "csv")
    assert err.count("warning:") == 1  # CSV has no room for it: stderr, once


def test_other_setup_differences_are_named(tmp_path):
    s = scores(0)
    dirs = [
        write_synthetic_run(tmp_path / "a", s, model="m/a"),
        write_synthetic_run(tmp_path / "b", s, model="m/b"),
        write_synthetic_run(tmp_path / "c", s, model="m/c", simulator="openai/sim", protocol="aloe-history"),
        write_synthetic_run(tmp_path / "d", {pid: row[:2] for pid, row in s.items()}, model="m/d"),
    ]
    board = build_leaderboard(load_runs(dirs))
    flags = dict(zip(board.frame["label"], board.frame["setup"], strict=True))
    assert flags["m/a"] == flags["m/b"] == ""
    assert flags["m/c"] == "differs: simulated user, protocol"
    assert flags["m/d"] == "differs: turns"
    assert "simulated user, protocol, turns" in board.warnings[0]


def test_baseline_adds_delta_and_paired_test(runs, cli):
    code, out, err = cli(
        "leaderboard", runs["better"], runs["worse"], "--baseline", runs["base"], "--format", "csv"
    )
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out)).set_index("label")
    base_avg = table.loc["hf/base", "avg"]
    assert table.loc["hf/base", "baseline"] and pd.isna(table.loc["hf/base", "paired_diff"])
    direct = compare_runs(load_run(runs["base"]), load_run(runs["better"]))
    better = table.loc["hf/better"]
    assert better["delta_avg"] == pytest.approx(better["avg"] - base_avg)
    assert better["paired_diff"] == direct.overall.diff and better["paired_n"] == 29
    assert [better["paired_lo"], better["paired_hi"]] == list(direct.overall.ci)
    assert better["p"] == direct.overall.p_value and better["p"] < 0.001
    # Holm over the two comparisons: each adjusted p is at least the raw one.
    assert (table.drop("hf/base")["p_holm"] >= table.drop("hf/base")["p"]).all()
    code, md, _ = cli("leaderboard", runs["better"], runs["worse"], "--baseline", runs["base"])
    assert "ΔAVG vs hf/base" in md and "| baseline |" in md and "p (Holm)" in md


@pytest.mark.parametrize(
    "suffix,marker",
    [(".md", "| # | run |"), (".csv", "rank,label,"), (".tex", "\\begin{tabular}"), (".html", "<table")],
)
def test_formats_follow_the_output_suffix(runs, cli, tmp_path, suffix, marker):
    target = tmp_path / f"board{suffix}"
    code, out, err = cli("leaderboard", runs["base"], runs["better"], "--output", target, "--label", "A", "B")
    assert code == 0, err
    text = target.read_text()
    assert marker in text
    if suffix != ".csv":
        assert "A" in text and "hf/better" in text  # label, with the spec in its own column
    if suffix == ".tex":
        assert "N-R$^2$" in text and "²" not in text  # pdflatex-safe


def test_bad_inputs_give_one_line(runs, cli, tmp_path):
    code, _, err = cli("leaderboard", tmp_path / "missing")
    assert code == 2 and "is not a run directory" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("leaderboard", runs["base"], "--output", tmp_path / "x.docx")
    assert code == 2 and "cannot tell the format" in err
    code, _, err = cli("leaderboard", runs["base"], "--label", "a", "b")
    assert code == 2 and "--label" in err
    code, _, err = cli("leaderboard")
    assert code == 2 and "no runs given" in err


def test_publish_regenerates_board_from_stored_runs(runs, tmp_path, cli):
    board = tmp_path / "board"
    for name in ("base", "better", "other_judge"):
        shutil.copytree(runs[name], board / "runs" / name)
    (board / "runs" / "not-a-run").mkdir()  # ignored: no results.json
    code, out, err = cli("leaderboard", "--publish", board, "--baseline", board / "runs" / "base")
    assert code == 0, err
    readme = (board / "README.md").read_text()
    assert (
        "[better](runs/better/report.html)" in readme
        and "[other_judge](runs/other_judge/report.html)" in readme
    )
    assert all(
        (board / "runs" / name / "report.html").is_file() for name in ("base", "better", "other_judge")
    )
    assert "differs: judge" in readme and "![Per-turn alignment" in readme
    assert f"aloe-bench leaderboard --publish {board} --baseline {board / 'runs' / 'base'}" in readme
    csv = pd.read_csv(board / "leaderboard.csv")
    assert sorted(csv["label"]) == ["base", "better", "other_judge"]
    with Image.open(board / "curves.png") as image:
        assert image.format == "PNG" and image.size == (1400, 880)


def test_publish_without_runs_says_how_to_add_one(tmp_path, cli):
    code, _, err = cli("leaderboard", "--publish", tmp_path / "empty")
    assert code == 2 and "holds no run directories" in err


def test_published_board_is_current(tmp_path):
    """leaderboard/README.md is what the build command makes from leaderboard/runs/ (regenerate it if not)."""
    stored = REPO / "leaderboard"
    board = tmp_path / "leaderboard"
    shutil.copytree(stored / "runs", board / "runs")
    shutil.copytree(stored / "reported", board / "reported")
    committed = (stored / "README.md").read_text()
    command = next(
        line for line in committed.splitlines() if line.startswith("aloe-bench leaderboard --publish")
    )
    baseline = command.split("--baseline ")[1].strip() if "--baseline" in command else None
    publish(
        board,
        baseline=str(tmp_path / baseline) if baseline else None,
        command=command,
    )
    fresh = (board / "README.md").read_text().replace(str(tmp_path) + "/", "")
    assert fresh == committed, "leaderboard/README.md is stale: run the command in its last code block"
    for name in ("index.html", "reported.csv", "leaderboard.csv"):
        fresh = (board / name).read_text().replace(str(tmp_path) + "/", "")
        assert fresh == (stored / name).read_text(), f"leaderboard/{name} is stale: regenerate the board"


def test_publish_keeps_noise_judged_runs_in_the_pipeline_check(runs, tmp_path):
    """A run judged by the embedded model goes to "Pipeline check", ranked only there; a run with a
    judge that can judge goes to its task's table beside the printed rows, in its own group."""
    board = tmp_path / "board"
    shutil.copytree(runs["base"], board / "runs" / "measured")
    write_synthetic_run(
        board / "runs" / "demo", {pid: [5, 5, None] for pid in IDS[:4]}, model="embedded", judge="embedded"
    )
    shutil.copytree(REPO / "leaderboard" / "reported", board / "reported")
    publish(board, command="aloe-bench leaderboard --publish board")
    readme = (board / "README.md").read_text()
    tables, pipeline = readme.split("## Pipeline check")
    assert "| A1 | [run](runs/measured/report.html) | hf/base |" in tables
    assert (
        "| B1 | [RLPA, table 2 or 4](https://arxiv.org/abs/2505.15456) | GPT-4o-mini | Self-Critic |"
        in tables
    )
    assert "runs/demo" not in tables and "[demo](runs/demo/report.html)" in pipeline
    assert "4 of 12 judgements per run were invalid, and every valid one is 5" in pipeline
    reported = pd.read_csv(board / "reported.csv")
    assert set(reported["source"]) >= {"RLPA, table 2 or 4"} and (reported["kind"] == "reported").all()


@pytest.mark.slow
def test_leaderboard_plot_and_compare_read_a_real_run(tmp_path, cli, embedded_checkpoint):
    out = tmp_path / "run"
    code, _, err = cli(
        "run", "--task", "aloe_demo", "--model", "embedded", "--limit", "2", "--turns", "2",
        "--max-new-tokens", "16", "--simulator-max-new-tokens", "16", "--judge-max-new-tokens", "4",
        "--output", out, "--cache", tmp_path / "calls.sqlite", "--no-progress",
    )  # fmt: skip
    assert code in (0, 3), err
    metrics = json.loads((out / "results.json").read_text())["metrics"]

    code, table, err = cli("leaderboard", out, "--format", "csv")
    assert code == 0, err
    row = pd.read_csv(io.StringIO(table)).iloc[0]
    assert row["label"] == "embedded" and row["judge"] == "embedded" and row["turns"] == 2
    assert row["personas"] == "demo (2)" and row["protocol"] == "aloe-v1"
    assert row["conversations"] == metrics["conversations"]
    assert (row["avg"] == metrics["avg"]) or (pd.isna(row["avg"]) and metrics["avg"] is None)
    code, md, err = cli("leaderboard", out)
    # Printed once: the Markdown table carries the note, so stderr does not repeat it.
    assert code == 0 and "cannot judge" not in err and "> **note:** judge `embedded`" in md

    code, _, err = cli("plot", out, "--output", tmp_path / "curves.png", "--dpi", "100")
    assert code == 0, err
    with Image.open(tmp_path / "curves.png") as image:
        assert image.size == (700, 440)

    code, text, err = cli("compare", out, out)
    assert code == 2 and "two different run directories" in err
    render(build_leaderboard(load_runs([out])), "latex")  # every format renders a real run


def test_two_groups_each_rank_from_one_and_the_largest_run_is_the_reference(tmp_path):
    """Two runs under two judges: each group has its own 1, marked A1/B1 so it does not read as a tie;
    the reference is the larger run even when the smaller one is given first."""
    small = write_synthetic_run(
        tmp_path / "small", {pid: [3, 3] for pid in IDS[:2]}, model="m/small", judge="j/x"
    )
    large = write_synthetic_run(tmp_path / "large", scores(0, turns=2), model="m/large")
    board = build_leaderboard(load_runs([small, large]))
    assert list(board.frame["label"]) == ["m/large", "m/small"]
    assert list(board.frame["group"]) == ["A", "B"] and list(board.frame["rank"]) == [1, 1]
    assert "from the setup of 'm/large'" in board.warnings[0]
    shown = render(board, "md")
    assert "| A1 | m/large" in shown and "| B1 | m/small" in shown


def test_generation_settings_are_a_column(tmp_path):
    greedy = write_synthetic_run(tmp_path / "greedy", scores(0), model="embedded")
    sampled = write_synthetic_run(tmp_path / "sampled", scores(1), model="embedded")
    results = json.loads((sampled / "results.json").read_text())
    results["config"]["model"].update(temperature=0.7, max_new_tokens=128)
    (sampled / "results.json").write_text(json.dumps(results))
    board = build_leaderboard(load_runs([greedy, sampled]))
    table = render(board, "md")
    assert "| T 0.7, 128 tok |" in table and "| T default |" in table
    assert list(board.frame.sort_values("label")["temperature"].fillna(-1)) == [-1, 0.7]


def test_local_checkpoint_paths_stay_out_of_tables_and_legends(tmp_path):
    from aloe_bench.reports.plot import run_curve

    local = write_synthetic_run(tmp_path / "sft-run", scores(0), model="hf//work/train-demo/sft")
    dot = write_synthetic_run(tmp_path / "dot-run", scores(1), model="./ckpt/dpo")
    infos = load_runs([local, dot])
    board = build_leaderboard(infos)
    for fmt in ("md", "csv", "html", "latex"):
        assert "/work/" not in render(board, fmt) and "./ckpt" not in render(board, fmt)
    assert sorted(board.frame["model"]) == ["dpo", "hf/sft"]
    assert {run_curve(i).label for i in infos} == {"hf/sft", "dpo"}
    # The full spec stays in the run's config, where provenance belongs.
    assert load_run(local).config.model.spec == "hf//work/train-demo/sft"
