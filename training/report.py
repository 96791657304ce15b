"""The comparison at the end of a pipeline: base vs trained checkpoints, as an aloe-bench leaderboard
with the base as baseline (ΔAVG, paired bootstrap CI, Wilcoxon and Holm-corrected p per checkpoint)."""

from __future__ import annotations

from pathlib import Path

from aloe_bench.reports.leaderboard import Leaderboard, build_leaderboard, render
from aloe_bench.reports.runinfo import load_runs


def comparison_board(runs: dict[str, Path]) -> Leaderboard:
    """{label: run directory}, the base first -> the leaderboard of those runs against the base."""
    infos = load_runs(list(runs.values()), labels=list(runs))
    return build_leaderboard(infos, baseline=infos[0])


def format_board(board: Leaderboard, fmt: str = "md") -> str:
    """The table as markdown (printed) or a standalone HTML page (OUT/comparison.html)."""
    return render(board, fmt)
