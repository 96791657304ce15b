"""The end-of-run summary a person reads in the terminal."""

from __future__ import annotations

from aloe_bench.log.records import InputsRecord, Metrics, RoleRecord, RunResults
from aloe_bench.log.run_warnings import derived_warnings, merge_warnings
from aloe_bench.scorers.rubric import RubricMetrics


def _fmt(x: float | None, digits: int = 3) -> str:
    return "  -  " if x is None else f"{x:.{digits}f}"


def _ci(ci: list[float | None] | None, digits: int = 3) -> str:
    if not ci or ci[0] is None:
        return ""
    return f"  [{ci[0]:.{digits}f}, {ci[1]:.{digits}f}]"


README_SECTION = 'docs/results.md, section "Reading the results"'

# One line per metric: what it means (defined fully in README_SECTION).
METRIC_MEANINGS = [
    "AL(k)  mean judge score (1-5) of the replies at turn k; n = replies scored, invalid = judge gave no score",
    "AVG    mean of AL(1..K): how well the replies fit the person overall",
    "IR     least-squares slope of AL(k) per turn: > 0 means the model adapts as it learns the person",
    "N-IR   the same slope on the curve min-max normalised to 0..1; N-R2 how straight that rise is (0..1)",
    "[..]   95% bootstrap intervals over conversations: with few conversations they are wide",
]


def curve_notes(m: Metrics) -> dict[str, str]:
    """Why IR, N-IR or N-R2 is not shown, or what it cannot mean, on this run's curve (by metric)."""
    defined = sum(v is not None for v in m.al)
    notes: dict[str, str] = {}
    if defined < 2:
        why = f"n/a: a slope needs at least 2 scored turns ({defined} here)"
        return {"ir": why, "n_ir": why, "n_r2": why}
    if defined == 2:
        notes["ir"] = "from 2 turns: one difference, not a trend"
        notes["n_r2"] = "n/a: a line through 2 points always fits (N-R2 would be 1)"
    if m.n_ir is None and "n_r2" not in notes:
        notes["n_ir"] = notes["n_r2"] = "n/a: a flat curve cannot be normalised"
    elif m.n_ir is None:
        notes["n_ir"] = "n/a: a flat curve cannot be normalised"
    return notes


def _metric(value: float | None, band: list[float | None] | None, note: str | None, digits: int) -> str:
    if note and note.startswith("n/a"):
        return f"  -   ({note})"
    return f"{_fmt(value, digits)}{_ci(band, digits)}" + (f"   ({note})" if note else "")


def _spec(role: RoleRecord | None) -> str | None:
    return role.spec if role is not None else None


def summary_table(results: RunResults, run_dir: str | None = None) -> str:
    cfg, m = results.config, results.metrics
    ci = m.ci
    lines = []
    personas_name = cfg.personas.set_name if cfg.personas is not None else None
    lines.append(
        f"ALOE  model={cfg.model.spec}  simulator={_spec(cfg.simulator)}  "
        f"judge={_spec(cfg.judge)}  protocol={cfg.protocol}  personas={personas_name}"
    )
    lines.append(f"{'turn':>4}  {'AL(k)':>6}  {'95% CI':>16}  {'n':>4}  {'invalid':>7}")
    al_ci = ci.al or [None] * len(m.al)
    for k, (al, n, inv, band) in enumerate(zip(m.al, m.n, m.invalid, al_ci, strict=False), 1):
        lines.append(f"{k:>4}  {_fmt(al):>6}  {_ci(band).strip():>16}  {n:>4}  {inv:>7}")
    notes = curve_notes(m)
    lines.append(f"AVG  {_metric(m.avg, ci.avg, None, 3)}")
    lines.append(f"IR   {_metric(m.ir, ci.ir, notes.get('ir'), 4)}")
    lines.append(f"N-IR {_metric(m.n_ir, None, notes.get('n_ir'), 4)}")
    lines.append(f"N-R2 {_metric(m.n_r2, None, notes.get('n_r2'), 4)}")
    convs = m.conversations
    failed = m.failed
    judged = sum(m.n)
    invalid = sum(m.invalid)
    lines.append(
        f"conversations scored: {convs}   replies scored: {judged}, invalid: {invalid}"
        + (f"   FAILED: {failed} (see failures in results.json)" if failed else "")
    )
    lines.extend(trust_summary(results))
    from aloe_bench.scorers.audit.summary import summary_lines  # the simulated-user audit, when there is one

    lines.extend(summary_lines(results.to_dict()))
    if convs and convs < 30:
        lines.append(
            f"note: {convs} conversations: a small sample, the intervals are wide; differences inside them mean nothing"
        )
    usage = _usage_line(results)
    if usage:
        lines.append(usage)
    truncated = _truncation_line(results)
    if truncated:
        lines.append(truncated)
    lines.append("what the numbers mean (" + README_SECTION + "):")
    lines.extend(f"  {line}" for line in METRIC_MEANINGS)
    if run_dir:
        lines.append(f"run directory: {run_dir}")
    lines.extend(_warning_lines(results))
    return "\n".join(lines)


def trust_summary(results: RunResults) -> list[str]:
    """Judge reliability, validity controls, noise floor and warnings (issue 11), when recorded."""
    from aloe_bench.reports.trust_text import trust_lines

    return trust_lines(results.reliability, results.validity)


def _truncation_line(results: RunResults) -> str | None:
    """Replies per role that stopped at max_new_tokens (runs before usage counted it: nothing)."""
    parts = [
        f"{role} {u.truncated}/{u.answered}"
        for role, u in results.usage.items()
        if u.truncated is not None and u.answered
    ]
    return "cut at max_new_tokens: " + ", ".join(parts) if parts else None


def _warning_lines(results: RunResults) -> list[str]:
    """The run's warnings, the embedded-judge one LAST: it is what a reader must not miss."""
    # Runs written before results.json had `warnings` still get the ones their config implies.
    derived = derived_warnings(results.config, results.usage)
    warnings = merge_warnings(results.warnings, derived)
    warnings.sort(key=lambda w: w.code == "embedded-judge")  # stable: the others keep their order
    return [f"WARNING ({w.code}): {w.message}" for w in warnings]


def _usage_line(results: RunResults) -> str | None:
    if not results.usage:
        return None
    parts = []
    for role, u in results.usage.items():
        part = f"{role} {u.calls} calls/{u.cached} cached/{u.completion_tokens} tok"
        if u.retries or u.throttled:
            part += f"/{u.retries or 0} retries ({u.throttled or 0} rate-limited)"
        if u.concurrency_peak is not None and u.calls:
            part += f"/concurrency peak {u.concurrency_peak} of {u.concurrency_max}"
        if u.cost_usd is not None:
            part += f"/${u.cost_usd:.4f}"
        parts.append(part)
    return "usage: " + "; ".join(parts)


def rubric_summary(results: RunResults, run_dir: str | None = None) -> str:
    """Multifaceted Bench: the benchmark score, its breakdowns, and the judge's reliability."""
    cfg = results.config
    m = RubricMetrics.of(results.metrics) or RubricMetrics.from_dict(results.metrics.to_dict(), "metrics")
    data = cfg.personas or InputsRecord()
    lines = [
        f"Multifaceted  model={cfg.model.spec}  judge={_spec(cfg.judge)}  "
        f"data={data.set_name} ({data.count} instances)  "
        f"system role={cfg.model.system_role}",
        f"score {_fmt(m.score)}{_ci(m.ci.avg)}   "
        f"(mean over {(m.n or [0])[0]} instances; {(m.invalid or [0])[0]} without a score)",
    ]
    for title, groups in (("source", m.by_source), ("dimension", m.by_dimension)):
        if groups:
            width = max(len(title), *(len(k) for k in groups))
            lines.append(f"  {title:<{width}}  {'score':>6}  {'n':>4}  {'invalid':>7}")
            for name, g in groups.items():
                lines.append(f"  {name:<{width}}  {_fmt(g['score']):>6}  {g['n']:>4}  {g['invalid']:>7}")
    rubrics = m.rubrics
    if rubrics:
        lines.append(
            f"rubric judgements: {rubrics['judged']} ({rubrics['invalid']} without a score); "
            f"judge answers: {rubrics['samples']} ({rubrics['samples_invalid']} unreadable after re-asks, "
            f"{rubrics['reasked']} re-asked)"
        )
    repeats = m.judge_repeats
    if repeats.get("r", 1) > 1:
        scores = ", ".join(_fmt(s) for s in repeats["scores"])
        lines.append(f"judge repeats: {repeats['r']}  scores {scores}  std {_fmt(repeats.get('std'))}")
    lines.extend(trust_summary(results))  # test-retest alpha over the repeats, warnings
    if m.failed:
        lines.append(f"FAILED: {m.failed} instance(s) (see failures in results.json)")
    usage = _usage_line(results)
    if usage:
        lines.append(usage)
    truncated = _truncation_line(results)
    if truncated:
        lines.append(truncated)
    if run_dir:
        lines.append(f"run directory: {run_dir}")
    lines.extend(_warning_lines(results))
    return "\n".join(lines)


def run_summary(results: RunResults, run_dir: str | None = None) -> str:
    """The table printed when a run ends, whichever task made it: the rubric table for rubric
    metrics, else the alignment-curve table."""
    if RubricMetrics.of(results.metrics) is not None:
        return rubric_summary(results, run_dir)
    return summary_table(results, run_dir)
