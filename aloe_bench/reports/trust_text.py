"""The words for a run's judge reliability and validity sections (the figures: metrics/trust.py)."""

from __future__ import annotations

from aloe_bench.log.records import Reliability, Validity


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
