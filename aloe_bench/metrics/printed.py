"""Do a paper's printed figures follow from its own printed curve?

A paper prints AL(1..K) rounded to some digits, and beside it AVG, IR, N-IR or N-R^2 rounded again.
The true curve lies anywhere within half a unit of the last printed digit of each AL(k), so each
figure is only known to an interval: this module finds that interval with the project's own metric
code (`curve_stats`, SPEC 1.3) and calls a printed figure consistent when it lies within the
interval widened by half a unit of the figure's own last digit. AVG and IR are linear in the curve,
so their interval is exact (its ends are corners of the box of curves); N-IR and N-R^2 are not (the
min-max rescaling), so theirs is estimated from every corner of the box plus uniform draws inside it:
an estimate from inside, which can only make the check stricter, never hide a gross mismatch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

from aloe_bench.metrics.alignment import curve_stats

FIGURES = ("avg", "ir", "n_ir", "n_r2")
FIGURE_NAMES = {"avg": "AVG", "ir": "IR", "n_ir": "N-IR", "n_r2": "N-R²"}
_DRAWS = 4000  # uniform draws inside the box, besides its corners (1,024 for K = 10)
_MAX_CORNERS = 4096  # K > 12: corners are drawn at random instead of listed


@dataclass(frozen=True)
class FigureCheck:
    """One printed figure against what its own curve allows."""

    name: str  # one of FIGURES
    printed: float
    digits: int  # decimals it was printed with
    recomputed: float | None  # from the printed curve as printed
    low: float | None  # the figure over every curve that rounds to the printed one
    high: float | None
    consistent: bool

    def describe(self) -> str:
        """`N-R² printed 0.91, its curve gives 0.874 (0.862 to 0.885)`."""
        word = FIGURE_NAMES[self.name]
        if self.recomputed is None:
            return f"{word} printed {self.printed:.{self.digits}f}, its curve defines none (flat curve)"
        shown = self.digits + 1
        return (
            f"{word} printed {self.printed:.{self.digits}f}, its curve gives {self.recomputed:.{shown}f} "
            f"({self.low:.{shown}f} to {self.high:.{shown}f})"
        )


def half_unit(digits: int) -> float:
    return 0.5 * 10.0 ** (-digits)


def _fit(curves: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """AVG, IR, N-IR and N-R^2 of every row of `curves` (n x K) at once: the same definitions as
    `curve_stats`, vectorised (a test holds the two equal)."""
    k = np.arange(1, curves.shape[1] + 1, dtype=float)
    dk = k - k.mean()
    sxx = (dk**2).sum()
    avg = curves.mean(axis=1)
    ir = (curves - avg[:, None]) @ dk / sxx
    low = curves.min(axis=1)
    spread = curves.max(axis=1) - low
    with np.errstate(invalid="ignore", divide="ignore"):
        n = (curves - low[:, None]) / spread[:, None]
        n_mean = n.mean(axis=1)
        n_ir = (n - n_mean[:, None]) @ dk / sxx
        syy = ((n - n_mean[:, None]) ** 2).sum(axis=1)
        n_r2 = n_ir**2 * sxx / syy
    flat = spread <= 0
    n_ir[flat] = np.nan
    n_r2[flat] = np.nan
    return avg, ir, n_ir, n_r2


def curve_box(al: list[float], al_digits: int, *, seed: int = 0) -> np.ndarray:
    """Curves that round to the printed one: the printed curve, every corner of the box of
    half a unit around it, and uniform draws inside the box."""
    y = np.asarray(al, dtype=float)
    h = half_unit(al_digits)
    turns = len(y)
    rng = np.random.default_rng(seed)
    if 2**turns <= _MAX_CORNERS:
        signs = np.array(list(itertools.product((-1.0, 1.0), repeat=turns)))
    else:
        signs = rng.choice((-1.0, 1.0), size=(_MAX_CORNERS, turns))
    inside = rng.uniform(-1.0, 1.0, size=(_DRAWS, turns))
    return y + h * np.vstack([np.zeros((1, turns)), signs, inside])


def check_printed(
    al: list[float], printed: dict[str, float], digits: dict[str, int], al_digits: int
) -> list[FigureCheck]:
    """Every printed figure (keys of FIGURES present in `printed`) checked against the printed curve."""
    if len(al) < 2:
        raise ValueError("a curve needs at least two turns to define IR, N-IR and N-R²")
    exact = curve_stats(np.asarray(al, dtype=float))
    box = dict(zip(FIGURES, _fit(curve_box(al, al_digits)), strict=True))
    checks = []
    for name in FIGURES:
        if name not in printed:
            continue
        value, d = printed[name], digits[name]
        recomputed = exact[name]
        values = box[name][~np.isnan(box[name])]
        if recomputed is None or values.size == 0:
            checks.append(FigureCheck(name, value, d, None, None, None, consistent=False))
            continue
        low, high = float(values.min()), float(values.max())
        tolerance = half_unit(d) + 1e-9  # the figure's own rounding (and float noise)
        consistent = low - tolerance <= value <= high + tolerance
        checks.append(FigureCheck(name, value, d, float(recomputed), low, high, consistent))
    return checks
