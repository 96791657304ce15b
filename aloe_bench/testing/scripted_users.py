"""A synthetic world for auditing the auditor: an OpenAI-compatible server on 127.0.0.1 whose
simulated user says exactly what a script says at each turn (and whose LLM auditor, if asked,
answers what the script says), so the disclosure curve and the role breaks are known by construction.

The model under test and the judge get the fault-injection server's usual answers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aloe_bench.prompts import load_prompt
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


@dataclass
class ScriptedPersona:
    profile: str
    personality: str
    messages: list[str]  # the simulated user's message at turn 1, 2, ...
    audit_answers: list[str] = field(default_factory=list)  # the LLM auditor's answer at turn 1, 2, ...

    def to_dict(self) -> dict[str, str]:
        return {"profile": self.profile, "personality": self.personality}


def _opening(filename: str) -> str:
    """The first words of a prompt's system message: how the server tells the roles apart."""
    return load_prompt(filename).messages[0]["content"].strip()[:40]


class ScriptedUserServer(FakeOpenAIServer):
    UNREADABLE = "Let me think about this message for a moment."

    def __init__(
        self,
        personas: list[ScriptedPersona],
        behaviour: FakeBehaviour | None = None,
        *,
        unreadable_first: bool = False,  # the auditor's first answer to every turn cannot be parsed
    ):
        super().__init__(behaviour)
        self.personas = personas
        self.unreadable_first = unreadable_first
        self.role_requests: dict[str, int] = {"simulator": 0, "auditor": 0, "other": 0}
        self._simulator = _opening("simulator.yaml")
        self._auditor = _opening("auditor.yaml")
        self._facts = load_prompt("auditor.yaml").texts["facts"].strip()[:40]

    def _answer(self, body: dict[str, Any]) -> str:
        messages = body.get("messages", [])
        system = messages[0]["content"] if messages and messages[0]["role"] == "system" else ""
        if system.startswith(self._simulator):
            self.role_requests["simulator"] += 1
            persona = next(p for p in self.personas if p.profile in system and p.personality in system)
            turn = sum(m["role"] == "assistant" for m in messages) + 1
            return persona.messages[turn - 1]
        if messages and messages[0]["content"].startswith(self._facts):  # --facts llm: one fact per sentence
            self.role_requests["auditor"] += 1
            persona = next(p for p in self.personas if p.profile in messages[0]["content"])
            return "\n".join(f"- {s.strip().rstrip('.')}" for s in persona.profile.split(". ") if s.strip())
        if system.startswith(self._auditor):
            self.role_requests["auditor"] += 1
            prompt = messages[1]["content"]
            for persona in self.personas:
                for turn, message in enumerate(persona.messages, start=1):
                    if f"turn {turn}:\n{message}" in prompt and persona.profile.split(".")[0] in prompt:
                        if self.unreadable_first and len(messages) == 2:
                            return self.UNREADABLE
                        return persona.audit_answers[turn - 1]
            return self.UNREADABLE
        self.role_requests["other"] += 1
        return super()._answer(body)
