"""Does the judge measure personalization? The persona-swap control and the length-bias check.

Persona swap: every (user message, reply) is judged again against ANOTHER persona of the same set
(a deterministic derangement, same turn). A judge that reads the persona scores a reply higher for
the person it was written for; a judge that ignores the persona gives both the same distribution.
Per judge: discrimination = mean(true) - mean(swapped) and AUC = P(true > swapped, ties half), both
over the (turn, repeat-mean) pairs, with percentile bootstrap CIs that resample PERSONAS (all of a
persona's turns and epochs together: they share a persona, so they are not independent).

Length bias: Spearman's rho between the reply's length in characters and the judge's score, over all
judged turns and within persona (the mean of the per-persona rhos, personas with >= 3 distinct
lengths and scores). Flagged when |rho| > 0.3 and its 95% CI excludes 0: 0.3 is Cohen's "medium"
correlation, length then explains ~9% of the variance of the score ranks, enough to reorder models
whose replies differ mainly in length (the bias AlpacaEval had to correct for).
"""

from __future__ import annotations

import math
import warnings
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np

from aloe_bench.log.records import JudgementRecord
from aloe_bench.log.results import ConversationRecord

LEVEL = 0.95
LENGTH_BIAS_RHO = 0.3
LENGTH_UNIT = "characters"


def persona_key(conv: ConversationRecord) -> str:
    """The persona a conversation belongs to (epochs of one persona share it)."""
    return str(conv.meta.get("persona_id", conv.id))


def _round(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(x) else round(float(x), 6)


def swap_assignment(personas: Sequence[dict[str, str]]) -> list[int]:
    """For persona i, the index of the persona its replies are judged against in the swap control.

    A cyclic shift (always a derangement, deterministic). Among the shifts, the first from n//2
    upwards under which every persona meets one with another profile AND another personality: in
    the official set (20 profiles x 5 personalities, in order) a shift of 1 would often pair
    two personas that share a profile, and the control would test only half of the persona."""
    n = len(personas)
    if n < 2:
        return []
    order = [*range(max(1, n // 2), n), *range(1, max(1, n // 2))]

    def differs(i: int, j: int) -> bool:
        a, b = personas[i], personas[j]
        return a["profile"] != b["profile"] and a["personality"] != b["personality"]

    best, best_count = order[0], -1
    for shift in order:
        count = sum(differs(i, (i + shift) % n) for i in range(n))
        if count == n:
            best = shift
            break
        if count > best_count:
            best, best_count = shift, count
    return [(i + best) % n for i in range(n)]


def swap_map(conversations: Sequence[ConversationRecord]) -> dict[str, dict[str, str]]:
    """{conversation id: the persona (profile, personality, id) it is judged against in the swap}."""
    ids: list[str] = []
    personas: dict[str, dict[str, str]] = {}
    for conv in conversations:
        key = persona_key(conv)
        if key not in personas:
            ids.append(key)
            personas[key] = {"profile": conv.persona["profile"], "personality": conv.persona["personality"]}
    target = swap_assignment([personas[k] for k in ids])
    if not target:
        return {}
    other = {ids[i]: ids[j] for i, j in enumerate(target)}
    return {c.id: {**personas[other[persona_key(c)]], "id": other[persona_key(c)]} for c in conversations}


def judge_labels(conversations: Sequence[ConversationRecord]) -> list[str]:
    """The judges named in the conversations' judgements, in order of first appearance."""
    seen: dict[str, None] = {}
    for conv in conversations:
        for turn in conv.turns:
            for j in turn.judgements or []:
                seen.setdefault(j.judge, None)
    return list(seen)


def judge_turn_mean(judgements: Sequence[JudgementRecord] | None, label: str) -> float | None:
    """One judge's mean over its repeats for a turn (None: no valid score)."""
    scores = [j.score for j in judgements or [] if j.judge == label and j.score is not None]
    return sum(scores) / len(scores) if scores else None


def _cluster_bootstrap(
    groups: list[np.ndarray], statistic: Any, *, n_bootstrap: int, seed: int, level: float = LEVEL
) -> list[float | None] | None:
    """Percentile CI of `statistic(concatenated rows)` resampling the groups (personas)."""
    if not groups or n_bootstrap <= 0:
        return None
    rng = np.random.default_rng(seed)
    # The groups laid end to end once; a resample is then one index array into them (the same rows
    # in the same order as concatenating the picked groups, without a Python loop over groups).
    flat = np.concatenate(groups)
    lengths = np.array([len(g) for g in groups])
    starts = np.cumsum(lengths) - lengths
    values = []
    for _ in range(n_bootstrap):
        pick = rng.integers(0, len(groups), size=len(groups))
        taken = lengths[pick]
        offsets = np.repeat(starts[pick] - (np.cumsum(taken) - taken), taken)
        values.append(statistic(flat[offsets + np.arange(offsets.size)]))
    arr = np.array([v for v in values if v is not None and np.isfinite(v)], dtype=float)
    if arr.size == 0:
        return None
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(arr, [tail, 100 - tail])
    return [_round(lo), _round(hi)]


def _auc(pairs: np.ndarray) -> float:
    """P(true > swapped) + half the ties, over paired rows [true, swapped]."""
    return float(np.mean((pairs[:, 0] > pairs[:, 1]) + 0.5 * (pairs[:, 0] == pairs[:, 1])))


def _discrimination(pairs: np.ndarray) -> float:
    return float(np.mean(pairs[:, 0] - pairs[:, 1]))


def swap_pairs(
    conversations: Sequence[ConversationRecord], label: str
) -> dict[str, list[tuple[float, float]]]:
    """Per persona: the (true, swapped) repeat-mean scores of `label` on the turns both were valid."""
    out: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for conv in conversations:
        if conv.status != "complete":
            continue
        for turn in conv.turns:
            if turn.swap_judgements is None:
                continue
            t = judge_turn_mean(turn.judgements, label)
            s = judge_turn_mean(turn.swap_judgements, label)
            if t is not None and s is not None:
                out[persona_key(conv)].append((t, s))
    return out


def swap_validity(
    conversations: Sequence[ConversationRecord], *, seed: int = 0, n_bootstrap: int = 2000
) -> dict[str, dict[str, Any]]:
    """Per judge: discrimination and AUC with persona-clustered bootstrap CIs (empty: no control ran)."""
    out: dict[str, dict[str, Any]] = {}
    ran = any(t.swap_judgements is not None for c in conversations for t in c.turns)
    for label in judge_labels(conversations):
        by_persona = swap_pairs(conversations, label)
        groups = [np.array(v, dtype=float) for v in by_persona.values() if v]
        if not groups:
            if ran:  # the control ran, but no turn has a valid score for both personas
                out[label] = {"discrimination": None, "discrimination_ci": None, "auc": None}
                out[label].update({"auc_ci": None, "n": 0, "personas": 0})
                out[label].update({"mean_true": None, "mean_swapped": None})
            continue
        pairs = np.concatenate(groups)
        out[label] = {
            "discrimination": _round(_discrimination(pairs)),
            "discrimination_ci": _cluster_bootstrap(
                groups, _discrimination, n_bootstrap=n_bootstrap, seed=seed
            ),
            "auc": _round(_auc(pairs)),
            "auc_ci": _cluster_bootstrap(groups, _auc, n_bootstrap=n_bootstrap, seed=seed + 1),
            "n": int(len(pairs)),
            "personas": len(groups),
            "mean_true": _round(float(pairs[:, 0].mean())),
            "mean_swapped": _round(float(pairs[:, 1].mean())),
        }
    return out


def _spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 3 or np.unique(x).size < 2 or np.unique(y).size < 2:
        return None
    from scipy import stats  # here, not at import: see reliability.Z_POWER

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rho = stats.spearmanr(x, y).statistic
    return float(rho) if np.isfinite(rho) else None


def spearman_ci(rho: float | None, n: int, level: float = LEVEL) -> list[float | None] | None:
    """Fisher-z interval for Spearman's rho with Fieller's variance 1.06/(n-3)."""
    if rho is None or n <= 4:
        return None
    from scipy import stats

    z = math.atanh(max(min(rho, 0.999999), -0.999999))
    half = stats.norm.ppf(0.5 + level / 2) * math.sqrt(1.06 / (n - 3))
    return [_round(math.tanh(z - half)), _round(math.tanh(z + half))]


def length_bias(conversations: Sequence[ConversationRecord]) -> dict[str, dict[str, Any]]:
    """Per judge: Spearman(reply length in characters, score) overall and within persona."""
    out: dict[str, dict[str, Any]] = {}
    for label in judge_labels(conversations):
        lengths, scores, personas = [], [], []
        for conv in conversations:
            if conv.status != "complete":
                continue
            for turn in conv.turns:
                s = judge_turn_mean(turn.judgements, label)
                if s is not None and turn.assistant is not None:
                    lengths.append(len(turn.assistant))
                    scores.append(s)
                    personas.append(persona_key(conv))
        x, y = np.array(lengths, dtype=float), np.array(scores, dtype=float)
        rho = _spearman(x, y)
        # Rows grouped by persona in one pass (a mask per persona was O(personas x turns): ~100 s
        # at the end of a 10,000 x 10 run).
        rows: dict[str, list[int]] = {}
        for i, key in enumerate(personas):
            rows.setdefault(key, []).append(i)
        within = []
        for index in rows.values():
            r = _spearman(x[index], y[index])
            if r is not None:
                within.append(r)
        out[label] = {
            "spearman": _round(rho),
            "spearman_ci": spearman_ci(rho, len(x)),
            "n": len(x),
            "unit": LENGTH_UNIT,
            "within_persona": _round(float(np.mean(within))) if within else None,
            "within_persona_n": len(within),
        }
    return out


def validity_warnings(validity: dict[str, Any]) -> list[dict[str, str]]:
    """`judge-no-discrimination` and `judge-length-bias` warnings from a `validity` section."""
    found = []
    for label, s in (validity.get("swap") or {}).items():
        ci = s.get("auc_ci")
        if s.get("n") == 0:
            found.append(
                {
                    "code": "judge-no-discrimination",
                    "message": f"judge {label}: the persona-swap control has no turn the judge scored for "
                    "both personas (n=0), so nothing shows that its scores measure personalization",
                }
            )
        elif ci and ci[0] is not None and ci[0] <= 0.5 <= ci[1]:
            found.append(
                {
                    "code": "judge-no-discrimination",
                    "message": f"judge {label}: persona-swap AUC {s['auc']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}] "
                    f"includes 0.5 (n={s['n']}): it scores replies the same for another persona, so its "
                    "scores do not measure personalization",
                }
            )
    for label, b in (validity.get("length_bias") or {}).items():
        rho, ci = b.get("spearman"), b.get("spearman_ci")
        if rho is not None and ci and abs(rho) > LENGTH_BIAS_RHO and (ci[0] > 0 or ci[1] < 0):
            found.append(
                {
                    "code": "judge-length-bias",
                    "message": f"judge {label}: score follows reply length (Spearman {rho:+.2f} "
                    f"[{ci[0]:+.2f}, {ci[1]:+.2f}], n={b['n']}, length in {b['unit']}; "
                    f"flagged above |{LENGTH_BIAS_RHO}|)",
                }
            )
    return found
