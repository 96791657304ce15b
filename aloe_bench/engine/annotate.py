"""Annotating a finished run in place, a run kind of the engine for any task (ALOE's simulated-user
audit is one).

Nothing is generated and nothing is scored again: the task reads each recorded conversation and says
what it finds (an `Annotation`: the roles it calls, how to annotate one conversation, how its summary
goes into results.json). The engine does the rest, the same for any task:
- opens the roles' backends and the call cache (none at all when the task names no role: an offline
  annotation opens no cache), each role calling in the background (engine/finished_run.py);
- annotates every conversation that has turns, each as its own asyncio task as a run's items are
  (a failure cancels the others), with the run's turn progress;
- writes the annotations, one line per conversation in the run's order, to the run's sidecar file,
  and lets the task put its summary into results.json, re-read just before it is written (a run
  still recording may have written since); both atomically, every other field of results.json kept.
Re-running replays the roles' calls from the call cache: nothing already asked is asked again.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from aloe_bench.concurrency import each_item
from aloe_bench.engine.execute import role_backend
from aloe_bench.engine.finished_run import background_role
from aloe_bench.engine.progress import TurnProgress
from aloe_bench.engine.session import open_backends
from aloe_bench.log.files import RESULTS_FILE, ensure_writable
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import ConversationRecord, Run, read_results_file, write_results
from aloe_bench.log.storage import remove_stale_temps, write_lines_atomic
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role


class Annotated(Protocol):
    """One conversation's annotation: a line of the sidecar file."""

    def to_dict(self) -> dict[str, Any]: ...


_A = TypeVar("_A", bound=Annotated)


@dataclass(frozen=True)
class AnnotatorRole:
    """A role the annotation calls: its spec and settings, its prompt's version tag (part of every
    call's cache key), and how many requests an API backend keeps in flight unless the spec says."""

    config: RoleConfig
    prompt_tag: str | None
    concurrency: int = 32


class Annotator(Protocol[_A]):
    """The task's side of an annotation, made once the roles it named are open."""

    async def annotate(self, conv: ConversationRecord) -> _A: ...

    def record(self, results: RunResults, annotations: list[_A]) -> None:
        """Put the summary of `annotations` into `results` (results.json as it is on disk now)."""


@dataclass
class Annotation(Generic[_A]):
    """What a task sets up to annotate one of its finished runs."""

    sidecar: str  # the file in the run directory that gets one annotation per line ("audit.jsonl")
    make_annotator: Callable[[Mapping[str, Role]], Annotator[_A]]  # the named roles, opened
    roles: Mapping[str, AnnotatorRole] = field(default_factory=dict)
    cache: str | None = None  # the call cache: None the default file, "" none (nothing replayed)


async def annotate_each(
    conversations: list[ConversationRecord],
    annotate: Callable[[ConversationRecord], Awaitable[_A]],
    *,
    progress: bool | None = None,
) -> list[_A]:
    """`annotate` on every conversation that has turns, each as its own task; the annotations in the
    conversations' order. Progress counts a conversation's turns once it is annotated."""
    todo = [c for c in conversations if c.turns]
    found: dict[int, _A] = {}
    bar = TurnProgress(len(todo), max((len(c.turns) for c in todo), default=0), enabled=progress)

    async def one(index: int, conv: ConversationRecord) -> None:
        found[index] = await annotate(conv)
        for k in range(1, len(conv.turns) + 1):
            bar.turn_done(k)

    try:
        await each_item(one(i, c) for i, c in enumerate(todo))
    finally:
        bar.close()
    return [found[i] for i in range(len(todo))]


@contextlib.asynccontextmanager
async def open_roles(
    roles: Mapping[str, AnnotatorRole], cache_setting: str | None
) -> AsyncIterator[dict[str, Role]]:
    """The named roles on their backends and the call cache, closed at the end; no role, nothing opened."""
    if not roles:
        yield {}
        return
    async with open_backends(cache_setting) as backends:
        yield {
            name: background_role(
                name,
                role_backend(backends.pool, role.config, role.concurrency),
                backends.cache,
                role.prompt_tag,
            )
            for name, role in roles.items()
        }


def record_annotations(
    run: Run,
    sidecar: str,
    annotations: list[_A],
    record: Callable[[RunResults, list[_A]], None],
    *,
    write: bool = True,
) -> RunResults:
    """results.json as on disk now with the task's summary recorded (`record`); with `write`, the
    sidecar and results.json written, each atomically."""
    results = read_results_file(run.path / RESULTS_FILE)
    record(results, annotations)
    if write:
        write_lines_atomic(
            run.path / sidecar, (json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in annotations)
        )
        write_results(run.path / RESULTS_FILE, results)
    return results


async def _annotate(run: Run, annotation: Annotation[_A], progress: bool | None, write: bool) -> RunResults:
    async with open_roles(annotation.roles, annotation.cache) as roles:
        annotator = annotation.make_annotator(roles)
        annotations = await annotate_each(run.conversations, annotator.annotate, progress=progress)
        return record_annotations(run, annotation.sidecar, annotations, annotator.record, write=write)


def annotate_run(
    run: Run, annotation: Annotation[Any], *, progress: bool | None = None, write: bool = True
) -> RunResults:
    """Annotate `run` as the task set up (`annotation`); returns its results with the summary in.
    With `write`, a run directory that cannot be written is refused before any work, and the temp
    file a killed earlier annotation left beside the sidecar is cleared."""
    if write:
        ensure_writable(run.path)
        remove_stale_temps(run.path, (annotation.sidecar,))
    return asyncio.run(_annotate(run, annotation, progress, write))
