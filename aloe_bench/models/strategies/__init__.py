"""Inference-time strategies as model wrappers: `reminder/SPEC`, `self-critic/SPEC`, `cot/SPEC`,
`recall/SPEC` (e.g. `self-critic/hf/PATH`, `cot/openai/gpt-4o-mini`, `reminder/embedded`).

Each is a backend like any other, so it works in every role and every run kind. It wraps the backend
named by SPEC and turns one chat request into the calls its strategy makes (docs/strategies.md):

| strategy    | model calls per reply | what is kept in the transcript           |
| ----------- | --------------------- | ---------------------------------------- |
| reminder    | 1                     | (nothing: only a system instruction)     |
| cot         | 2 (reason, reply)     | the reasoning                            |
| self-critic | 3 (draft, critique, revise) | the draft and the critique         |
| recall      | 1 (+ lexical retrieval, no model call) | the recalled user messages |

The returned completion's text is the final reply only; its token counts are the sums over every call
(so usage and price are those of all the calls), and `Completion.meta["strategy"]` records the
strategy, its prompt, its call count and the intermediate texts, the same optional field best-of-N
uses for its candidates; the solvers copy it into the turn and the viewer shows it.
"""

from __future__ import annotations

from typing import Any

from aloe_bench.errors import UserInputError

STRATEGIES = ("reminder", "self-critic", "cot", "recall")
# Model calls one reply costs, per strategy (recall's retrieval is lexical: no call).
CALLS = {"reminder": 1, "cot": 2, "self-critic": 3, "recall": 1}
META_KEY = "strategy"  # Completion.meta[META_KEY] / the turn's "strategy" field


def keep_trace(turn: Any, completion: Any) -> None:
    """Copy a strategy's record from the reply (`Completion.meta`) into the turn, where results and
    the viewer show it (a field of its own, `strategy`, next to the reply; absent for plain models)."""
    record = (completion.meta or {}).get(META_KEY)
    if record is not None:
        turn.extra[META_KEY] = record


def is_strategy(spec: str | None) -> bool:
    return bool(spec) and str(spec).strip().split("/", 1)[0] in STRATEGIES


def served_spec(spec: str) -> str:
    """The spec whose calls a strategy spec makes (`cot/openai/x` -> `openai/x`), for prices and API
    concurrency; any other spec itself."""
    spec = spec.strip()
    while is_strategy(spec):
        strategy, _, spec = spec.partition("/")
        if not spec.strip():
            raise UserInputError(wraps_nothing(strategy))
    return spec


def wraps_nothing(strategy: str) -> str:
    return (
        f"{strategy}/ needs the model it wraps: write {strategy}/SPEC, "
        f"e.g. {strategy}/embedded or {strategy}/openai/gpt-4o-mini"
    )


def calls_per_reply(spec: str) -> int:
    """Model calls behind one reply of `spec` (the wrapped spec's own count multiplied in)."""
    n = 1
    spec = spec.strip()
    while is_strategy(spec):
        name, _, spec = spec.partition("/")
        n *= CALLS[name]
    return n
