"""A synthetic world with known answers for the judge-trust statistics: an OpenAI-compatible server
on 127.0.0.1 whose simulated user, model under test and judges follow planted rules.

Personas carry a token ("persona token P07") in their profile. The simulated user says who it is
("I am P07"); the model under test writes a reply marked for that person ("[for P07]") padded with
n filler words (n uniform 0..40 from the request seed: lengths vary). Judges read the persona token
in the judge prompt's profile and the marker in the reply, so a reply judged against ANOTHER persona
(the swap control) is recognisably not written for it:

- `world-judge-a` (persona-aware): score = base + q + b, base 3 when the marker matches the persona
  in the prompt, else 2; q in {0,1} is the reply's own quality (a hash of the reply: the same for
  every judge and repeat), b in {0,1} is fresh noise per call (a hash of the request seed and prompt).
- `world-judge-b` (agrees with A): A's score for the same request with probability 3/4, else one
  step away from it (up, or down from 5): exact agreement 3/4, within-one agreement 1.
- `world-judge-blind` (ignores the persona): score = 1 + floor(5 n / 41), a step function of the
  reply's length alone; deterministic.

Every draw is a hash, so the world is deterministic; the planted rates hold in expectation.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from aloe_bench.testing.fake_openai import FakeOpenAIServer

PROFILE_TOKEN = re.compile(r"persona token (P\d+)")
USER_TOKEN = re.compile(r"I am (P\d+)")
REPLY_MARKER = re.compile(r"\[for (P\d+)\]")
FILLER_MAX = 40
B_AGREEMENT = 0.75


def uniform(*parts: object) -> float:
    """A deterministic draw in [0, 1) from any parts."""
    digest = hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "little") / 2**64


def world_personas(n: int) -> list[dict[str, str]]:
    """n personas with distinct tokens, profiles and personalities (ids P00, P01, ...)."""
    return [
        {
            "id": f"P{i:02d}",
            "profile": f"persona token P{i:02d}. Works as job number {i} and likes hobby {i}.",
            "personality": f"Trait set {i}: talks in style {i}.",
        }
        for i in range(n)
    ]


def quality(reply: str) -> int:
    return int(uniform("quality", reply) < 0.5)


def judge_a_score(prompt: str, reply: str, seed: Any) -> int:
    persona = PROFILE_TOKEN.search(prompt)
    marker = REPLY_MARKER.search(reply)
    matched = bool(persona and marker and persona.group(1) == marker.group(1))
    noise = int(uniform("noise", seed, prompt) < 0.5)
    return (3 if matched else 2) + quality(reply) + noise


def judge_b_score(prompt: str, reply: str, seed: Any) -> int:
    a = judge_a_score(prompt, reply, seed)
    if uniform("copy", seed, prompt) < B_AGREEMENT:
        return a
    return a + 1 if a < 5 else a - 1


def blind_score(reply: str) -> int:
    filler = reply.count(" la")
    return 1 + (5 * filler) // (FILLER_MAX + 1)


class PersonaWorldServer(FakeOpenAIServer):
    """Answers by the `model` of the request: world-user, world-model, world-judge-{a,b,blind}."""

    def _answer(self, body: dict[str, Any]) -> str:
        model = body.get("model", "")
        messages = body.get("messages", [])
        seed = body.get("seed")
        if model == "world-user":
            system = " ".join(m["content"] for m in messages if m["role"] == "system")
            token = PROFILE_TOKEN.search(system)
            return f"I am {token.group(1) if token else 'P??'}. Tell me something, friend ({seed % 997 if seed else 0})."
        if model == "world-model":
            last = messages[-1]["content"] if messages else ""
            token = USER_TOKEN.search(last)
            filler = int(uniform("length", seed, last) * (FILLER_MAX + 1))
            return f"[for {token.group(1) if token else 'P??'}] sure" + " la" * filler
        if model.startswith("world-judge"):
            prompt = messages[-1]["content"] if messages else ""
            reply = prompt.split("The model's reply:", 1)[-1]
            if model == "world-judge-a":
                return str(judge_a_score(prompt, reply, seed))
            if model == "world-judge-b":
                return str(judge_b_score(prompt, reply, seed))
            return str(blind_score(reply))
        return super()._answer(body)
