"""What the run kinds over a finished run share (re-scoring it, engine/rescore.py, and annotating it
in place, engine/annotate.py): the run read back and refused when it holds nothing, the settings it
was recorded with, and the roles they add, which call in the background of any run beside them."""

from __future__ import annotations

from pathlib import Path

from aloe_bench.errors import UserInputError
from aloe_bench.log.results import Run, load_run
from aloe_bench.metrics.alignment import DEFAULT_BOOTSTRAP
from aloe_bench.models.backends import PRIORITY_BACKGROUND, Backend
from aloe_bench.models.cache import CallCache
from aloe_bench.models.roles import Role


def open_finished_run(directory: str | Path, doing: str) -> Run:
    """The run in `directory` (older formats migrated on read); one clear error when it is not a
    run or has no conversations to `doing` ("judge", "audit")."""
    run = load_run(directory)
    if not run.conversations:
        raise UserInputError(
            f"{run.path} has no conversations to {doing} (empty {run.path}/conversations.jsonl)"
        )
    return run


def recorded_turns(run: Run) -> int:
    """The turns the run was set up for; for a run that does not record them, its longest conversation."""
    return run.turns or max((len(c.turns) for c in run.conversations), default=0)


def recorded_seed(run: Run) -> int:
    return run.config.seed or 0


def recorded_bootstrap(run: Run) -> int:
    """The bootstrap resamples of the run's own intervals (the default when it records none)."""
    return run.metrics.ci.n_bootstrap or DEFAULT_BOOTSTRAP


def background_role(name: str, backend: Backend, cache: CallCache | None, prompt_tag: str | None) -> Role:
    """A role that reads a finished run (a judge judging it again, an auditor): every call through
    the call cache (so a re-run replays it), behind any run's critical-path calls on a shared backend."""
    return Role(name, backend, cache, prompt_version=prompt_tag, priority=PRIORITY_BACKGROUND)
