"""Where a model sits between a floor and a ceiling run of the same personas, simulated user and judge.

floor   = `--model control/generic` (a persona-blind polite reply policy: what not adapting earns);
ceiling = the explicit-persona task (`aloe_explicit*`: the persona stated in the system message).
headroom used = (model - floor) / (ceiling - floor), overall (each persona's mean score over turns)
and per turn, over the personas scored in all three runs. Its 95% CI is a paired percentile
bootstrap over personas: the same resampled personas in all three runs, the ratio recomputed.

Near-zero denominator: when ceiling - floor is below MIN_SPAN (a quarter point on the 1-5 scale, or
negative: the ceiling is not above the floor) the ratio is not reported (None, with a note): it
would only amplify judge noise. If more than 2.5% of the bootstrap resamples fall below MIN_SPAN,
the interval is unbounded and not reported either (the note says how often).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Protocol, TypeVar

import numpy as np

from aloe_bench.log.results import Run
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
from aloe_bench.metrics.paired import persona_means, persona_turn_scores


class BoardRun(Protocol):
    """A run as the leaderboard holds it (reports/runinfo.py `RunInfo`): what bracketing reads."""

    @property
    def model(self) -> str: ...

    @property
    def setup(self) -> Any: ...  # a frozen dataclass with `disclosure`

    @property
    def metrics(self) -> Any: ...  # with `avg`


_Run = TypeVar("_Run", bound=BoardRun)

MIN_SPAN = 0.25
LEVEL = 0.95
CONTROL_SPEC = "control/generic"


@dataclass
class Headroom:
    n: int  # personas scored in the model, floor and ceiling runs
    model: float | None
    floor: float | None
    ceiling: float | None
    span: float | None  # ceiling - floor
    used: float | None  # (model - floor) / span
    ci: list[float] | None
    note: str | None = None
    per_turn: list[Headroom] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["per_turn"] = [t.to_dict() for t in self.per_turn]
        return out


def _r(x: float) -> float:
    return round(float(x), 6)


def headroom_of(
    model: Mapping[str, float | None],
    floor: Mapping[str, float | None],
    ceiling: Mapping[str, float | None],
    *,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
    seed: int = 0,
    level: float = LEVEL,
) -> Headroom:
    """Headroom used over the persona ids with a finite value in all three maps."""

    def ok(v: float | None) -> bool:
        return v is not None and bool(np.isfinite(v))

    ids = sorted(k for k in model if ok(model[k]) and ok(floor.get(k)) and ok(ceiling.get(k)))
    if not ids:
        return Headroom(0, None, None, None, None, None, None, "no persona scored in all three runs")
    m, f, c = (np.array([d[k] for k in ids], dtype=float) for d in (model, floor, ceiling))
    span = c.mean() - f.mean()
    out = Headroom(len(ids), _r(m.mean()), _r(f.mean()), _r(c.mean()), _r(span), None, None)
    if span < MIN_SPAN:
        out.note = (
            f"ceiling - floor = {span:+.3f} < {MIN_SPAN} on the 1-5 scale: no headroom to measure "
            "(a ratio would only amplify judge noise)"
        )
        return out
    out.used = _r((m.mean() - f.mean()) / span)
    if n_bootstrap > 0:
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, len(ids), size=(n_bootstrap, len(ids)))
        spans = c[idx].mean(axis=1) - f[idx].mean(axis=1)
        small = spans < MIN_SPAN
        tail = (1 - level) / 2
        if small.mean() > tail:
            out.note = (
                f"ceiling - floor fell below {MIN_SPAN} in {100 * small.mean():.0f}% of bootstrap resamples: "
                "the interval is unbounded"
            )
        else:
            ratios = (m[idx].mean(axis=1) - f[idx].mean(axis=1))[~small] / spans[~small]
            lo, hi = np.percentile(ratios, [100 * tail, 100 * (1 - tail)])
            out.ci = [_r(lo), _r(hi)]
    return out


def run_headroom(
    model: Run, floor: Run, ceiling: Run, *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int = 0
) -> Headroom:
    """Overall and per turn, paired by persona id."""
    overall = headroom_of(
        persona_means(model), persona_means(floor), persona_means(ceiling), n_bootstrap=n_bootstrap, seed=seed
    )
    by_turn = [persona_turn_scores(r) for r in (model, floor, ceiling)]
    turns = min((len(v) for d in by_turn for v in d.values()), default=0)
    overall.per_turn = [
        headroom_of(
            *({pid: row[k] for pid, row in d.items()} for d in by_turn),
            n_bootstrap=n_bootstrap,
            seed=seed + k + 1,
        )
        for k in range(turns)
    ]
    return overall


# --- finding the bracket among runs (the leaderboard) ------------------------------------------------


def is_floor(info: BoardRun) -> bool:
    return info.model == CONTROL_SPEC and info.setup.disclosure != "system"


def is_ceiling(info: BoardRun) -> bool:
    return info.setup.disclosure == "system"


def find_bracket(info: _Run, infos: Sequence[_Run]) -> tuple[_Run | None, _Run | None]:
    """(floor, ceiling) for a hidden-persona run among `infos` (RunInfo), or None where there is none.

    Floor: a `control/generic` run with the same setup. Ceiling: an explicit-persona run whose setup
    is the same but for the disclosure: of the same model when there is one, else the best (highest
    AVG) one, the most demanding ceiling on the board."""
    if is_ceiling(info):
        return None, None
    floor = next((o for o in infos if is_floor(o) and o.setup == info.setup), None)
    ceilings = [
        o for o in infos if is_ceiling(o) and replace(o.setup, disclosure=info.setup.disclosure) == info.setup
    ]
    same_model = [o for o in ceilings if o.model == info.model]
    pool = same_model or ceilings
    ceiling = max(pool, key=lambda o: o.metrics.avg or float("-inf")) if pool else None
    return floor, ceiling


def format_headroom(h: Headroom) -> str:
    if h.used is None:
        return "–"
    band = f" [{h.ci[0]:.2f}, {h.ci[1]:.2f}]" if h.ci else ""
    return f"{h.used:.2f}{band}"


def headroom_report(label: str, floor_label: str, ceiling_label: str, h: Headroom) -> str:
    """What `aloe-bench compare --floor --ceiling` prints for one run."""
    lines = [
        f"headroom used by {label}: (model - floor) / (ceiling - floor)   floor = {floor_label}, "
        f"ceiling = {ceiling_label}; paired over {h.n} personas, 95% paired bootstrap CI",
        f"  overall: model {h.model}  floor {h.floor}  ceiling {h.ceiling}  ->  {format_headroom(h)}"
        + (f"   ({h.note})" if h.note else ""),
        f"  {'turn':>4}  {'n':>4}  {'model':>6}  {'floor':>6}  {'ceiling':>7}  headroom used",
    ]
    for k, t in enumerate(h.per_turn, start=1):

        def num(x: float | None) -> str:
            return "–" if x is None else f"{x:.3f}"

        lines.append(
            f"  {k:>4}  {t.n:>4}  {num(t.model):>6}  {num(t.floor):>6}  {num(t.ceiling):>7}  {format_headroom(t)}"
            + ("  (span too small)" if t.note and t.used is None else "")
        )
    return "\n".join(lines)
