"""What the audit records per conversation (`audit.jsonl`, one object per line)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class TurnAudit:
    turn: int
    revealed: list[int] | None  # 0-based indices of the facts this message reveals; None: unreadable
    role_breaks: list[str] = field(default_factory=list)
    advice_request: bool = False
    repeated_advice: bool = False
    contradictions: list[int] | None = None  # None: not checked (the offline auditor cannot)
    raw: str | None = None  # the LLM auditor's answer
    attempts: int = 0

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "turn": self.turn,
            "revealed": self.revealed,
            "role_breaks": self.role_breaks,
            "advice_request": self.advice_request,
            "repeated_advice": self.repeated_advice,
            "contradictions": self.contradictions,
        }
        if self.raw is not None or self.attempts:
            out["raw"], out["attempts"] = self.raw, self.attempts
        return out


@dataclass
class ConversationAudit:
    id: str
    status: str
    facts: list[str]
    turns: list[TurnAudit]
    messages: list[str] = field(default_factory=list, repr=False)  # for examples; not written

    @property
    def first_revealed(self) -> list[int | None]:
        """Per fact, the first turn whose message revealed it (None: never)."""
        first: list[int | None] = [None] * len(self.facts)
        for t in self.turns:
            for i in t.revealed or []:
                if 0 <= i < len(first) and first[i] is None:
                    first[i] = t.turn
        return first

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "status": self.status,
            "facts": self.facts,
            "first_revealed": self.first_revealed,
            "turns": [t.to_dict() for t in self.turns],
        }
