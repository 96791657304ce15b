"""`control/generic`: the floor of an ALOE score, a reply policy that needs no model.

Each reply is one of a fixed set of polite, persona-blind acknowledgements shipped with the project
(`prompts/control_generic.yaml`), picked by a SHA-256 of the last user message: deterministic, the
same for every seed, and never tailored to the person (it uses nothing the user said). A run of it
goes through the normal simulated user and judge, so its scores are what "not adapting at all"
earns under that judge: the floor that `compare --floor` and the leaderboard read a model against.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import yaml

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.base import PRIORITY_CRITICAL, Backend, ChatRequest, Completion

POLICY_FILE = "control_generic.yaml"
POLICIES = ("generic",)


def _load_policy() -> tuple[list[str], dict[str, str]]:
    from importlib import resources

    raw = (resources.files("aloe_bench.prompts") / POLICY_FILE).read_bytes()
    data = yaml.safe_load(raw)
    record = {
        "name": data["name"],
        "version": str(data["version"]),
        "sha256": hashlib.sha256(raw).hexdigest(),
    }
    return [str(r) for r in data["replies"]], record


def pick_reply(replies: list[str], message: str) -> str:
    digest = hashlib.sha256(message.encode()).digest()
    return replies[int.from_bytes(digest[:4], "little") % len(replies)]


class ControlBackend(Backend):
    provider = "control"
    # Its replies are picked, not sampled: no generation setting (temperature, penalty) changes them,
    # so a run that sets one for every role (a generation preset) still takes the floor.
    takes_repetition_penalty = True

    def __init__(self, name: str, args: Mapping[str, Any] | None = None):
        super().__init__(name, args)
        if name not in POLICIES:
            raise UserInputError(f"unknown control policy control/{name}: use control/generic")
        if self.args:
            raise UserInputError(
                f"control/{name} takes no backend arguments (got {', '.join(sorted(self.args))})"
            )
        self.replies, self.policy = _load_policy()

    def identity(self) -> dict[str, Any]:
        # The policy file's hash is part of every cache key: editing the replies is a new policy.
        return {**super().identity(), "policy": self.policy}

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        out = []
        for request in requests:
            last = next((m["content"] for m in reversed(request.messages) if m["role"] == "user"), "")
            reply = pick_reply(self.replies, last)
            prompt_tokens = sum(len(m["content"].split()) for m in request.messages)
            out.append(Completion(reply, prompt_tokens=prompt_tokens, completion_tokens=len(reply.split())))
        return out
