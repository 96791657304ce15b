"""The trust sections of results.json (`reliability`, `validity`, `warnings`) and the judge-call
budget a panel, repeats and controls add (their words in the summary: reports/trust_text.py)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aloe_bench.log.results import ConversationRecord
from aloe_bench.metrics.reliability import judge_reliability, noise_floor, reliability_warnings
from aloe_bench.metrics.validity import judge_labels, length_bias, swap_validity, validity_warnings


def trust_sections(
    conversations: Sequence[ConversationRecord], turns: int, *, seed: int = 0, n_bootstrap: int = 2000
) -> dict[str, Any]:
    """{reliability, validity, warnings} for conversations whose turns record `judgements`;
    {} for runs made before judgements were recorded (their results stay as they were)."""
    if not judge_labels(conversations):
        rubric = rubric_reliability(conversations)
        return (
            {"reliability": rubric, "validity": {}, "warnings": reliability_warnings(rubric)}
            if rubric
            else {}
        )
    reliability = judge_reliability(conversations, turns)
    reliability["noise_floor"] = noise_floor([conversations], turns)
    reliability["judge_calls"] = judge_call_counts(conversations)
    validity: dict[str, Any] = {"length_bias": length_bias(conversations)}
    swap = swap_validity(conversations, seed=seed, n_bootstrap=n_bootstrap)
    if swap:
        validity["swap"] = swap
    return {
        "reliability": reliability,
        "validity": validity,
        "warnings": [*validity_warnings(validity), *reliability_warnings(reliability)],
    }


def rubric_reliability(conversations: Sequence[ConversationRecord]) -> dict[str, Any]:
    """Multifaceted runs judged with --judge-repeats R > 1: the judge's test-retest alpha over
    (instance, rubric) units; {} otherwise (one repeat, or an ALOE run from before judgements)."""
    import numpy as np

    from aloe_bench.metrics.reliability import ordinal_alpha

    units = [
        [s.score for s in g.samples]
        for c in conversations
        if c.status == "complete"
        for t in c.turns
        for g in t.rubric_scores or []
    ]
    repeats = max((len(u) for u in units), default=0)
    if repeats < 2:
        return {}
    data = np.full((repeats, len(units)), np.nan)
    for i, unit in enumerate(units):
        for r, score in enumerate(unit):
            if score is not None:
                data[r, i] = score
    return {
        "judges": {
            "judge": {
                "test_retest_alpha": ordinal_alpha(data),
                "repeats": repeats,
                "n": len(units),
                "judgements": int(data.size),
                "invalid": int(np.isnan(data).sum()),
                "unit": "rubric judgements (instance x rubric)",
            }
        }
    }


def judge_call_counts(conversations: Sequence[ConversationRecord]) -> dict[str, int]:
    """First judge asks recorded, split the way the plan splits them (re-asks come on top)."""
    counts = {"base": 0, "panel": 0, "repeats": 0, "swap": 0, "reasks": 0}
    for conv in conversations:
        for turn in conv.turns:
            judgements = turn.judgements or []
            if not judgements:
                continue
            first = judgements[0].judge
            for j in judgements:
                if j.repeat > 0:
                    counts["repeats"] += 1
                elif j.judge == first:
                    counts["base"] += 1
                else:
                    counts["panel"] += 1
                counts["reasks"] += max(0, (j.attempts or 1) - 1)
            for j in turn.swap_judgements or []:
                counts["swap"] += 1
                counts["reasks"] += max(0, (j.attempts or 1) - 1)
    return counts


def planned_judge_calls(turns_total: int, judges: int, repeats: int, swap: bool) -> dict[str, int]:
    """Judge calls a run will make (before re-asks) over `turns_total` judged turns."""
    per = {
        "base": 1,
        "panel": judges - 1,
        "repeats": judges * (repeats - 1),
        "swap": judges * repeats if swap else 0,
    }
    return {k: v * turns_total for k, v in per.items()}
