"""The ALOE task suite: an lm-eval include path (`--include_path` this folder) and the task
definitions `aloe-bench run --task NAME` reads. Installed as the `aloe_tasks` package."""

from pathlib import Path

TASKS_DIR = Path(__file__).resolve().parent
