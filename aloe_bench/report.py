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
    usage = _usage_line(results)
    if usage:
        lines.append(usage)
    if run_dir:
        lines.append(f"run directory: {run_dir}")
    return "\n".join(lines)


def _usage_line(results: dict[str, Any]) -> str | None:
    usage = results.get("usage", {})
    if not usage:
        return None
    parts = []
    for role, u in usage.items():
        part = f"{role} {u['calls']} calls/{u['cached']} cached/{u['completion_tokens']} tok"
        if u.get("retries") or u.get("throttled"):
            part += f"/{u.get('retries', 0)} retries ({u.get('throttled', 0)} rate-limited)"
        if "concurrency_peak" in u and u["calls"]:
            part += f"/concurrency peak {u['concurrency_peak']} of {u.get('concurrency_max')}"
        if u.get("cost_usd") is not None:
            part += f"/${u['cost_usd']:.4f}"
        parts.append(part)
    return "usage: " + "; ".join(parts)


def rubric_summary(results: dict[str, Any], run_dir: str | None = None) -> str:
    """Multifaceted Bench: the benchmark score, its breakdowns, and the judge's reliability."""
    cfg, m = results.get("config", {}), results.get("metrics", {})
    data = cfg.get("personas", {})
    lines = [
        f"Multifaceted  model={cfg.get('model', {}).get('spec')}  judge={cfg.get('judge', {}).get('spec')}  "
        f"data={data.get('set')} ({data.get('count')} instances)  "
        f"system role={cfg.get('model', {}).get('system_role')}",
        f"score {_fmt(m.get('score'))}{_ci(m.get('ci', {}).get('avg'))}   "
        f"(mean over {m.get('n', [0])[0]} instances; {m.get('invalid', [0])[0]} without a score)",
    ]
    for title, key in (("source", "by_source"), ("dimension", "by_dimension")):
        groups = m.get(key) or {}
        if groups:
            width = max(len(title), *(len(k) for k in groups))
            lines.append(f"  {title:<{width}}  {'score':>6}  {'n':>4}  {'invalid':>7}")
            for name, g in groups.items():
                lines.append(f"  {name:<{width}}  {_fmt(g['score']):>6}  {g['n']:>4}  {g['invalid']:>7}")
    rubrics = m.get("rubrics") or {}
    if rubrics:
        lines.append(
            f"rubric judgements: {rubrics['judged']} ({rubrics['invalid']} without a score); "
            f"judge answers: {rubrics['samples']} ({rubrics['samples_invalid']} unreadable after re-asks, "
            f"{rubrics['reasked']} re-asked)"
        )
    repeats = m.get("judge_repeats") or {}
    if repeats.get("r", 1) > 1:
        scores = ", ".join(_fmt(s) for s in repeats["scores"])
        lines.append(f"judge repeats: {repeats['r']}  scores {scores}  std {_fmt(repeats.get('std'))}")
    if m.get("failed"):
        lines.append(f"FAILED: {m['failed']} instance(s) (see failures in results.json)")
    usage = _usage_line(results)
    if usage:
        lines.append(usage)
    if run_dir:
        lines.append(f"run directory: {run_dir}")
    return "\n".join(lines)
