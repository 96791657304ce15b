"""Task definitions shared with lm-eval: one YAML per task in the `tasks/` suite.

lm-eval reads the YAML as an ordinary task; aloe-bench reads the ALOE settings from its `metadata`
block (persona set, turns, judge protocol, simulated-user and judge specs...), so a task name means
the same thing in both harnesses. Command-line flags override what the task sets.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from aloe_bench.engine.config import RoleConfig, RunConfig
from aloe_bench.errors import UserInputError
from aloe_bench.models.role_settings import judge_panel, role_config

if TYPE_CHECKING:
    from aloe_bench.engine.multifaceted import MultifacetedConfig


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


# RunConfig fields a task (or a command-line flag) may set, with their types.
RUN_FIELDS: dict[str, type] = {
    "personas": str,
    "data_dir": str,
    "limit": int,
    "turns": int,
    "seed": int,
    "protocol": str,
    "persona_disclosure": str,
    "judge_reasks": int,
    "simulator_retries": int,
    "concurrency": int,
    "n_bootstrap": int,
    "judge_repeats": int,
    "epochs": int,
}


def controls_setting(task_name: str | None, task: dict[str, Any], flags: Any) -> tuple[str, ...]:
    """Validity controls from `--controls a,b` (or the task's `controls`: a list or a string)."""
    value = getattr(flags, "controls", None)
    if value is None:
        value = task.get("controls")
    if value is None:
        return ()
    items = value if isinstance(value, list) else str(value).split(",")
    return tuple(sorted({str(v).strip() for v in items if str(v).strip()}))


_ROLE_KEYS = {
    *(f"{role}{suffix}" for role in ("model", "simulator", "judge") for suffix in ("", "_args")),
    *(
        f"{role}_{knob}"
        for role in ("simulator", "judge")
        for knob in ("max_new_tokens", "temperature", "top_p")
    ),
    "max_new_tokens",  # the model under test's
    "temperature",
    "top_p",
}
# Only the lm-eval path reads these (`aloe-bench run` has --cache and --output flags).
_RUNTIME_KEYS = {"cache"}
_TRUST_KEYS = {"controls"}

# Settings of Multifaceted Bench tasks (kind: multifaceted): one reply per instance, no simulated user.
MULTIFACETED_FIELDS: dict[str, type] = {
    "data": str,
    "limit": int,
    "seed": int,
    "judge_reasks": int,
    "judge_repeats": int,
    "concurrency": int,
    "n_bootstrap": int,
}
_MULTIFACETED_ROLE_KEYS = {k for k in _ROLE_KEYS if not k.startswith("simulator")}
KIND_NAMES = {"aloe": "ALOE", "multifaceted": "Multifaceted"}
KNOWN_SETTINGS = {
    "aloe": {*RUN_FIELDS, *_ROLE_KEYS, *_RUNTIME_KEYS, *_TRUST_KEYS},
    "multifaceted": {*MULTIFACETED_FIELDS, *_MULTIFACETED_ROLE_KEYS, *_RUNTIME_KEYS},
}


# What a task is, by `metadata.aloe.kind`: an ALOE conversation task (the default) or Multifaceted Bench.
KINDS = ("aloe", "multifaceted")


def task_kind(task_name: str | None, settings: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """(the task's kind, its settings without `kind`)."""
    settings = dict(settings)
    kind = settings.pop("kind", "aloe")
    if kind not in KINDS:
        raise UserInputError(f"task {task_name}: unknown kind {kind!r}; use one of {', '.join(KINDS)}")
    return kind, settings


def foreign_settings(kind: str, settings: dict[str, Any]) -> list[str]:
    """The settings that another kind of task takes and `kind` does not."""
    own = KNOWN_SETTINGS.get(kind, set())
    others = set().union(*(known for k, known in KNOWN_SETTINGS.items() if k != kind))
    return sorted(k for k in settings if k not in own and k in others)


def check_task_settings(task_name: str | None, settings: dict[str, Any], kind: str = "aloe") -> None:
    """A misspelt setting must not be ignored silently."""
    known = KNOWN_SETTINGS[kind]
    unknown = sorted(set(settings) - known)
    if unknown:
        raise UserInputError(
            f"task {task_name}: unknown {KIND_NAMES[kind]} setting(s) {', '.join(unknown)} in metadata.aloe; "
            f"known: {', '.join(sorted(known))}"
        )


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


def build_run_config(
    task_name: str | None,
    task: dict[str, Any],
    flags: Any = None,
    *,
    model: RoleConfig | None = None,
    **fields: Any,
) -> RunConfig:
    """The run a task means: its settings, overridden by command-line `flags` (an argparse
    namespace; absent attributes count as unset); `model` replaces the model-under-test role."""
    check_task_settings(task_name, task)
    flags = flags if flags is not None else argparse.Namespace()
    values = typed_settings(task_name, task, flags, RUN_FIELDS)
    panel = judge_panel(flags, task, "embedded")
    config = RunConfig(
        model=model or role_config(flags, "model", task, None),
        simulator=role_config(flags, "simulator", task, "embedded"),
        judge=panel[0],
        extra_judges=panel[1:],
        controls=controls_setting(task_name, task, flags),
        task=task_name,
        **values,
        **fields,
    )
    config.validate()
    return config


def build_multifaceted_config(
    task_name: str | None,
    task: dict[str, Any],
    flags: Any = None,
    *,
    model: RoleConfig | None = None,
    **fields: Any,
) -> MultifacetedConfig:
    """As `build_run_config`, for a Multifaceted task (settings without `kind`)."""
    from aloe_bench.engine.multifaceted import MultifacetedConfig

    check_task_settings(task_name, task, "multifaceted")
    flags = flags if flags is not None else argparse.Namespace()
    config = MultifacetedConfig(
        model=model or role_config(flags, "model", task, None),
        judge=role_config(flags, "judge", task, "embedded"),
        task=task_name,
        **typed_settings(task_name, task, flags, MULTIFACETED_FIELDS),
        **fields,
    )
    config.validate()
    return config


def build_task_config(
    task_name: str | None, settings: dict[str, Any], **kwargs: Any
) -> RunConfig | MultifacetedConfig:
    """The run a task means, whatever its kind (`kind` read from its settings)."""
    kind, settings = task_kind(task_name, settings)
    build = build_multifaceted_config if kind == "multifaceted" else build_run_config
    return build(task_name, settings, **kwargs)
