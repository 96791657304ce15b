"""The trust sections of results.json (`reliability`, `validity`, `warnings`), the judge-call
budget a panel, repeats and controls add, and their lines in the end-of-run summary."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from aloe_bench.log.models import Reliability, Validity
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


def plan_line(plan: dict[str, int]) -> str:
    extra = plan["panel"] + plan["repeats"] + plan["swap"]
    return f"judge calls planned: {plan['base']} (one judge, once per turn)" + (
        f" + {plan['panel']} panel + {plan['repeats']} repeats + {plan['swap']} swap control"
        f" = {plan['base'] + extra} ({extra / max(plan['base'], 1):.1f}x extra; re-asks come on top)"
        if extra
        else ""
    )


def _f(x: float | None, digits: int = 2) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def _band(ci: list | None, digits: int = 2) -> str:
    return "" if not ci or ci[0] is None else f" [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def trust_lines(reliability: Reliability | None, validity: Validity | None) -> list[str]:
    """The summary's lines for reliability and validity (none for runs without them)."""
    rel, val = reliability or Reliability(), validity or Validity()
    lines: list[str] = []
    judges = rel.judges
    swap, bias = val.swap or {}, val.length_bias or {}
    if judges and (len(judges) > 1 or swap or any((j.repeats or 1) > 1 for j in judges.values())):
        lines.append(
            "judges (AVG, IR, invalid/judgements, test-retest alpha; swap AUC and discrimination; length rho):"
        )
        for label, j in judges.items():
            s, b = swap.get(label), bias.get(label) or {}
            part = (
                f"  {label}: AVG {_f(j.avg)}  IR {_f(j.ir, 3)}  invalid {j.invalid}/{j.judgements}"
                f"  alpha {_f(j.test_retest_alpha)} (R={j.repeats}, n={j.n})"
            )
            if s is not None:
                part += (
                    f"  swap AUC {_f(s.auc)}{_band(s.auc_ci)} disc {_f(s.discrimination)}"
                    f"{_band(s.discrimination_ci)} (n={s.n})"
                )
            if b:
                part += f"  length rho {_f(b['spearman'])} (n={b['n']}, {b['unit']})"
            lines.append(part)
    elif bias:
        for label, b in bias.items():
            lines.append(
                f"length bias ({label}): Spearman {_f(b['spearman'])}{_band(b.get('spearman_ci'))} (n={b['n']}, {b['unit']})"
            )
    between = rel.between_judges
    if between is not None:
        lines.append(f"between judges: alpha {_f(between.alpha)} (n={between.n})")
        for p in between.pairs:
            lines.append(
                f"  {p['a']} vs {p['b']}: Spearman {_f(p['spearman'])}  exact {_f(p['exact'])}"
                f"  within-one {_f(p['within_one'])}  (n={p['n']})"
            )
    human = val.human or {}
    for label, h in (human.get("judges") or {}).items():
        lines.append(
            f"human labels vs {label}: alpha {_f(h['alpha'])}  Spearman {_f(h['spearman'])}  "
            f"exact {_f(h['exact'])}  within-one {_f(h['within_one'])}  (n={h['n']})"
        )
    floor = rel.noise_floor or {}
    if floor.get("mdd"):
        m = floor["mdd"]
        lines.append(
            f"noise floor: smallest detectable difference AVG {_f(m.get('avg'), 3)}, IR {_f(m.get('ir'), 4)}"
            f" (80% power, paired, {floor['personas']} personas x {floor['replicates_per_persona']:g};"
            f" {'upper bound' if floor.get('mdd_is_upper_bound') else 'from replicates'})"
        )
    calls = rel.judge_calls
    if calls and (calls["panel"] or calls["repeats"] or calls["swap"]):
        lines.append(
            f"judge calls: {calls['base']} base + {calls['panel']} panel + {calls['repeats']} repeats"
            f" + {calls['swap']} swap control (+ {calls['reasks']} re-asks)"
        )
    return lines  # the run's warnings are printed last by report.summary_table, each once
