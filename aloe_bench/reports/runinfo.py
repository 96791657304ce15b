"""What the reporting tools (leaderboard, compare, plot) need to know about a run directory.

A run's *setup* is everything besides the model that decides what its scores mean: the judge, the
simulated user, the judge protocol, the persona set, the number of turns and whether the persona is
disclosed. Scores from different setups are not comparable, so the reports flag or group them.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import InputsRecord, Metrics, RoleRecord
from aloe_bench.log.results import Run, load_run, score_matrix
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP, alignment_metrics
from aloe_bench.spec_names import portable_spec

# Setup fields in the order reports name them, with the words a reader sees.
SETUP_FIELDS = {
    "judge": "judge",
    "simulator": "simulated user",
    "protocol": "protocol",
    "personas": "persona set",
    "turns": "turns",
    "disclosure": "persona disclosure",
    "prompts": "simulated-user/judge prompt versions",
}
NO_SIMULATOR = "none"  # how a setup without a simulated user (Multifaceted) shows it


@dataclass(frozen=True)
class RunSetup:
    judge: str
    simulator: str
    protocol: str
    personas: str = field(compare=False)  # how a reader sees the set, e.g. "demo (12)"
    personas_key: str  # what identifies it: the texts' SHA-256 when recorded
    turns: int
    disclosure: str
    prompts: str = ""  # the simulated user's and judge's prompt hashes: another wording is another setup

    @classmethod
    def of(cls, run: Run) -> RunSetup:
        cfg = run.config
        personas = cfg.personas or InputsRecord()
        name = personas.set_name or "?"
        shown = f"{name} ({personas.count})" if personas.count is not None else name
        return cls(
            judge=_spec(cfg.judge),
            simulator=_spec(cfg.simulator) if cfg.simulator is not None else NO_SIMULATOR,
            protocol=cfg.protocol or "?",
            personas=shown,
            personas_key=personas.sha256 or shown,
            turns=run.turns,
            disclosure=cfg.disclosure,
            prompts=" ".join(
                f"{role}:{(cfg.prompt_sha256(role) or '?')[:12]}" for role in ("simulator", "judge")
            ),
        )

    def key(self, name: str) -> Any:
        return self.personas_key if name == "personas" else getattr(self, name)

    def differences(self, other: RunSetup) -> list[str]:
        """Names of the setup fields (SETUP_FIELDS keys) where the two differ."""
        return [name for name in SETUP_FIELDS if self.key(name) != other.key(name)]


def _spec(role: RoleRecord | None) -> str:
    """The role's spec as reports show it: a local checkpoint by its folder name, not its path."""
    return portable_spec(role.spec) if role is not None and role.spec else "?"


@dataclass
class RunInfo:
    """One run as the reports see it: its label, setup and metrics (with confidence intervals)."""

    run: Run
    label: str
    setup: RunSetup
    metrics: Metrics

    @property
    def path(self) -> Path:
        return self.run.path

    @property
    def model(self) -> str:
        return _spec(self.run.config.model) if self.run.config.model.spec else self.run.label


def metrics_with_ci(run: Run, *, n_bootstrap: int = DEFAULT_BOOTSTRAP, seed: int | None = None) -> Metrics:
    """The run's recorded metrics; recomputed from its conversations only where the intervals are missing.

    A finished run records its bootstrap intervals; a run still going (or stopped) records none, and
    the reports must still show its uncertainty rather than a bare mean.
    """
    recorded = run.metrics
    if recorded.al and recorded.has_ci:
        return recorded
    turns = run.turns
    if not run.conversations or turns < 1:
        if recorded.al:
            return recorded
        raise UserInputError(
            f"{run.path} has no metrics and no conversations to compute them from; "
            "is the run still starting? wait for its first turn"
        )
    seed = (run.config.seed or 0) if seed is None else seed
    computed = alignment_metrics(score_matrix(run.conversations, turns), seed=seed, n_bootstrap=n_bootstrap)
    return type(recorded).from_dict({**recorded.to_dict(), **computed}, "metrics")


def load_runs(directories: Sequence[str | Path], labels: list[str] | None = None) -> list[RunInfo]:
    """Read run directories (each once) with their labels: `labels` in order, else the run's own label."""
    if labels and len(labels) > len(directories):
        raise UserInputError(
            f"{len(labels)} --label values for {len(directories)} runs; give at most one label per run"
        )
    seen: set[Path] = set()
    infos: list[RunInfo] = []
    for i, directory in enumerate(directories):
        run = load_run(directory)
        resolved = run.path.resolve()
        if resolved in seen:
            continue
        seen.add(resolved)
        label = labels[i] if labels and i < len(labels) else run.label
        infos.append(RunInfo(run, label, RunSetup.of(run), metrics_with_ci(run)))
    _disambiguate_labels(infos)
    return infos


def _disambiguate_labels(infos: list[RunInfo]) -> None:
    """Two runs of one model (e.g. under two judges) get their folder name added to tell them apart."""
    counts = Counter(info.label for info in infos)
    for info in infos:
        if counts[info.label] > 1:
            info.label = f"{info.label} ({info.path.name})"


def _size(info: RunInfo) -> int:
    return info.metrics.conversations


def reference_run(infos: list[RunInfo], baseline: RunInfo | None = None) -> RunInfo:
    """The run the others are measured against: the baseline; else the largest run (most scored
    conversations) of the most common setup. Never merely the first argument: a 2-persona smoke
    run given first must not set the reference for a 100-persona run."""
    if baseline is not None:
        return baseline
    counts = Counter(info.setup for info in infos)
    return max(infos, key=lambda info: (counts[info.setup], _size(info)))  # max keeps the first on ties


def reference_setup(infos: list[RunInfo], baseline: RunInfo | None = None) -> RunSetup:
    """The setup the others are checked against: the reference run's."""
    return reference_run(infos, baseline).setup


def setup_warning(infos: list[RunInfo], reference: RunSetup, reference_name: str) -> str | None:
    """One line saying which runs were made under another setup, or None when all match."""
    odd = [info for info in infos if info.setup != reference]
    if not odd:
        return None
    fields = sorted(
        {name for info in odd for name in info.setup.differences(reference)}, key=list(SETUP_FIELDS).index
    )
    words = ", ".join(SETUP_FIELDS[f] for f in fields)
    names = ", ".join(f"'{info.label}'" for info in odd)
    return (
        f"warning: {len(odd)} of {len(infos)} runs ({names}) differ in {words} from {reference_name}; "
        "their scores are not comparable with the others"
    )
