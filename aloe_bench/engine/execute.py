"""The one loop every run kind goes through: a task's `TaskRun` in, results out (`run_task`), with
the recorder, resume, progress, background scoring and cancel-and-flush; and the two things every
task's setup needs from it: each role's backend and the fixed part of results.json."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_bench import __version__
from aloe_bench.engine.progress import TurnProgress
from aloe_bench.engine.recorder import RunRecorder, utc_now
from aloe_bench.engine.session import (
    carry_usage,
    check_output_dir,
    fewer_collections,
    final_status,
    open_backends,
    record_run,
)
from aloe_bench.engine.task_api import Hooks, TaskRun
from aloe_bench.log.provenance import machine, package_versions
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.backends import Backend, BackendPool
from aloe_bench.models.backends.gpu_budget import plan_gpu_budgets
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role
from aloe_bench.spec_names import portable_spec


def role_backend(pool: BackendPool, role_config: RoleConfig, concurrency: int) -> Backend:
    """The (shared) backend for a role; API backends get the run's concurrency unless set."""
    from aloe_bench.models.cost import served_spec

    args = dict(role_config.args)
    if served_spec(role_config.spec).startswith("openai/"):  # best-of-N and strategies pass it on
        args.setdefault("concurrency", str(concurrency))
    backend = pool.get(role_config.spec, args)
    backend.check_settings(role_config.settings(1))  # a setting it cannot apply: refused before the run
    return backend


def role_backends(
    pool: BackendPool,
    roles: Mapping[str, RoleConfig],
    concurrency: int,
    given: Mapping[str, Backend] | None = None,
) -> dict[str, Backend]:
    """The backend of each role: the one `given` for it by name (the lm-eval interception hands in
    the LM it was called on as the model under test), else the pool's."""
    given = given or {}
    backends = {
        name: given[name] if name in given else role_backend(pool, config, concurrency)
        for name, config in roles.items()
    }
    plan_gpu_budgets(backends.values())  # roles sharing one GPU: explicit shares, refused if over
    return backends


def run_header(
    config: Any, roles: dict[str, Role], prompts: dict[str, Any], inputs: dict[str, Any]
) -> dict[str, Any]:
    """The fixed part of results.json. `config` is a task's config (record(), config_hash(), model);
    `inputs` describes what was evaluated (persona set or dataset: set, source, count, sha256)."""
    recorded = config.record()
    for name, role in roles.items():
        recorded[name]["backend"] = role.backend.describe()
    recorded["personas"] = inputs
    recorded["prompts"] = prompts
    recorded["packages"] = package_versions()
    recorded["machine"] = machine()
    return {
        "aloe_bench_version": __version__,
        "label": portable_spec(recorded["model"]["spec"]),  # the full spec stays in config
        "config_hash": config.config_hash(),
        "config": recorded,
        "started": utc_now(),
    }


async def run_task(
    run: TaskRun, out: Path | None, *, progress_enabled: bool | None = None
) -> tuple[RunResults, list[ConversationRecord]]:
    """Solve and score every item of `run`: (results, conversations). The run directory is written
    only when `out` is given; a re-run of the same run resumes and reports usage over both."""
    roles = run.usage_roles
    usage = {**run.idle_usage, **{name: role.usage for name, role in roles.items()}}
    carry_usage(out, str(run.header.get("config_hash")), usage)
    recorder = RunRecorder(
        usage=usage,
        backends=list({id(r.backend): r.backend for r in roles.values()}.values()),
        role_backends={name: r.backend for name, r in roles.items()},
        out=out,
        header=run.header,
        conversations=run.conversations,
        turns=run.turns,
        seed=run.seed,
        n_bootstrap=run.n_bootstrap,
        journaled=run.journaled and out is not None,
        prices=run.prices,
        batch_roles=run.batch_roles,
        metrics_of=run.metrics,
        sample_metrics=run.sample_metrics,
    )
    to_score = recorder.restore()  # an earlier attempt's turns come back from the run directory
    progress = TurnProgress(len(run.conversations), run.turns, enabled=progress_enabled)

    def turn_done(conv: ConversationRecord, index: int) -> None:
        progress.turn_done(index + 1)
        recorder.turn_done(conv, index)

    def judged(conv: ConversationRecord, index: int) -> None:
        conv.turns[index].keep_score(run.scorer_name)
        progress.judged_one(index + 1)
        recorder.judged(conv, index)

    def failed(conv: ConversationRecord) -> None:
        progress.conversation_failed()
        recorder.failed(conv)

    hooks = Hooks(turn_done, judged, failed)
    scorer = run.scorer(hooks)
    solver = run.solver(hooks, scorer)

    async def work() -> None:
        for conv, index in to_score:
            scorer.submit(conv, index)
        await solver.run(run.conversations)
        await scorer.drain()

    try:
        with fewer_collections():
            results = await record_run(
                recorder, work, status=lambda: final_status(run.conversations), stop=scorer.cancel
            )
    finally:
        progress.close()
        for close in run.closers:
            await close()
    return results, run.conversations


@dataclass
class PreparedTask:
    """A run of any task that passed every input check: nothing loaded yet, nothing written but the
    folder. `setup(config, items, engine, out)` is the task's: what its run does per item."""

    config: Any  # the task's config: validate(), record(), config_hash(), output, cache
    out: Path
    dataset: Sequence[Any]
    setup: Callable[..., TaskRun]

    @property
    def items(self) -> int:
        return len(self.dataset)

    def execute(self, *, progress: bool | None = None) -> RunResults:
        return asyncio.run(self._run(progress))

    async def _run(self, progress: bool | None) -> RunResults:
        async with open_backends(getattr(self.config, "cache", None)) as run_engine:
            run = self.setup(self.config, list(self.dataset), run_engine, self.out)
            results, _ = await run_task(run, self.out, progress_enabled=progress)
            return results


def prepare_task(
    config: Any, dataset: Sequence[Any], setup: Callable[..., TaskRun], *, overwrite: bool = False
) -> PreparedTask:
    """The generic prepare: the config's own checks, then the output folder's (a folder of another
    run is refused unless `overwrite`; the same run resumes). `config.output` None: the config's
    `default_output()`."""
    config.validate()
    output = getattr(config, "output", None)
    out = Path(output) if output else Path(config.default_output())
    check_output_dir(out, config.config_hash(), overwrite)
    return PreparedTask(config, out, dataset, setup)
