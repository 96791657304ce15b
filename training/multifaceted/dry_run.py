"""`--dry-run`: the calls a collection plans and what they cost, with no model call.

The real prompts are rendered for every instruction; what earlier stages would write (subdimension
names, preferences, the system message) is filled with placeholder text as long as those stages'
token limits allow, and every answer is assumed to use its whole limit: an upper bound. Re-asks
(--retries) are not counted; held-out instructions add their rubric calls. Tokens are counted as
`aloe-bench run --dry-run` counts them (tiktoken o200k_base when cached, else characters / 4)."""

from __future__ import annotations

from typing import Any

from aloe_bench.models.cost import Price, batch_discount, table_record, token_counter
from aloe_train.generation import RoleBinding
from aloe_train.multifaceted.instructions import Instruction
from aloe_train.multifaceted.stats import STAGES
from aloe_train.multifaceted.taxonomy import Taxonomy

_MESSAGE_OVERHEAD = 4  # tokens a chat format adds per message


def _filler(tokens: int) -> str:
    return " ".join(["word"] * max(1, tokens))


def estimate(
    config: Any,
    instructions: list[Instruction],
    taxonomy: Taxonomy,
    bindings: dict[str, RoleBinding],
    price: Price | None,
) -> dict[str, Any]:
    count, method = token_counter()
    limit = {s: bindings[s].settings.max_new_tokens for s in STAGES}
    totals = {s: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0} for s in STAGES}
    held_out = set(range(len(instructions) - config.bench_instructions, len(instructions)))

    def add(stage: str, messages: list[dict[str, str]]) -> None:
        t = totals[stage]
        t["calls"] += 1
        t["prompt_tokens"] += sum(count(m["content"]) + _MESSAGE_OVERHEAD for m in messages)
        t["completion_tokens"] += limit[stage]

    pref_words = max(1, limit["preferences"] // max(1, config.sets))
    placeholder = {
        "dimension": "dimension",
        "subdimension": "subdimension",
        "preference": "keyword",
        "description": _filler(pref_words),
    }
    system_text = _filler(limit["system"])
    for i, ins in enumerate(instructions):
        for d in taxonomy.dimensions:
            add(
                "subdimensions",
                bindings["subdimensions"]
                .template()
                .render(
                    instruction=ins.text,
                    dimension=d.label,
                    description=d.description,
                    seeds=list(d.seeds),
                    count=config.sets,
                ),
            )
            add(
                "preferences",
                bindings["preferences"]
                .template()
                .render(
                    instruction=ins.text,
                    dimension=d.label,
                    description=d.description,
                    subdimensions=["subdimension"] * config.sets,
                ),
            )
        prefs = [placeholder] * len(taxonomy.dimensions)
        for _ in range(config.sets):
            add("system", bindings["system"].template().render(instruction=ins.text, preferences=prefs))
            add("response", bindings["response"].template().render(system=system_text, instruction=ins.text))
            if i in held_out:
                for _ in taxonomy.dimensions:
                    add(
                        "rubric",
                        bindings["rubric"].template().render(instruction=ins.text, preference=placeholder),
                    )
    discount = batch_discount() if config.batch else 1.0
    stages = {}
    for s, t in totals.items():
        cost = price.cost(t["prompt_tokens"], t["completion_tokens"], discount=discount) if price else None
        stages[s] = {**t, "max_new_tokens": limit[s], "cost_usd": cost}
    known = [s["cost_usd"] for s in stages.values() if s["cost_usd"] is not None]
    calls = sum(t["calls"] for t in totals.values())
    tokens = sum(t["prompt_tokens"] + t["completion_tokens"] for t in totals.values())
    return {
        "dry_run": True,
        "instructions": len(instructions),
        "sets": config.sets,
        "generator": config.generator,
        "price": price and {"input": price.input, "output": price.output, "source": price.source},
        "prices": table_record(),
        "batch": config.batch,
        "token_counter": method,
        "stages": stages,
        "calls": calls,
        "tokens_per_instruction": round(tokens / len(instructions), 1),
        "total_cost_usd": sum(known) if known else None,
    }


def format_estimate(est: dict[str, Any]) -> str:
    lines = [
        f"dry run: {est['instructions']} instructions x {est['sets']} preference sets with {est['generator']}; "
        "no model was called",
        f"{'stage':<14} {'calls':>8} {'prompt tok':>12} {'output tok':>12} {'cost $':>10}",
    ]
    for stage, s in est["stages"].items():
        cost = "n/a" if s["cost_usd"] is None else f"{s['cost_usd']:.2f}"
        lines.append(
            f"{stage:<14} {s['calls']:>8} {s['prompt_tokens']:>12,} {s['completion_tokens']:>12,} {cost:>10}"
        )
    total = est["total_cost_usd"]
    p = est["prices"]
    lines.append(
        f"total: {est['calls']} calls, at most {est['tokens_per_instruction']:,} tokens per instruction, "
        f"{'n/a (no price for this generator; pass --price IN,OUT)' if total is None else f'${total:.2f}'}"
        + (" at the Batch API discount" if est["batch"] else "")
    )
    lines.append(
        "an upper bound: every answer assumed to use its whole token limit; re-asks not counted; "
        f"tokens by {est['token_counter']}; prices: prices.yaml v{p['version']} as of {p['as_of']}, or --price"
    )
    return "\n".join(lines)
