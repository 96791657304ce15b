"""aloe_explicit (the persona stated in the system message) and `aloe-bench gap` (the inference gap)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aloe_bench.engine import task_api
from aloe_bench.engine.task_api import get_task
from aloe_bench.engine.task_files import load_task_settings
from aloe_bench.log.results import load_run, score_matrix
from aloe_bench.reports.compare import paired_difference, paired_turn_differences
from aloe_bench.tasks import aloe
from aloe_bench.testing.runs import write_synthetic_run

REPO = Path(__file__).resolve().parents[1]
TINY = ["--limit", "2", "--turns", "2", "--max-new-tokens", "16", "--simulator-max-new-tokens", "16",
        "--judge-max-new-tokens", "8", "--no-progress"]  # fmt: skip


@pytest.fixture(autouse=True)
def checkout_tasks(monkeypatch):
    """Task names resolve in this checkout's tasks/ (an installed aloe_tasks may be another copy)."""
    monkeypatch.setattr("aloe_bench.engine.task_files.tasks_dir", lambda: REPO / "tasks")


@pytest.mark.parametrize(
    ("explicit", "hidden"), [("aloe_explicit", "aloe_paper"), ("aloe_explicit_demo", "aloe_demo")]
)
def test_explicit_tasks_differ_from_hidden_only_in_disclosure(explicit, hidden):
    _, stated = load_task_settings(explicit)
    _, base = load_task_settings(hidden)
    assert stated.pop("persona_disclosure") == "system"
    assert base.get("persona_disclosure", "hidden") == "hidden"
    assert stated == {k: v for k, v in base.items() if k != "persona_disclosure"}


def test_paired_gap_hand_computed():
    """The gap's statistics (those of `aloe-bench compare`, explicit - implicit) by hand."""
    implicit = {"p1": [3, 4], "p2": [2, np.nan], "p3": [4, 4]}
    explicit = {"p1": [4, 5], "p2": [3, 3], "p3": [4, 5]}
    t1, t2 = paired_turn_differences(implicit, explicit, n_bootstrap=1000, seed=1)
    assert t1.diff == pytest.approx(2 / 3, abs=1e-6) and t1.n == 3
    assert (t1.mean_a, t1.mean_b) == (pytest.approx(3.0), pytest.approx(11 / 3, abs=1e-6))
    # turn 2: persona 2 has no implicit judgement, so only personas 1 and 3 pair up
    assert t2.diff == pytest.approx(1.0) and t2.n == 2
    assert (t2.mean_a, t2.mean_b) == (pytest.approx(4.0), pytest.approx(5.0))
    # overall, the unit is a persona's mean score: 3.5 -> 4.5, 2 -> 3, 4 -> 4.5
    means = {run: {p: float(np.nanmean(v)) for p, v in scores.items()} for run, scores in
             (("i", implicit), ("e", explicit))}  # fmt: skip
    overall = paired_difference(means["i"], means["e"], n_bootstrap=1000, seed=1)
    assert overall.diff == pytest.approx(2.5 / 3, abs=1e-6) and overall.n == 3
    for d in (t1, t2, overall):
        assert d.ci[0] <= d.diff <= d.ci[1]
    assert overall.ci[0] >= 0.5 and overall.ci[1] <= 1.0  # bounded by the persona differences

    same = paired_difference(means["i"], means["i"], n_bootstrap=200)
    assert same.diff == 0 and same.ci == (0, 0) and same.p_value == 1.0


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, embedded_checkpoint):
    """The same two demo personas, hidden and stated, the embedded model in every role."""
    from aloe_bench.cli.main import main

    base = tmp_path_factory.mktemp("gap")
    # Judged by the 135M embedded model, whose answers parse by luck: these assertions were written
    # against the torch runtime's answers (docs/embedded.md), so they run on it.
    with pytest.MonkeyPatch.context() as env:
        env.setenv("ALOE_EMBEDDED_RUNTIME", "torch")
        codes = [run_task(main, base, task) for task in ("aloe_demo", "aloe_explicit_demo")]
    assert codes == [0, 0]
    return base / "aloe_demo", base / "aloe_explicit_demo"


def run_task(main, base, task) -> int:
    return main(["run", "--task", str(REPO / "tasks" / "aloe" / f"{task}.yaml"), "--model", "embedded",
                 "--output", str(base / task), "--cache", str(base / "calls.sqlite"), *TINY])  # fmt: skip


def test_explicit_run_states_the_persona(two_runs):
    hidden, stated = load_run(two_runs[0]), load_run(two_runs[1])
    assert hidden.config.persona_disclosure == "hidden" and stated.config.persona_disclosure == "system"
    assert (stated.config.prompts or {})["model_system"].name == "model/explicit-persona"
    assert stated.config.model.system_role == "native"
    assert [c.id for c in stated.conversations] == [c.id for c in hidden.conversations]
    for a, b in zip(hidden.conversations, stated.conversations, strict=True):
        assert a.status == b.status == "complete" and len(b.turns) == 2
        assert a.turns[0].user == b.turns[0].user  # same persona, same seed: the same opening message
    # The persona (~200 tokens) reaches the model under test on each of its 4 calls in the explicit run.
    extra = stated.results.usage["model"].prompt_tokens - hidden.results.usage["model"].prompt_tokens
    assert extra > 4 * 100


def test_gap_prints_per_turn_differences_with_cis(two_runs, cli, tmp_path):
    code, out, err = cli("gap", *two_runs, "--json", tmp_path / "gap.json", "--n-bootstrap", "500")
    assert code == 0, err
    result = json.loads((tmp_path / "gap.json").read_text())
    hidden, stated = load_run(two_runs[0]), load_run(two_runs[1])
    a, b = score_matrix(hidden.conversations, 2), score_matrix(stated.conversations, 2)  # same persona order
    lines = out.splitlines()
    # A persona pairs when the judge scored it in both runs (its mean over turns exists in each).
    paired = int(np.sum(~np.all(np.isnan(a), axis=1) & ~np.all(np.isnan(b), axis=1)))
    assert lines[0].startswith("Inference gap") and f"({paired} paired)" in lines[0]
    assert result["overall"]["n"] == paired
    for k, row in enumerate(result["turns"]):
        both = ~np.isnan(a[:, k]) & ~np.isnan(b[:, k])
        assert row["gap"] == pytest.approx(np.mean(b[both, k] - a[both, k]), abs=1e-6)
        printed = next(line for line in lines if line.split()[:1] == [str(k + 1)])
        assert f"{row['gap']:+.3f}" in printed and f"[{row['ci'][0]:+.3f}, {row['ci'][1]:+.3f}]" in printed
    overall = next(line for line in lines if line.split()[:1] == ["all"])
    assert f"{result['overall']['gap']:+.3f}" in overall and "[" in overall


def _edited_copy(src: Path, dst: Path, **changes) -> Path:
    shutil.copytree(src, dst)
    results = json.loads((dst / "results.json").read_text())
    for dotted, value in changes.items():
        node = results["config"]
        *path, last = dotted.split("__")
        for key in path:
            node = node[key]
        node[last] = value
    (dst / "results.json").write_text(json.dumps(results))
    return dst


def test_gap_refuses_runs_that_differ_in_more_than_disclosure(two_runs, cli, tmp_path):
    hidden, stated = two_runs
    code, _, err = cli("gap", stated, hidden)
    assert code == 2 and "first run must hide the persona" in err
    code, _, err = cli("gap", hidden, hidden)
    assert code == 2 and "(got hidden, hidden)" in err
    cases = {
        "turns": ({"turns": 3}, "different turns"),
        "judge": ({"judge__spec": "openai/gpt-4o-mini-2024-07-18"}, "different judge (embedded vs openai/"),
        "simulator": ({"simulator__temperature": 0.7}, "different simulated user"),
        "personas": ({"personas__sha256": "0" * 64}, "different personas"),
        "model": ({"model__spec": "hf/other"}, "different model under test"),
        "kind": ({"kind": "multifaceted"}, "is a multifaceted run"),
    }
    for name, (changes, message) in cases.items():
        edited = _edited_copy(stated, tmp_path / name, **changes)
        code, out, err = cli("gap", hidden, edited)
        assert code == 2 and message in err, (name, err)
        assert len([line for line in err.splitlines() if line]) == 1 and not out
    code, _, err = cli("gap", hidden, tmp_path / "missing")
    assert code == 2 and "is not a run directory" in err


def _synthetic_pair(base: Path, kind: str | None = None) -> tuple[Path, Path]:
    """A hidden-persona run and a stated-persona run of the same personas (no model), of `kind`."""
    runs = []
    for name, disclosure, scores in (("hidden", "hidden", [2, 3]), ("stated", "system", [4, 5])):
        run = write_synthetic_run(base / name, {"p1": scores, "p2": scores[::-1]}, disclosure=disclosure)
        if kind is not None:
            results = json.loads((run / "results.json").read_text())
            results["config"]["kind"] = kind
            (run / "results.json").write_text(json.dumps(results))
        runs.append(run)
    return runs[0], runs[1]


def test_gap_asks_the_runs_task_whether_it_has_a_gap(cli, tmp_path, monkeypatch):
    """A task declares the inference gap in its `supports`: a registered task that does not is refused
    with one line naming the run's kind and the fix; the same runs as ALOE runs are compared."""
    monkeypatch.setitem(
        task_api._REGISTERED, "no_persona", replace(aloe.TASK, kind="no_persona", supports=frozenset())
    )
    monkeypatch.setitem(task_api._REGISTERED, "hides_too", replace(aloe.TASK, kind="hides_too"))
    assert "gap" in aloe.TASK.supports and "gap" not in get_task("multifaceted").supports

    code, out, err = cli("gap", *_synthetic_pair(tmp_path / "unrecorded"), "--n-bootstrap", "200")
    assert code == 0 and out.startswith("Inference gap"), err  # no kind recorded: read as ALOE's
    code, out, err = cli("gap", *_synthetic_pair(tmp_path / "hides_too", "hides_too"), "--n-bootstrap", "200")
    assert code == 0 and out.startswith("Inference gap"), err  # a third task that declares it

    hidden, stated = _synthetic_pair(tmp_path / "no_persona", "no_persona")
    code, out, err = cli("gap", hidden, stated)
    lines = [line for line in err.splitlines() if line]
    assert code == 2 and not out and len(lines) == 1, err
    assert f"{hidden} is a no_persona run" in lines[0] and "has no inference gap" in lines[0]
    able = lines[0].rpartition("(")[2]
    assert "aloe" in able and "hides_too" in able and "no_persona" not in able and "multifaceted" not in able
