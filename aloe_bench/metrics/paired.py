"""Paired statistics between runs of the same personas: per-persona differences, the Wilcoxon
signed-rank test, Holm's correction, a bootstrap interval of the mean difference, and the
comparison of runs these make (the words for them: reports/compare.py)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from aloe_bench.log.results import Run, score_matrix
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP

LEVEL = 0.95


@dataclass
class PairedDifference:
    """B - A over the personas both runs scored."""

    n: int  # personas paired
    only_a: int  # scored in A only (dropped)
    only_b: int  # scored in B only (dropped)
    mean_a: float | None
    mean_b: float | None
    diff: float | None  # mean of (b - a) over the paired personas
    ci: tuple[float, float] | None  # paired bootstrap percentile interval of diff
    p_value: float | None  # Wilcoxon signed-rank, two-sided
    statistic: float | None
    nonzero: int  # pairs with a non-zero difference (the ones Wilcoxon ranks)
    level: float = LEVEL
    n_bootstrap: int = DEFAULT_BOOTSTRAP

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ci"] = list(self.ci) if self.ci else None
        return out


def _clean(x: float | np.floating) -> float:
    return round(float(x), 6)


def wilcoxon_p(differences: np.ndarray) -> tuple[float | None, float | None]:
    """Two-sided Wilcoxon signed-rank test of the differences: (statistic, p).

    Zero differences are dropped (scipy's default, Wilcoxon's original rule). When every difference
    is zero there is nothing to rank: the runs agree on every persona, so p = 1 (scipy would return
    it only with a RuntimeWarning, or fail, depending on the version).
    """
    if differences.size == 0:
        return None, None
    if not np.any(differences != 0):
        return 0.0, 1.0
    from scipy import stats  # here: importing scipy.stats costs every run (the report imports this) ~0.5 s

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        result = stats.wilcoxon(differences)
    return _clean(float(result.statistic)), _clean(float(result.pvalue))


def bootstrap_mean_ci(
    differences: np.ndarray, *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = LEVEL
) -> tuple[float, float] | None:
    """Percentile interval of the mean difference, resampling the pairs with replacement."""
    if differences.size == 0 or n_bootstrap <= 0:
        return None
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, differences.size, size=(n_bootstrap, differences.size))
    means = differences[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    lo, hi = np.percentile(means, [tail, 100 - tail])
    return _clean(lo), _clean(hi)


def paired_difference(
    a: Mapping[str, float | None],
    b: Mapping[str, float | None],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = LEVEL,
) -> PairedDifference:
    """B - A over the keys (persona ids) with a finite value in both; the others are counted as dropped."""
    scored_a = {k for k, v in a.items() if _finite(v)}
    scored_b = {k for k, v in b.items() if _finite(v)}
    common = sorted(scored_a & scored_b)
    x = np.array([a[k] for k in common], dtype=float)
    y = np.array([b[k] for k in common], dtype=float)
    d = y - x
    statistic, p = wilcoxon_p(d)
    return PairedDifference(
        n=len(common),
        only_a=len(scored_a - scored_b),
        only_b=len(scored_b - scored_a),
        mean_a=_clean(x.mean()) if common else None,
        mean_b=_clean(y.mean()) if common else None,
        diff=_clean(d.mean()) if common else None,
        ci=bootstrap_mean_ci(d, n_bootstrap=n_bootstrap, seed=seed, level=level),
        p_value=p,
        statistic=statistic,
        nonzero=int(np.count_nonzero(d)),
        level=level,
        n_bootstrap=n_bootstrap,
    )


def paired_turn_differences(
    a: Mapping[str, Sequence[float | None]],
    b: Mapping[str, Sequence[float | None]],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = LEVEL,
) -> list[PairedDifference]:
    """Per-turn B - A: entry k pairs the personas scored at turn k+1 in both runs."""
    turns = min((len(v) for v in (*a.values(), *b.values())), default=0)
    return [
        paired_difference(
            {pid: scores[k] for pid, scores in a.items()},
            {pid: scores[k] for pid, scores in b.items()},
            n_bootstrap=n_bootstrap,
            seed=seed + k,
            level=level,
        )
        for k in range(turns)
    ]


def _finite(v: float | None) -> bool:
    return v is not None and bool(np.isfinite(v))


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm-Bonferroni adjusted p-values (None stays None and does not count as a test)."""
    indexed = sorted((p, i) for i, p in enumerate(p_values) if p is not None)
    m = len(indexed)
    adjusted: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(indexed):
        running = max(running, min(1.0, (m - rank) * p))
        adjusted[i] = _clean(running)
    return adjusted


# --- runs -> per-persona scores -------------------------------------------------------------------


def run_turns(run: Run) -> int:
    return run.turns


def persona_turn_scores(run: Run, turns: int | None = None) -> dict[str, list[float]]:
    """Each complete conversation's per-turn scores (NaN where the judge gave none), by persona id,
    over the run's turns (or the first `turns` of them); several epochs of one persona: their mean
    per turn.

    Failed or unfinished conversations are left out: they are not a model's answer to that persona.
    """
    turns = run_turns(run) if turns is None else min(turns, run_turns(run))
    complete = [c.meta.get("persona_id", c.id) for c in run.conversations if c.status == "complete"]
    rows = score_matrix(run.conversations, turns)
    if len(set(complete)) == len(complete):
        return dict(zip(complete, rows.tolist(), strict=True))
    # Epochs (--epochs): a persona's score at turn k is its mean over the epochs scored there.
    out = {}
    for pid in dict.fromkeys(complete):
        group = rows[[i for i, c in enumerate(complete) if c == pid]]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            out[pid] = np.nanmean(group, axis=0).tolist()
    return out


def persona_means(run: Run, turns: int | None = None) -> dict[str, float]:
    """A persona's mean score over the turns the judge scored (NaN when it scored none), over the
    run's turns or only the first `turns` of them."""
    out = {}
    for pid, row in persona_turn_scores(run, turns).items():
        values = np.array(row, dtype=float)
        values = values[~np.isnan(values)]
        out[pid] = float(values.mean()) if values.size else float("nan")
    return out


@dataclass
class RunComparison:
    """A run against a reference run: overall and per turn, plus what could not be paired."""

    overall: PairedDifference
    per_turn: list[PairedDifference]
    failed_a: int  # conversations that did not complete
    failed_b: int
    unscored_a: int  # complete, but no turn was scored
    unscored_b: int
    p_holm: float | None = None  # set when compared alongside other runs against the same baseline
    turns_a: int = 0
    turns_b: int = 0

    @property
    def turns(self) -> int:
        """The turns compared: those both runs have (never 3 turns averaged against 2)."""
        return min(self.turns_a, self.turns_b)

    @property
    def turns_differ(self) -> bool:
        return self.turns_a != self.turns_b

    def to_dict(self) -> dict[str, Any]:
        return {
            "turns": self.turns,
            "turns_a": self.turns_a,
            "turns_b": self.turns_b,
            "overall": self.overall.to_dict(),
            "per_turn": [d.to_dict() for d in self.per_turn],
            "failed_a": self.failed_a,
            "failed_b": self.failed_b,
            "unscored_a": self.unscored_a,
            "unscored_b": self.unscored_b,
            "p_holm": self.p_holm,
        }


def compare_runs(
    a: Run, b: Run, *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0, level: float = LEVEL
) -> RunComparison:
    """B - A paired by persona (A is the reference), over the turns both runs have: a persona's
    mean over 3 turns against its mean over 2 would measure the extra turn, not the model."""
    common = min(run_turns(a), run_turns(b))
    means_a, means_b = persona_means(a, common), persona_means(b, common)
    return RunComparison(
        overall=paired_difference(means_a, means_b, n_bootstrap=n_bootstrap, seed=seed, level=level),
        per_turn=paired_turn_differences(
            persona_turn_scores(a, common),
            persona_turn_scores(b, common),
            n_bootstrap=n_bootstrap,
            seed=seed,
            level=level,
        ),
        turns_a=run_turns(a),
        turns_b=run_turns(b),
        failed_a=sum(c.status != "complete" for c in a.conversations),
        failed_b=sum(c.status != "complete" for c in b.conversations),
        unscored_a=sum(not _finite(v) for v in means_a.values()),
        unscored_b=sum(not _finite(v) for v in means_b.values()),
    )


def compare_to_baseline(
    baseline: Run, others: Sequence[Run], *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> list[RunComparison]:
    """Each run against the baseline, with Holm-corrected p-values across the comparisons."""
    comparisons = [compare_runs(baseline, run, n_bootstrap=n_bootstrap, seed=seed) for run in others]
    for comparison, adjusted in zip(comparisons, holm([c.overall.p_value for c in comparisons]), strict=True):
        comparison.p_holm = adjusted
    return comparisons


# --- text report ------------------------------------------------------------------------------------
