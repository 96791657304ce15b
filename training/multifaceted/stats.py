"""What each stage asked, kept and dropped (by cause), and the tokens its answers used."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aloe_bench.models.backends import Completion

STAGES = ("subdimensions", "preferences", "system", "response", "rubric")


@dataclass
class StageStats:
    items: int = 0  # what the stage had to make (one per call site, re-asks not counted)
    answers: int = 0  # answers read (re-asks included; cached answers included)
    kept: int = 0  # items made
    rejected: dict[str, int] = field(default_factory=dict)  # answers rejected, by cause
    dropped: dict[str, int] = field(default_factory=dict)  # items lost, by the cause of their last answer
    prompt_tokens: int = 0  # over every answer read, cached or not (what the collection cost)
    completion_tokens: int = 0
    last_error: str | None = None

    def answer(self, c: Completion, cause: str | None) -> None:
        self.answers += 1
        self.prompt_tokens += c.prompt_tokens
        self.completion_tokens += c.completion_tokens
        if cause is not None:
            self.rejected[cause] = self.rejected.get(cause, 0) + 1
            if c.error:
                self.last_error = c.error

    def drop(self, cause: str, n: int = 1) -> None:
        self.dropped[cause] = self.dropped.get(cause, 0) + n

    def to_dict(self) -> dict[str, Any]:
        return {
            "items": self.items,
            "answers": self.answers,
            "kept": self.kept,
            "rejected_answers": dict(sorted(self.rejected.items())),
            "dropped_items": dict(sorted(self.dropped.items())),
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
        }


def new_stats() -> dict[str, StageStats]:
    return {s: StageStats() for s in STAGES}
