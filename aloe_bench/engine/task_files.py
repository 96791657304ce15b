"""Task files shared with lm-eval: one YAML per task in the `tasks/` suite.

lm-eval reads the YAML as an ordinary task; aloe-bench reads the ALOE settings from its `metadata`
block (persona set, turns, judge protocol, simulated-user and judge specs...), so a task name means
the same thing in both harnesses. `metadata.aloe.kind` names the task definition (engine/task.py's
registry: `aloe` by default, `multifaceted`, or a module's dotted name); command-line flags
override what the task sets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from aloe_bench.engine.task_api import BUILTIN, DEFAULT_KIND, Task, get_task
from aloe_bench.errors import UserInputError


def tasks_dir() -> Path:
    from aloe_tasks import TASKS_DIR

    return TASKS_DIR


class _TolerantLoader(yaml.SafeLoader):
    """lm-eval YAML uses `!function module.attr` tags; aloe-bench only needs the plain settings."""


_TolerantLoader.add_multi_constructor(
    "!", lambda loader, suffix, node: f"!{suffix} {loader.construct_scalar(node)}"
)


def read_task_yaml(path: Path, _seen: frozenset[Path] = frozenset()) -> dict[str, Any]:
    """A task YAML with its `include:` files merged in as lm-eval merges them (the including file's
    keys win, at the top level), so both harnesses read the same settings."""
    path = path.resolve()
    if path in _seen:
        raise UserInputError(f"{path}: include cycle")
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_TolerantLoader) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise UserInputError(f"cannot read task file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: a task file must be a YAML mapping")
    includes = data.pop("include", None)
    if includes is None:
        return data
    merged: dict[str, Any] = {}
    for include in includes if isinstance(includes, list) else [includes]:
        merged.update(read_task_yaml(path.parent / include, _seen | {path}))
    merged.update(data)
    return merged


def _task_files() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for candidate in sorted(tasks_dir().rglob("*.yaml")):
        data = read_task_yaml(candidate)
        if isinstance(data.get("task"), str):  # groups and shared templates have no task name
            found.append((candidate, data))
    return found


def find_task(name: str) -> Path:
    path = Path(name)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        return path
    for candidate, data in _task_files():
        if data["task"] == name:
            return candidate
    raise UserInputError(f"unknown task {name!r}: available tasks are {', '.join(available_tasks())}")


def available_tasks() -> list[str]:
    return [data["task"] for _, data in _task_files()]


def task_settings_from_file(path: Path) -> tuple[str, dict[str, Any]]:
    """(task name, the ALOE settings) of one task file."""
    data = read_task_yaml(path)
    settings = ((data.get("metadata") or {}).get("aloe")) or {}
    if not isinstance(settings, dict):
        raise UserInputError(f"{path}: metadata.aloe must be a mapping of ALOE settings")
    return data.get("task", path.stem), dict(settings)


def load_task_settings(name: str) -> tuple[str, dict[str, Any]]:
    """(task name, the ALOE settings of the task)."""
    return task_settings_from_file(find_task(name))


def controls_setting(task_name: str | None, task: dict[str, Any], flags: Any) -> tuple[str, ...]:
    """Validity controls from `--controls a,b` (or the task's `controls`: a list or a string)."""
    value = getattr(flags, "controls", None)
    if value is None:
        value = task.get("controls")
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(sorted({str(v).strip() for v in items if str(v).strip()}))


def task_kind(task_name: str | None, settings: dict[str, Any]) -> tuple[Task, dict[str, Any]]:
    """(the task's definition, by its `kind`; its settings without `kind`)."""
    settings = dict(settings)
    kind = settings.pop("kind", DEFAULT_KIND)
    return get_task(str(kind), task_name), settings


def foreign_settings(kind: str, settings: dict[str, Any]) -> list[str]:
    """The settings that another (built-in) kind of task takes and `kind` does not."""
    own = get_task(kind).known_keys
    others = set().union(*(get_task(k).known_keys for k in BUILTIN if k != kind))
    return sorted(k for k in settings if k not in own and k in others)


def typed_settings(
    task_name: str | None, task: dict[str, Any], flags: Any, fields: dict[str, type]
) -> dict[str, Any]:
    """Command-line flags override the task's settings; values are checked against their types."""
    values = {}
    for field, kind in fields.items():
        flag = getattr(flags, field, None)
        value = flag if flag is not None else task.get(field)
        if value is not None:
            try:
                values[field] = kind(value)
            except (TypeError, ValueError):
                raise UserInputError(
                    f"task {task_name}: {field} must be {kind.__name__}, got {value!r}"
                ) from None
    return values


def build_task_config(task_name: str | None, settings: dict[str, Any], **kwargs: Any) -> Any:
    """The run a task means, whatever its kind (`kind` read from its settings)."""
    task, settings = task_kind(task_name, settings)
    return task.config(task_name, settings, **kwargs)
