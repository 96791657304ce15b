"""Task definitions shared with lm-eval: one YAML per task in the `tasks/` suite.

lm-eval reads the YAML as an ordinary task; aloe-bench reads the ALOE settings from its `metadata`
block (persona set, turns, judge protocol, simulated-user and judge specs...), so a task name means
the same thing in both harnesses. Command-line flags override what the task sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aloe_bench.errors import UserInputError


def tasks_dir() -> Path:
    from aloe_tasks import TASKS_DIR

    return TASKS_DIR


class _TolerantLoader(yaml.SafeLoader):
    """lm-eval YAML uses `!function module.attr` tags; aloe-bench only needs the plain settings."""


_TolerantLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: f"!{suffix} {loader.construct_scalar(node)}"
)


def find_task(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    for candidate in sorted(tasks_dir().rglob("*.yaml")):
        data = yaml.load(candidate.read_text(), Loader=_TolerantLoader) or {}
        if isinstance(data, dict) and data.get("task") == name:
            return candidate
    raise UserInputError(f"unknown task {name!r}: available tasks are {', '.join(available_tasks())}")


def available_tasks() -> list[str]:
    names = []
    for candidate in sorted(tasks_dir().rglob("*.yaml")):
        data = yaml.load(candidate.read_text(), Loader=_TolerantLoader) or {}
        if isinstance(data, dict) and "task" in data and isinstance(data["task"], str):
            names.append(data["task"])
    return names


def load_task_settings(name: str) -> tuple[str, dict[str, Any]]:
    """(task name, the ALOE settings of the task)."""
    path = find_task(name)
    data = yaml.load(path.read_text(), Loader=_TolerantLoader) or {}
    settings = ((data.get("metadata") or {}).get("aloe")) or {}
    if not isinstance(settings, dict):
        raise UserInputError(f"{path}: metadata.aloe must be a mapping of ALOE settings")
    return data.get("task", name), dict(settings)
