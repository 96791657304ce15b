"""Moved: the task contract and registry to `aloe_bench.engine.task_api`, `run_task` to
`aloe_bench.engine.execute`; these names stay importable from here for existing callers."""

from aloe_bench.engine.execute import run_task
from aloe_bench.engine.task_api import (
    BUILTIN,
    Hooks,
    Metrics,
    Prepared,
    Scorer,
    Solver,
    Task,
    TaskRun,
    get_task,
    kinds,
    register_task,
)

__all__ = [
    "BUILTIN",
    "Hooks",
    "Metrics",
    "Prepared",
    "Scorer",
    "Solver",
    "Task",
    "TaskRun",
    "get_task",
    "kinds",
    "register_task",
    "run_task",
]
