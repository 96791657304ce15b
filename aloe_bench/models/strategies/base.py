"""The wrapper every strategy shares: it owns the wrapped backend, makes the strategy's calls through
it, sums their tokens, and attaches the intermediate texts to the final completion."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aloe_bench.models.backends.base import (
    PRIORITY_CRITICAL,
    Backend,
    ChatRequest,
    Completion,
    GenerationSettings,
    Message,
)
from aloe_bench.models.strategies import CALLS, META_KEY
from aloe_bench.prompts import PromptTemplate, load_prompt


class StepFailed(Exception):
    """A call of the strategy failed; the reply fails with the step's name in the error."""


@dataclass
class Trace:
    """What one reply's calls produced along the way, and what they cost."""

    intermediate: list[dict[str, Any]] = field(default_factory=list)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    retries: int = 0
    calls: int = 0
    finish_reason: str = "stop"  # the last call's: the reply's own

    def add(self, kind: str, text: str | list[str]) -> None:
        self.intermediate.append({"kind": kind, "text": text})


def with_system(messages: list[Message], text: str) -> list[Message]:
    """`messages` with `text` as the system message (after an existing one, which stays first: in the
    explicit-persona task the stated persona is there)."""
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": f"{messages[0]['content']}\n\n{text}"}, *messages[1:]]
    return [{"role": "system", "content": text}, *messages]


def with_last_user_note(messages: list[Message], note: str) -> list[Message]:
    """`messages` with `note` appended to the last user turn (a second user turn in a row would break
    chat templates that require alternation)."""
    if not messages or messages[-1]["role"] != "user":
        return [*messages, {"role": "user", "content": note}]
    last = messages[-1]
    return [*messages[:-1], {"role": "user", "content": f"{last['content']}\n\n{note}"}]


class StrategyBackend(Backend):
    """`<strategy>/<wrapped spec>`. Backend arguments go to the wrapped backend unchanged."""

    strategy = ""  # the spec prefix (also `provider`)
    prompt_file = ""

    def __init__(self, name: str, args: Mapping[str, Any] | None, inner: Backend):
        """`inner` is the backend `name` spells, made by the provider registry (models/backends),
        which this package does not import: the registry imports it."""
        super().__init__(name, args)
        self.inner: Backend = inner
        self.prompt: PromptTemplate = load_prompt(self.prompt_file)
        self.stats = {"strategy_calls": 0}

    @property
    def spec(self) -> str:
        return f"{self.strategy}/{self.inner.spec}"

    def check(self) -> None:
        self.inner.check()

    def check_settings(self, settings: GenerationSettings) -> None:
        """A setting the wrapped model cannot apply is refused for the strategy too (where backends
        check settings; see best-of-N's branch)."""
        check = getattr(self.inner, "check_settings", None)
        if check is not None:
            check(settings)

    def identity(self) -> dict[str, Any]:
        # The prompt's hash is part of every cache key: an edited strategy prompt is a new strategy.
        return {
            "spec": self.spec,
            "strategy": self.strategy,
            "prompt": self.prompt.tag,
            "wrapped": self.inner.identity(),
        }

    def describe(self) -> dict[str, Any]:
        return {**self.identity(), "wrapped": self.inner.describe(), "calls_per_reply": CALLS[self.strategy]}

    def system_role(self) -> str:
        return self.inner.system_role()

    def rate_stats(self) -> dict[str, Any]:
        """Recorded in the role's usage: the wrapped backend's calls behind the role's replies."""
        stats: dict[str, Any] = dict(self.stats)
        inner_stats = getattr(self.inner, "rate_stats", None)
        if inner_stats is not None:
            stats.update(inner_stats())
        return stats

    async def call(
        self, trace: Trace, step: str, messages: list[Message], settings: GenerationSettings, priority: int
    ) -> str:
        """One call of the strategy through the wrapped backend, counted in `trace`."""
        out = (await self.inner.generate([ChatRequest(messages, settings)], priority=priority))[0]
        trace.calls += 1
        self.stats["strategy_calls"] += 1
        trace.retries += out.retries
        if not out.ok or out.text is None:
            raise StepFailed(f"{self.strategy} step {step!r} failed: {out.error}")
        trace.prompt_tokens += out.prompt_tokens
        trace.completion_tokens += out.completion_tokens
        trace.finish_reason = out.finish_reason
        return out.text

    async def respond(self, request: ChatRequest, trace: Trace, priority: int) -> str:
        raise NotImplementedError

    async def _one(self, request: ChatRequest, priority: int) -> Completion:
        trace = Trace()
        try:
            reply = await self.respond(request, trace, priority)
        except StepFailed as exc:
            return Completion.failure(str(exc))
        return Completion(
            text=reply,
            finish_reason=trace.finish_reason,
            # Every call was sent and generated: usage and cost are all the calls' worth.
            prompt_tokens=trace.prompt_tokens,
            completion_tokens=trace.completion_tokens,
            retries=trace.retries,
            meta={
                META_KEY: {
                    "name": self.strategy,
                    "prompt": self.prompt.tag,
                    "calls": trace.calls,
                    "intermediate": trace.intermediate,
                }
            },
        )

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        # Each request's steps run as their own task: in-process backends batch the same step of
        # every conversation together, API backends send them concurrently.
        return list(await asyncio.gather(*(self._one(r, priority) for r in requests)))

    async def aclose(self) -> None:
        await self.inner.aclose()
