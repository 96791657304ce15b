"""Arguments shared by the commands that bind roles to backends (run, judge)."""

from __future__ import annotations

import argparse

# Re-exported: commands and tests import the role settings from here as before.
from aloe_bench.models.role_settings import judge_panel, role_config, split_judge_spec

__all__ = ["add_role_arguments", "judge_panel", "role_config", "split_judge_spec"]

ROLE_HELP = {
    "model": "the model under test",
    "simulator": "the simulated user",
    "judge": "the judge",
    "auditor": "the LLM auditor of the simulated user",
}


def add_role_arguments(parser: argparse.ArgumentParser, role: str, *, spec_flag: bool = True) -> None:
    what = ROLE_HELP[role]
    group = parser.add_argument_group(f"{role} ({what})")
    if spec_flag and role == "judge":
        # Repeatable: several --judge make a panel; SPEC@k=v,... gives one judge its own settings.
        group.add_argument(
            "--judge",
            metavar="SPEC[@K=V,...]",
            action="append",
            help="the judge (repeat for a panel): hf/..., openai/..., vllm/..., embedded, or a folder; "
            "SPEC@k=v,... sets this judge's own backend args and max_new_tokens/temperature/top_p "
            "(e.g. openai/gpt-4o-mini@base_url=http://host/v1,temperature=0.7); "
            "--judge-args/--judge-temperature/... apply to every judge",
        )
    elif spec_flag:
        group.add_argument(
            f"--{role}",
            metavar="SPEC",
            help=f"{what}: hf/<path|hub id>, openai/<model>, vllm/<path|hub id>, lmeval/<lm-eval model>, "
            "embedded, a checkpoint folder, or bon/N:SPEC@REWARD_MODEL (best of N samples, docs/best-of-n.md)",
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
    group.add_argument(
        f"--{prefix}repetition-penalty",
        type=float,
        metavar="R",
        dest=f"{role}_repetition_penalty",
        help=f"repetition penalty for {what} (transformers' repetition_penalty; 1.0 = none; default: "
        "the backend's own); hf/, embedded, lmeval/ and OpenAI-compatible servers that take it (vLLM, TGI)",
    )
