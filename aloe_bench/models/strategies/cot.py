"""`cot/SPEC`: reason about the person first (call 1), then reply with that reasoning in view
(call 2). Two calls rather than one "think, then answer" call, so that no parsing decides where the
reasoning ends: the reply is a whole completion of its own and the reasoning can never reach the
simulated user or the judge."""

from __future__ import annotations

from aloe_bench.models.backends.base import ChatRequest
from aloe_bench.models.strategies.base import StrategyBackend, Trace, with_last_user_note, with_system


class CotBackend(StrategyBackend):
    strategy = provider = "cot"
    prompt_file = "strategy_cot.yaml"

    async def respond(self, request: ChatRequest, trace: Trace, priority: int) -> str:
        intro = self.prompt.render()[0]["content"]
        reason_messages = with_last_user_note(
            with_system(request.messages, intro), self.prompt.text("reason")
        )
        reasoning = await self.call(trace, "reason", reason_messages, request.settings, priority)
        trace.add("reasoning", reasoning)
        reply_messages = with_system(request.messages, self.prompt.text("reply_system", reasoning=reasoning))
        return await self.call(trace, "reply", reply_messages, request.settings, priority)
