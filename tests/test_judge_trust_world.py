"""The judge-trust statistics recover what a synthetic world planted (aloe_bench.testing.persona_world).

Tolerances: the world's draws are hashes, so every run is identical; the tolerances say how far a
statistic may sit from its planted value by sampling alone, about 3 standard errors at the test's
size, so a wrong formula fails while the world's own sampling noise passes.
"""

from __future__ import annotations

import json
import math
from itertools import product

import krippendorff
import numpy as np
import pytest

from aloe_bench.log.results import load_run
from aloe_bench.metrics.reliability import Z_POWER
from aloe_bench.testing.persona_world import FILLER_MAX, PersonaWorldServer, world_personas

PERSONAS, TURNS, REPEATS = 16, 4, 2
JUDGES = ("world-judge-a", "world-judge-b", "world-judge-blind")


def _personas_file(tmp_path, n):
    path = tmp_path / f"world{n}.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in world_personas(n)))
    return path


def _run(cli, server, out, personas, *extra, turns=TURNS):
    base = server.base_url
    args = ["run", "--model", "world-model", "--simulator", "world-user", "--personas", personas]
    args = [a if a not in ("world-model", "world-user") else f"openai/{a}" for a in args]
    args += ["--model-base-url", base, "--simulator-base-url", base, "--judge-base-url", base]
    args += ["--turns", turns, "--no-cache", "--output", out, "--no-progress", *extra]
    return cli(*args)


@pytest.fixture(scope="module")
def world():
    with PersonaWorldServer() as server:
        yield server


@pytest.fixture
def panel_run(cli, world, tmp_path):
    judges = [a for j in JUDGES for a in ("--judge", f"openai/{j}")]
    code, out, err = _run(
        cli,
        world,
        tmp_path / "panel",
        _personas_file(tmp_path, PERSONAS),
        *judges,
        "--judge-repeats",
        REPEATS,
        "--controls",
        "swap",
    )
    assert code == 0, err
    return tmp_path / "panel", out, err


def _repeat_mean_auc() -> tuple[float, float]:
    """Planted paired AUC and discrimination of judge A over repeat means: true = 3+q+mean(b1,b2),
    swapped = 2+q+mean(b1',b2') with the same q, b's fair coins."""
    auc = disc = 0.0
    for b in product((0, 1), repeat=2 * REPEATS):
        t = 3 + sum(b[:REPEATS]) / REPEATS
        s = 2 + sum(b[REPEATS:]) / REPEATS
        w = 0.5 ** (2 * REPEATS)
        auc += w * ((t > s) + 0.5 * (t == s))
        disc += w * (t - s)
    return auc, disc


def test_the_world_is_recovered(panel_run):
    out, stdout, stderr = panel_run
    results = json.loads((out / "results.json").read_text())
    swap = results["validity"]["swap"]
    a, b, blind = (f"openai/{j}" for j in JUDGES)
    n = PERSONAS * TURNS

    # Persona swap: A's planted AUC 31/32 and discrimination 1. AUC is a mean of n paired
    # indicators (SE <= sqrt(p(1-p)/n) = 0.022 here); discrimination's per-pair SD is 0.5 (SE 0.063).
    planted_auc, planted_disc = _repeat_mean_auc()
    assert planted_auc == pytest.approx(31 / 32) and planted_disc == 1
    assert swap[a]["n"] == n
    assert abs(swap[a]["auc"] - planted_auc) < 3 * math.sqrt(planted_auc * (1 - planted_auc) / n) + 0.01
    assert abs(swap[a]["discrimination"] - planted_disc) < 3 * 0.5 / math.sqrt(n)
    lo, hi = swap[a]["discrimination_ci"]
    assert lo < swap[a]["discrimination"] < hi and lo > 0
    assert swap[a]["auc_ci"][0] > 0.5 and swap[b]["auc_ci"][0] > 0.5
    # The blind judge gives a reply the same score whoever it is judged for: AUC exactly 0.5.
    assert swap[blind]["auc"] == 0.5 and swap[blind]["discrimination"] == 0
    flagged = {
        w["message"].split(":")[0] for w in results["warnings"] if w["code"] == "judge-no-discrimination"
    }
    assert flagged == {f"judge {blind}"}
    assert "judge-no-discrimination" in stdout and blind in stdout

    # Alpha: the reported values are krippendorff's on the same raw scores.
    convs = load_run(out).conversations
    rel = results["reliability"]
    raw = {j: np.full((REPEATS, n), np.nan) for j in (a, b, blind)}
    first = np.full((3, n), np.nan)
    for u, turn in enumerate(t for c in convs for t in c.turns):
        for j in turn.judgements or []:
            raw[j.judge][j.repeat, u] = j.score
            if j.repeat == 0:
                first[(a, b, blind).index(j.judge), u] = j.score
    for judge in (a, b):
        expected = krippendorff.alpha(
            reliability_data=raw[judge], level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]
        )
        assert rel["judges"][judge]["test_retest_alpha"] == pytest.approx(expected, abs=1e-6)
    expected = krippendorff.alpha(
        reliability_data=first, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5]
    )
    assert rel["between_judges"]["alpha"] == pytest.approx(expected, abs=1e-6)
    # A's repeats share the reply's quality q (variance 1/4) and differ by fresh noise (1/4): the
    # planted reliability is 1/2 (interval scale); with n = 64 units alpha's SE is about 0.1.
    assert abs(rel["judges"][a]["test_retest_alpha"] - 0.5) < 0.3
    assert rel["judges"][blind]["test_retest_alpha"] == 1.0  # deterministic
    pair = next(p for p in rel["between_judges"]["pairs"] if {p["a"], p["b"]} == {a, b})
    # Planted exact agreement 3/4 (binomial SE 0.054 at n = 64), within-one exactly 1.
    assert abs(pair["exact"] - 0.75) < 3 * math.sqrt(0.75 * 0.25 / n) and pair["within_one"] == 1.0

    # Length: the blind judge is a 5-step function of a uniform filler count, so Spearman's rho is
    # about sqrt(1 - 1/25) = 0.98; A and B ignore length (rho 0, SE 1/sqrt(n-1) = 0.13).
    bias = results["validity"]["length_bias"]
    assert bias[blind]["unit"] == "characters" and bias[blind]["n"] == n
    assert abs(bias[blind]["spearman"] - math.sqrt(1 - 1 / 25)) < 0.05
    assert abs(bias[a]["spearman"]) < 3 / math.sqrt(n - 1)
    length_flagged = {
        w["message"].split(":")[0] for w in results["warnings"] if w["code"] == "judge-length-bias"
    }
    assert length_flagged == {f"judge {blind}"}

    # Cost before (the plan on stderr) and after (usage per judge, exact: no answer needs a re-ask).
    assert (
        f"judge calls planned: {n} (one judge, once per turn) + {2 * n} panel + {3 * n} repeats + {6 * n} swap control"
        in stderr
    )
    usage = results["usage"]
    assert usage["judge"]["calls"] == REPEATS * n  # the first judge, as the key always meant
    assert usage[f"judge:{b}"]["calls"] == REPEATS * n and usage[f"judge:{blind}"]["calls"] == REPEATS * n
    for judge in (a, b, blind):
        assert usage[f"judge:{judge}:swap"]["calls"] == REPEATS * n
    assert results["reliability"]["judge_calls"] == {
        "base": n,
        "panel": 2 * n,
        "repeats": 3 * n,
        "swap": 6 * n,
        "reasks": 0,
    }

    # Every judgement is kept; the turn score is their mean.
    turn = convs[0].turns[0]
    assert turn.judgements is not None and turn.swap_judgements is not None
    assert len(turn.judgements) == 6 and len(turn.swap_judgements) == 6
    assert turn.score == pytest.approx(np.mean([j.score for j in turn.judgements]))
    assert {j.persona_id for j in turn.swap_judgements} == {f"P{PERSONAS // 2:02d}"}


def test_the_noise_floor_is_recovered(cli, world, tmp_path):
    """One judge (A), two epochs: a turn scores 3 + q + b, q and b fair coins drawn anew every turn
    and epoch, so a persona's mean over T turns varies by 0.5/T between epochs and not at all
    between personas. Planted MDD = z * sqrt(2 (0.5/T) / E) / sqrt(n); the variance is estimated on
    n(E-1) = 30 degrees of freedom, so the MDD's relative SE is about sqrt(1/(2*30)) = 0.13."""
    n, epochs, turns = 30, 2, 3
    rel_se = math.sqrt(1 / (2 * n * (epochs - 1)))
    out = tmp_path / "epochs"
    code, _, err = _run(
        cli,
        world,
        out,
        _personas_file(tmp_path, n),
        "--judge",
        "openai/world-judge-a",
        "--epochs",
        epochs,
        turns=turns,
    )
    assert code == 0, err
    results = json.loads((out / "results.json").read_text())
    convs = load_run(out).conversations
    assert len(convs) == n * epochs and convs[n].id == "P00#e1" and convs[n].meta["persona_id"] == "P00"
    assert results["metrics"]["ci"]["clusters"] == n  # the bootstrap resampled personas
    floor = results["reliability"]["noise_floor"]
    planted = Z_POWER * math.sqrt(2 * (0.5 / turns) / epochs) / math.sqrt(n)
    assert floor["mdd_is_upper_bound"] is False
    assert abs(floor["mdd"]["avg"] / planted - 1) < 3 * rel_se
    # The variance itself has twice the relative SE of its square root.
    assert abs(floor["components"]["within_persona"] / (0.5 / turns) - 1) < 3 * 2 * rel_se
    # Personas needed for a 0.1 difference: (z / 0.1)^2 * 2 s2 / E, from the estimated s2.
    s2 = floor["components"]["within_persona"]
    assert floor["personas_for_target"] == math.ceil(Z_POWER**2 * 2 * s2 / epochs / 0.01)


def test_the_filler_rule_spans_the_scale():
    from aloe_bench.testing.persona_world import blind_score

    assert {blind_score("x" + " la" * k) for k in range(FILLER_MAX + 1)} == {1, 2, 3, 4, 5}
