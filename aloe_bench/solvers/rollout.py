"""The rollout: simulated user <-> model under test, K turns, every conversation at once.

Each conversation runs as its own task, so a slow or failing one never holds the others back; the
in-process backends still batch, because conversations waiting on the same step submit together.
After every reply the turn is handed to the judge stage in the background: judging never delays the
next turn. Requests carry seeds derived from (run seed, persona, turn, role), so a conversation is
reproducible on its own and the same persona opens the same way for every model.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from aloe_bench.concurrency import each_item
from aloe_bench.log.results import ConversationRecord, TurnRecord
from aloe_bench.models.backends import ChatRequest, GenerationSettings
from aloe_bench.models.roles import Role
from aloe_bench.models.strategies import keep_trace
from aloe_bench.prompts import PromptTemplate
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


def simulator_messages(
    prompt: PromptTemplate, persona: dict[str, str], exchanges: Sequence[tuple[str, str | None]]
) -> list[dict[str, str]]:
    """What the simulated user sees, role-flipped: its own messages are its assistant turns and the
    other side's replies (`exchanges` = [(user message, reply), ...]) arrive as user turns."""
    messages = prompt.render(profile=persona["profile"], personality=persona["personality"])
    messages.append({"role": "user", "content": prompt.text("opening")})
    for user, reply in exchanges:
        messages.append({"role": "assistant", "content": user})
        messages.append({"role": "user", "content": reply or ""})
    return messages


async def simulated_user_message(
    simulator: Role,
    prompt: PromptTemplate,
    persona: dict[str, str],
    exchanges: Sequence[tuple[str, str | None]],
    *,
    settings: GenerationSettings,
    run_seed: int,
    conversation_id: str,
    turn: int,
    retries: int,
) -> tuple[str | None, str | None]:
    """The persona's next message (cleaned), retried with a nudge when it fails or comes back empty.
    Returns (message, None), or (None, reason) after `retries + 1` attempts. Shared by the evaluation
    rollout and the training-data generation (aloe_train)."""
    base = simulator_messages(prompt, persona, exchanges)
    last_error = None
    for attempt in range(retries + 1):
        messages = base
        if attempt:  # a nudge changes the prompt, so even greedy decoding gives a new answer
            nudge = prompt.text("retry")
            messages = [*base[:-1], {"role": "user", "content": f"{base[-1]['content']}\n\n({nudge})"}]
        seed = request_seed(run_seed, conversation_id, turn, "simulator", attempt)
        out = await simulator.generate_one(ChatRequest(messages, settings.with_seed(seed)))
        if not out.ok or out.text is None:
            last_error = out.error
            continue
        text = clean_user_message(out.text)
        if text:
            return text, None
        last_error = f"empty message after cleaning (raw: {out.text[:80]!r})"
    return None, f"simulated user failed after {retries + 1} attempts: {last_error}"


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
        judge_turn: Callable[[ConversationRecord, int], object] | None = None,
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
        text, error = await simulated_user_message(
            self.simulator,
            self.simulator_prompt,
            conv.persona,
            [(t.user, t.assistant) for t in conv.turns],
            settings=self.settings.simulator,
            run_seed=self.settings.seed,
            conversation_id=conv.id,
            turn=k,
            retries=self.settings.simulator_retries,
        )
        if text is None:
            conv.status = "failed"
            conv.error = f"turn {k}: {error}"
        return text

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
            conv.turns[-1].best_of_n = (reply.meta or {}).get("best_of_n")  # candidates, when best-of-N
            keep_trace(conv.turns[-1], reply)  # a strategy's draft, critique, reasoning, recalled turns
            if self.judge_turn is not None:
                self.judge_turn(conv, k - 1)
            self.on_progress("turn", conv, k)
        conv.status = "complete"

    async def run(self, conversations: list[ConversationRecord]) -> None:
        await each_item(self.converse(c) for c in conversations if c.status == "running")
