"""Multi-turn rollouts for GRPO: the policy talks with the project's simulated user, the judge scores
every reply, and the whole conversation becomes one GRPO sample.

One sample = one conversation of K turns. Its prompt is the chat template up to the simulated user's
first message; its completion is every later token in order: the policy's reply (trained, mask 1),
then the template's glue and the user's next message (environment, mask 0, passed to TRL as
`env_mask`), then the next reply, and so on. Each reply is generated from exactly these tokens, so
the log-probabilities TRL recomputes are those of what was sampled.

The policy generates on the trainer's own weights (all conversations of a turn in one batch), or
through TRL's vLLM engine with `--use_vllm` (rl_trainer.VLLMPolicyGenerator: the sampled tokens'
log-probabilities come back with them, for TRL's importance-sampling correction); the simulated user
and the judge are the benchmark's roles (any backend spec) behind one call cache, on an event loop of
their own: all conversations' simulator calls go out together, and each reply's judge call starts as
soon as the reply exists, overlapping the next turn.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import GenerationSettings
from aloe_bench.models.roles import Role
from aloe_bench.prompts import PromptTemplate
from aloe_bench.scorers.judge import JudgeProtocol, judge_with_reasks
from aloe_bench.seeds import request_seed
from aloe_bench.solvers.rollout import simulated_user_message

T = TypeVar("T")


@dataclass
class Generated:
    """One policy turn: the generated ids of each sequence, and (from vLLM) each sampled token's
    log-probability under the sampler; None when the generator does not report them."""

    ids: list[list[int]]
    logprobs: list[list[float | None]] | None = None


# The policy: id lists (each sequence so far) -> generated ids, or `Generated` with log-probabilities.
Policy = Callable[[list[list[int]]], "list[list[int]] | Generated"]


def as_generated(result: list[list[int]] | Generated) -> Generated:
    return result if isinstance(result, Generated) else Generated(result)


class LoopThread:
    """An asyncio loop on a thread of its own, so the (synchronous) trainer can hand it simulator
    and judge work and keep generating while that work is in flight."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="aloe-rl-roles", daemon=True)
        self._thread.start()

    def submit(self, coro: Awaitable[T]) -> Future[T]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]

    def run(self, coro: Awaitable[T]) -> T:
        return self.submit(coro).result()

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        with contextlib.suppress(RuntimeError):
            self.loop.close()


@dataclass
class RolloutRoles:
    simulator: Role
    judge: Role
    simulator_prompt: PromptTemplate
    simulator_settings: GenerationSettings
    judge_protocol: JudgeProtocol
    judge_settings: GenerationSettings
    judge_reasks: int = 2
    simulator_retries: int = 2


@dataclass
class Conversation:
    """One rollout: the persona, the text of every turn, and the token sequence GRPO trains on."""

    key: str  # the dataset prompt naming the persona
    persona: dict[str, str]
    conversation_id: str  # seeds: the same persona at the same step opens the same way
    messages: list[dict[str, str]] = field(default_factory=list)  # the policy's view of the chat
    turns: list[dict[str, Any]] = field(default_factory=list)  # {user, assistant, score, judge_raw}
    prompt_ids: list[int] = field(default_factory=list)
    completion_ids: list[int] = field(default_factory=list)
    env_mask: list[int] = field(default_factory=list)
    # the sampler's log-probability of each completion token (0.0 for environment tokens, which the
    # env_mask keeps out of the loss); None once any reply came without them
    logprobs: list[float | None] | None = field(default_factory=list)
    rendered: str = ""  # the chat template's text of prompt_ids + completion_ids
    error: str | None = None
    profile_statement: str | None = None  # with the profile reward: what the policy said it learned
    profile_score: int | None = None
    profile_judge_raw: str | None = None

    def extend(
        self, ids: Sequence[int], trained: bool, logprobs: Sequence[float | None] | None = None
    ) -> None:
        self.completion_ids.extend(ids)
        self.env_mask.extend([1 if trained else 0] * len(ids))
        if self.logprobs is not None:
            if not trained:
                self.logprobs.extend([0.0] * len(ids))
            elif logprobs is not None and len(logprobs) == len(ids):
                self.logprobs.extend(logprobs)
            else:
                self.logprobs = None

    def turn_scores(self) -> list[float | None]:
        return [t.get("score") for t in self.turns]

    def record(self) -> dict[str, Any]:
        return {
            "id": self.conversation_id,
            "persona": self.persona,
            "turns": self.turns,
            "error": self.error,
            **(
                {"profile_statement": self.profile_statement, "profile_score": self.profile_score}
                if self.profile_statement is not None
                else {}
            ),
            "reply_tokens": sum(self.env_mask),
            "environment_tokens": len(self.env_mask) - sum(self.env_mask),
        }


class ChatTokens:
    """Token ids of the chat template, one turn at a time, checked to be append-only."""

    def __init__(self, tokenizer: Any, model_name: str):
        self.tok = tokenizer
        self.model_name = model_name
        eos = tokenizer.eos_token_id
        self.eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}

    def render(self, messages: list[dict[str, str]]) -> str:
        return self.tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def ids(self, text: str) -> list[int]:
        return list(self.tok(text, add_special_tokens=False)["input_ids"])

    def open(self, conv: Conversation, user: str) -> None:
        conv.messages = [{"role": "user", "content": user}]
        conv.rendered = self.render(conv.messages)
        conv.prompt_ids = self.ids(conv.rendered)

    def reply(
        self, conv: Conversation, generated: list[int], logprobs: list[float | None] | None = None
    ) -> str:
        """Append the policy's generated ids; return the reply text (what the others see)."""
        conv.extend(generated, trained=True, logprobs=logprobs)
        text = self.tok.decode(generated, skip_special_tokens=True)
        conv.rendered += text
        conv.messages.append({"role": "assistant", "content": text})
        ended = bool(generated) and generated[-1] in self.eos_ids
        conv.turns[-1]["ended_with_eos"] = ended
        return text

    def next_user(self, conv: Conversation, user: str) -> None:
        """The template's glue after the last reply plus the user's next message (environment tokens)."""
        conv.messages.append({"role": "user", "content": user})
        full = self.render(conv.messages)
        if not full.startswith(conv.rendered):
            raise UserInputError(
                f"the chat template of {self.model_name} rewrites earlier turns when a new one is added "
                "(it is not append-only), so a multi-turn rollout cannot be one token sequence; "
                "train a checkpoint whose template only appends (ChatML, Llama 3, Qwen2.5, SmolLM2)"
            )
        glue = full[len(conv.rendered) :]
        if conv.turns and conv.turns[-1].get("ended_with_eos"):
            # the reply's own end-of-turn token is already in the ids; its text opens the glue
            eos_text = self.tok.decode([conv.completion_ids[-1]], skip_special_tokens=False)
            if glue.startswith(eos_text):
                glue = glue[len(eos_text) :]
        conv.extend(self.ids(glue), trained=False)
        conv.rendered = full


class ConversationRollout:
    """K turns of every conversation in lockstep; `generate(id lists) -> generated id lists` (or
    `Generated`) is the policy (the trainer's weights, or TRL's vLLM engine), the roles are the
    benchmark's. A generator with `collective = True` (vLLM: a collective call across processes in
    server mode and tensor-parallel colocate) is called at every turn even with nothing to generate,
    so that every process makes the same calls."""

    def __init__(
        self,
        roles: RolloutRoles,
        loop: LoopThread,
        chat: ChatTokens,
        generate: Policy,
        *,
        turns: int,
        seed: int,
        profile: PromptTemplate | None = None,
        overlap_judging: bool = True,
    ):
        self.roles = roles
        self.loop = loop
        self.chat = chat
        self.generate = generate
        self.collective = bool(getattr(generate, "collective", False))
        self.turns = turns
        self.seed = seed
        self.profile = profile  # RLPA's profile reward: the question and its judge prompt
        # False: each judge call is awaited before the conversation goes on (the one-call-at-a-time
        # baseline of benchmarks/rl_rollouts.py)
        self.overlap_judging = overlap_judging

    async def _user(self, conv: Conversation, k: int) -> str | None:
        exchanges = [(t["user"], t["assistant"]) for t in conv.turns]
        text, error = await simulated_user_message(
            self.roles.simulator,
            self.roles.simulator_prompt,
            conv.persona,
            exchanges,
            settings=self.roles.simulator_settings,
            run_seed=self.seed,
            conversation_id=conv.conversation_id,
            turn=k,
            retries=self.roles.simulator_retries,
        )
        if text is None:
            conv.error = f"turn {k}: {error}"
        return text

    async def _users(self, convs: list[Conversation], k: int) -> list[str | None]:
        return list(await asyncio.gather(*(self._user(c, k) for c in convs)))

    async def _judge(self, conv: Conversation, index: int) -> None:
        protocol = self.roles.judge_protocol
        messages = protocol.messages(conv.persona, conv.turns, index)
        settings = self.roles.judge_settings.with_seed(
            request_seed(self.seed, conv.conversation_id, index + 1, "judge")
        )
        verdict = await judge_with_reasks(
            self.roles.judge, messages, settings, protocol.prompt.text("reask"), self.roles.judge_reasks
        )
        turn = conv.turns[index]
        turn["score"], turn["judge_raw"], turn["judge_error"] = verdict.score, verdict.raw, verdict.error

    async def _judge_profile(self, conv: Conversation) -> None:
        assert self.profile is not None and conv.profile_statement is not None
        messages = self.profile.render(
            profile=conv.persona["profile"], personality=conv.persona["personality"],
            statement=conv.profile_statement,
        )  # fmt: skip
        settings = self.roles.judge_settings.with_seed(
            request_seed(self.seed, conv.conversation_id, 0, "profile-judge")
        )
        verdict = await judge_with_reasks(
            self.roles.judge, messages, settings, self.profile.text("reask"), self.roles.judge_reasks
        )
        conv.profile_score, conv.profile_judge_raw = verdict.score, verdict.raw

    def _state_profile(self, convs: list[Conversation], judging: list[Future[None]]) -> None:
        """After the last turn: the policy says what it learned; the judge rates it against the truth."""
        assert self.profile is not None
        asked = [c for c in convs if c.error is None and c.turns]
        for conv in asked:
            self.chat.next_user(conv, self.profile.text("question"))
        generated = self._policy(asked)
        for i, (conv, ids) in enumerate(zip(asked, generated.ids, strict=True)):
            conv.extend(ids, trained=True, logprobs=generated.logprobs[i] if generated.logprobs else None)
            conv.profile_statement = self.chat.tok.decode(ids, skip_special_tokens=True)
            judging.append(self.loop.submit(self._judge_profile(conv)))

    def _policy(self, speaking: list[Conversation]) -> Generated:
        if not speaking and not self.collective:
            return Generated([], [])
        return as_generated(self.generate([c.prompt_ids + c.completion_ids for c in speaking]))

    def run(self, convs: list[Conversation]) -> None:
        judging: list[Future[None]] = []
        for k in range(1, self.turns + 1):
            live = [c for c in convs if c.error is None]
            if not live and not self.collective:
                break
            users = self.loop.run(self._users(live, k)) if live else []
            speaking = []
            for conv, user in zip(live, users, strict=True):
                if user is None:
                    continue
                if k == 1:
                    self.chat.open(conv, user)
                else:
                    self.chat.next_user(conv, user)
                conv.turns.append({"user": user, "assistant": None})
                speaking.append(conv)
            if not speaking and not self.collective:
                break
            generated = self._policy(speaking)
            for i, (conv, ids) in enumerate(zip(speaking, generated.ids, strict=True)):
                logprobs = generated.logprobs[i] if generated.logprobs is not None else None
                conv.turns[-1]["assistant"] = self.chat.reply(conv, ids, logprobs)
                # judged while the next turn is generated
                judging.append(self.loop.submit(self._judge(conv, len(conv.turns) - 1)))
                if not self.overlap_judging:
                    judging[-1].result()
        if self.profile is not None:
            self._state_profile(convs, judging)
        for pending in judging:
            pending.result()
        for conv in convs:
            if not conv.completion_ids:  # the simulated user never spoke: nothing to train on
                conv.prompt_ids = conv.prompt_ids or self.chat.ids(self.chat.tok.eos_token or "")
                conv.extend([next(iter(self.chat.eos_ids))], trained=False)
