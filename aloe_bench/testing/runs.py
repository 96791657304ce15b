"""Synthetic run directories with chosen scores, written through the same helpers a real run uses.

For testing the reports' statistics on known data (a real run's scores are whatever the judge says).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from aloe_bench.log.results import (
    CONVERSATIONS_FILE,
    FORMAT_VERSION,
    RESULTS_FILE,
    ConversationRecord,
    TurnRecord,
    score_matrix,
    write_conversations,
    write_json_atomic,
)
from aloe_bench.metrics.alignment import alignment_metrics


def write_synthetic_run(
    directory: str | Path,
    scores: Mapping[str, Sequence[int | None]],
    *,
    model: str = "synthetic/model",
    judge: str = "synthetic/judge",
    simulator: str = "synthetic/simulator",
    protocol: str = "aloe-v1",
    personas: str = "synthetic",
    disclosure: str = "hidden",
    failed: Iterable[str] = (),
    seed: int = 0,
    n_bootstrap: int = 500,
) -> Path:
    """A run dir whose persona `pid` got `scores[pid]` per turn (None = invalid judgement).

    Personas listed in `failed` are recorded as failed conversations (kept out of the metrics, as a
    real run does). The persona-set hash covers the ids, so runs over the same ids share a set.
    """
    out = Path(directory)
    failed = set(failed)
    turns = max((len(v) for v in scores.values()), default=0)
    conversations = []
    for pid, row in scores.items():
        conv = ConversationRecord(
            id=pid,
            persona={"profile": f"profile of {pid}", "personality": f"personality of {pid}"},
            turns=[
                TurnRecord(user=f"user {k}", assistant=f"reply {k}", score=s, judge_raw=str(s), judged=True)
                for k, s in enumerate(row, start=1)
            ],
            status="failed" if pid in failed else "complete",
            error="synthetic failure" if pid in failed else None,
        )
        conversations.append(conv)
    metrics = alignment_metrics(score_matrix(conversations, turns), seed=seed, n_bootstrap=n_bootstrap)
    metrics["failed"] = len(failed & set(scores))
    metrics["planned"] = len(conversations)
    results: dict[str, Any] = {
        "format_version": FORMAT_VERSION,
        "label": model,
        "config": {
            "model": {"spec": model, "args": {}},
            "simulator": {"spec": simulator, "args": {}},
            "judge": {"spec": judge, "args": {}},
            "personas": {"set": personas, "count": len(scores), "sha256": f"ids:{','.join(sorted(scores))}"},
            "turns": turns,
            "seed": seed,
            "protocol": protocol,
            "persona_disclosure": disclosure,
        },
        "status": "complete" if not failed else "incomplete",
        "metrics": metrics,
        "usage": {},
        "failures": [{"id": c.id, "error": c.error} for c in conversations if c.status == "failed"],
    }
    write_conversations(out / CONVERSATIONS_FILE, conversations)
    write_json_atomic(out / RESULTS_FILE, results)
    return out
