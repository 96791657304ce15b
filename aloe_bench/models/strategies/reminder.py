"""`reminder/SPEC`: one call, with a system instruction to attend to the person's preferences."""

from __future__ import annotations

from aloe_bench.models.backends.base import ChatRequest
from aloe_bench.models.strategies.base import StrategyBackend, Trace, with_system


class ReminderBackend(StrategyBackend):
    strategy = provider = "reminder"
    prompt_file = "strategy_reminder.yaml"

    async def respond(self, request: ChatRequest, trace: Trace, priority: int) -> str:
        reminder = self.prompt.render()[0]["content"]
        return await self.call(
            trace, "reply", with_system(request.messages, reminder), request.settings, priority
        )
