"""The line printed before a run starts: what will happen, so a long quiet turn is expected."""

from __future__ import annotations

from typing import Any

from aloe_bench.models.backends import parse_spec

_KIND = {
    "hf": "in-process transformers",
    "embedded": "in-process SmolLM2-135M, on OpenVINO unless runtime=torch",
    "vllm": "in-process vLLM",
    "lmeval": "lm-eval model",
    "openai": "OpenAI-compatible API",
}


def backend_kind(spec: str) -> str:
    provider, _ = parse_spec(spec)
    return _KIND.get(provider, provider)


def plan_line(config: Any, conversations: int) -> str:
    """`plan: 12 conversations x 3 turns; model embedded (...), ...; calls: ...`."""
    from aloe_bench.metrics.trust import planned_judge_calls

    turns = config.turns
    exchanges = conversations * turns
    judges = config.judges
    roles = ", ".join(
        f"{name} {role.spec} ({backend_kind(role.spec)})"
        for name, role in (("model", config.model), ("simulator", config.simulator))
    )
    roles += ", judge " + " + ".join(f"{j.spec} ({backend_kind(j.spec)})" for j in judges)
    judge_calls = sum(
        planned_judge_calls(exchanges, len(judges), config.judge_repeats, "swap" in config.controls).values()
    )
    return (
        f"plan: {conversations} conversations x {turns} turns = {exchanges} exchanges; {roles}; "
        f"expected calls: {exchanges} model, {exchanges} simulator, {judge_calls} judge "
        f"(+ up to {config.judge_reasks} re-asks per unreadable verdict); calls already in the cache are "
        "replayed. Time left is estimated once turn 1 is done."
    )


def judge_calls_line(plan: dict[str, int]) -> str:
    extra = plan["panel"] + plan["repeats"] + plan["swap"]
    return f"judge calls planned: {plan['base']} (one judge, once per turn)" + (
        f" + {plan['panel']} panel + {plan['repeats']} repeats + {plan['swap']} swap control"
        f" = {plan['base'] + extra} ({extra / max(plan['base'], 1):.1f}x extra; re-asks come on top)"
        if extra
        else ""
    )
