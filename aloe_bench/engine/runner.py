"""Moved: the recorder to `aloe_bench.engine.recorder`, the engine's loop and role backends to
`aloe_bench.engine.execute`, ALOE's judge panel to `aloe_bench.tasks.aloe.judging` and its entry
points to `aloe_bench.tasks.aloe.run`; these names stay importable from here for existing callers."""

from aloe_bench.engine.execute import role_backend, role_backends, run_header
from aloe_bench.engine.recorder import RunRecorder
from aloe_bench.tasks.aloe.judging import (
    epoch_conversations,
    epoch_id,
    judge_label,
    judge_role_names,
    judge_scorer,
    panel_judges,
    panel_usage,
    persona_set_record,
    priced_roles,
    pricing_record,
)
from aloe_bench.tasks.aloe.run import PreparedRun, execute_run, prepare_run, run_benchmark

__all__ = [
    "PreparedRun",
    "RunRecorder",
    "epoch_conversations",
    "epoch_id",
    "execute_run",
    "judge_label",
    "judge_role_names",
    "judge_scorer",
    "panel_judges",
    "panel_usage",
    "persona_set_record",
    "prepare_run",
    "priced_roles",
    "pricing_record",
    "role_backend",
    "role_backends",
    "run_benchmark",
    "run_header",
]
