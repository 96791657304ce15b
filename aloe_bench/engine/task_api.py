"""A task is data: a dataset, a solver, scorers that declare their metrics, and settings
(as Inspect's `Task(dataset, solver, scorer)`), found by kind through a registry (as lm-eval's).

A task definition (a package `aloe_bench/tasks/<kind>/`, or any module a YAML names with
`metadata.aloe.kind: package.module`) says what it does per item; the engine's `run_task`
(engine/execute.py) is the one loop every benchmark goes through.
"""

from __future__ import annotations

import argparse
import importlib
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Protocol

from aloe_bench.engine.recorder import RunRecorder
from aloe_bench.engine.session import config_hash
from aloe_bench.errors import UserInputError
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import ConversationRecord
from aloe_bench.metrics.samples import SampleMetrics
from aloe_bench.models.backends import normalize_spec
from aloe_bench.models.cost import Price
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role, Usage


class Solver(Protocol):
    """Produces the transcripts: replies into `conversations` (every still running one)."""

    async def run(self, conversations: list[ConversationRecord]) -> None: ...


class Scorer(Protocol):
    """Scores turns in the background as the solver hands them over (`submit`)."""

    def submit(self, conv: ConversationRecord, index: int) -> object: ...

    async def drain(self) -> None: ...

    async def cancel(self) -> None: ...


# The older form of a task's metrics: a function of the recorder (with bootstrap CIs or not). It
# still works, but on a journaled run it sees finished conversations without their turns; a task
# declares `sample_metrics` instead (metrics/samples.py: a function of scored samples).
Metrics = Callable[[RunRecorder, bool], dict[str, Any]]


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
    # The scorer's metrics over scored samples (None: the curve AL(k), AVG, IR, N-IR, N-R² of the
    # turns' scores); `metrics` is the older, recorder-based form.
    sample_metrics: SampleMetrics | None = None
    metrics: Metrics | None = None
    journaled: bool = False  # turns appended to journal.jsonl as they finish (long runs)
    prices: Mapping[str, Price | None] = field(default_factory=dict)
    batch_roles: frozenset[str] = frozenset()
    closers: list[Callable[[], Awaitable[None]]] = field(default_factory=list)  # run-owned backends
    idle_usage: Mapping[str, Usage] = field(default_factory=dict)  # roles this run never calls (zeros)
    scorer_name: str = "score"  # the key of the scorer's verdicts in conversations.jsonl `turn.scores`


@dataclass
class TaskConfig:
    """What a task's config needs at the least, for a task that has no more to say: the model under
    test, the run's task name, seed and item limit, where it writes and its call cache. A task adds
    its own settings as fields of a subclass; `record()` (results.json `config`) takes them all."""

    model: RoleConfig
    task: str | None = None
    limit: int | None = None
    seed: int = 0
    output: str | None = None
    cache: str | None = None  # None: the default cache; "" disables caching (and resuming)

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UserInputError(f"--limit must be at least 1 (got {self.limit})")
        self.model.validate()

    def record(self) -> dict[str, Any]:
        settings = {k: v for k, v in asdict(self).items() if k not in ("model", "output", "cache")}
        return {**settings, "model": self.model.record(), "turns": 1}

    def config_hash(self) -> str:
        return config_hash(self.record())

    def default_output(self) -> Path:
        def slug(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"

        model = normalize_spec(self.model.spec).replace("/", "_")
        return Path("runs") / f"{slug(self.task or 'run')}__{slug(model)}"


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
    flags: Mapping[str, str] = field(default_factory=dict)  # flags (dest -> flag) only this kind takes
    # run options beyond the common ones (audit, dry_run, price...) and reports its runs allow (gap: the
    # inference gap between a hidden-persona run and a stated-persona run)
    supports: frozenset[str] = frozenset()
    headline: tuple[str, str] = ("AVG", "avg")  # (label, metrics key) of the one number a log line shows
    plan: Callable[[Any, int], str] | None = None  # the `plan:` line printed before a run (config, items)
    # the table printed when a run ends; None: the report layer's summary of the run's results
    summary: Callable[[RunResults, str], str] | None = None
    # an item back from what `item.to_payload()` made (the lm-eval bridge carries items of a task
    # it does not know this way; ALOE's personas and Multifaceted's instances keep their own keys)
    item_from_payload: Callable[[dict[str, Any]], Any] | None = None
    # the re-judge of one of its finished runs (`aloe-bench judge`): the engine's re-scoring run kind
    # (engine/rescore.py) with the task's judges and scorer; None: its runs cannot be re-judged
    rejudge: Callable[..., tuple[Path, RunResults]] | None = None
    # the audit of one of its finished runs (`aloe-bench audit`, `run --audit`): (run directory,
    # options) -> the updated results; None: its runs have nothing to audit
    audit: Callable[..., RunResults] | None = None
    # the heading of its table on the printed-results board; None: its kind
    board_title: str | None = None

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
BUILTIN = {"aloe": "aloe_bench.tasks.aloe", "multifaceted": "aloe_bench.tasks.multifaceted"}
# The kind a task file (or an lm-eval request) means when its `metadata.aloe` names none: the suite's
# first task, whose YAMLs predate `kind`.
DEFAULT_KIND = "aloe"
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


def task_of_run(directory: str | Path) -> Task:
    """The definition of the task that made the run in `directory`, as its results.json records it
    (runs that record no kind are read as the run log says, `effective_kind`); that same kind when there
    is no results.json, so that reading the run later says what is wrong with it."""
    from aloe_bench.log.records import UNRECORDED_KIND
    from aloe_bench.log.results import RESULTS_FILE, read_results_file

    results = Path(directory) / RESULTS_FILE
    if not results.is_file():
        return get_task(UNRECORDED_KIND)
    recorded = read_results_file(results).config
    return get_task(recorded.effective_kind, recorded.task)


def kinds() -> list[str]:
    return sorted({*BUILTIN, *_REGISTERED})


def board_titles() -> dict[str, str]:
    """Every known kind's board heading, in registered order (the built-in kinds first)."""
    return {kind: get_task(kind).board_title or kind for kind in {**BUILTIN, **_REGISTERED}}
