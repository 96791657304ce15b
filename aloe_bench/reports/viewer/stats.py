"""Intervals the report shows that a run does not record: N-IR and N-R² of the bootstrap resamples.

results.json records bootstrap intervals for AVG, IR and each AL(k) only. The report must say how far
every number it prints can be trusted, so N-IR and N-R² get the same percentile bootstrap over
conversations (same resampling, seed and count as the run's own intervals), vectorised here because
looping `metrics.curve_stats` over 2,000 resamples would make building a page slow.
"""

from __future__ import annotations

import warnings

import numpy as np

from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP


def _clean(x: float) -> float | None:
    return round(float(x), 6) if np.isfinite(x) else None


def normalized_fit_ci(
    scores: np.ndarray, *, seed: int = 0, n_bootstrap: int = DEFAULT_BOOTSTRAP, level: float = 0.95
) -> dict[str, list[float | None] | None]:
    """Percentile intervals of N-IR and N-R² over conversation resamples of a (conversations x turns) matrix.

    A resample whose curve is flat (max = min) or has fewer than two defined turns has no N-IR or N-R²
    (as `metrics.curve_stats` gives None) and is left out of the interval.
    """
    scores = np.asarray(scores, dtype=float)
    n_conv, n_turns = scores.shape if scores.ndim == 2 else (0, 0)
    if n_conv == 0 or n_turns < 2 or n_bootstrap <= 0:
        return {"n_ir": None, "n_r2": None}
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n_conv, size=(n_bootstrap, n_conv))
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        al = np.nanmean(scores[idx], axis=1)  # (B, K)
        lo, hi = np.nanmin(al, axis=1), np.nanmax(al, axis=1)
        n_al = (al - lo[:, None]) / (hi - lo)[:, None]
        mask = ~np.isnan(n_al)
        count = mask.sum(axis=1)
        k = np.broadcast_to(np.arange(1, n_turns + 1, dtype=float), n_al.shape)
        k_mean = np.where(mask, k, 0).sum(1) / count
        y_mean = np.where(mask, n_al, 0).sum(1) / count
        dk = np.where(mask, k - k_mean[:, None], 0)
        dy = np.where(mask, n_al - y_mean[:, None], 0)
        sxy, sxx, syy = (dk * dy).sum(1), (dk * dk).sum(1), (dy * dy).sum(1)
        slope = sxy / sxx
        r2 = sxy**2 / (sxx * syy)
    ok = (count >= 2) & (hi > lo)
    tail = (1 - level) / 2 * 100

    def interval(values: np.ndarray) -> list[float | None] | None:
        values = values[ok & np.isfinite(values)]
        if values.size == 0:
            return None
        a, b = np.percentile(values, [tail, 100 - tail])
        return [_clean(a), _clean(b)]

    return {"n_ir": interval(slope), "n_r2": interval(r2)}
