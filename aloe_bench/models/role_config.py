"""One role of a run (model under test, simulated user, judge, auditor): which backend, how it generates.

Every task's config is built of these, and the models layer turns them into backends, so the type
lives in the models layer, below the engine and the tasks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import GenerationSettings, normalize_spec
from aloe_bench.models.backends.base import redact_args


@dataclass
class RoleConfig:
    """One role: which backend (spec + arguments) and how it generates."""

    spec: str
    args: dict[str, str] = field(default_factory=dict)
    max_new_tokens: int | None = None  # None: the role's default (per protocol / prompt template)
    temperature: float | None = None  # None: the backend's own default
    top_p: float | None = None
    repetition_penalty: float | None = None  # None: the backend's own default

    def settings(self, default_max_new_tokens: int) -> GenerationSettings:
        return GenerationSettings(
            max_new_tokens=self.max_new_tokens or default_max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
        )

    def validate(self) -> None:
        normalize_spec(self.spec)
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UserInputError(f"max new tokens for {self.spec} must be at least 1")
        if self.temperature is not None and self.temperature < 0:
            raise UserInputError(f"temperature for {self.spec} cannot be negative")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise UserInputError(
                f"repetition penalty for {self.spec} must be positive (1.0 = none; Janus used 1.03), "
                f"got {self.repetition_penalty}"
            )

    def record(self) -> dict[str, Any]:
        record = {
            "spec": normalize_spec(self.spec),
            "args": redact_args(self.args),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        if self.repetition_penalty is not None:  # absent when unset: older config hashes unchanged
            record["repetition_penalty"] = self.repetition_penalty
        return record
