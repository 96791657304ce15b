"""Paired comparison by persona: known shifts are found, identical runs give 0 and p = 1."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy import stats

from aloe_bench.log.results import load_run
from aloe_bench.reports.compare import (
    compare_runs,
    holm,
    paired_difference,
    paired_turn_differences,
    persona_means,
    wilcoxon_p,
)
from aloe_bench.testing.runs import write_synthetic_run

IDS = [f"p{i:02d}" for i in range(40)]


def base_scores(seed: int = 0, turns: int = 4) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    return {pid: [int(v) for v in rng.integers(1, 5, size=turns)] for pid in IDS}  # 1..4: room for +1


def shifted(scores: dict[str, list[int]], every: int = 1) -> dict[str, list[int]]:
    """+1 on every turn for every `every`-th persona."""
    return {
        pid: [s + 1 for s in row] if i % every == 0 else list(row)
        for i, (pid, row) in enumerate(scores.items())
    }


def test_known_shift_is_found(tmp_path):
    a_scores = base_scores()
    b_scores = shifted(a_scores, every=2)  # half the personas gain exactly 1 point
    a = load_run(write_synthetic_run(tmp_path / "a", a_scores))
    b = load_run(write_synthetic_run(tmp_path / "b", b_scores))
    c = compare_runs(a, b, n_bootstrap=1000)
    d = c.overall
    assert d.n == 40 and d.only_a == d.only_b == 0
    assert d.diff == pytest.approx(0.5)  # 20 of 40 personas +1
    assert d.mean_b - d.mean_a == pytest.approx(0.5)
    lo, hi = d.ci
    assert 0 < lo < 0.5 < hi < 1
    assert d.nonzero == 20
    assert d.p_value < 1e-3
    # Reversed, the difference changes sign and the test gives the same p.
    r = compare_runs(b, a, n_bootstrap=1000).overall
    assert r.diff == pytest.approx(-0.5) and r.p_value == pytest.approx(d.p_value)
    # Per turn: every turn carries the same +1 for half the personas.
    assert [t.diff for t in c.per_turn] == pytest.approx([0.5] * 4)


def test_identical_runs_give_zero_difference_and_p_one(tmp_path):
    scores = base_scores(seed=3)
    a = load_run(write_synthetic_run(tmp_path / "a", scores, model="m/a"))
    b = load_run(write_synthetic_run(tmp_path / "b", scores, model="m/b"))
    c = compare_runs(a, b)
    assert c.overall.diff == 0 and c.overall.p_value == 1.0 and c.overall.ci == (0.0, 0.0)
    assert c.overall.nonzero == 0 and c.overall.n == 40
    assert all(t.diff == 0 and t.p_value == 1.0 for t in c.per_turn)


def test_wilcoxon_matches_scipy_and_handles_all_zero():
    d = np.array([0.5, -0.25, 1.0, 0.0, 0.75, 1.25, -0.5, 0.0, 2.0])
    statistic, p = wilcoxon_p(d)
    expected = stats.wilcoxon(d)
    assert p == pytest.approx(expected.pvalue, abs=1e-6) and statistic == pytest.approx(expected.statistic)
    assert wilcoxon_p(np.zeros(7)) == (0.0, 1.0)
    assert wilcoxon_p(np.array([])) == (None, None)


def test_unpaired_failed_and_unscored_personas_are_dropped_and_counted(tmp_path):
    scores = base_scores(turns=3)
    a_scores = {pid: row for pid, row in scores.items() if pid != "p00"}  # p00 only in B
    b_scores = {pid: row for pid, row in scores.items() if pid != "p01"}  # p01 only in A
    b_scores["p02"] = [None, None, None]  # complete, but the judge never gave a score
    a = load_run(write_synthetic_run(tmp_path / "a", a_scores))
    b = load_run(write_synthetic_run(tmp_path / "b", b_scores, failed=["p03"]))
    c = compare_runs(a, b)
    assert c.failed_a == 0 and c.failed_b == 1 and c.unscored_b == 1
    # p01 (missing), p02 (unscored) and p03 (failed) are scored in A only; p00 in B only.
    assert (c.overall.only_a, c.overall.only_b, c.overall.n) == (3, 1, 36)
    assert c.overall.diff == 0 and c.overall.p_value == 1.0


def test_persona_mean_skips_invalid_turns(tmp_path):
    run = load_run(write_synthetic_run(tmp_path / "a", {"x": [2, None, 4], "y": [5, 5, 5]}))
    assert persona_means(run) == {"x": 3.0, "y": 5.0}


def test_per_turn_differences_locate_a_shift_at_one_turn():
    rng = np.random.default_rng(5)
    a = {pid: [float(v) for v in rng.integers(1, 5, size=3)] for pid in IDS}
    b = {pid: [row[0], row[1], row[2] + 1] for pid, row in a.items()}
    a["p05"][1] = float("nan")  # one missing judgement at turn 2: that persona is not paired there
    per_turn = paired_turn_differences(a, b, n_bootstrap=500)
    assert [t.n for t in per_turn] == [40, 39, 40]
    assert per_turn[0].diff == per_turn[1].diff == 0 and per_turn[0].p_value == 1.0
    assert per_turn[2].diff == pytest.approx(1.0) and per_turn[2].p_value < 1e-6


def test_bootstrap_ci_is_seeded_and_covers_the_mean():
    rng = np.random.default_rng(2)
    a = {pid: float(v) for pid, v in zip(IDS, rng.normal(3, 1, size=40), strict=True)}
    b = {pid: v + rng.normal(0.2, 0.5) for pid, v in a.items()}
    one = paired_difference(a, b, seed=1)
    assert one == paired_difference(a, b, seed=1) and one.ci != paired_difference(a, b, seed=2).ci
    assert one.ci[0] < one.diff < one.ci[1]


def test_holm_correction():
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, None, 0.01]) == [pytest.approx(0.5), None, pytest.approx(0.02)]
    assert holm([0.9, 0.8]) == [1.0, 1.0]


def test_compare_command_prints_the_paired_test(tmp_path, cli):
    a_scores = base_scores()
    write_synthetic_run(tmp_path / "a", a_scores, model="m/base")
    write_synthetic_run(tmp_path / "b", shifted(a_scores, every=2), model="m/tuned")
    write_synthetic_run(tmp_path / "c", a_scores, model="m/same")
    code, out, err = cli(
        "compare", tmp_path / "a", tmp_path / "b", tmp_path / "c", "--json", tmp_path / "c.json"
    )
    assert code == 0, err
    assert "B = m/tuned  vs  A = m/base" in out and "B − A = +0.500" in out
    assert "paired: 40 personas" in out
    assert "Holm" in out and "against baseline m/base" in out
    data = json.loads((tmp_path / "c.json").read_text())
    tuned, same = data["comparisons"]
    assert tuned["overall"]["diff"] == 0.5 and same["overall"]["p_value"] == 1.0
    # Holm with two tests: the smaller p doubles, the larger stays at least as large.
    assert tuned["p_holm"] == pytest.approx(min(1.0, 2 * tuned["overall"]["p_value"]))
    assert same["p_holm"] == 1.0


def test_compare_flags_different_setups_and_disjoint_personas(tmp_path, cli):
    write_synthetic_run(tmp_path / "a", {"x": [3, 4], "y": [2, 2]})
    write_synthetic_run(tmp_path / "b", {"z": [3, 4]}, judge="openai/other-judge")
    code, out, err = cli("compare", tmp_path / "a", tmp_path / "b")
    assert code == 2
    assert "differ in judge, persona set" in err
    assert "share no scored persona" in err and "Traceback" not in err
    assert "paired: 0 personas" in out


def test_compare_rejects_a_folder_that_is_not_a_run(tmp_path, cli):
    write_synthetic_run(tmp_path / "a", {"x": [3]})
    code, _, err = cli("compare", tmp_path / "a", tmp_path / "nothing")
    assert code == 2 and "is not a run directory" in err and len(err.strip().splitlines()) == 1


def test_runs_with_different_turn_counts_compare_only_the_common_turns(tmp_path, cli):
    """Issue 15: A scored 3 turns, B the same first 2; every per-turn difference is 0, so B − A is 0
    (it used to average A's 3 turns against B's 2 and report +0.333)."""
    three = {pid: [1, 1, 5] for pid in IDS[:10]}
    two = {pid: row[:2] for pid, row in three.items()}
    a = write_synthetic_run(tmp_path / "three", three, model="m/three")
    b = write_synthetic_run(tmp_path / "two", two, model="m/two")
    c = compare_runs(load_run(a), load_run(b))
    assert (c.turns_a, c.turns_b, c.turns) == (3, 2, 2)
    assert c.overall.diff == 0 and len(c.per_turn) == 2
    code, out, _ = cli("compare", a, b)
    assert code == 0
    assert "B − A = +0.000" in out
    assert "TURNS DIFFER: A has 3, B has 2: only turns 1-2 are compared" in out  # in the table itself
