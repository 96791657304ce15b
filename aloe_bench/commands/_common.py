"""Arguments shared by the commands that bind roles to backends (run, judge)."""

from __future__ import annotations

import argparse
from typing import Any

from aloe_bench.backends import parse_args
from aloe_bench.config import RoleConfig
from aloe_bench.errors import UserInputError

ROLE_HELP = {
    "model": "the model under test",
    "simulator": "the simulated user",
    "judge": "the judge",
    "auditor": "the LLM auditor of the simulated user",
}


def add_role_arguments(parser: argparse.ArgumentParser, role: str, *, spec_flag: bool = True) -> None:
    what = ROLE_HELP[role]
    group = parser.add_argument_group(f"{role} ({what})")
    if spec_flag:
        group.add_argument(
            f"--{role}",
            metavar="SPEC",
            help=f"{what}: hf/<path|hub id>, openai/<model>, vllm/<path|hub id>, lmeval/<lm-eval model>, "
            "embedded, or a checkpoint folder",
        )
    group.add_argument(
        f"--{role}-args",
        metavar="K=V,...",
        help=f"backend arguments for {what} (e.g. dtype=bfloat16,batch_size=32)",
    )
    group.add_argument(
        f"--{role}-base-url",
        metavar="URL",
        help=f"OpenAI-compatible server for {what} (default: OPENAI_BASE_URL)",
    )
    prefix = "" if role == "model" else f"{role}-"
    group.add_argument(
        f"--{prefix}max-new-tokens",
        type=int,
        metavar="N",
        dest=f"{role}_max_new_tokens",
        help=f"max new tokens for {what}",
    )
    group.add_argument(
        f"--{prefix}temperature",
        type=float,
        metavar="T",
        dest=f"{role}_temperature",
        help=f"sampling temperature for {what} (default: the backend's own; 0 = greedy)",
    )
    group.add_argument(
        f"--{prefix}top-p", type=float, metavar="P", dest=f"{role}_top_p", help=f"top-p for {what}"
    )


def role_config(
    args: argparse.Namespace, role: str, task: dict[str, Any], default_spec: str | None
) -> RoleConfig:
    """CLI flags override the task's settings, which override the defaults."""
    spec = getattr(args, role, None) or task.get(role) or default_spec
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
    )
