"""How much of a score is noise: judge reliability (panels, repeats) and the noise floor of a run.

- Per judge: AVG, IR, invalid judgements, and test-retest Krippendorff's alpha (ordinal, 1-5) over
  its repeats (units = judged turns, coders = repeats). Alpha >= 0.8 is Krippendorff's bar for
  reliable data, >= 0.667 for tentative conclusions; below that the judge disagrees with itself.
- Between judges (a panel): alpha over the judges' first repeat, and per pair Spearman, exact and
  within-one agreement.
- Noise floor: variance components of a persona's mean score (persona, replicate = epoch or
  another run of the same setup, judge and repeat), and the minimal detectable difference (MDD) in
  AVG and IR between two models scored the same way: 80% power, two-sided alpha 0.05, paired by
  persona, normal approximation: MDD = (z_0.975 + z_0.8) * sqrt(2 * s2 / E) / sqrt(n), with s2 the
  within-persona variance of one replicate's mean, E replicates per persona, n personas. It assumes
  no persona x model interaction (not identifiable from one model's runs), so it is a lower bound
  for two different models and exact for two identical ones.
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Iterator, Sequence
from itertools import combinations
from typing import Any

import krippendorff
import numpy as np

from aloe_bench.log.records import JudgementRecord
from aloe_bench.log.results import ConversationRecord, Run
from aloe_bench.metrics.alignment import alignment_metrics
from aloe_bench.metrics.validity import judge_labels, judge_turn_mean, persona_key

SCALE = (1, 2, 3, 4, 5)
ALPHA_RELIABLE = 0.8
ALPHA_TENTATIVE = 0.667
# norm.ppf(0.975) + norm.ppf(0.8), as scipy gives it (a test checks): scipy.stats is imported only where
# a statistic needs it, since importing it costs every run and CLI start about half a second.
Z_POWER = 2.8015852181129683
TARGET_AVG_DIFFERENCE = 0.1


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def ordinal_alpha(data: np.ndarray) -> float | None:
    """Krippendorff's alpha (ordinal, values 1-5) of a (coders x units) array with NaN for missing;
    None when it is undefined (fewer than two paired values, or a single value observed)."""
    data = np.asarray(data, dtype=float)
    if data.ndim != 2 or data.shape[0] < 2:
        return None
    paired = np.sum(~np.isnan(data), axis=0) >= 2
    if paired.sum() < 2 or np.unique(data[:, paired][~np.isnan(data[:, paired])]).size < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            value = krippendorff.alpha(
                reliability_data=data, level_of_measurement="ordinal", value_domain=list(SCALE)
            )
        except (ValueError, ZeroDivisionError):
            return None
    return _round(value)


def _turn_units(
    conversations: Sequence[ConversationRecord],
) -> Iterator[tuple[ConversationRecord, int, list[JudgementRecord]]]:
    for conv in conversations:
        if conv.status != "complete":
            continue
        for k, turn in enumerate(conv.turns):
            judgements = turn.judgements
            if judgements:
                yield conv, k, judgements


def repeat_matrix(conversations: Sequence[ConversationRecord], label: str) -> np.ndarray:
    """(repeats x judged turns) scores of one judge, NaN where invalid."""
    columns = []
    for _, _, judgements in _turn_units(conversations):
        mine = {j.repeat: j.score for j in judgements if j.judge == label}
        if mine:
            columns.append(mine)
    repeats = max((max(c) + 1 for c in columns), default=0)
    data = np.full((repeats, len(columns)), np.nan)
    for u, col in enumerate(columns):
        for r, score in col.items():
            if score is not None:
                data[r, u] = score
    return data


def judge_matrix(conversations: Sequence[ConversationRecord], labels: Sequence[str]) -> np.ndarray:
    """(judges x judged turns) first-repeat scores, NaN where invalid or missing."""
    columns = []
    for _, _, judgements in _turn_units(conversations):
        first = {j.judge: j.score for j in judgements if j.repeat == 0}
        columns.append([first.get(label) for label in labels])
    data = np.array(
        [[np.nan if v is None else float(v) for v in col] for col in columns], dtype=float
    ).reshape(len(columns), len(labels))
    return data.T


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, Any]:
    """Spearman, exact and within-one agreement of two score vectors over the units both scored."""
    both = ~np.isnan(a) & ~np.isnan(b)
    x, y = a[both], b[both]
    rho = None
    if x.size >= 3 and np.unique(x).size > 1 and np.unique(y).size > 1:
        from scipy import stats

        rho = _round(float(stats.spearmanr(x, y).statistic))
    return {
        "spearman": rho,
        "exact": _round(float(np.mean(x == y))) if x.size else None,
        "within_one": _round(float(np.mean(np.abs(x - y) <= 1))) if x.size else None,
        "alpha": ordinal_alpha(np.vstack([a, b])),
        "n": int(x.size),
    }


def _judge_scores(conversations: Sequence[ConversationRecord], label: str, turns: int) -> np.ndarray:
    rows = []
    for conv in conversations:
        if conv.status != "complete":
            continue
        row = [np.nan] * turns
        for k, turn in enumerate(conv.turns[:turns]):
            mean = judge_turn_mean(turn.judgements, label)
            if mean is not None:
                row[k] = mean
        rows.append(row)
    return np.array(rows, dtype=float).reshape(len(rows), turns)


def judge_reliability(conversations: Sequence[ConversationRecord], turns: int) -> dict[str, Any]:
    """`judges` (per judge) and `between_judges` (a panel); empty without recorded judgements."""
    labels = judge_labels(conversations)
    if not labels:
        return {}
    judges: dict[str, Any] = {}
    for label in labels:
        metrics = alignment_metrics(_judge_scores(conversations, label, turns), n_bootstrap=0)
        data = repeat_matrix(conversations, label)
        judges[label] = {
            "avg": metrics["avg"],
            "ir": metrics["ir"],
            "judgements": int(data.size),
            "invalid": int(np.isnan(data).sum()),
            "repeats": int(data.shape[0]),
            "test_retest_alpha": ordinal_alpha(data) if data.shape[0] > 1 else None,
            "n": int(data.shape[1]),
        }
    out: dict[str, Any] = {"judges": judges}
    if len(labels) > 1:
        data = judge_matrix(conversations, labels)
        out["between_judges"] = {
            "alpha": ordinal_alpha(data),
            "n": int(data.shape[1]),
            "basis": "first repeat of each judge",
            "pairs": [
                {"a": labels[i], "b": labels[j], **agreement(data[i], data[j])}
                for i, j in combinations(range(len(labels)), 2)
            ],
        }
    return out


def reliability_warnings(reliability: dict[str, Any]) -> list[dict[str, str]]:
    """`judge-unreliable`: a judge below alpha 0.667 with itself (repeats) or a panel with itself."""
    found = []
    for label, j in (reliability.get("judges") or {}).items():
        a = j.get("test_retest_alpha")
        if a is not None and a < ALPHA_TENTATIVE:
            found.append(
                {
                    "code": "judge-unreliable",
                    "message": f"judge {label}: test-retest alpha {a:.2f} over {j['repeats']} repeats "
                    f"(n={j['n']} turns) is below {ALPHA_TENTATIVE}: it disagrees with itself",
                }
            )
    between = reliability.get("between_judges") or {}
    if between.get("alpha") is not None and between["alpha"] < ALPHA_TENTATIVE:
        found.append(
            {
                "code": "judge-unreliable",
                "message": f"judge panel: alpha {between['alpha']:.2f} between judges "
                f"(n={between['n']} turns) is below {ALPHA_TENTATIVE}: the judges disagree",
            }
        )
    return found


# --- the noise floor -------------------------------------------------------------------------------


def _slope(values: Sequence[float | None]) -> float | None:
    pts = [(k, v) for k, v in enumerate(values, 1) if v is not None and math.isfinite(v)]
    if len(pts) < 2:
        return None
    k = np.array([p[0] for p in pts], dtype=float)
    y = np.array([p[1] for p in pts], dtype=float)
    return float(np.polyfit(k, y, 1)[0])


def replicate_values(conversations: Sequence[ConversationRecord], source: str = "") -> dict[str, list]:
    """Per persona: [(replicate, mean score over turns, slope over turns)] of each complete conversation."""
    out: dict[str, list] = defaultdict(list)
    for conv in conversations:
        if conv.status != "complete":
            continue
        scores = [None if t.score is None else float(t.score) for t in conv.turns]
        valid = [s for s in scores if s is not None]
        if valid:
            out[persona_key(conv)].append((f"{source}{conv.id}", float(np.mean(valid)), _slope(scores)))
    return out


def _within(groups: list[list[float]]) -> tuple[float | None, int]:
    """Pooled within-group variance and its degrees of freedom."""
    ss, df = 0.0, 0
    for g in groups:
        if len(g) >= 2:
            ss += float(np.sum((np.array(g) - np.mean(g)) ** 2))
            df += len(g) - 1
    return (ss / df if df else None), df


def _judge_noise(conversations: Sequence[ConversationRecord]) -> tuple[float | None, float | None, int]:
    """Variance of one judgement around its judge's repeat mean (repeat) and of a judge's repeat
    mean around the panel's mean (judge x turn), per judged turn; and judgements per turn."""
    repeat_groups: list[list[float]] = []
    judge_groups: list[list[float]] = []
    per_turn: list[int] = []
    for _, _, judgements in _turn_units(conversations):
        by_judge: dict[str, list[float]] = defaultdict(list)
        for j in judgements:
            if j.score is not None:
                by_judge[j.judge].append(float(j.score))
        repeat_groups.extend(by_judge.values())
        judge_groups.append([float(np.mean(v)) for v in by_judge.values()])
        per_turn.append(sum(len(v) for v in by_judge.values()))
    repeat, _ = _within(repeat_groups)
    judge, _ = _within(judge_groups)
    return repeat, judge, int(np.median(per_turn)) if per_turn else 0


def mdd(s2: float | None, replicates: float, n: int) -> float | None:
    """Minimal detectable paired difference (80% power, two-sided 0.05) for n personas."""
    if s2 is None or n < 1 or replicates <= 0:
        return None
    return _round(Z_POWER * math.sqrt(2 * s2 / replicates) / math.sqrt(n))


def noise_floor(conversation_sets: Sequence[Sequence[ConversationRecord]], turns: int) -> dict[str, Any]:
    """Variance components and the minimal detectable differences in AVG and IR.

    Replicates of a persona are its epochs and the same persona in every run given (runs of one
    setup and model: another seed is another sample of the simulated user, model and judge)."""
    by_persona: dict[str, list] = defaultdict(list)
    for i, conversations in enumerate(conversation_sets):
        for key, values in replicate_values(conversations, f"run{i}:").items():
            by_persona[key].extend(values)
    n = len(by_persona)
    if n == 0:
        return {}
    means = [[v[1] for v in vals] for vals in by_persona.values()]
    slopes = [[v[2] for v in vals if v[2] is not None] for vals in by_persona.values()]
    replicates = float(np.mean([len(m) for m in means]))
    persona_means = np.array([np.mean(m) for m in means])
    between = float(np.var(persona_means, ddof=1)) if n > 1 else None
    within_avg, df = _within(means)
    within_ir, _ = _within(slopes)
    repeat, judge, per_turn = _judge_noise([c for cs in conversation_sets for c in cs])
    components: dict[str, Any] = {
        "within_persona": _round(within_avg),
        "within_persona_df": df,
        "persona": _round(max(0.0, between - (within_avg or 0) / replicates))
        if between is not None and within_avg is not None
        else None,
        "between_persona_means": _round(between),
        "judge_x_turn": _round(judge),
        "repeat": _round(repeat),
        "unit": "variance of one score (1-5 scale); within_persona and persona: of a persona's mean over turns",
    }
    s2_avg: float | None
    s2_ir: float | None
    if within_avg is not None:
        s2_avg, s2_ir = within_avg, within_ir
        basis = (
            f"replicates: {replicates:g} per persona (epochs, or the same persona in several runs); "
            "assumes no persona x model interaction"
        )
        exact = True
    elif between is not None:
        # One replicate per persona: the noise is not separable from the persona effect. The
        # spread between personas bounds it from above (pairing by persona can only help).
        s2_avg = between
        s2_ir = (
            float(np.var([s[0] for s in slopes if s], ddof=1)) if sum(1 for s in slopes if s) > 1 else None
        )
        basis = "between-persona spread (one replicate per persona): an upper bound; run --epochs 2 for the real one"
        exact = False
    else:
        s2_avg = s2_ir = None
        basis = "one persona: nothing to estimate"
        exact = False
    if s2_avg == 0 or s2_ir == 0:
        # Every scored persona got the same value (few personas, a judge that always says 5): a zero
        # spread is no evidence of zero noise, and an MDD of 0 would read as "any difference is real".
        basis += "; the scores do not vary across personas here, so they give no estimate"
        s2_avg = None if s2_avg == 0 else s2_avg
        s2_ir = None if s2_ir == 0 else s2_ir
    need_n = need_e = None
    if s2_avg is not None and s2_avg > 0:
        need_n = math.ceil(Z_POWER**2 * 2 * s2_avg / replicates / TARGET_AVG_DIFFERENCE**2)
        if exact:
            need_e = math.ceil(Z_POWER**2 * 2 * s2_avg / (n * TARGET_AVG_DIFFERENCE**2))
    return {
        "personas": n,
        "replicates_per_persona": _round(replicates),
        "judgements_per_turn": per_turn,
        "components": components,
        "mdd": {"avg": mdd(s2_avg, replicates, n), "ir": mdd(s2_ir, replicates, n)},
        "mdd_basis": basis,
        "mdd_is_upper_bound": not exact,
        "power": 0.8,
        "alpha": 0.05,
        "target_avg_difference": TARGET_AVG_DIFFERENCE,
        "personas_for_target": need_n,
        "replicates_for_target": need_e,
    }


def run_noise_floor(run: Run) -> dict[str, Any]:
    """A run's recorded noise floor, or one computed from its conversations (older runs)."""
    reliability = run.results.reliability
    recorded = reliability.noise_floor if reliability is not None else None
    if recorded:
        return recorded
    turns = run.turns
    return noise_floor([run.conversations], turns) if run.conversations and turns else {}


def pair_mdd(a: dict[str, Any] | None, b: dict[str, Any] | None, what: str = "avg") -> float | None:
    """The MDD of a difference between two runs from their noise floors: each run's MDD is
    z*sqrt(2 s2/(E n)); a difference of the two has z*sqrt((s2_a + s2_b)/(E n))."""
    found = [((x or {}).get("mdd") or {}).get(what) for x in (a, b)]
    values: list[float] = [float(v) for v in found if v is not None]
    if not values:
        return None
    if len(values) == 1:
        return values[0]
    return _round(math.sqrt((values[0] ** 2 + values[1] ** 2) / 2))


def mdd_note(
    diff: float | None, floor_a: dict[str, Any], floor_b: dict[str, Any]
) -> tuple[float | None, str]:
    """(MDD of the pair, a sentence when |diff| is below it) for compare and the leaderboard."""
    value = pair_mdd(floor_a, floor_b)
    if value is None or diff is None or abs(diff) >= value:
        return value, ""
    bound = (
        " (an upper bound: one epoch)"
        if floor_a.get("mdd_is_upper_bound") or floor_b.get("mdd_is_upper_bound")
        else ""
    )
    return value, f"smaller than the minimal detectable difference {value:.3f}{bound}"
