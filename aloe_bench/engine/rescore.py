"""Scoring a finished run again, a run kind of the engine for any task (ALOE's re-judge is one).

Nothing is generated: the transcripts come from the source run with their verdicts dropped
(`transcripts_only`), and every answered turn goes to the scorer the task makes for the new run
(`ReplayTranscripts`, the solver). The task says what scores and who pays (its roles, scorer,
header, prices: the `TaskRun` that `make_run` returns); the engine runs it like any run, so the
new run directory is written, resumed and priced the same way. Annotating a run in place instead
(engine/annotate.py) shares with this the opening of the finished run and its roles (finished_run.py).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aloe_bench.engine.execute import run_task
from aloe_bench.engine.session import RunBackends, open_backends
from aloe_bench.engine.task_api import Hooks, Scorer, TaskRun
from aloe_bench.log.records import RunResults
from aloe_bench.log.results import ConversationRecord, TurnRecord


def transcripts_only(conv: ConversationRecord, keep: tuple[str, ...] = ()) -> ConversationRecord:
    """The conversation with every verdict dropped: each turn's user and assistant messages and the
    fields other versions or stages added (`extra`) stay, and the turn fields named in `keep`."""
    turns = [
        TurnRecord(
            user=t.user, assistant=t.assistant, extra=dict(t.extra), **{k: getattr(t, k) for k in keep}
        )
        for t in conv.turns
    ]
    return ConversationRecord(
        id=conv.id, persona=conv.persona, turns=turns, status=conv.status, error=conv.error, meta=conv.meta
    )


class ReplayTranscripts:
    """The solver of a re-scored run: nothing is generated; every answered turn goes to the scorer."""

    def __init__(self, hooks: Hooks, scorer: Scorer):
        self.hooks, self.scorer = hooks, scorer

    async def run(self, conversations: list[ConversationRecord]) -> None:
        for conv in conversations:
            for index, turn in enumerate(conv.turns):
                if turn.assistant is not None:
                    self.hooks.turn_done(conv, index)
                    self.scorer.submit(conv, index)


async def rescore(
    out: Path,
    cache_setting: str | None,
    make_run: Callable[[RunBackends], TaskRun],
    *,
    progress: bool | None = None,
) -> RunResults:
    """Run what the task made for re-scoring (`make_run(backends)`: its roles on the run's backends
    and call cache, its scorer, `ReplayTranscripts` as the solver) into `out`."""
    async with open_backends(cache_setting) as backends:
        results, _ = await run_task(make_run(backends), out, progress_enabled=progress)
        return results
