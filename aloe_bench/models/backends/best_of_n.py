"""`bon/N:POLICY@RM`: best-of-N sampling, a backend like any other (usable in every role).

Each request is sent N times to the policy (any backend spec: `embedded`, `hf/...`, `openai/...`,
`vllm/...`), candidate i with seed `seed + i` (candidate 0 is what the policy alone answers for the
request), and the reply is the candidate the reward model RM (a TRL RewardTrainer checkpoint, see
`reward_model.py`) scores highest; ties go to the lowest index. The answer carries every candidate
with its reward (`Completion.meta["best_of_n"]`), which the solvers keep in the transcript and the
call cache keeps for resumed runs.

Costs: the completion's token counts are the sums over the N candidates (what the policy was sent
and produced), so a role's usage and its price are those of N calls; the reward model runs locally.

Backend arguments (`--model-args`) go to the policy, except `rm_*` ones, which go to the reward
model (`rm_device`, `rm_dtype`, `rm_batch_size`, ...).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.base import (
    PRIORITY_CRITICAL,
    Backend,
    ChatRequest,
    Completion,
    GenerationSettings,
)

PROVIDER = "bon"
SYNTAX = "bon/N:POLICY_SPEC@RM_PATH (e.g. bon/4:embedded@./runs/rm)"
RM_ARG_PREFIX = "rm_"


def parse_bon_name(name: str) -> tuple[int, str, str]:
    """`N:POLICY@RM` (the part after `bon/`) -> (N, policy spec, reward model path or hub id)."""
    count, colon, rest = name.partition(":")
    policy, at, reward = rest.rpartition("@")
    if not colon or not at or not policy.strip() or not reward.strip():
        raise UserInputError(f"best-of-N spec bon/{name} is malformed: write {SYNTAX}")
    try:
        n = int(count)
    except ValueError:
        raise UserInputError(f"best-of-N spec bon/{name}: N must be a whole number, got {count!r}") from None
    if n < 1:
        raise UserInputError(f"best-of-N spec bon/{name}: N must be at least 1, got {n}")
    if policy.strip().startswith(f"{PROVIDER}/"):
        raise UserInputError(f"best-of-N spec bon/{name}: the policy cannot itself be a best-of-N spec")
    return n, policy.strip(), reward.strip()


def is_best_of_n(spec: str | None) -> bool:
    return bool(spec) and str(spec).strip().startswith(f"{PROVIDER}/")


def served_spec(spec: str) -> str:
    """The spec that answers the calls: a best-of-N spec's policy, any other spec itself (prices and
    API concurrency are the policy's)."""
    if is_best_of_n(spec):
        return served_spec(parse_bon_name(spec.strip()[len(PROVIDER) + 1 :])[1])
    return spec


def candidates_per_call(spec: str) -> int:
    """Policy calls behind one call of `spec` (N for best-of-N, else 1)."""
    return parse_bon_name(spec.strip()[len(PROVIDER) + 1 :])[0] if is_best_of_n(spec) else 1


def candidate_seed(seed: int | None, index: int) -> int:
    """Candidate `index`'s seed: the request's own for the first, then the next ones (mod 2^32)."""
    return ((seed or 0) + index) % 2**32


class BestOfNBackend(Backend):
    provider = PROVIDER

    def __init__(
        self,
        name: str,
        args: dict[str, Any] | None = None,
        *,
        make_backend: Callable[[str, dict[str, Any]], Backend],
    ):
        """`make_backend(spec, args)` builds the policy: the provider registry hands it in, so this
        module never imports the registry that imports it."""
        super().__init__(name, args)
        from aloe_bench.models.backends.reward_model import RewardModel

        self.n, policy_spec, reward_source = parse_bon_name(name)
        policy_args = {k: v for k, v in self.args.items() if not k.startswith(RM_ARG_PREFIX)}
        reward_args = {
            k[len(RM_ARG_PREFIX) :]: v for k, v in self.args.items() if k.startswith(RM_ARG_PREFIX)
        }
        self.policy: Backend = make_backend(policy_spec, policy_args)
        self.reward = RewardModel(reward_source, reward_args)
        self.stats = {"candidates": 0, "reward_scored": 0, "reward_seconds": 0.0}

    @property
    def spec(self) -> str:
        return f"{PROVIDER}/{self.n}:{self.policy.spec}@{self.reward.source}"

    def check(self) -> None:
        self.policy.check()
        self.reward.check()

    def check_settings(self, settings: GenerationSettings) -> None:
        if settings.temperature == 0 and self.n > 1:
            raise UserInputError(
                f"{self.spec} samples {self.n} candidates, but this role's temperature is 0 (greedy): "
                "they would all be the same reply; set a temperature above 0 (Janus: 1.0)"
            )
        self.policy.check_settings(settings)

    def identity(self) -> dict[str, Any]:
        return {
            "spec": f"{PROVIDER}/{self.n}",
            "n": self.n,
            "policy": self.policy.identity(),
            "reward_model": {**self.reward.identity(), "format": self.reward.format},
        }

    def describe(self) -> dict[str, Any]:
        return {**self.identity(), "policy": self.policy.describe()}

    def system_role(self) -> str:
        return self.policy.system_role()

    def rate_stats(self) -> dict[str, Any]:
        """Recorded in the role's usage: the policy's calls behind the role's, and the scoring time;
        with an API policy, its retries and concurrency too."""
        stats: dict[str, Any] = {
            "best_of_n_candidates": self.stats["candidates"],
            "reward_model_seconds": round(self.stats["reward_seconds"], 3),
        }
        policy_stats = getattr(self.policy, "rate_stats", None)
        if policy_stats is not None:
            stats.update(policy_stats())
        return stats

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        expanded = [
            ChatRequest(r.messages, replace(r.settings, seed=candidate_seed(r.settings.seed, i)))
            for r in requests
            for i in range(self.n)
        ]
        answers = await self.policy.generate(expanded, priority=priority)
        self.stats["candidates"] += len(answers)
        groups = [answers[k * self.n : (k + 1) * self.n] for k in range(len(requests))]
        pairs = [
            (r.messages, c.text or "")
            for r, group in zip(requests, groups, strict=True)
            for c in group
            if c.ok
        ]
        start = time.perf_counter()
        rewards = iter(await asyncio.to_thread(self.reward.score, pairs) if pairs else [])
        self.stats["reward_seconds"] += time.perf_counter() - start
        self.stats["reward_scored"] += len(pairs)
        return [
            self._choose(request, group, [next(rewards) if c.ok else None for c in group])
            for request, group in zip(requests, groups, strict=True)
        ]

    def _choose(
        self, request: ChatRequest, group: list[Completion], rewards: list[float | None]
    ) -> Completion:
        scored = [i for i, r in enumerate(rewards) if r is not None]
        if not scored:
            return Completion.failure(f"all {self.n} best-of-N candidates failed: {group[0].error}")
        best = max(scored, key=lambda i: (rewards[i], -i))  # the highest reward; ties: the first
        chosen = group[best]
        base_seed = request.settings.seed
        record = {
            "n": self.n,
            "chosen": best,
            "format": self.reward.format,
            "candidates": [
                {
                    "text": c.text,
                    "reward": rewards[i],
                    "seed": candidate_seed(base_seed, i),
                    "finish_reason": c.finish_reason,
                    "completion_tokens": c.completion_tokens,
                    **({"error": c.error} if c.error else {}),
                }
                for i, c in enumerate(group)
            ],
        }
        return Completion(
            text=chosen.text,
            finish_reason=chosen.finish_reason,
            # Every candidate was asked and generated: usage and cost are N calls' worth.
            prompt_tokens=sum(c.prompt_tokens for c in group),
            completion_tokens=sum(c.completion_tokens for c in group),
            retries=sum(c.retries for c in group),
            meta={"best_of_n": record},
        )

    async def aclose(self) -> None:
        await self.policy.aclose()
        self.reward.close()
