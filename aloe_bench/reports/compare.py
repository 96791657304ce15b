"""Paired comparison of two runs over the same personas.

Conversations differ between two models (the simulated user reacts to each reply), so the runs are
paired by persona: the unit is a persona's mean score over turns (or, per turn, its score at turn k).
For each pairing: the mean difference B - A with a paired bootstrap 95% CI (personas resampled with
replacement) and a Wilcoxon signed-rank p-value; with several runs against one baseline, the p-values
are Holm-corrected. The first argument is always the reference: `paired_difference(a, b)` is b - a.
"""

from __future__ import annotations

from collections.abc import Sequence

# The statistics live in metrics/paired.py; their names stay importable from here for existing callers.
from aloe_bench.metrics.paired import (
    LEVEL,
    PairedDifference,
    RunComparison,
    bootstrap_mean_ci,
    compare_runs,
    compare_to_baseline,
    holm,
    paired_difference,
    paired_turn_differences,
    persona_means,
    persona_turn_scores,
    run_turns,
    wilcoxon_p,
)

__all__ = [
    "LEVEL",
    "PairedDifference",
    "RunComparison",
    "bootstrap_mean_ci",
    "compare_runs",
    "compare_to_baseline",
    "holm",
    "paired_difference",
    "paired_turn_differences",
    "persona_means",
    "persona_turn_scores",
    "run_turns",
    "wilcoxon_p",
    "baseline_summary",
    "comparison_report",
]


def _signed(x: float | None, digits: int = 3) -> str:
    return "–" if x is None else f"{x:+.{digits}f}"


def _ci(ci: tuple[float, float] | None, digits: int = 3) -> str:
    return "" if not ci else f"[{ci[0]:+.{digits}f}, {ci[1]:+.{digits}f}]"


def _pv(p: float | None, equals: str = "") -> str:
    return "–" if p is None else ("< 0.001" if p < 0.001 else f"{equals}{p:.3f}")


def _mean(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def comparison_report(label_a: str, label_b: str, c: RunComparison) -> str:
    """What `aloe-bench compare` prints for one pair: overall, then per turn."""
    d = c.overall
    lines = [
        f"B = {label_b}  vs  A = {label_a}   (B − A, paired by persona)",
        f"  paired: {d.n} personas   dropped: {d.only_a} scored in A only, {d.only_b} in B only",
        f"  not scored: A {c.failed_a} failed conversations + {c.unscored_a} without a valid judgement;"
        f" B {c.failed_b} failed + {c.unscored_b} without a valid judgement",
    ]
    if c.turns_differ:
        lines.insert(
            1,
            f"  !! TURNS DIFFER: A has {c.turns_a}, B has {c.turns_b}: only turns 1-{c.turns} are compared"
            f" (every number below is over those {c.turns} turns)",
        )
    if d.n == 0:
        lines.append("  no persona was scored in both runs: nothing to compare")
        return "\n".join(lines)
    lines += [
        f"  per-persona mean score: A {_mean(d.mean_a)}   B {_mean(d.mean_b)}",
        f"  B − A = {_signed(d.diff)}  {int(d.level * 100)}% CI {_ci(d.ci)}"
        f"  (paired bootstrap over personas, {d.n_bootstrap} resamples)",
        f"  Wilcoxon signed-rank: W = {d.statistic:g}, p {_pv(d.p_value, '= ')}"
        f"  ({d.nonzero} of {d.n} pairs differ)"
        + (f"   Holm-corrected p {_pv(c.p_holm, '= ')}" if c.p_holm is not None else ""),
        "  per turn (personas scored at that turn in both runs):",
        f"  {'turn':>4}  {'n':>4}  {'A':>6}  {'B':>6}  {'B − A':>7}  {'95% CI':<18}  {'p':>6}",
    ]
    for k, t in enumerate(c.per_turn, start=1):
        lines.append(
            f"  {k:>4}  {t.n:>4}  {_mean(t.mean_a):>6}  {_mean(t.mean_b):>6}  {_signed(t.diff):>7}  "
            f"{_ci(t.ci):<18}  {_pv(t.p_value):>6}"
        )
    return "\n".join(lines)


def baseline_summary(label_a: str, labels: Sequence[str], comparisons: Sequence[RunComparison]) -> str:
    """One line per run against the baseline, with Holm-corrected p-values (several runs)."""
    width = max(len(label) for label in labels)
    lines = [
        f"against baseline {label_a}: B − A with Holm-corrected Wilcoxon p-values ({len(labels)} tests)",
        f"  {'run':<{width}}  {'n':>4}  {'B − A':>7}  {'95% CI':<18}  {'p':>6}  {'p (Holm)':>8}",
    ]
    for label, c in zip(labels, comparisons, strict=True):
        d = c.overall
        lines.append(
            f"  {label:<{width}}  {d.n:>4}  {_signed(d.diff):>7}  {_ci(d.ci):<18}  "
            f"{_pv(d.p_value):>6}  {_pv(c.p_holm):>8}"
            + (f"  (turns 1-{c.turns} only: {c.turns_a} vs {c.turns_b})" if c.turns_differ else "")
        )
    return "\n".join(lines)
