"""The inference gap: the same model on the same personas, persona hidden (ALOE) vs stated in the
system message (aloe_explicit). gap = explicit - implicit, per turn and overall, paired by persona.

A positive gap is what the model loses by having to infer the person; what remains below 5 in the
explicit run is failing to act on what it was told. Only runs that differ in nothing but the
disclosure are compared (same model, judge, simulated user, prompts, personas and turns).
"""

from __future__ import annotations

from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import ConfigRecord, RoleRecord
from aloe_bench.log.results import Run
from aloe_bench.metrics.paired import PairedDifference, compare_runs


# -- runs ---------------------------------------------------------------------------------------------------
def _role(role: RoleRecord | None) -> dict[str, Any]:
    """What makes a role the same role: its spec and generation settings (not its backend's report)."""
    role = role or RoleRecord()
    return {
        "spec": role.spec,
        "args": role.args,
        "max_new_tokens": role.max_new_tokens,
        "temperature": role.temperature,
        "top_p": role.top_p,
    }


def _prompt(config: ConfigRecord, name: str) -> dict[str, Any] | None:
    prompt = (config.prompts or {}).get(name)
    return prompt.to_dict() if prompt is not None else None


def _must_match(implicit: Run, explicit: Run) -> None:
    a, b = implicit.config, explicit.config
    checks = [
        ("model under test", _role(a.model), _role(b.model)),
        ("judge", _role(a.judge), _role(b.judge)),
        ("simulated user", _role(a.simulator), _role(b.simulator)),
        ("judge protocol", a.protocol, b.protocol),
        ("judge prompt", _prompt(a, "judge"), _prompt(b, "judge")),
        ("simulated-user prompt", _prompt(a, "simulator"), _prompt(b, "simulator")),
        ("personas", a.personas.sha256 if a.personas else None, b.personas.sha256 if b.personas else None),
        ("turns", a.turns, b.turns),
    ]
    for what, left, right in checks:
        if left != right:
            shown = (
                (left.get("spec"), right.get("spec"))
                if isinstance(left, dict) and isinstance(right, dict) and "spec" in left
                else (left, right)
            )
            if shown[0] == shown[1]:
                shown = ("its settings", "other settings")
            raise UserInputError(
                f"cannot compare: the runs used different {what} ({shown[0]} vs {shown[1]}); "
                "an inference gap needs two runs that differ only in persona disclosure"
            )


def _must_support_gap(run: Run) -> None:
    """The run's task says whether its runs have a persona to hide or state (its `supports` has "gap")."""
    from aloe_bench.engine.task_api import get_task, kinds

    kind = run.config.effective_kind
    if "gap" not in get_task(kind, run.config.task).supports:
        able = ", ".join(k for k in kinds() if "gap" in get_task(k).supports)
        raise UserInputError(
            f"{run.path} is a {kind} run, and its task has no inference gap (no persona to hide or state); "
            f"pass two runs of a task that has one ({able})"
        )


def inference_gap(
    implicit: Run, explicit: Run, *, n_bootstrap: int = 2000, seed: int = 0, level: float = 0.95
) -> dict[str, Any]:
    """The gap between a hidden-persona run and a stated-persona run, paired by persona id."""
    for run in (implicit, explicit):
        _must_support_gap(run)
    disclosure = (implicit.config.persona_disclosure, explicit.config.persona_disclosure)
    if disclosure != ("hidden", "system"):
        raise UserInputError(
            f"the first run must hide the persona and the second state it in the system message "
            f"(got {disclosure[0]}, {disclosure[1]}); pass IMPLICIT_RUN (e.g. aloe_demo) then EXPLICIT_RUN "
            "(e.g. aloe_explicit_demo)"
        )
    _must_match(implicit, explicit)
    # The paired statistics of `aloe-bench compare`, with the hidden run as the reference (A).
    c = compare_runs(implicit, explicit, n_bootstrap=n_bootstrap, seed=seed, level=level)
    if c.overall.n == 0:
        raise UserInputError("the two runs share no scored conversation of the same persona; nothing to pair")

    def row(d: PairedDifference) -> dict[str, Any]:
        return {"implicit": d.mean_a, "explicit": d.mean_b, "gap": d.diff, "ci": list(d.ci) if d.ci else None,
                "n": d.n, "p_value": d.p_value}  # fmt: skip

    result: dict[str, Any] = {
        "level": level,
        "n_bootstrap": n_bootstrap,
        "turns": [{"turn": k, **row(d)} for k, d in enumerate(c.per_turn, start=1)],
        "overall": row(c.overall),
        "unpaired": {"implicit": c.overall.only_a, "explicit": c.overall.only_b},
        "not_scored": {"implicit": c.failed_a + c.unscored_a, "explicit": c.failed_b + c.unscored_b},
    }
    result["implicit_run"], result["explicit_run"] = str(implicit.path), str(explicit.path)
    cfg = implicit.config
    result["setup"] = {
        "model": cfg.model.spec,
        "judge": cfg.judge.spec if cfg.judge else None,
        "simulator": cfg.simulator.spec if cfg.simulator else None,
        "protocol": cfg.protocol,
        "personas": cfg.personas.set_name if cfg.personas else None,
    }
    return result


def _signed(x: float | None) -> str:
    return "   -   " if x is None else f"{x:+.3f}"


def _band(ci: list[float | None] | None) -> str:
    return "" if not ci else f"[{ci[0]:+.3f}, {ci[1]:+.3f}]"


def format_gap(result: dict[str, Any]) -> str:
    s = result["setup"]
    pct = round(result["level"] * 100)
    lines = [
        f"Inference gap  model={s['model']}  judge={s['judge']}  simulator={s['simulator']}  "
        f"protocol={s['protocol']}  personas={s['personas']} ({result['overall']['n']} paired)",
        "gap = explicit (persona in the system message) - implicit (hidden); > 0: the model does better "
        "when told who the user is",
        f"{'turn':>5}  {'implicit':>8}  {'explicit':>8}  {'gap':>7}  {f'{pct}% CI':>18}  {'n':>4}",
    ]

    def fmt(x: float | None) -> str:
        return "   -  " if x is None else f"{x:.3f}"

    for row in result["turns"]:
        lines.append(
            f"{row['turn']:>5}  {fmt(row['implicit']):>8}  {fmt(row['explicit']):>8}  {_signed(row['gap']):>7}  "
            f"{_band(row['ci']):>18}  {row['n']:>4}"
        )
    o = result["overall"]
    lines.append(
        f"{'all':>5}  {fmt(o['implicit']):>8}  {fmt(o['explicit']):>8}  {_signed(o['gap']):>7}  "
        f"{_band(o['ci']):>18}  {o['n']:>4}"
    )
    unpaired = result.get("unpaired") or {}
    if any(unpaired.values()):
        lines.append(
            f"left out (no scored partner): {unpaired['implicit']} implicit, {unpaired['explicit']} explicit"
        )
    return "\n".join(lines)
