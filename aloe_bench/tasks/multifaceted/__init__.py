"""Multifaceted Bench as a task: instances (stated preferences + instruction + rubrics) -> one reply
per instance -> rubric grading by the judge -> the benchmark score and its breakdowns.

config.py is its settings, setup.py what a run does per instance, run.py the entry points."""

from aloe_bench.datasets.multifaceted import Instance
from aloe_bench.engine.task_api import Task, register_task
from aloe_bench.tasks.multifaceted.run import prepare_multifaceted
from aloe_bench.tasks.multifaceted.setup import ROLE_KEYS, SETTINGS, RubricScorer, dataset, make_config, setup

TASK = register_task(
    Task(
        kind="multifaceted",
        title="Multifaceted",
        board_title="Multifaceted Bench",
        item="instance",
        settings=SETTINGS,
        keys=ROLE_KEYS | {"cache"},
        make_config=make_config,
        prepare=prepare_multifaceted,
        dataset=dataset,
        setup=setup,
        flags={"data": "--data"},
        headline=("score", "score"),
        item_from_payload=Instance.from_payload,
    )
)

__all__ = [
    "ROLE_KEYS",
    "SETTINGS",
    "TASK",
    "RubricScorer",
    "dataset",
    "make_config",
    "prepare_multifaceted",
    "setup",
]
