"""Roles bound to backends (as Inspect's `--model-role`): each role reads the cache first, sends only
what is missing, stores what succeeds, and counts its usage."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from typing import Any

from aloe_bench.models.backends import PRIORITY_CRITICAL, Backend, ChatRequest, Completion
from aloe_bench.models.cache import CallCache, call_key


@dataclass
class Usage:
    calls: int = 0  # requests sent to the backend by this invocation
    cached: int = 0  # requests answered from the call cache
    failed: int = 0  # requests that came back as failures (after the backend's retries)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0  # wall time this role spent waiting on its backend
    # Replies that stopped at max_new_tokens (finish_reason "length"), cached ones included: a cut
    # reply is what the run used, and a role that is always cut needs a larger limit.
    truncated: int = 0
    retries: int = 0  # requests the backend repeated (429s, server errors, timeouts)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["seconds"] = round(self.seconds, 3)
        return d


class Role:
    def __init__(
        self,
        name: str,
        backend: Backend,
        cache: CallCache | None,
        *,
        prompt_version: str | None = None,
        priority: int = PRIORITY_CRITICAL,
    ):
        self.name = name
        self.backend = backend
        self.cache = cache
        self.prompt_version = prompt_version
        self.priority = priority
        self.usage = Usage()
        self._identity: dict[str, Any] | None = None

    @property
    def identity(self) -> dict[str, Any]:
        if self._identity is None:
            self._identity = self.backend.identity()
        return self._identity

    async def generate(self, requests: list[ChatRequest]) -> list[Completion]:
        for request in requests:
            self.backend.check_settings(request.settings)  # never a setting silently ignored
        results: list[Completion | None] = [None] * len(requests)
        keys = [call_key(self.name, self.identity, r, self.prompt_version) for r in requests]
        missing = []
        for i, key in enumerate(keys):
            hit = self.cache.get(key) if self.cache is not None else None
            if hit is not None:
                results[i] = hit
                self.usage.cached += 1
                self.usage.truncated += hit.finish_reason == "length"
            else:
                missing.append(i)
        if missing:
            start = time.perf_counter()
            fresh = await self.backend.generate([requests[i] for i in missing], priority=self.priority)
            self.usage.seconds += time.perf_counter() - start
            for i, completion in zip(missing, fresh, strict=True):
                results[i] = completion
                self.usage.calls += 1
                self.usage.retries += completion.retries
                if completion.ok:
                    self.usage.truncated += completion.finish_reason == "length"
                    self.usage.prompt_tokens += completion.prompt_tokens
                    self.usage.completion_tokens += completion.completion_tokens
                    if self.cache is not None:
                        self.cache.put(keys[i], self.name, self.backend.spec, completion)
                else:
                    self.usage.failed += 1
        return results  # type: ignore[return-value]

    async def generate_one(self, request: ChatRequest) -> Completion:
        return (await self.generate([request]))[0]
