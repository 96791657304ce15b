"""Per-turn role and protocol checks on a simulated-user message (offline, deterministic).

Role breaks (codes, as recorded in audit.jsonl and results.json):
- `assistant-speak`: talks like a service assistant ("How can I assist you?", "I'm here to help").
- `ai-mention`: mentions being an AI, a language model, a bot, a simulation or a role-play.
- `answers-own-question`: writes the other side's turn too (a question followed, in the same
  message, by a line tagged as the other speaker: "Assistant: ...", "Friend: ...", "You: ...").
  Unmarked self-answers are left to the LLM auditor.
- `instruction-leak`: repeats the simulator's instructions (a run of SHINGLE consecutive words shared
  with the fixed part of the simulator prompt).
- `persona-recited`: recites its description (verbatim runs of RECITE_SHINGLE words covering at
  least RECITE_FRACTION of the profile's words): a person never reads their own profile out.

Advice requests: a message asks for advice, help or recommendations ("any tips?", "what should I
do", "can you recommend ..."). The protocol says the user should not keep doing so: every asking
turn after the first asking turn of the conversation is a repeated request.
"""

from __future__ import annotations

import re

from aloe_bench.scorers.audit.text import shingles, words

ROLE_BREAK_CODES = (
    "assistant-speak",
    "ai-mention",
    "answers-own-question",
    "instruction-leak",
    "persona-recited",
)

SHINGLE = 6  # no natural chat message shares six words in a row with the instructions by chance
RECITE_SHINGLE = 8
RECITE_FRACTION = 0.4

_ASSISTANT = re.compile(
    r"\bhow (?:can|may|could) i (?:help|assist)(?: you)?\b|\bhow can i be of (?:help|assistance)\b"
    r"|\bi(?:'m| am) here to (?:help|assist)\b|\bis there anything (?:else )?i can (?:help|do)\b"
    r"|\b(?:i'd|i would) be (?:happy|glad) to (?:help|assist)\b|\bfeel free to ask\b"
    r"|\blet me know if you (?:have any|need)\b|\bwhat can i (?:help|do for) you\b",
    re.I,
)
_AI = re.compile(
    r"\bas an? (?:ai|artificial intelligence|language model|assistant|chatbot|bot)\b"
    r"|\bi(?:'m| am) (?:just )?(?:an? )?(?:ai|artificial intelligence|language model|chatbot|bot|"
    r"virtual assistant|ai assistant|assistant)\b|\blanguage model\b|\b(?:ai|virtual) assistant\b"
    r"|\bsimulat(?:ion|ed|ing) (?:user|person|conversation|human)\b|\bthis (?:is a )?(?:role-?play|simulation)\b"
    r"|\brole-?play(?:ing)?\b|\bi don't have (?:personal )?(?:experiences|feelings|a body)\b",
    re.I,
)
_OTHER_SPEAKER = re.compile(
    r"\n\s*(?:assistant|ai|bot|friend|you|them|model|response|reply|a)\s*:\s*\S", re.I
)
_ADVICE = re.compile(
    r"\b(?:any|some|got any|have any|give me (?:some|any)?)\s*(?:advice|tips|suggestions|recommendations|ideas)\b"
    r"|\bwhat (?:should|would|do you think) i (?:should )?(?:do|try|get|buy|say|pick|choose)\b"
    r"|\bwhat do you (?:recommend|suggest|advise)\b|\b(?:can|could|would) you (?:help me|recommend|suggest|advise)\b"
    r"|\bhow (?:do|can|should) i (?:get|deal|handle|start|make|fix|improve|stop|find)\b"
    r"|\bshould i\b|\bwhat would you do\b|\bi need (?:your )?(?:advice|help)\b",
    re.I,
)


def instruction_text(system_prompt: str, profile: str, personality: str) -> str:
    """The simulator prompt's fixed wording: its text with the persona taken out."""
    return system_prompt.replace(profile, " ").replace(personality, " ")


class RoleChecks:
    """Role-break and advice checks for one conversation (knows its persona and the instructions)."""

    def __init__(self, instructions: str, profile: str):
        self._instruction_shingles = shingles(instructions, SHINGLE)
        self._profile_words = words(profile)
        self._profile_shingles = shingles(profile, RECITE_SHINGLE)

    def role_breaks(self, message: str) -> list[str]:
        found = []
        if _ASSISTANT.search(message):
            found.append("assistant-speak")
        if _AI.search(message):
            found.append("ai-mention")
        question = message.find("?")
        if question >= 0 and _OTHER_SPEAKER.search(message[question:]):
            found.append("answers-own-question")
        if shingles(message, SHINGLE) & self._instruction_shingles:
            found.append("instruction-leak")
        if self._recites(message):
            found.append("persona-recited")
        return found

    def _recites(self, message: str) -> bool:
        shared = shingles(message, RECITE_SHINGLE) & self._profile_shingles
        if not shared or not self._profile_words:
            return False
        covered: set[int] = set()
        w = self._profile_words
        for i in range(len(w) - RECITE_SHINGLE + 1):
            if tuple(w[i : i + RECITE_SHINGLE]) in shared:
                covered.update(range(i, i + RECITE_SHINGLE))
        return len(covered) >= RECITE_FRACTION * len(w)


def asks_for_advice(message: str) -> bool:
    return bool(_ADVICE.search(message))


def advice_flags(asks: list[bool]) -> list[bool]:
    """Per turn: a repeated advice request (an ask after the conversation's first asking turn)."""
    seen = False
    out = []
    for ask in asks:
        out.append(ask and seen)
        seen = seen or ask
    return out
