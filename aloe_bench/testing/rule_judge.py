"""A judge whose scores are known by construction, for tests of training: `rule-word/WORD` rates a
reply 1 + (how many times WORD occurs in it, at most 4), reading the reply out of the ALOE judge
prompt (aloe-v1), or the stated profile out of the RL profile-reward prompt. A policy trained against it must learn to say WORD more often, so a rising mean
reward shows that the plumbing from rollout to judge to gradient works, not only that it runs.

Registered as a provider when this module is imported (tests only; never by the harness itself).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from aloe_bench.models.backends import PROVIDERS, register_provider
from aloe_bench.models.backends.base import PRIORITY_CRITICAL, Backend, ChatRequest, Completion

PROVIDER = "rule-word"
# The text rated: the reply in an ALOE judge prompt, or the stated profile in aloe-train rl's profile
# reward prompt (training/prompts/rl_profile.yaml).
_RATED = re.compile(r"(?:The model's reply|The description):\n(.*?)\n\nAnswer with one integer", re.S)


def word_score(reply: str, word: str) -> int:
    count = len(re.findall(rf"\b{re.escape(word)}\b", reply, flags=re.I))
    return 1 + min(4, count)


class RuleWordJudge(Backend):
    provider = PROVIDER

    def __init__(self, name: str, args: Mapping[str, Any] | None = None):
        super().__init__(name, args)
        if not name.strip():
            raise ValueError("rule-word/WORD needs the word to reward")
        self.word = name.strip()

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        out = []
        for request in requests:
            match = _RATED.search(request.messages[-1]["content"])
            if match is None:
                out.append(Completion.failure("rule-word judges aloe-v1 and rl profile prompts only"))
                continue
            out.append(Completion(str(word_score(match.group(1), self.word)), completion_tokens=1))
        return out


if PROVIDER not in PROVIDERS:
    register_provider(PROVIDER, RuleWordJudge)
