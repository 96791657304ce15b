import math

import numpy as np
import pytest

from aloe_bench.metrics.alignment import alignment_metrics, bootstrap_ci, curve_stats


def test_metrics_match_hand_computed_values():
    # 3 conversations x 4 turns; one missing judgement at turn 2.
    s = np.array([[1, 2, 3, 4], [2, np.nan, 3, 5], [3, 3, 4, 5]], dtype=float)
    m = alignment_metrics(s, n_bootstrap=200)
    al = [2.0, 2.5, 10 / 3, 14 / 3]
    assert m["al"] == pytest.approx(al, abs=1e-6)
    assert m["n"] == [3, 2, 3, 3] and m["invalid"] == [0, 1, 0, 0]
    assert m["avg"] == pytest.approx(sum(al) / 4, abs=1e-6)
    # slope by hand: k = 1..4, k_mean = 2.5, sum((k - 2.5)^2) = 5
    k = np.arange(1, 5)
    slope = float(((k - 2.5) * (np.array(al) - np.mean(al))).sum() / 5)
    assert m["ir"] == pytest.approx(slope, abs=1e-6)
    n_al = (np.array(al) - min(al)) / (max(al) - min(al))
    n_slope = float(((k - 2.5) * (n_al - n_al.mean())).sum() / 5)
    assert m["n_ir"] == pytest.approx(n_slope, abs=1e-6)
    fitted = n_al.mean() + n_slope * (k - 2.5)
    r2 = 1 - ((n_al - fitted) ** 2).sum() / ((n_al - n_al.mean()) ** 2).sum()
    assert m["n_r2"] == pytest.approx(float(r2), abs=1e-6)
    lo, hi = m["ci"]["avg"]
    assert lo <= m["avg"] <= hi
    lo, hi = m["ci"]["ir"]
    assert lo <= m["ir"] <= hi


def test_flat_curve_has_no_normalized_metrics():
    out = curve_stats(np.array([3.0, 3.0, 3.0]))
    assert out["avg"] == 3.0 and out["ir"] == 0.0
    assert out["n_ir"] is None and out["n_r2"] is None


def test_bootstrap_is_seeded():
    rng = np.random.default_rng(1)
    s = rng.integers(1, 6, size=(20, 5)).astype(float)
    a = alignment_metrics(s, seed=7, n_bootstrap=300)["ci"]
    b = alignment_metrics(s, seed=7, n_bootstrap=300)["ci"]
    c = alignment_metrics(s, seed=8, n_bootstrap=300)["ci"]
    assert a == b and a != c


def test_all_null_turn_is_reported_not_crashing():
    s = np.array([[np.nan, 3.0], [np.nan, 4.0]])
    m = alignment_metrics(s, n_bootstrap=50)
    assert m["al"][0] is None and m["invalid"] == [2, 0]
    assert math.isclose(m["avg"], 3.5)


def test_bootstrap_memory_stays_bounded_at_ten_thousand_conversations():
    # All resamples at once would hold a (2000, 10000, 10) array: 1.6 GB of float64 (3.7 GB peak).
    import tracemalloc

    rng = np.random.default_rng(0)
    scores = rng.integers(1, 6, size=(10_000, 10)).astype(float)
    tracemalloc.start()
    try:
        ci = bootstrap_ci(scores, n_bootstrap=2000)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 400 * 2**20, f"peak {peak / 2**20:.0f} MiB"
    assert ci["avg"][0] < 3.0 < ci["avg"][1]


def test_fits_and_constants_are_scipys_bit_for_bit():
    """IR, N-IR, N-R^2 and the power constant are computed without importing scipy.stats (half a
    second of every run's start); they are exactly what scipy gives."""
    from scipy import stats

    from aloe_bench.metrics.alignment import _line_fit
    from aloe_bench.metrics.reliability import Z_POWER

    assert float(stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) == Z_POWER
    rng = np.random.default_rng(7)
    for n in range(2, 12):
        for _ in range(200):
            x = np.sort(rng.choice(np.arange(1, 15, dtype=float), n, replace=False))
            y = rng.integers(1, 6, n).astype(float)
            y = (y - y.min()) / (y.max() - y.min()) if rng.random() < 0.5 and np.ptp(y) else y
            ours, theirs = _line_fit(x, y), stats.linregress(x, y)
            assert ours[0] == theirs.slope
            assert ours[1] == theirs.rvalue or (math.isnan(ours[1]) and math.isnan(theirs.rvalue))
