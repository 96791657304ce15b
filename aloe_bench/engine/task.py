"""A task is data: a dataset, a solver, scorers that declare their metrics, and settings
(as Inspect's `Task(dataset, solver, scorer)`), found by kind through a registry (as lm-eval's).

A task definition (`aloe_bench/benchmarks/<kind>.py`, or any module a YAML names with
`metadata.aloe.kind: package.module`) says what it does per item; `run_task` is the one loop every
benchmark goes through: recorder, resume, progress, background scoring, cancel-and-flush.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aloe_bench.engine.progress import TurnProgress
from aloe_bench.engine.session import carry_usage, fewer_collections, final_status, record_run
from aloe_bench.errors import UserInputError
from aloe_bench.log.models import RunResults
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.cost import Price
from aloe_bench.models.roles import Role, Usage

if TYPE_CHECKING:  # the recorder's module runs tasks: imported at run time inside run_task
    from aloe_bench.engine.runner import RunRecorder


class Solver(Protocol):
    """Produces the transcripts: replies into `conversations` (every still running one)."""

    async def run(self, conversations: list[ConversationRecord]) -> None: ...


class Scorer(Protocol):
    """Scores turns in the background as the solver hands them over (`submit`)."""

    def submit(self, conv: ConversationRecord, index: int) -> object: ...

    async def drain(self) -> None: ...

    async def cancel(self) -> None: ...


# A scorer's metrics over the recorder's conversations (with bootstrap CIs or not). None: the
# per-turn alignment curve every ALOE-style task reports (AL(k), AVG, IR, N-IR, N-R²).
Metrics = Callable[["RunRecorder", bool], dict[str, Any]]


@dataclass
class Hooks:
    """What solvers and scorers report as items progress; the engine feeds the recorder and the
    progress display from them."""

    turn_done: Callable[[ConversationRecord, int], None]  # turn `index` got its reply
    judged: Callable[[ConversationRecord, int], None]  # turn `index` was scored
    failed: Callable[[ConversationRecord], None]  # the item failed (its reason in `error`)

    def rollout_event(self, event: str, conv: ConversationRecord, k: int) -> None:
        """The rollout's `on_progress(event, conv, turn k)`."""
        if event == "turn":
            self.turn_done(conv, k - 1)
        else:
            self.failed(conv)


@dataclass
class TaskRun:
    """What a task sets up for one run: the items (as conversations), the roles whose usage the
    run reports, the fixed part of results.json, and how to make its scorer and solver."""

    header: dict[str, Any]
    conversations: list[ConversationRecord]
    usage_roles: Mapping[str, Role]  # the roles that call backends, by usage key
    turns: int
    seed: int
    n_bootstrap: int
    scorer: Callable[[Hooks], Scorer]
    solver: Callable[[Hooks, Scorer], Solver]
    metrics: Metrics | None = None
    journaled: bool = False  # turns appended to journal.jsonl as they finish (long runs)
    prices: Mapping[str, Price | None] = field(default_factory=dict)
    batch_roles: frozenset[str] = frozenset()
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # run-owned backends
    idle_usage: Mapping[str, Usage] = field(default_factory=dict)  # roles this run never calls (zeros)


async def run_task(
    run: TaskRun, out: Path | None, *, progress_enabled: bool | None = None
) -> tuple[RunResults, list[ConversationRecord]]:
    """Solve and score every item of `run`: (results, conversations). The run directory is written
    only when `out` is given; a re-run of the same run resumes and reports usage over both."""
    from aloe_bench.engine.runner import RunRecorder

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
    )
    to_score = recorder.restore()  # an earlier attempt's turns come back from the run directory
    progress = TurnProgress(len(run.conversations), run.turns, enabled=progress_enabled)

    def turn_done(conv: ConversationRecord, index: int) -> None:
        progress.turn_done(index + 1)
        recorder.turn_done(conv, index)

    def judged(conv: ConversationRecord, index: int) -> None:
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


class Prepared(Protocol):
    """A run that passed every input check: where it writes, how many items, and the run itself."""

    out: Path

    @property
    def items(self) -> int: ...

    def execute(self, *, progress: bool | None = None) -> RunResults: ...


# -- the registry -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Task:
    """One kind of benchmark, as data. `settings` are the typed settings a task YAML (or a flag of
    the same name) may set; `keys` every other key it takes (role specs, generation knobs...)."""

    kind: str
    title: str  # how messages name it: "ALOE", "Multifaceted"
    item: str  # what one item is: "conversation", "instance"
    settings: Mapping[str, type]
    keys: frozenset[str]
    # (task name, its settings, the command-line flags, the model role or None, extra fields) -> config
    make_config: Callable[..., Any]
    # every input check of a run on the command line, nothing loaded yet: (config, overwrite=)
    prepare: Callable[..., Prepared]
    # the items of a config, as `aloe-bench run` loads them (lm-eval builds its documents from them)
    dataset: Callable[[Any], Sequence[Any]]
    # (config, items, engine, out, backends by role) -> the run `run_task` goes through
    setup: Callable[..., TaskRun]
    summary: Callable[[RunResults, str], str]  # the table printed when a run ends
    flags: Mapping[str, str] = field(default_factory=dict)  # flags (dest -> flag) only this kind takes
    supports: frozenset[str] = frozenset()  # run options beyond the common ones: audit, dry_run, price...
    headline: tuple[str, str] = ("AVG", "avg")  # (label, metrics key) of the one number a log line shows
    plan: Callable[[Any, int], str] | None = None  # the `plan:` line printed before a run (config, items)

    @property
    def known_keys(self) -> frozenset[str]:
        return frozenset(self.settings) | self.keys

    def config(
        self, task_name: str | None, settings: dict[str, Any], flags: Any = None, **kwargs: Any
    ) -> Any:
        unknown = sorted(set(settings) - self.known_keys)
        if unknown:  # a misspelt setting must not be ignored silently
            raise UserInputError(
                f"task {task_name}: unknown {self.title} setting(s) {', '.join(unknown)} in metadata.aloe; "
                f"known: {', '.join(sorted(self.known_keys))}"
            )
        return self.make_config(
            task_name, settings, flags if flags is not None else argparse.Namespace(), **kwargs
        )


# Built-in kinds, imported on first use (a definition imports solvers, scorers and datasets).
BUILTIN = {"aloe": "aloe_bench.benchmarks.aloe", "multifaceted": "aloe_bench.benchmarks.multifaceted"}
_REGISTERED: dict[str, Task] = {}


def register_task(task: Task) -> Task:
    _REGISTERED[task.kind] = task
    return task


def get_task(kind: str, task_name: str | None = None) -> Task:
    """The definition of `kind`: a built-in one, one registered in this process, or a module named
    by its dotted path that registers (or defines `TASK`) on import."""
    if kind not in _REGISTERED:
        module = BUILTIN.get(kind, kind if "." in kind else None)
        if module is None:
            raise UserInputError(
                f"task {task_name}: unknown kind {kind!r}; use one of {', '.join(sorted({*BUILTIN, *_REGISTERED}))} "
                "or the dotted name of a module that defines a task"
            )
        try:
            loaded = importlib.import_module(module)
        except ImportError as exc:
            raise UserInputError(f"task {task_name}: kind {kind!r}: cannot import {module} ({exc})") from None
        defined = getattr(loaded, "TASK", None)
        if kind not in _REGISTERED and isinstance(defined, Task):
            _REGISTERED[kind] = defined
    if kind not in _REGISTERED:
        raise UserInputError(f"task {task_name}: module {kind} defines no task (a `TASK = Task(...)`)")
    return _REGISTERED[kind]


def kinds() -> list[str]:
    return sorted({*BUILTIN, *_REGISTERED})
