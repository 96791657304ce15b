"""The inference gap: the same model on the same personas, persona hidden (ALOE) vs stated in the
system message (aloe_explicit). gap = explicit - implicit, per turn and overall, paired by persona.

A positive gap is what the model loses by having to infer the person; what remains below 5 in the
explicit run is failing to act on what it was told. Only runs that differ in nothing but the
disclosure are compared (same model, judge, simulated user, prompts, personas and turns).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from aloe_bench.errors import UserInputError
from aloe_bench.metrics import _clean
from aloe_bench.results import Run, score_matrix

# -- paired statistics ------------------------------------------------------------------------------------
# Kept self-contained on purpose: the paired statistics of `aloe-bench compare` (issue 4) should
# absorb this function once both are on main (same pairing by persona id, same bootstrap).


def paired_turn_gap(
    implicit: np.ndarray,
    explicit: np.ndarray,
    *,
    n_bootstrap: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Any]:
    """Mean paired difference (explicit - implicit) per turn and overall, with percentile bootstrap
    CIs that resample personas (pairs kept together).

    `implicit` and `explicit` are (personas x turns) score matrices with rows aligned by persona;
    NaN marks a missing judgement. A turn's gap averages the personas scored at that turn in both
    runs; the overall gap averages over personas each persona's mean paired difference over turns
    (with no missing judgement: the difference of the two runs' AVG).
    """
    implicit, explicit = np.asarray(implicit, float), np.asarray(explicit, float)
    if implicit.shape != explicit.shape or implicit.ndim != 2:
        raise ValueError("both score matrices must have the same (personas x turns) shape")
    n_personas, n_turns = implicit.shape
    paired = ~np.isnan(implicit) & ~np.isnan(explicit)  # cells judged in both runs
    implicit_p, explicit_p = np.where(paired, implicit, np.nan), np.where(paired, explicit, np.nan)
    turn_diffs = explicit_p - implicit_p
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        persona_diffs = np.nanmean(turn_diffs, axis=1)  # each persona: mean paired difference over turns
        result: dict[str, Any] = {
            "personas": n_personas,
            "level": level,
            "n_bootstrap": n_bootstrap,
            "turns": [
                {
                    "turn": k + 1,
                    "implicit": _clean(np.nanmean(implicit_p[:, k])),
                    "explicit": _clean(np.nanmean(explicit_p[:, k])),
                    "gap": _clean(np.nanmean(turn_diffs[:, k])),
                    "n": int(paired[:, k].sum()),
                }
                for k in range(n_turns)
            ],
            "overall": {
                "implicit": _clean(np.nanmean(np.nanmean(implicit_p, axis=1))),
                "explicit": _clean(np.nanmean(np.nanmean(explicit_p, axis=1))),
                "gap": _clean(np.nanmean(persona_diffs)),
                "n": int((~np.isnan(persona_diffs)).sum()),
            },
        }
        if n_personas and n_bootstrap > 0:
            rng = np.random.default_rng(seed)
            idx = rng.integers(0, n_personas, size=(n_bootstrap, n_personas))
            turn_boot = np.nanmean(turn_diffs[idx], axis=1)  # (B, K)
            overall_boot = np.nanmean(persona_diffs[idx], axis=1)  # (B,)
        else:
            turn_boot, overall_boot = np.full((0, n_turns), np.nan), np.full(0, np.nan)
    tail = (1 - level) / 2 * 100

    def interval(samples: np.ndarray) -> list[float | None] | None:
        samples = samples[~np.isnan(samples)]
        if samples.size == 0:
            return None
        lo, hi = np.percentile(samples, [tail, 100 - tail])
        return [_clean(lo), _clean(hi)]

    for k, row in enumerate(result["turns"]):
        row["ci"] = interval(turn_boot[:, k])
    result["overall"]["ci"] = interval(overall_boot)
    return result


# -- runs ---------------------------------------------------------------------------------------------------
def _role(config: dict[str, Any], name: str) -> dict[str, Any]:
    role = config.get(name) or {}
    return {k: role.get(k) for k in ("spec", "args", "max_new_tokens", "temperature", "top_p")}


def _must_match(implicit: Run, explicit: Run) -> None:
    a, b = implicit.config, explicit.config
    prompts_a, prompts_b = a.get("prompts", {}), b.get("prompts", {})
    checks = [
        ("model under test", _role(a, "model"), _role(b, "model")),
        ("judge", _role(a, "judge"), _role(b, "judge")),
        ("simulated user", _role(a, "simulator"), _role(b, "simulator")),
        ("judge protocol", a.get("protocol"), b.get("protocol")),
        ("judge prompt", prompts_a.get("judge"), prompts_b.get("judge")),
        ("simulated-user prompt", prompts_a.get("simulator"), prompts_b.get("simulator")),
        ("personas", (a.get("personas") or {}).get("sha256"), (b.get("personas") or {}).get("sha256")),
        ("turns", a.get("turns"), b.get("turns")),
    ]
    for what, left, right in checks:
        if left != right:
            shown = (
                (left.get("spec"), right.get("spec"))
                if isinstance(left, dict) and "spec" in left
                else (left, right)
            )
            if shown[0] == shown[1]:
                shown = ("its settings", "other settings")
            raise UserInputError(
                f"cannot compare: the runs used different {what} ({shown[0]} vs {shown[1]}); "
                "an inference gap needs two runs that differ only in persona disclosure"
            )


def inference_gap(
    implicit: Run, explicit: Run, *, n_bootstrap: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """The gap between a hidden-persona run and a stated-persona run, paired by persona id."""
    for run in (implicit, explicit):
        if run.config.get("kind", "aloe") != "aloe":
            raise UserInputError(f"{run.path} is a {run.config.get('kind')} run; gap compares two ALOE runs")
    disclosure = (implicit.config.get("persona_disclosure"), explicit.config.get("persona_disclosure"))
    if disclosure != ("hidden", "system"):
        raise UserInputError(
            f"the first run must hide the persona and the second state it in the system message "
            f"(got {disclosure[0]}, {disclosure[1]}); pass IMPLICIT_RUN (e.g. aloe_demo) then EXPLICIT_RUN "
            "(e.g. aloe_explicit_demo)"
        )
    _must_match(implicit, explicit)
    turns = int(implicit.config.get("turns") or 0)
    complete_a = {c.id: c for c in implicit.conversations if c.status == "complete"}
    complete_b = {c.id: c for c in explicit.conversations if c.status == "complete"}
    ids = [i for i in complete_a if i in complete_b]
    if not ids:
        raise UserInputError(
            "the two runs share no complete conversation of the same persona; nothing to pair"
        )
    result = paired_turn_gap(
        score_matrix([complete_a[i] for i in ids], turns),
        score_matrix([complete_b[i] for i in ids], turns),
        n_bootstrap=n_bootstrap,
        seed=seed,
        level=level,
    )
    result["unpaired"] = {
        "implicit": len(complete_a) - len(ids),
        "explicit": len(complete_b) - len(ids),
    }
    result["implicit_run"], result["explicit_run"] = str(implicit.path), str(explicit.path)
    cfg = implicit.config
    result["setup"] = {
        "model": cfg.get("model", {}).get("spec"),
        "judge": cfg.get("judge", {}).get("spec"),
        "simulator": cfg.get("simulator", {}).get("spec"),
        "protocol": cfg.get("protocol"),
        "personas": (cfg.get("personas") or {}).get("set"),
    }
    return result


def _signed(x: float | None) -> str:
    return "   -   " if x is None else f"{x:+.3f}"


def _band(ci: list[float | None] | None) -> str:
    return "" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def format_gap(result: dict[str, Any]) -> str:
    s = result["setup"]
    pct = round(result["level"] * 100)
    lines = [
        f"Inference gap  model={s['model']}  judge={s['judge']}  simulator={s['simulator']}  "
        f"protocol={s['protocol']}  personas={s['personas']} ({result['overall']['n']} paired)",
        "gap = explicit (persona in the system message) - implicit (hidden); > 0: the model does better "
        "when told who the user is",
        f"{'turn':>5}  {'implicit':>8}  {'explicit':>8}  {'gap':>7}  {f'{pct}% CI':>18}  {'n':>4}",
    ]

    def fmt(x: float | None) -> str:
        return "   -  " if x is None else f"{x:.3f}"

    for row in result["turns"]:
        lines.append(
            f"{row['turn']:>5}  {fmt(row['implicit']):>8}  {fmt(row['explicit']):>8}  {_signed(row['gap']):>7}  "
            f"{_band(row['ci']):>18}  {row['n']:>4}"
        )
    o = result["overall"]
    lines.append(
        f"{'all':>5}  {fmt(o['implicit']):>8}  {fmt(o['explicit']):>8}  {_signed(o['gap']):>7}  "
        f"{_band(o['ci']):>18}  {o['n']:>4}"
    )
    unpaired = result.get("unpaired") or {}
    if any(unpaired.values()):
        lines.append(
            f"left out (no complete partner): {unpaired['implicit']} implicit, {unpaired['explicit']} explicit"
        )
    return "\n".join(lines)
