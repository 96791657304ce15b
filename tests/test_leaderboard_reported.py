"""Published results on the board: typed files, figures checked against their own curves with the
project's metrics, printed rows never ranked against runs, scales never put on one axis unlabelled."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from aloe_bench.log.published import load_reported, reported_rows
from aloe_bench.metrics.alignment import curve_stats
from aloe_bench.metrics.printed import _fit, check_printed, curve_box
from aloe_bench.reports.reported import printed_checks, render_markdown, task_tables
from aloe_bench.testing.runs import write_synthetic_run

REPO = Path(__file__).resolve().parents[1]
SHIPPED = REPO / "leaderboard" / "reported"
IDS = [f"p{i:02d}" for i in range(12)]


def _curve(seed: int, turns: int = 10, scale: float = 100.0) -> list[float]:
    """A rising, noisy curve on the percent scale, rounded as a paper prints it (2 decimals)."""
    rng = np.random.default_rng(seed)
    y = np.clip(20 + 4 * np.arange(turns) + rng.normal(0, 3, turns), 0, scale)
    return [float(v) for v in y]


def _printed_figures(y: list[float]) -> dict[str, float]:
    """AVG, N-IR and N-R² computed independently of the project's code (numpy polyfit), as printed."""
    y_arr = np.asarray(y)
    k = np.arange(1, len(y) + 1)
    n = (y_arr - y_arr.min()) / (y_arr.max() - y_arr.min())
    slope, intercept = np.polyfit(k, n, 1)
    r2 = 1 - ((n - (slope * k + intercept)) ** 2).sum() / ((n - n.mean()) ** 2).sum()
    return {"avg": round(float(y_arr.mean()), 2), "n_ir": round(float(slope), 3), "n_r2": round(float(r2), 3)}


def _file(directory: Path, name: str, rows: list[dict], **overrides) -> Path:
    data = {
        "format": "aloe-bench/reported-v1",
        "paper": "A paper",
        "short": "P",
        "arxiv": "2505.15456",
        "table": "2",
        "setup": {
            "task": "aloe",
            "judge": "j",
            "simulator": "s",
            "protocol": "p",
            "scale": "percent",
            "turns": 10,
        },  # fmt: skip
        "digits": {"al": 2, "avg": 2, "n_ir": 3, "n_r2": 3},
        "rows": rows,
        **overrides,
    }
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def test_vectorised_fit_equals_the_metric_code():
    """The box check computes AVG/IR/N-IR/N-R² vectorised; it must be the project's own definitions."""
    box = curve_box(_curve(3), 2)[:50]
    avg, ir, n_ir, n_r2 = _fit(box)
    for i, curve in enumerate(box):
        s = curve_stats(curve)
        assert [avg[i], ir[i], n_ir[i], n_r2[i]] == pytest.approx(
            [s["avg"], s["ir"], s["n_ir"], s["n_r2"]], abs=2e-6
        )


def test_every_shipped_curve_matches_its_printed_figures_or_is_flagged():
    """Every shipped row that prints its curve: AVG, IR, N-IR, N-R² recomputed by the project's metrics
    match the printed ones to printed precision, except rows the board flags (and then the flag shows)."""
    files = load_reported(SHIPPED)
    rows = reported_rows(files)
    assert rows, "leaderboard/reported/ holds no rows"
    checked = flagged = 0
    for row in rows:
        checks = printed_checks(row)
        checked += bool(checks)
        if any(not c.consistent for c in checks):
            flagged += 1
            shown = render_markdown(task_tables([], files))
            assert "⚠ inconsistent with its own curve" in shown and row.model in shown, row.where
    # What the shipped data allows today (docs/leaderboard.md says why): no curve is transcribed yet,
    # so nothing is checked. This line changes when curves are added, and then the loop checks them.
    assert (checked, flagged) == (0, 0)


def test_a_consistent_printed_row_passes_and_an_inconsistent_one_is_flagged(tmp_path):
    y = _curve(0)
    figures = _printed_figures(y)
    al = [round(v, 2) for v in y]
    bad = {**figures, "n_r2": round(figures["n_r2"] - 0.05, 3)}
    _file(
        tmp_path,
        "paper.yaml",
        [
            {"model": "good", "al": al, **figures},
            {"model": "bad", "al": al, **bad},
            {"model": "avg-off", "al": al, **{**figures, "avg": round(figures["avg"] + 0.02, 2)}},
        ],
    )
    rows = reported_rows(load_reported(tmp_path))
    verdicts = {r.model: [c for c in printed_checks(r) if not c.consistent] for r in rows}
    assert verdicts["good"] == []
    assert [c.name for c in verdicts["bad"]] == ["n_r2"]
    assert [c.name for c in verdicts["avg-off"]] == ["avg"]
    shown = render_markdown(task_tables([], load_reported(tmp_path)))
    assert "✓ AVG, N-IR, N-R² follow from its printed curve" in shown
    assert shown.count("⚠ inconsistent with its own curve") == 2 and "N-R² printed" in shown


def test_rounding_of_the_curve_alone_never_flags_a_row():
    """Figures computed from the unrounded curve, then printed: consistent for every one of 200 curves."""
    for seed in range(200):
        y = _curve(seed)
        al = [round(v, 2) for v in y]
        checks = check_printed(al, _printed_figures(y), {"avg": 2, "n_ir": 3, "n_r2": 3}, 2)
        assert all(c.consistent for c in checks), (seed, [c.describe() for c in checks])


BAD_ROWS = [
    ({"model": "m", "avg": "high"}, "field 'avg': expected a number, got 'high'"),
    ({"model": "m", "avg": 50, "score": 3}, "field 'score': unknown"),
    ({"avg": 50}, "field 'model': missing"),
    ({"model": "m", "al": [10.0] * 9 + [120.0]}, "field 'al[10]': 120 is outside the percent scale"),
    ({"model": "m", "al": [10.0] * 9}, "field 'al': 9 values for a 10-turn setup"),
    ({"model": "m", "avg": 50, "setup": {"scale": "stars"}}, "field 'scale': 'stars' is not a scale"),
    ({"model": "m", "avg": 50, "n_r2": 1.4}, "field 'n_r2': 1.4 is not a coefficient of determination"),
    (
        {"model": "m", "avg": 50, "setup": {"task": "alo"}},
        "field 'task': 'alo' is not a task; use one of aloe",
    ),
]


@pytest.mark.parametrize(("row", "message"), BAD_ROWS, ids=[m.split(":")[0] for _, m in BAD_ROWS])
def test_a_malformed_row_gets_one_line_naming_file_row_and_field(tmp_path, cli, row, message):
    path = _file(tmp_path / "reported", "paper.yaml", [{"model": "fine", "avg": 40.0}, row])
    code, out, err = cli("leaderboard", "--reported", tmp_path / "reported")
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1, err
    assert f"{path}: row 2" in err and message in err, err


def test_a_task_registered_through_the_task_api_is_a_task_of_the_printed_rows(tmp_path, cli, monkeypatch):
    # Which tasks a printed row may name is the registry's answer, not a list in the run log: a task
    # registered in this process is one, and the error names it beside the built-in ones.
    from dataclasses import replace

    from aloe_bench.engine import task_api

    third = replace(task_api.get_task("aloe"), kind="printed_third", title="Printed third", board_title=None)
    monkeypatch.setitem(task_api._REGISTERED, "printed_third", third)
    setup = {"task": "printed_third", "judge": "j", "simulator": "s", "protocol": "p", "scale": "1-5"}
    _file(tmp_path / "rep", "p.yaml", [{"model": "m", "avg": 3.5}], setup=setup)
    code, md, err = cli("leaderboard", "--reported", tmp_path / "rep")
    assert code == 0, err
    assert "## printed_third" in md and "| A1 | [P, table 2](https://arxiv.org/abs/2505.15456) | m |" in md
    assert [f.task for f in load_reported(tmp_path / "rep", tasks=task_api.kinds())] == ["printed_third"]
    _file(tmp_path / "bad", "p.yaml", [{"model": "m", "avg": 3.5}], setup={**setup, "task": "unheard_of"})
    code, _, err = cli("leaderboard", "--reported", tmp_path / "bad")
    assert code == 2 and "'unheard_of' is not a task; use one of" in err and "printed_third" in err, err


def test_a_registered_task_heads_its_table_with_its_own_title_in_registered_order(tmp_path, cli, monkeypatch):
    # The board's headings and their order are the tasks' own (Task.board_title, registration order):
    # a third task with a title shows it, one without shows its kind, and neither is sorted by name.
    from dataclasses import replace

    from aloe_bench.engine import task_api

    aloe = task_api.get_task("aloe")
    for kind, title in (("zeta_third", "Zeta, a third task"), ("alpha_third", None)):
        monkeypatch.setitem(task_api._REGISTERED, kind, replace(aloe, kind=kind, board_title=title))
    setup = {"judge": "j", "simulator": "s", "protocol": "p", "scale": "1-5"}
    for kind in ("alpha_third", "zeta_third", "multifaceted", "aloe"):
        _file(
            tmp_path / "rep",
            f"{kind}.yaml",
            [{"model": f"m-{kind}", "avg": 3.5}],
            setup={**setup, "task": kind},
        )
    code, md, err = cli("leaderboard", "--reported", tmp_path / "rep")
    assert code == 0, err
    headings = [line for line in md.splitlines() if line.startswith("## ")]
    assert headings == [
        "## ALOE (multi-turn, implicit preferences)",
        "## Multifaceted Bench",
        "## Zeta, a third task",
        "## alpha_third",
    ]
    assert md.index("m-zeta_third") > md.index("## Zeta, a third task") > md.index("m-multifaceted")
    code, html, err = cli("leaderboard", "--reported", tmp_path / "rep", "--format", "html")
    assert code == 0 and "<h2>Zeta, a third task</h2>" in html and "<h2>alpha_third</h2>" in html, err


def test_malformed_files_name_the_file(tmp_path, cli):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "broken.yaml").write_text("rows: [\n  {model: x\n")
    code, _, err = cli("leaderboard", "--reported", tmp_path / "a")
    assert code == 2 and "broken.yaml: line" in err and "not valid YAML" in err
    _file(tmp_path / "b", "old.yaml", [{"model": "m", "avg": 1.0}], format="v0")
    code, _, err = cli("leaderboard", "--reported", tmp_path / "b")
    assert code == 2 and "old.yaml: field 'format'" in err
    _file(tmp_path / "c", "nodigits.yaml", [{"model": "m", "avg": 1.0}], digits={"al": 2})
    code, _, err = cli("leaderboard", "--reported", tmp_path / "c")
    assert code == 2 and "row 1 (m): field 'avg': the file gives no printed precision" in err
    code, _, err = cli("leaderboard", "--reported", tmp_path / "missing")
    assert code == 2 and "is not a directory" in err


def test_a_run_is_its_own_group_never_ranked_against_a_paper(tmp_path, cli):
    """The demo run, even with a higher AVG than every printed row on its own scale, is group A rank 1
    and the printed rows are group B from rank 1; both scales get their own, titled columns."""
    run = write_synthetic_run(tmp_path / "demo", {pid: [2, 3, 4] for pid in IDS}, model="hf/demo")
    _file(tmp_path / "rep", "p.yaml", [{"model": "big", "avg": 80.0}, {"model": "small", "avg": 10.0}])
    code, out, err = cli("leaderboard", run, "--reported", tmp_path / "rep", "--format", "csv")
    assert code == 0, err
    table = pd.read_csv(io.StringIO(out))
    assert list(zip(table["kind"], table["group"], table["rank"], strict=True)) == [
        ("run", "A", 1), ("reported", "B", 1), ("reported", "B", 2),
    ]  # fmt: skip
    assert list(table["model"]) == ["hf/demo", "big", "small"]
    code, md, err = cli("leaderboard", run, "--reported", tmp_path / "rep")
    assert code == 0, err
    assert (
        "| A1 | run | hf/demo |" in md
        and "| B1 | [P, table 2](https://arxiv.org/abs/2505.15456) | big |" in md
    )
    assert "AVG (1–5) [95% CI]" in md and "AVG (%)" in md and "this table mixes AL scales" in md
    assert "- **A**: measured here: judge synthetic/judge" in md and "- **B**: as printed by P: judge j" in md


def test_one_scale_shares_one_axis(tmp_path, cli):
    """Printed rows on the judge's 1-5 scale, like the run: one set of columns, no mixed-scale note."""
    run = write_synthetic_run(tmp_path / "demo", {pid: [2, 3, 4] for pid in IDS}, model="hf/demo")
    setup = {"task": "aloe", "judge": "j", "simulator": "s", "protocol": "p", "scale": "1-5", "turns": 3}
    _file(tmp_path / "rep", "p.yaml", [{"model": "m", "avg": 3.5}], setup=setup)
    code, md, err = cli("leaderboard", run, "--reported", tmp_path / "rep")
    assert code == 0, err
    assert "AVG (1–5) [95% CI]" in md and "(%)" not in md and "mixes AL scales" not in md
    assert "| A1 | run |" in md and "| B1 |" in md  # same scale, still another setup: another group


def _svg_text(path: Path) -> str:
    return path.read_text()


def test_plot_overlays_printed_curves_dashed_and_labelled(tmp_path):
    """A percent curve gets its own, titled axis beside the runs' 1-5 axis; a 1-5 curve shares it;
    both are dashed and say "as printed" with their source."""
    from matplotlib import rc_context

    from aloe_bench.reports.plot import plot_curves
    from aloe_bench.reports.runinfo import load_runs

    run = write_synthetic_run(tmp_path / "demo", {pid: [2, 3, 4] for pid in IDS}, model="hf/demo")
    y = _curve(1, turns=3)
    _file(tmp_path / "pct", "p.yaml", [{"model": "pct-model", "al": [round(v, 2) for v in y]}], **{
        "setup": {"task": "aloe", "judge": "j", "simulator": "s", "protocol": "p", "scale": "percent", "turns": 3}
    })  # fmt: skip
    _file(tmp_path / "one", "q.yaml", [{"model": "judge-scale", "al": [2.5, 3.0, 3.5]}], short="Q", **{
        "setup": {"task": "aloe", "judge": "j", "simulator": "s", "protocol": "p", "scale": "1-5", "turns": 3}
    })  # fmt: skip
    infos = load_runs([run])
    with rc_context({"svg.fonttype": "none"}):  # text as text, so the test can read it
        both = plot_curves(
            infos, tmp_path / "both.svg",
            reported=reported_rows(load_reported(tmp_path / "pct") + load_reported(tmp_path / "one")),
        )  # fmt: skip
        same = plot_curves(
            infos, tmp_path / "same.svg", reported=reported_rows(load_reported(tmp_path / "one"))
        )
    text = _svg_text(both)
    assert "pct-model: as printed (P, table 2, %; no interval printed)" in text
    assert "judge-scale: as printed (Q, table 2, 1–5; no interval printed)" in text
    assert "AL(k) as printed (%), its own axis" in text
    assert "stroke-dasharray" in text  # the printed curves are dashed
    assert "its own axis" not in _svg_text(same) and "judge-scale: as printed" in _svg_text(same)


def test_plot_command_takes_reported(tmp_path, cli):
    run = write_synthetic_run(tmp_path / "demo", {pid: [2, 3, 4] for pid in IDS}, model="hf/demo")
    _file(tmp_path / "rep", "p.yaml", [{"model": "m", "al": [round(v, 2) for v in _curve(2)]}])
    code, out, err = cli(
        "plot", run, "--reported", tmp_path / "rep", "--output", tmp_path / "c.png", "--dpi", "50"
    )
    assert code == 0 and "wrote" in out, err
    code, _, err = cli("plot", run, "--reported", tmp_path / "nothing", "--output", tmp_path / "c.png")
    assert code == 2 and "is not a directory" in err


def _reports_imports() -> dict[str, set[str]]:
    """Module -> the aloe_bench.reports modules it imports, at the top or inside functions."""
    import ast

    root = REPO / "aloe_bench" / "reports"
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        parts = path.relative_to(REPO).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.ImportFrom)
                and node.module
                and node.module.startswith("aloe_bench.reports")
            ):
                found.add(node.module)
                found.update(f"{node.module}.{a.name}" for a in node.names)
        graph[name] = found
    return {m: {t for t in targets if t in graph and t != m} for m, targets in graph.items()}


def test_reports_have_no_import_circle():
    """leaderboard -> viewer -> payload -> leaderboard was a circle (for one constant); none is left."""
    graph = _reports_imports()
    assert "aloe_bench.reports.leaderboard" not in graph["aloe_bench.reports.viewer.payload"]

    def reach(start: str) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in graph.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    circles = sorted(m for m in graph if m in reach(m))
    assert circles == [], circles
