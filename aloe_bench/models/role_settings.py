"""A role's settings (spec, backend args, generation knobs) from flags over task settings over defaults.

Library code: `tasks.build_run_config` needs it, so it lives here and not in the CLI layer; `flags`
is any namespace (argparse's, or an empty one) whose absent attributes count as unset.
"""

from __future__ import annotations

import argparse
import re
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import parse_args
from aloe_bench.models.role_config import RoleConfig


def role_config(
    args: argparse.Namespace, role: str, task: dict[str, Any], default_spec: str | None
) -> RoleConfig:
    """CLI flags override the task's settings, which override the defaults."""
    if role == "judge":
        panel = judge_panel(args, task, default_spec)
        if len(panel) > 1:
            raise UserInputError(
                "a judge panel (several --judge) is for ALOE runs; this command takes one --judge"
            )
        return panel[0]
    return _role_config(args, role, task, default_spec)


_GENERATION_KNOBS = {"max_new_tokens": int, "temperature": float, "top_p": float, "repetition_penalty": float}


def split_judge_spec(text: str) -> tuple[str, dict[str, str]]:
    """`SPEC@k=v,...` -> (SPEC, {k: v}); a spec without `@k=v` is returned as it is."""
    # The first `@` followed by `key=`: a value may hold `@` itself (base_url=http://u:p@host/v1).
    found = re.match(r"^(.+?)@([A-Za-z_]\w*=.*)$", text)
    if not found:
        return text, {}
    return found.group(1), parse_args(found.group(2), f"--judge {text}")


def _with_overrides(base: RoleConfig, spec: str, overrides: dict[str, Any], where: str) -> RoleConfig:
    knobs: dict[str, Any] = {}
    args = dict(base.args)
    for key, value in overrides.items():
        if key in _GENERATION_KNOBS:
            try:
                knobs[key] = _GENERATION_KNOBS[key](value)
            except (TypeError, ValueError):
                raise UserInputError(f"{where}: {key} must be a number, got {value!r}") from None
        elif key == "spec":
            continue
        else:
            args[key] = str(value)
    return RoleConfig(
        spec=spec,
        args=args,
        max_new_tokens=knobs.get("max_new_tokens", base.max_new_tokens),
        temperature=knobs.get("temperature", base.temperature),
        top_p=knobs.get("top_p", base.top_p),
        repetition_penalty=knobs.get("repetition_penalty", base.repetition_penalty),
    )


def judge_panel(args: argparse.Namespace, task: dict[str, Any], default_spec: str | None) -> list[RoleConfig]:
    """Every judge of the panel. `--judge` (repeatable) replaces the task's `judge` (a spec or a
    list of specs / {spec, args, temperature, ...} mappings); shared knobs (--judge-args,
    --judge-temperature, ... or the task's judge_*) apply to all, a judge's own settings win."""
    given = getattr(args, "judge", None)
    entries: list[Any]
    if given:
        entries = list(given) if isinstance(given, list) else [given]
    else:
        from_task = task.get("judge")
        entries = list(from_task) if isinstance(from_task, list) else [from_task or default_spec]
    if not entries or not all(entries):
        raise UserInputError("--judge is required (e.g. --judge openai/gpt-4o-mini-2024-07-18, or embedded)")
    panel = []
    for entry in entries:
        if isinstance(entry, dict):
            if "spec" not in entry:
                raise UserInputError(f"task judge entry {entry!r} needs a `spec`")
            spec = str(entry["spec"])
            overrides = {k: v for k, v in entry.items() if k not in ("spec", "args")}
            extra_args = entry.get("args") or {}
            if isinstance(extra_args, str):
                extra_args = parse_args(extra_args, f"args of judge {spec} in the task")
            overrides.update({k: str(v) for k, v in extra_args.items()})
            where = f"task judge {spec}"
        else:
            spec, overrides = split_judge_spec(str(entry))
            where = f"--judge {entry}"
        shared = _role_config(args, "judge", {**task, "judge": spec}, spec)
        panel.append(_with_overrides(shared, spec, overrides, where))
    return panel


def _role_config(
    args: argparse.Namespace, role: str, task: dict[str, Any], default_spec: str | None
) -> RoleConfig:
    spec = (None if role == "judge" else getattr(args, role, None)) or task.get(role) or default_spec
    if not spec:
        raise UserInputError(
            f"--{role} is required (e.g. --{role} hf/HuggingFaceTB/SmolLM2-135M-Instruct, or embedded)"
        )
    task_args = task.get(f"{role}_args") or {}
    if isinstance(task_args, str):
        task_args = parse_args(task_args, f"{role}_args in the task")
    cli_args = parse_args(getattr(args, f"{role}_args", None), f"--{role}-args")
    merged = {**{k: str(v) for k, v in task_args.items()}, **cli_args}
    base_url = getattr(args, f"{role}_base_url", None)
    if base_url:
        merged["base_url"] = base_url

    def pick(name: str):
        value = getattr(args, f"{role}_{name}", None)
        return value if value is not None else task.get(f"{role}_{name}" if role != "model" else name)

    return RoleConfig(
        spec=spec,
        args=merged,
        max_new_tokens=pick("max_new_tokens"),
        temperature=pick("temperature"),
        top_p=pick("top_p"),
        repetition_penalty=pick("repetition_penalty"),
    )
