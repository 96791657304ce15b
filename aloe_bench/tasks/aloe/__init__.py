"""ALOE as a task: persona set -> K-turn rollout (simulated user <-> model) -> judge every reply
(one judge or a panel, repeats, swap control) -> the per-turn alignment curve AL(k), AVG, IR, N-IR.

config.py is its settings, setup.py what a run does per conversation, judging.py the judge panel,
run.py the entry points; rejudge.py, audit.py and dry_run.py are the other run kinds over it."""

from aloe_bench.datasets.personas import Persona
from aloe_bench.engine.run_plan import plan_line
from aloe_bench.engine.task_api import Task, register_task
from aloe_bench.tasks.aloe.audit import audit_run
from aloe_bench.tasks.aloe.rejudge import rejudge
from aloe_bench.tasks.aloe.run import prepare_run
from aloe_bench.tasks.aloe.setup import (
    FLAGS,
    ROLE_KEYS,
    RUNTIME_KEYS,
    SETTINGS,
    _setup_from_items,
    dataset,
    make_config,
    setup,
)

TASK = register_task(
    Task(
        kind="aloe",
        title="ALOE",
        board_title="ALOE (multi-turn, implicit preferences)",
        item="conversation",
        settings=SETTINGS,
        keys=ROLE_KEYS | RUNTIME_KEYS | {"controls"},
        make_config=make_config,
        prepare=prepare_run,
        dataset=dataset,
        setup=_setup_from_items,
        flags=FLAGS,
        supports=frozenset({"audit", "dry_run", "price", "judge_batch", "gap"}),
        plan=plan_line,
        item_from_payload=Persona.from_payload,
        rejudge=rejudge,
        audit=audit_run,
    )
)

__all__ = [
    "FLAGS",
    "ROLE_KEYS",
    "RUNTIME_KEYS",
    "SETTINGS",
    "TASK",
    "dataset",
    "make_config",
    "prepare_run",
    "setup",
]
