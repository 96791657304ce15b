"""`self-critic/SPEC`: draft (the plain request), critique the draft against what the person has
revealed, revise; three calls, the revision is the reply."""

from __future__ import annotations

from aloe_bench.models.backends.base import ChatRequest
from aloe_bench.models.strategies.base import StrategyBackend, Trace, with_last_user_note, with_system


class SelfCriticBackend(StrategyBackend):
    strategy = provider = "self-critic"
    prompt_file = "strategy_self_critic.yaml"

    async def respond(self, request: ChatRequest, trace: Trace, priority: int) -> str:
        # The draft is exactly what the wrapped model answers alone, so a run shows what the
        # critique-and-revise steps changed.
        draft = await self.call(trace, "draft", request.messages, request.settings, priority)
        trace.add("draft", draft)
        reviewer = self.prompt.render()[0]["content"]
        critique_messages = with_last_user_note(
            with_system(request.messages, reviewer), self.prompt.text("critique", draft=draft)
        )
        critique = await self.call(trace, "critique", critique_messages, request.settings, priority)
        trace.add("critique", critique)
        revise = self.prompt.text("revise_system", draft=draft, critique=critique)
        return await self.call(
            trace, "revise", with_system(request.messages, revise), request.settings, priority
        )
