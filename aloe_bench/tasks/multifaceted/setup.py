"""Multifaceted Bench as a task: instances (stated preferences + instruction + rubrics) -> one reply
per instance -> rubric grading by the judge -> the benchmark score and its breakdowns."""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from aloe_bench.datasets.multifaceted import HF_DATASET, Instance, MultifacetedSet, load_multifaceted
from aloe_bench.engine.execute import role_backends, run_header
from aloe_bench.engine.recorder import RunRecorder
from aloe_bench.engine.session import RunBackends
from aloe_bench.engine.task_api import Hooks, Scorer, Solver, TaskRun
from aloe_bench.engine.task_files import typed_settings
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.backends import PRIORITY_BACKGROUND, Backend
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.role_settings import role_config
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.rubric import JUDGE_PROMPT, RubricGrader, apply_grades, rubric_metrics
from aloe_bench.solvers.single_reply import SingleReply
from aloe_bench.tasks.multifaceted.config import MODEL_MAX_NEW_TOKENS, MultifacetedConfig, instance_record

SETTINGS: dict[str, type] = {
    "data": str,
    "limit": int,
    "seed": int,
    "judge_reasks": int,
    "judge_repeats": int,
    "concurrency": int,
    "n_bootstrap": int,
}
ROLE_KEYS = frozenset(
    {
        *(f"{role}{suffix}" for role in ("model", "judge") for suffix in ("", "_args")),
        *(f"judge_{knob}" for knob in ("max_new_tokens", "temperature", "top_p", "repetition_penalty")),
        "max_new_tokens",
        "temperature",
        "top_p",
        "repetition_penalty",
        "generation_presets",  # named model settings, chosen with `aloe-bench run --generation NAME`
    }
)


def make_config(
    task_name: str | None,
    task: dict[str, Any],
    flags: argparse.Namespace,
    *,
    model: RoleConfig | None = None,
    **fields: Any,
) -> MultifacetedConfig:
    config = MultifacetedConfig(
        model=model or role_config(flags, "model", task, None),
        judge=role_config(flags, "judge", task, "embedded"),
        task=task_name,
        **typed_settings(task_name, task, flags, SETTINGS),
        **fields,
    )
    config.validate()
    return config


def dataset(config: MultifacetedConfig) -> list[Instance]:
    return load_multifaceted(config.data).limit(config.limit).instances


class RubricScorer:
    """Grades each reply against its instance's rubrics, in the background."""

    def __init__(
        self,
        grader: RubricGrader,
        instances: Mapping[str, Instance],
        judged: Callable[[ConversationRecord, int], None],
    ):
        self.grader, self.instances, self.judged = grader, instances, judged
        self._tasks: list[asyncio.Task[None]] = []

    def submit(self, conv: ConversationRecord, index: int) -> asyncio.Task[None]:
        task = asyncio.create_task(self._grade(conv, index))
        self._tasks.append(task)
        return task

    async def _grade(self, conv: ConversationRecord, index: int) -> None:
        turn = conv.turns[index]
        apply_grades(turn, await self.grader.grade(self.instances[conv.id], turn.assistant or ""))
        self.judged(conv, index)

    async def drain(self) -> None:
        await asyncio.gather(*self._tasks)  # a fatal backend error is raised here

    async def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


def setup(
    config: MultifacetedConfig,
    items: MultifacetedSet | Sequence[Instance],
    engine: RunBackends,
    out: Path | None,
    backends: Mapping[str, Backend] | None = None,
) -> TaskRun:
    """The Multifaceted run of `items` (a loaded set, or the instances lm-eval requests carry);
    `backends` replaces a role's backend by name."""
    if isinstance(items, MultifacetedSet):
        data = items
    else:
        data = MultifacetedSet(config.data or HF_DATASET, "lm-eval requests", list(items))
    instances = data.instances
    config = replace(config, data_sha256=data.sha256)
    judge_prompt = load_prompt(JUDGE_PROMPT)
    backend = role_backends(
        engine.pool, {"model": config.model, "judge": config.judge}, config.concurrency, backends
    )
    roles = {
        "model": Role("model", backend["model"], engine.cache),
        "judge": Role(
            "judge",
            backend["judge"],
            engine.cache,
            prompt_version=judge_prompt.tag,
            priority=PRIORITY_BACKGROUND,
        ),
    }
    header = run_header(config, roles, {"judge": judge_prompt.record()}, data.record())
    header["config"]["model"]["system_role"] = roles["model"].backend.system_role()
    by_id = {i.id: i for i in instances}
    grader = RubricGrader(
        roles["judge"],
        config.judge.settings(int(judge_prompt.defaults["max_new_tokens"])),
        reasks=config.judge_reasks,
        repeats=config.judge_repeats,
        seed=config.seed,
        prompt=judge_prompt,
    )

    def solver(hooks: Hooks, scorer: Scorer) -> Solver:
        return SingleReply(
            roles["model"],
            config.model.settings(MODEL_MAX_NEW_TOKENS),
            config.seed,
            messages=lambda conv: by_id[conv.id].model_messages(),
            prompt=lambda conv: by_id[conv.id].prompt,
            score_turn=scorer.submit,
            turn_done=hooks.turn_done,
            failed=hooks.failed,
        )

    def metrics(recorder: RunRecorder, with_ci: bool) -> dict[str, Any]:
        return rubric_metrics(
            recorder.conversations,
            repeats=config.judge_repeats,
            seed=config.seed,
            n_bootstrap=config.n_bootstrap if with_ci else 0,
        )

    return TaskRun(
        scorer_name="rubric",  # the key of its verdicts in `turn.scores`
        header=header,
        conversations=[instance_record(i) for i in instances],
        usage_roles=roles,
        turns=1,
        seed=config.seed,
        n_bootstrap=config.n_bootstrap,
        scorer=lambda hooks: RubricScorer(grader, by_id, hooks.judged),
        solver=solver,
        metrics=metrics,
    )
