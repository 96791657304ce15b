"""`aloe-bench run ... --dry-run`: the calls a run plans and what they cost, with no model call.

The real prompts are rendered (simulator prompt, chat so far, judge protocol) for every persona and
turn, with the chat growing by replies as long as their token limits allow: an upper bound, since
replies usually stop earlier. Re-asks of unreadable judge answers and retries are not counted.
Tokens are counted with tiktoken (o200k_base, the tokenizer of gpt-4o and gpt-4.1) when it is
installed, else as characters / 4; the estimate says which."""

from __future__ import annotations

from typing import Any

from aloe_bench.datasets.personas import PersonaSet
from aloe_bench.models.backends.best_of_n import candidates_per_call
from aloe_bench.models.cost import Price, batch_discount, role_prices, table_record, token_counter
from aloe_bench.models.strategies import calls_per_reply
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.judge import get_protocol
from aloe_bench.solvers.rollout import simulator_messages
from aloe_bench.tasks.aloe.config import RunConfig

_MESSAGE_OVERHEAD = 4  # tokens a chat format adds per message (role, separators)


def _filler(tokens: int) -> str:
    """A reply of about `tokens` tokens (one per word in either counter, near enough)."""
    return " ".join(["word"] * tokens)


def estimate_run(
    config: RunConfig,
    personas: PersonaSet,
    price_overrides: dict[str, Price] | None = None,
    judge_batch: bool = False,
) -> dict[str, Any]:
    count, method = token_counter()
    protocol = get_protocol(config.protocol)
    sim_prompt = load_prompt("simulator.yaml")
    sim_limit = config.simulator.settings(int(sim_prompt.defaults.get("max_new_tokens", 300))).max_new_tokens
    model_limit = config.model.settings(2048).max_new_tokens
    judge_limit = config.judge.settings(protocol.default_settings().max_new_tokens).max_new_tokens
    user_text, reply_text = _filler(sim_limit), _filler(model_limit)
    explicit = load_prompt("model_explicit.yaml") if config.persona_disclosure == "system" else None

    def tokens(messages: list[dict[str, str]]) -> int:
        return sum(count(m.get("content", "")) + _MESSAGE_OVERHEAD for m in messages)

    totals = {
        r: {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0} for r in ("simulator", "model", "judge")
    }
    for persona in personas.personas:
        p = persona.to_dict()
        exchanges: list[tuple[str, str | None]] = []
        for k in range(config.turns):
            _add(totals["simulator"], tokens(simulator_messages(sim_prompt, p, exchanges)), sim_limit)
            chat = explicit.render(profile=p["profile"], personality=p["personality"]) if explicit else []
            for user, reply in [*exchanges, (user_text, None)]:
                chat.append({"role": "user", "content": user})
                if reply is not None:
                    chat.append({"role": "assistant", "content": reply})
            _add(totals["model"], tokens(chat), model_limit)
            exchanges.append((user_text, reply_text))
            turns = [{"user": u, "assistant": a or ""} for u, a in exchanges]
            _add(totals["judge"], tokens(protocol.messages(p, turns, k)), judge_limit)
    specs = {"model": config.model.spec, "simulator": config.simulator.spec, "judge": config.judge.spec}
    for role, spec in specs.items():  # best-of-N: N policy calls a reply; a strategy: its calls a reply
        n = candidates_per_call(spec) * calls_per_reply(spec)
        totals[role] = {key: value * n for key, value in totals[role].items()}
    prices = role_prices(specs, price_overrides)
    roles = {}
    for role, t in totals.items():
        price = prices[role]
        discount = batch_discount() if judge_batch and role == "judge" else 1.0
        cost = price.cost(t["prompt_tokens"], t["completion_tokens"], discount=discount) if price else None
        roles[role] = {
            **t,
            "spec": specs[role],
            "price": price and {"input": price.input, "output": price.output, "source": price.source},
            "batch": discount != 1.0,
            "cost_usd": cost,
        }
    known = [r["cost_usd"] for r in roles.values() if r["cost_usd"] is not None]
    return {
        "conversations": len(personas.personas),
        "turns": config.turns,
        "token_limits": {"simulator": sim_limit, "model": model_limit, "judge": judge_limit},
        "token_counter": method,
        "prices": table_record(),
        "roles": roles,
        "total_cost_usd": sum(known) if known else None,
    }


def _add(total: dict[str, int], prompt_tokens: int, limit: int) -> None:
    total["calls"] += 1
    total["prompt_tokens"] += prompt_tokens
    total["completion_tokens"] += limit


def format_estimate(est: dict[str, Any]) -> str:
    lines = [
        f"dry run: {est['conversations']} conversations x {est['turns']} turns; no model was called",
        f"{'role':<10} {'spec':<34} {'calls':>7} {'prompt tok':>12} {'output tok':>11} {'cost $':>10}",
    ]
    for role, r in est["roles"].items():
        cost = "n/a" if r["cost_usd"] is None else f"{r['cost_usd']:.2f}" + (" (batch)" if r["batch"] else "")
        lines.append(
            f"{role:<10} {r['spec'][:34]:<34} {r['calls']:>7} {r['prompt_tokens']:>12,} "
            f"{r['completion_tokens']:>11,} {cost:>10}"
        )
    total = est["total_cost_usd"]
    lines.append(f"total: {'n/a' if total is None else f'${total:.2f}'} (roles with a known price)")
    limits = est["token_limits"]
    p = est["prices"]
    lines.append(
        "an upper bound: every reply assumed to use its whole token limit "
        f"(simulator {limits['simulator']}, model {limits['model']}, judge {limits['judge']}); "
        f"judge re-asks and retries not counted; tokens by {est['token_counter']}; "
        f"prices: prices.yaml v{p['version']} as of {p['as_of']} ({p['source']}), or --price"
    )
    return "\n".join(lines)
