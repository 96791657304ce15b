"""The single-reply solver: one request per item, its reply the item's only turn (Multifaceted
Bench: the stated preferences in the system message, then the instruction).

Every item runs as its own task, so in-process backends batch them; the reply is handed to the
scorer in the background, as the rollout hands over its turns."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from aloe_bench.concurrency import each_item
from aloe_bench.log.results import ConversationRecord, TurnRecord
from aloe_bench.models.backends import ChatRequest, GenerationSettings
from aloe_bench.models.roles import Role
from aloe_bench.models.strategies import keep_trace
from aloe_bench.seeds import request_seed


@dataclass
class SingleReply:
    model: Role
    settings: GenerationSettings
    seed: int
    messages: Callable[[ConversationRecord], list[dict[str, str]]]  # what the model is asked
    prompt: Callable[[ConversationRecord], str]  # the turn's `user` text
    score_turn: Callable[[ConversationRecord, int], object]  # hands the reply to the scorer
    turn_done: Callable[[ConversationRecord, int], None]
    failed: Callable[[ConversationRecord], None]

    async def reply(self, conv: ConversationRecord) -> None:
        seed = request_seed(self.seed, conv.id, 1, "model")
        reply = await self.model.generate_one(ChatRequest(self.messages(conv), self.settings.with_seed(seed)))
        if not reply.ok or reply.text is None:
            conv.status, conv.error = "failed", f"model under test failed: {reply.error}"
            self.failed(conv)
            return
        conv.turns = [
            TurnRecord(
                user=self.prompt(conv), assistant=reply.text, best_of_n=(reply.meta or {}).get("best_of_n")
            )
        ]
        keep_trace(conv.turns[0], reply)  # a strategy's intermediate texts, when the model is one
        self.turn_done(conv, 0)
        self.score_turn(conv, 0)
        conv.status = "complete"

    async def run(self, conversations: list[ConversationRecord]) -> None:
        await each_item(self.reply(c) for c in conversations if c.status == "running")
