"""Multifaceted Bench's entry points (`prepare_multifaceted`, `run_multifaceted`); what it does per
instance is the task's setup (setup.py: one reply, rubric grading), run by the engine's one loop.

Resuming is re-running here too, and the run directory has the ALOE contract: each instance is a
one-turn conversation whose `persona.profile` is the system message (the stated preferences), whose
turn score is the instance score, with per-rubric scores beside it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, replace
from pathlib import Path

from aloe_bench.datasets.multifaceted import MultifacetedSet, load_multifaceted
from aloe_bench.engine.execute import run_task
from aloe_bench.engine.session import check_output_dir, open_backends
from aloe_bench.log.records import RunResults
from aloe_bench.tasks.multifaceted.config import MultifacetedConfig
from aloe_bench.tasks.multifaceted.setup import setup


@dataclass
class PreparedMultifaceted:
    """A Multifaceted run that passed every input check: nothing loaded yet."""

    config: MultifacetedConfig
    out: Path
    dataset: MultifacetedSet

    @property
    def items(self) -> int:
        return len(self.dataset.instances)

    def execute(self, *, progress: bool | None = None) -> RunResults:
        return asyncio.run(self._run(progress))

    async def _run(self, progress: bool | None) -> RunResults:
        async with open_backends(self.config.cache) as run_engine:
            run = setup(self.config, self.dataset, run_engine, self.out)
            results, _ = await run_task(run, self.out, progress_enabled=progress)
            return results


def prepare_multifaceted(config: MultifacetedConfig, *, overwrite: bool = False) -> PreparedMultifaceted:
    config.validate()
    dataset = load_multifaceted(config.data).limit(config.limit)
    config = replace(config, data_sha256=dataset.sha256)
    out = Path(config.output) if config.output else config.default_output()
    check_output_dir(out, config.config_hash(), overwrite)
    return PreparedMultifaceted(config, out, dataset)


def run_multifaceted(
    config: MultifacetedConfig, *, overwrite: bool = False, progress: bool | None = None
) -> tuple[Path, RunResults]:
    """Run (or resume) Multifaceted Bench and return the run directory with its results."""
    prepared = prepare_multifaceted(config, overwrite=overwrite)
    return prepared.out, prepared.execute(progress=progress)
