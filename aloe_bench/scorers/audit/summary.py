"""From per-conversation audits to results.json's `audit` section, its warnings, and the text a
person reads (one run, or several side by side).

Thresholds for the warnings, and why:
- `simulator-front-loaded`: more than FRONT_LOADED (half) of the persona's facts revealed by turn 1.
  The protocol asks the user to reveal a little per message; a user spreading 6-10 facts over 10
  turns reveals ~10-20% per turn. Past half at turn 1, a model knows most of the persona from turn
  2 on, so the improvement over turns (IR) measures little. Not raised for 1-turn runs.
- `simulator-silent`: less than SILENT (a fifth) of the facts revealed by the last turn: with that
  little to learn, no model can improve, and a flat curve says nothing about the model.
- `simulator-role-break`: more than ROLE_BREAK_RATE (10%) of the audited turns break role: then
  one turn in ten is not a person talking, and the judge scores replies to an assistant or a script.
Each message names the figure, its 95% CI and n, so a reader sees how firm the warning is.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import numpy as np

from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP, bootstrap_ci
from aloe_bench.scorers.audit.checks import ROLE_BREAK_CODES
from aloe_bench.scorers.audit.records import ConversationAudit, TurnAudit

FRONT_LOADED = 0.5
SILENT = 0.2
ROLE_BREAK_RATE = 0.10
WARNING_CODES = ("simulator-front-loaded", "simulator-silent", "simulator-role-break")
MAX_EXAMPLES = 12


def disclosure_matrix(audits: Sequence[ConversationAudit], turns: int) -> np.ndarray:
    """(conversations x turns): the fraction of a persona's facts revealed by turn k."""
    rows = []
    for a in audits:
        if not a.facts:
            continue
        first = a.first_revealed
        rows.append(
            [sum(f is not None and f <= k for f in first) / len(a.facts) for k in range(1, turns + 1)]
        )
    return np.array(rows, dtype=float).reshape(len(rows), turns)


def _r(x: float | None) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def summarize(
    audits: Sequence[ConversationAudit],
    turns: int,
    *,
    seed: int = 0,
    n_bootstrap: int = DEFAULT_BOOTSTRAP,
) -> dict[str, Any]:
    """The statistics of results.json `audit` (auditor fields are added by the caller).

    Only complete conversations count (as in the metrics); a percentile bootstrap over them gives
    every per-turn 95% CI (aloe_bench.metrics.alignment.bootstrap_ci)."""
    done = [a for a in audits if a.status == "complete"]
    matrix = disclosure_matrix(done, turns)
    ci = bootstrap_ci(matrix, seed=seed, n_bootstrap=n_bootstrap)["al"]
    n = matrix.shape[0]
    means = matrix.mean(axis=0) if n else np.full(turns, np.nan)
    by_turn: list[list[TurnAudit]] = [
        [t for a in done for t in a.turns if t.turn == k] for k in range(1, turns + 1)
    ]
    disclosure = [
        {
            "turn": k,
            "mean": _r(means[k - 1]),
            "ci": ci[k - 1],
            "n": n,
            "invalid": sum(t.revealed is None for t in by_turn[k - 1]),
        }
        for k in range(1, turns + 1)
    ]
    never = np.array([1 - row[-1] for row in matrix]) if n and turns else np.array([])
    never_ci = bootstrap_ci(never.reshape(-1, 1), seed=seed, n_bootstrap=n_bootstrap)["al"][0] if n else None
    never_facts = [
        f for a in done for f, first in zip(a.facts, a.first_revealed, strict=True) if first is None
    ]
    role_breaks: list[dict[str, Any]] = []
    for k, ts in enumerate(by_turn, start=1):
        codes = Counter(code for t in ts for code in set(t.role_breaks))
        role_breaks.append(
            {
                "turn": k,
                "n": len(ts),
                "count": sum(bool(t.role_breaks) for t in ts),
                "by_code": {c: codes[c] for c in ROLE_BREAK_CODES if codes[c]},
            }
        )
    audited = sum(len(ts) for ts in by_turn)
    broken = sum(r["count"] for r in role_breaks)
    checked = any(t.contradictions is not None for ts in by_turn for t in ts)
    return {
        "conversations": n,
        "facts_per_conversation": _r(float(np.mean([len(a.facts) for a in done]))) if done else None,
        "disclosure": disclosure,
        "turn1": disclosure[0]["mean"] if disclosure else None,
        "final": disclosure[-1]["mean"] if disclosure else None,
        "never_revealed": {
            "mean": _r(never.mean()) if n else None,
            "ci": never_ci,
            "count": len(never_facts),
            "of": sum(len(a.facts) for a in done),
            "examples": never_facts[:5],
        },
        "role_breaks": role_breaks,
        "role_break_rate": {
            "rate": _r(broken / audited) if audited else None,
            "count": broken,
            "turns": audited,
        },
        "advice_requests": [
            {
                "turn": k,
                "n": len(ts),
                "asked": sum(t.advice_request for t in ts),
                "repeated": sum(t.repeated_advice for t in ts),
            }
            for k, ts in enumerate(by_turn, start=1)
        ],
        "contradictions": [
            {
                "turn": k,
                "n": len(ts),
                "count": sum(bool(t.contradictions) for t in ts) if checked else None,
            }
            for k, ts in enumerate(by_turn, start=1)
        ],
        "contradictions_checked": checked,
        "examples": examples(done),
    }


def examples(audits: Sequence[ConversationAudit], limit: int = MAX_EXAMPLES) -> list[dict[str, Any]]:
    """Messages that broke role, asked for advice again or contradicted a fact (first ones found)."""
    out: list[dict[str, Any]] = []
    for a in audits:
        for t in a.turns:
            kinds = [*t.role_breaks]
            if t.repeated_advice:
                kinds.append("repeated-advice")
            if t.contradictions:
                kinds.append("contradiction: " + ", ".join(a.facts[i] for i in t.contradictions))
            text = a.messages[t.turn - 1] if t.turn - 1 < len(a.messages) else ""
            for kind in kinds:
                if len(out) >= limit:
                    return out
                out.append({"id": a.id, "turn": t.turn, "kind": kind, "text": text[:240]})
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.0f}%"


def _band(ci: list | None) -> str:
    return "" if not ci or ci[0] is None else f"[{100 * ci[0]:.0f}%, {100 * ci[1]:.0f}%]"


def audit_warnings(audit: dict[str, Any], turns: int) -> list[dict[str, str]]:
    """The `simulator-*` warnings this audit raises (see the module docstring for the thresholds)."""
    out: list[dict[str, str]] = []
    disclosure = audit.get("disclosure") or []
    n = audit.get("conversations", 0)
    if not disclosure or not n:
        return out
    first, last = disclosure[0], disclosure[-1]
    if turns >= 2 and first["mean"] is not None and first["mean"] > FRONT_LOADED:
        out.append(
            {
                "code": "simulator-front-loaded",
                "message": f"the simulated user revealed {_pct(first['mean'])} of its persona facts at turn 1 "
                f"(95% CI {_band(first['ci'])}, n={n} conversations; threshold {_pct(FRONT_LOADED)}): "
                "a model knows most of the persona from turn 2 on, so the improvement rate measures little",
            }
        )
    if last["mean"] is not None and last["mean"] < SILENT:
        out.append(
            {
                "code": "simulator-silent",
                "message": f"by turn {last['turn']} the simulated user had revealed only {_pct(last['mean'])} of "
                f"its persona facts (95% CI {_band(last['ci'])}, n={n}; threshold {_pct(SILENT)}): "
                "with so little to learn no model can improve",
            }
        )
    rate = audit.get("role_break_rate") or {}
    if rate.get("rate") is not None and rate["rate"] > ROLE_BREAK_RATE:
        out.append(
            {
                "code": "simulator-role-break",
                "message": f"the simulated user broke role in {rate['count']} of {rate['turns']} turns "
                f"({_pct(rate['rate'])}; threshold {_pct(ROLE_BREAK_RATE)}); see audit.examples",
            }
        )
    return out


def merge_warnings(existing: list[dict[str, str]] | None, ours: list[dict[str, str]]) -> list[dict[str, str]]:
    """Others' warnings kept in order; an earlier audit's simulator-* warnings replaced by this one's."""
    kept = [w for w in existing or [] if w.get("code") not in WARNING_CODES]
    return [*kept, *ours]


# --- text ------------------------------------------------------------------------------------------


def audit_report(audit: dict[str, Any], warnings: Sequence[dict[str, str]] = ()) -> str:
    """What `aloe-bench audit` (and `run --audit`) prints for one run."""
    n = audit.get("conversations", 0)
    lines = [
        f"simulated-user audit  auditor={audit.get('auditor')}  matcher={audit.get('matcher')}  "
        f"facts={audit.get('facts_method')} ({audit.get('facts_per_conversation')} per persona)  "
        f"n={n} complete conversations",
        f"{'turn':>4}  {'disclosed':>9}  {'95% CI':<12}  {'role breaks':>11}  {'advice asks':>11}  "
        f"{'repeated':>8}  {'contradictions':>14}",
    ]
    for d, r, a, c in zip(
        audit["disclosure"],
        audit["role_breaks"],
        audit["advice_requests"],
        audit["contradictions"],
        strict=True,
    ):
        contradictions = "–" if c["count"] is None else f"{c['count']}/{c['n']}"
        lines.append(
            f"{d['turn']:>4}  {_pct(d['mean']):>9}  {_band(d['ci']):<12}  {r['count']:>5}/{r['n']:<5}  "
            f"{a['asked']:>5}/{a['n']:<5}  {a['repeated']:>8}  {contradictions:>14}"
            + (f"  ({d['invalid']} unreadable)" if d.get("invalid") else "")
        )
    never = audit.get("never_revealed") or {}
    lines.append(
        f"never revealed: {_pct(never.get('mean'))} of facts {_band(never.get('ci'))} "
        f"({never.get('count')} of {never.get('of')} facts over {n} conversations)"
    )
    rate = audit.get("role_break_rate") or {}
    by_code: Counter[str] = Counter()
    for r in audit["role_breaks"]:
        by_code.update(r["by_code"])
    lines.append(
        f"role breaks: {rate.get('count')} of {rate.get('turns')} turns ({_pct(rate.get('rate'))})"
        + (": " + ", ".join(f"{c} {k}" for c, k in by_code.items()) if by_code else "")
    )
    if not audit.get("contradictions_checked"):
        lines.append("contradictions: not checked (only the LLM auditor can; pass --auditor SPEC)")
    for ex in audit.get("examples", [])[:5]:
        lines.append(f"  e.g. turn {ex['turn']} [{ex['kind']}] ({ex['id']}): {ex['text'][:100]!r}")
    for w in warnings:
        lines.append(f"warning [{w['code']}]: {w['message']}")
    return "\n".join(lines)


def side_by_side(labels: Sequence[str], audits: Sequence[dict[str, Any]]) -> str:
    """Disclosure curves of several runs, one column each (choosing a simulated user)."""
    width = max(18, *(len(label) for label in labels))
    head = f"{'turn':>4}  " + "  ".join(f"{label:<{width}}" for label in labels)
    lines = ["disclosure by turn: fraction of persona facts revealed so far [95% CI]", head]
    turns = max(len(a["disclosure"]) for a in audits)
    for k in range(turns):
        cells = []
        for a in audits:
            d = a["disclosure"][k] if k < len(a["disclosure"]) else None
            cells.append(f"{_pct(d['mean']) + ' ' + _band(d['ci']) if d else '–':<{width}}")
        lines.append(f"{k + 1:>4}  " + "  ".join(cells))
    lines.append(
        f"{'n':>4}  "
        + "  ".join(f"{str(a.get('conversations')) + ' conversations':<{width}}" for a in audits)
    )
    lines.append(
        f"{'RB':>4}  "
        + "  ".join(
            f"{_pct((a.get('role_break_rate') or {}).get('rate')) + ' of turns':<{width}}" for a in audits
        )
    )
    lines.append("(RB = share of turns where the simulated user broke role)")
    return "\n".join(lines)


def summary_lines(results: dict[str, Any]) -> list[str]:
    """The audit in two or three lines for the end-of-run summary (nothing when not audited)."""
    audit = results.get("audit")
    if not audit or not audit.get("disclosure"):
        return []
    first, last = audit["disclosure"][0], audit["disclosure"][-1]
    rate = audit.get("role_break_rate") or {}
    lines = [
        f"simulated user ({audit.get('auditor')} audit, n={audit.get('conversations')}): facts revealed "
        f"{_pct(first['mean'])} {_band(first['ci'])} at turn 1, {_pct(last['mean'])} {_band(last['ci'])} "
        f"by turn {last['turn']}; role breaks in {rate.get('count')} of {rate.get('turns')} turns"
    ]
    return lines  # its warnings are printed with the run's others, last, by report.summary_table
