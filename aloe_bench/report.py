"""The end-of-run summary a person reads in the terminal."""

from __future__ import annotations

from typing import Any


def _fmt(x: float | None, digits: int = 3) -> str:
    return "  -  " if x is None else f"{x:.{digits}f}"


def _ci(ci: list[float | None] | None, digits: int = 3) -> str:
    if not ci or ci[0] is None:
        return ""
    return f"  [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


def summary_table(results: dict[str, Any], run_dir: str | None = None) -> str:
    cfg, m = results.get("config", {}), results.get("metrics", {})
    ci = m.get("ci", {})
    lines = []
    personas = cfg.get("personas", {})
    personas_name = personas.get("set") if isinstance(personas, dict) else personas
    lines.append(
        f"ALOE  model={cfg.get('model', {}).get('spec')}  simulator={cfg.get('simulator', {}).get('spec')}  "
        f"judge={cfg.get('judge', {}).get('spec')}  protocol={cfg.get('protocol')}  personas={personas_name}"
    )
    lines.append(f"{'turn':>4}  {'AL(k)':>6}  {'95% CI':>16}  {'n':>4}  {'invalid':>7}")
    al_ci = ci.get("al") or [None] * len(m.get("al", []))
    for k, (al, n, inv, band) in enumerate(
        zip(m.get("al", []), m.get("n", []), m.get("invalid", []), al_ci, strict=False), 1
    ):
        lines.append(f"{k:>4}  {_fmt(al):>6}  {_ci(band).strip():>16}  {n:>4}  {inv:>7}")
    lines.append(f"AVG  {_fmt(m.get('avg'))}{_ci(ci.get('avg'))}")
    lines.append(f"IR   {_fmt(m.get('ir'), 4)}{_ci(ci.get('ir'), 4)}")
    lines.append(f"N-IR {_fmt(m.get('n_ir'), 4)}   N-R2 {_fmt(m.get('n_r2'), 4)}")
    convs = m.get("conversations", 0)
    failed = m.get("failed", 0)
    lines.append(
        f"conversations scored: {convs}"
        + (f"   FAILED: {failed} (see failures in results.json)" if failed else "")
    )
    usage = results.get("usage", {})
    if usage:
        parts = [
            f"{role} {u['calls']} calls/{u['cached']} cached/{u['completion_tokens']} tok"
            for role, u in usage.items()
        ]
        lines.append("usage: " + "; ".join(parts))
    if run_dir:
        lines.append(f"run directory: {run_dir}")
    return "\n".join(lines)
