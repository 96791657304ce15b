"""The comparison table at the end of a pipeline: base vs trained checkpoints, one row per run.

Kept in this one function on purpose: when aloe-bench's leaderboard/compare code lands, this is the
only place to switch over to it.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from aloe_bench.results import load_run


def comparison_table(runs: dict[str, Path]) -> pd.DataFrame:
    """{label: run directory} -> one row per run: AVG, IR, N-IR, N-R2, AL(k) and counts."""
    rows = []
    for label, directory in runs.items():
        run = load_run(directory)
        m = run.metrics
        row = {
            "model": label,
            "spec": run.config.get("model", {}).get("spec"),
            "avg": m.get("avg"),
            "ir": m.get("ir"),
            "n_ir": m.get("n_ir"),
            "n_r2": m.get("n_r2"),
        }
        row.update({f"al{k}": v for k, v in enumerate(m.get("al", []), start=1)})
        row["conversations"] = m.get("conversations")
        row["failed"] = m.get("failed", 0)
        rows.append(row)
    return pd.DataFrame(rows)


def format_table(table: pd.DataFrame) -> str:
    return table.to_string(index=False, float_format=lambda x: f"{x:.3f}", na_rep="-")
