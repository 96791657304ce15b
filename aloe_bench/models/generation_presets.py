"""Named generation settings of a task (`aloe-bench run --task multifaceted --generation janus`).

A task YAML lists them under `metadata.aloe.generation_presets`, each a mapping of the model under
test's generation knobs; the chosen one is laid over the task's own settings, and command-line flags
still override it (`--generation janus --max-new-tokens 256`). The values reach results.json as the
model role's settings, so two runs with the same preset share a config hash and resume alike.
"""

from __future__ import annotations

from typing import Any

from aloe_bench.errors import UserInputError

PRESETS_KEY = "generation_presets"
# The model under test's knobs a preset may set (the task keys `role_config` reads for the model).
PRESET_KNOBS: dict[str, type] = {
    "max_new_tokens": int,
    "temperature": float,
    "top_p": float,
    "repetition_penalty": float,
}


def preset_names(settings: dict[str, Any]) -> list[str]:
    presets = settings.get(PRESETS_KEY) or {}
    return sorted(presets) if isinstance(presets, dict) else []


def apply_generation_preset(
    task_name: str | None, settings: dict[str, Any], name: str | None
) -> dict[str, Any]:
    """The task's settings with preset `name` laid over them (unchanged when `name` is None)."""
    if name is None:
        return settings
    presets = settings.get(PRESETS_KEY) or {}
    if not isinstance(presets, dict) or name not in presets:
        known = preset_names(settings)
        where = f"task {task_name}" if task_name else "a run without --task"
        offered = f"its presets: {', '.join(known)}" if known else "it has none (multifaceted has `janus`)"
        raise UserInputError(f"--generation {name}: {where} has no generation preset {name!r}; {offered}")
    preset = presets[name]
    if not isinstance(preset, dict):
        raise UserInputError(f"task {task_name}: generation preset {name!r} must be a mapping of settings")
    unknown = sorted(set(preset) - set(PRESET_KNOBS))
    if unknown:
        raise UserInputError(
            f"task {task_name}: generation preset {name!r} sets {', '.join(unknown)}; "
            f"a preset may set {', '.join(PRESET_KNOBS)}"
        )
    typed = {}
    for key, value in preset.items():
        try:
            typed[key] = PRESET_KNOBS[key](value)
        except (TypeError, ValueError):
            raise UserInputError(
                f"task {task_name}: generation preset {name!r}: {key} must be a number, got {value!r}"
            ) from None
    return {**settings, **typed}
