"""ALOE's entry points: `prepare_run` (every input check, nothing loaded), `execute_run` and
`run_benchmark`; the run itself is the task's setup (setup.py) through the engine's one loop."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from aloe_bench.datasets.personas import PersonaSet, load_persona_set
from aloe_bench.engine.execute import role_backend, run_task
from aloe_bench.engine.session import check_output_dir, open_backends
from aloe_bench.engine.task_api import TaskRun
from aloe_bench.log.records import RunResults
from aloe_bench.models.backends import BackendPool
from aloe_bench.models.cost import Price
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_bench.tasks.aloe.setup import setup as aloe_setup


@dataclass
class PreparedRun:
    """A run that passed every input check: nothing loaded yet, nothing written but the folder."""

    config: RunConfig
    out: Path
    personas: PersonaSet
    pool: BackendPool
    prices: dict[str, Price] = field(default_factory=dict)  # --price overrides, by role
    judge_batch: bool = False  # --judge-batch
    # How the run is set up (benchmarks/aloe.py `setup` when None): a task built on ALOE's
    # rollout passes its own, e.g. one that puts another scorer in place of the judge stage.
    setup: Callable[..., TaskRun] | None = None

    @property
    def items(self) -> int:
        return len(self.personas.personas) * self.config.epochs

    def execute(self, *, progress: bool | None = None) -> RunResults:
        return asyncio.run(self._run(progress))

    async def _run(self, progress: bool | None) -> RunResults:
        setup = self.setup or aloe_setup
        async with open_backends(self.config.cache, self.pool) as run_engine:
            run = setup(
                self.config,
                self.personas,
                run_engine,
                self.out,
                price_overrides=self.prices,
                judge_batch=self.judge_batch,
            )
            results, _ = await run_task(run, self.out, progress_enabled=progress)
            return results


def prepare_run(
    config: RunConfig,
    *,
    overwrite: bool = False,
    prices: Mapping[str, Price] | None = None,
    judge_batch: bool = False,
) -> PreparedRun:
    """Every check that can fail on bad input, before any model is loaded or any result written
    (`prices`: --price overrides by role; `judge_batch`: --judge-batch)."""
    config.validate()
    out = Path(config.output) if config.output else config.default_output()
    personas = load_persona_set(config.personas, config.data_dir).limit(config.limit)
    pool = BackendPool()
    for role in (config.model, config.simulator, *config.judges):
        role_backend(pool, role, config.concurrency)  # unknown providers, missing paths, missing extras
    check_output_dir(out, config.config_hash(), overwrite)
    return PreparedRun(config, out, personas, pool, dict(prices or {}), judge_batch)


def execute_run(prepared: PreparedRun, *, progress: bool | None = None) -> RunResults:
    return prepared.execute(progress=progress)


def run_benchmark(
    config: RunConfig, *, overwrite: bool = False, progress: bool | None = None
) -> tuple[Path, RunResults]:
    """Run (or resume) and return the run directory with its results."""
    prepared = prepare_run(config, overwrite=overwrite)
    return prepared.out, execute_run(prepared, progress=progress)
