"""A backend provider registered from outside the package (Inspect's `@modelapi` habit) is a spec
every role can use, through the same pool, engine and run log as the built-in ones."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from aloe_bench.models.backends import (
    PRIORITY_CRITICAL,
    PROVIDERS,
    Backend,
    ChatRequest,
    Completion,
    register_provider,
)
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_bench.tasks.aloe.run import run_benchmark


class ScriptedBackend(Backend):
    """Knows its role from its model name: a judge says its verdict, others say which turn it is."""

    provider = "scripted"

    def __init__(self, name: str, args: Mapping[str, Any] | None = None):
        super().__init__(name, args)
        self.calls = 0

    async def generate(
        self, requests: list[ChatRequest], *, priority: int = PRIORITY_CRITICAL
    ) -> list[Completion]:
        self.calls += len(requests)
        if self.name == "judge":
            return [Completion("Score: 4", prompt_tokens=1, completion_tokens=2) for _ in requests]
        return [
            Completion(f"{self.name} message {len(r.messages)}", prompt_tokens=1, completion_tokens=3)
            for r in requests
        ]


@pytest.fixture
def scripted_provider():
    register_provider("scripted", ScriptedBackend)
    yield
    del PROVIDERS["scripted"]


def test_registered_provider_runs_every_role(scripted_provider, tmp_path):
    config = RunConfig(
        model=RoleConfig("scripted/model"),
        simulator=RoleConfig("scripted/user"),
        judge=RoleConfig("scripted/judge"),
        personas="demo",
        limit=2,
        turns=2,
        output=str(tmp_path / "run"),
        cache="",
    )
    _, results = run_benchmark(config, progress=False)
    assert results.status == "complete"
    assert results.metrics.al == [4.0, 4.0]
    assert results.config.model.spec == "scripted/model"
    assert results.usage["judge"].calls == 4  # 2 conversations x 2 turns, no re-asks


def test_a_provider_name_is_registered_once(scripted_provider):
    with pytest.raises(ValueError, match="taken"):
        register_provider("scripted", ScriptedBackend)
    with pytest.raises(ValueError, match="'/'"):
        register_provider("a/b")(ScriptedBackend)
