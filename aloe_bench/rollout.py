"""The rollout: simulated user <-> model under test, K turns, every conversation at once.

Each conversation runs as its own task, so a slow or failing one never holds the others back; the
in-process backends still batch, because conversations waiting on the same step submit together.
After every reply the turn is handed to the judge stage in the background: judging never delays the
next turn. Requests carry seeds derived from (run seed, persona, turn, role), so a conversation is
reproducible on its own and the same persona opens the same way for every model.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass

from aloe_bench.backends import ChatRequest, GenerationSettings
from aloe_bench.errors import BackendFatalError
from aloe_bench.prompts import PromptTemplate
from aloe_bench.results import ConversationRecord, TurnRecord
from aloe_bench.roles import Role
from aloe_bench.seeds import request_seed

_STAGE_DIRECTION = re.compile(r"\*+[^*\n]*\*+")
_NAME_TAG = re.compile(r"^\s*(?:user|me|person|human|friend|you)\s*:\s*", re.I)
_QUOTES = ('"', "'", "\u201c", "\u201d")


def clean_user_message(text: str) -> str:
    """The simulated user's message without stage directions (*laughs*), name tags or wrapping quotes."""
    text = _STAGE_DIRECTION.sub(" ", text)
    text = _NAME_TAG.sub("", text)
    text = re.sub(r"[ \t]+", " ", text)
    text = re.sub(r" *\n *", "\n", text).strip()
    if len(text) >= 2 and text[0] in _QUOTES and text[-1] in _QUOTES:
        text = text[1:-1].strip()
    return text


@dataclass
class RolloutSettings:
    turns: int
    seed: int
    simulator: GenerationSettings
    model: GenerationSettings
    simulator_retries: int = 2


class Rollout:
    def __init__(
        self,
        *,
        simulator: Role,
        model: Role,
        simulator_prompt: PromptTemplate,
        settings: RolloutSettings,
        judge_turn: Callable[[ConversationRecord, int], asyncio.Future | None] | None = None,
        model_system_prompt: PromptTemplate | None = None,
        on_progress: Callable[[str, ConversationRecord, int], None] | None = None,
    ):
        self.simulator = simulator
        self.model = model
        self.simulator_prompt = simulator_prompt
        self.settings = settings
        self.judge_turn = judge_turn
        self.model_system_prompt = model_system_prompt
        self.on_progress = on_progress or (lambda event, conv, turn: None)

    # -- messages each role sees ----------------------------------------------------------------------
    def simulator_messages(self, conv: ConversationRecord) -> list[dict[str, str]]:
        """Role-flipped: the persona's own messages are its assistant turns."""
        p = self.simulator_prompt
        messages = p.render(profile=conv.persona["profile"], personality=conv.persona["personality"])
        messages.append({"role": "user", "content": p.text("opening")})
        for turn in conv.turns:
            messages.append({"role": "assistant", "content": turn.user})
            messages.append({"role": "user", "content": turn.assistant or ""})
        return messages

    def model_messages(self, conv: ConversationRecord) -> list[dict[str, str]]:
        """What the model under test sees: the chat so far (and the persona only in explicit mode)."""
        messages: list[dict[str, str]] = []
        if self.model_system_prompt is not None:
            messages = self.model_system_prompt.render(
                profile=conv.persona["profile"], personality=conv.persona["personality"]
            )
        for turn in conv.turns:
            messages.append({"role": "user", "content": turn.user})
            if turn.assistant is not None:
                messages.append({"role": "assistant", "content": turn.assistant})
        return messages

    # -- one conversation -------------------------------------------------------------------------------
    async def _user_message(self, conv: ConversationRecord, k: int) -> str | None:
        base = self.simulator_messages(conv)
        last_error = None
        for attempt in range(self.settings.simulator_retries + 1):
            messages = base
            if attempt:  # a nudge changes the prompt, so even greedy decoding gives a new answer
                nudge = self.simulator_prompt.text("retry")
                messages = [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n({nudge})"}]
            seed = request_seed(self.settings.seed, conv.id, k, "simulator", attempt)
            out = await self.simulator.generate_one(
                ChatRequest(messages, self.settings.simulator.with_seed(seed))
            )
            if not out.ok:
                last_error = out.error
                continue
            text = clean_user_message(out.text)
            if text:
                return text
            last_error = f"empty message after cleaning (raw: {out.text[:80]!r})"
        conv.status = "failed"
        conv.error = f"turn {k}: simulated user failed after {self.settings.simulator_retries + 1} attempts: {last_error}"
        return None

    async def converse(self, conv: ConversationRecord) -> None:
        start = len(conv.turns) + 1
        for k in range(start, self.settings.turns + 1):
            user = await self._user_message(conv, k)
            if user is None:
                self.on_progress("failed", conv, k)
                return
            conv.turns.append(TurnRecord(user=user))
            seed = request_seed(self.settings.seed, conv.id, k, "model")
            reply = await self.model.generate_one(
                ChatRequest(self.model_messages(conv), self.settings.model.with_seed(seed))
            )
            if not reply.ok:
                conv.status = "failed"
                conv.error = f"turn {k}: model under test failed: {reply.error}"
                self.on_progress("failed", conv, k)
                return
            conv.turns[-1].assistant = reply.text
            if self.judge_turn is not None:
                self.judge_turn(conv, k - 1)
            self.on_progress("turn", conv, k)
        conv.status = "complete"

    async def run(self, conversations: list[ConversationRecord]) -> None:
        tasks = [asyncio.create_task(self.converse(c)) for c in conversations if c.status == "running"]
        try:
            await asyncio.gather(*tasks)
        except BackendFatalError:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise
