"""What a task definition imports: the engine's contract, the generic prepare, and the parts a task
is built of (a solver, the model role, records, the curve metric). A new task's module starts with
`from aloe_bench.tasks.api import ...`, as an Inspect task starts with `from inspect_ai import ...`."""

from aloe_bench.engine.execute import PreparedTask, prepare_task, role_backends, run_header
from aloe_bench.engine.task_api import Hooks, Scorer, Solver, Task, TaskConfig, TaskRun, register_task
from aloe_bench.engine.task_files import typed_settings
from aloe_bench.log.results import ConversationRecord, TurnRecord
from aloe_bench.metrics.alignment import alignment_curve
from aloe_bench.metrics.samples import MetricSettings, SampleMetrics, Score, ScoredSample
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.role_settings import role_config
from aloe_bench.models.roles import Role
from aloe_bench.solvers.single_reply import SingleReply

__all__ = [
    "ConversationRecord",
    "Hooks",
    "MetricSettings",
    "PreparedTask",
    "Role",
    "RoleConfig",
    "SampleMetrics",
    "Score",
    "ScoredSample",
    "Scorer",
    "SingleReply",
    "Solver",
    "Task",
    "TaskConfig",
    "TaskRun",
    "TurnRecord",
    "alignment_curve",
    "prepare_task",
    "register_task",
    "role_backends",
    "role_config",
    "run_header",
    "typed_settings",
]
