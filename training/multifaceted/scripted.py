"""A generator whose every answer is known by construction, for tests and the benchmark: the
project's fake OpenAI server (a real HTTP server on 127.0.0.1) answering the synthesis prompts
with text computed from the request, and misbehaving on purpose for instructions that carry a tag:

    [few-subdims]   the subdimension list has one item            -> too_few_items (stage 1)
    [bad-prefs]     preference lines without `keyword: description` -> malformed (stage 2)
    [refuse]        every system message is a refusal               -> refusal (stage 3)
    [same-system]   the same system message for every set           -> near_duplicate (gate)
    [bad-rubric]    a rubric without its Score lines                -> malformed (stage 5)

`expected_*` give what the synthesis must write for an instruction; `malformed` counts what was
sent wrong, per stage and cause, so a test can check that every bad answer was counted.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections import Counter
from typing import Any

from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

_QUOTED = re.compile(r'"""(.*?)"""', re.S)
_COUNT = re.compile(r"List (\d+) different subdimensions of (.+?) that", re.S)
_DIMENSION = re.compile(r"Preference dimension: (.+?) \(", re.S)
_SUB_LINE = re.compile(r"^(\d+)\. (.+)$", re.M)
_PREF_LINE = re.compile(r"^- (.+?) / (.+?): (.+?): (.+)$", re.M)
_RUBRIC_PREF = re.compile(r"The user's preference \((.+?) / (.+?)\): (.+?): ", re.S)


def tag(instruction: str) -> str:
    return hashlib.sha256(instruction.encode()).hexdigest()[:6]


# Distinct words per set, so the system messages of one instruction differ as real ones do.
WORDS = ("amber", "cobalt", "crimson", "emerald", "indigo", "saffron", "violet", "umber", "teal", "ochre")


def expected_subdimensions(instruction: str, dimension_label: str, count: int) -> list[str]:
    initials = "".join(w[0] for w in dimension_label.split())
    return [f"{WORDS[(k - 1) % len(WORDS)]}-{initials} {k}" for k in range(1, count + 1)]


def expected_preference(sub: str) -> tuple[str, str]:
    """(keyword, description) the server writes under a subdimension."""
    return sub.replace(" ", "-"), f"The answer attends to {sub} first."


def expected_system(instruction: str, keywords: list[str]) -> str:
    return f"You are a guide ({tag(instruction)}); this user wants {', '.join(keywords)}."


def expected_response(instruction: str, system: str) -> str:
    return f"Answer {tag(instruction)} for {hashlib.sha256(system.encode()).hexdigest()[:8]}."


def expected_rubric(keyword: str) -> dict[str, Any]:
    return {
        "criteria": f"Does the answer follow {keyword}?",
        "score_descriptions": {str(k): f"level {k} of {keyword}" for k in range(1, 6)},
    }


class ScriptedGenerator:
    """Answers the five synthesis prompts (see the module docstring); thread-safe counters."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.malformed: Counter[tuple[str, str]] = Counter()  # (stage, cause) -> answers sent wrong
        self.answers: Counter[str] = Counter()  # stage -> answers sent

    def _count(self, stage: str, cause: str | None = None) -> None:
        with self._lock:
            self.answers[stage] += 1
            if cause:
                self.malformed[(stage, cause)] += 1

    def answer(self, messages: list[dict[str, str]]) -> str:
        system = messages[0]["content"] if messages else ""
        user = messages[-1]["content"] if messages else ""
        quoted = _QUOTED.search(user)
        instruction = quoted.group(1).strip() if quoted else user.strip()
        if system.startswith("You help build a dataset") and "List " in user:
            m = _COUNT.search(user)
            count, label = (int(m.group(1)), m.group(2).strip()) if m else (3, "dimension")
            if "[few-subdims]" in instruction:
                self._count("subdimensions", "too_few_items")
                return f"1. {expected_subdimensions(instruction, label, 1)[0]}"
            self._count("subdimensions")
            return "\n".join(
                f"{k}. {s}" for k, s in enumerate(expected_subdimensions(instruction, label, count), start=1)
            )
        if system.startswith("You help build a dataset"):
            body = user.split('"""', 2)[-1]
            subs = [(n, s.strip()) for n, s in _SUB_LINE.findall(body.split("Answer with exactly")[0])]
            if "[bad-prefs]" in instruction:
                self._count("preferences", "malformed")
                return "\n".join(f"{n}. a preference about {s} with no colon" for n, s in subs)
            self._count("preferences")
            return "\n".join(
                f"{n}. {expected_preference(s)[0]}: {expected_preference(s)[1]}" for n, s in subs
            )
        if system.startswith("You write system messages"):
            if "[refuse]" in instruction:
                self._count("system", "refusal")
                return "I'm sorry, but I can't help with that."
            keywords = [m[2] for m in _PREF_LINE.findall(user)]
            if "[same-system]" in instruction:
                keywords = ["one and the same"]
            self._count("system")
            return expected_system(instruction, keywords)
        if system.startswith("You write score rubrics"):
            m = _RUBRIC_PREF.search(user)
            keyword = m.group(3) if m else "?"
            if "[bad-rubric]" in instruction:
                self._count("rubric", "malformed")
                return f"Criteria: Does the answer follow {keyword}?\nIt is fine."
            self._count("rubric")
            r = expected_rubric(keyword)
            return "\n".join(
                [f"Criteria: {r['criteria']}"]
                + [f"Score {k}: {v}" for k, v in r["score_descriptions"].items()]
            )
        self._count("response")  # the gold response: system = the system message, user = the instruction
        return expected_response(user.strip(), system)


class ScriptedServer(FakeOpenAIServer):
    """The fake OpenAI server with the scripted generator behind its chat endpoint."""

    def __init__(self, behaviour: FakeBehaviour | None = None, **kwargs: Any):
        super().__init__(behaviour, **kwargs)
        self.generator = ScriptedGenerator()

    def _answer(self, body: dict[str, Any]) -> str:
        return self.generator.answer(body.get("messages", []))
