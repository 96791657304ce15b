"""The LLM auditor: any backend, a fixed parseable answer format, re-asks and nulls like the judge.

Per turn it gets the numbered facts, the other side's last reply and the simulated user's message,
and answers one `F<n>: yes|no` line per fact, then `ROLE: ...`, `ADVICE: yes|no`,
`CONTRADICTS: ...` (prompt `auditor.yaml`, versioned, its hash recorded). An answer missing any
line is re-asked (`aloe_bench.scorers.judge.judge_with_reasks`, bounded); if it stays unreadable the turn is
recorded as invalid (`revealed: null`) with the raw answer, and counted, never guessed. Every call
goes through the call cache as role `auditor`, so re-auditing a run makes no new calls.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aloe_bench.models.backends import GenerationSettings
from aloe_bench.prompts import PromptTemplate, load_prompt
from aloe_bench.scorers.judge import judge_with_reasks
from aloe_bench.seeds import request_seed

PROMPT_FILE = "auditor.yaml"

# The auditor's ROLE words -> the role-break codes of aloe_bench.scorers.audit.checks.
ROLE_WORDS = {
    "assistant": "assistant-speak",
    "ai": "ai-mention",
    "self-answer": "answers-own-question",
    "leak": "instruction-leak",
}
# "F3: yes or no" is the format line parroted back, not an answer.
_FACT_LINE = re.compile(r"^\W*F(\d+)\W*[:=\-]\W*(yes|no)\b(?!\s*or\b)", re.I | re.M)
_FIELD = re.compile(r"^\W*(ROLE|ADVICE|CONTRADICTS)\W*[:=]\s*(.*)$", re.I | re.M)


@dataclass(frozen=True)
class AuditAnswer:
    revealed: list[int]  # 0-based fact indices
    role_breaks: list[str]
    advice: bool
    contradictions: list[int]


def parse_audit_answer(text: str | None, n_facts: int) -> AuditAnswer | None:
    """The answer, or None when any required line is missing or unreadable."""
    if not text:
        return None
    verdicts: dict[int, bool] = {}
    for number, verdict in _FACT_LINE.findall(text):
        verdicts.setdefault(int(number), verdict.lower() == "yes")
    if set(range(1, n_facts + 1)) - set(verdicts):
        return None
    fields = {name.upper(): value.strip() for name, value in _FIELD.findall(text)}
    if set(fields) != {"ROLE", "ADVICE", "CONTRADICTS"}:
        return None
    advice = fields["ADVICE"].lower()
    if not advice.startswith(("yes", "no")):
        return None
    roles: list[str] = []
    for word in re.split(r"[,\s;]+", fields["ROLE"].lower()):
        word = word.strip(".`*'\"")
        if word in ROLE_WORDS:
            roles.append(ROLE_WORDS[word])
        elif word not in ("", "none", "or"):
            return None
    contradictions = sorted(
        {int(n) - 1 for n in re.findall(r"F(\d+)", fields["CONTRADICTS"], re.I) if 1 <= int(n) <= n_facts}
    )
    if not contradictions and not fields["CONTRADICTS"].lower().startswith("none"):
        return None
    return AuditAnswer(
        revealed=[i - 1 for i in sorted(verdicts) if i <= n_facts and verdicts[i]],
        role_breaks=roles,
        advice=advice.startswith("yes"),
        contradictions=contradictions,
    )


def parse_facts_answer(text: str | None) -> list[str] | None:
    facts = [m.strip() for m in re.findall(r"^\s*[-*•]\s+(.+)$", text or "", re.M) if m.strip()]
    return facts or None


@dataclass
class LLMAuditor:
    """Asks `role` (an aloe_bench.models.roles.Role named `auditor`) about one turn, or to split a profile."""

    role: object
    settings: GenerationSettings
    reasks: int = 2
    seed: int = 0
    prompt: PromptTemplate = load_prompt(PROMPT_FILE)

    async def audit_turn(
        self, conversation_id: str, turn: int, facts: list[str], reply: str, message: str
    ) -> tuple[AuditAnswer | None, str | None, int]:
        """(answer or None, last raw text, attempts)."""
        messages = self.prompt.render(facts=facts, reply=reply, message=message, turn=turn)
        settings = self.settings.with_seed(request_seed(self.seed, conversation_id, turn, "auditor"))
        result = await judge_with_reasks(
            self.role,
            messages,
            settings,
            self.prompt.text("reask"),
            self.reasks,
            parse=lambda text: parse_audit_answer(text, len(facts)),
        )
        return result.score, result.raw, result.attempts

    async def split_facts(self, profile: str) -> list[str] | None:
        messages = [{"role": "user", "content": self.prompt.text("facts", profile=profile)}]
        result = await judge_with_reasks(
            self.role,
            messages,
            self.settings.with_seed(request_seed(self.seed, profile, 0, "facts")),
            self.prompt.text("facts_reask"),
            self.reasks,
            parse=parse_facts_answer,
        )
        return result.score
