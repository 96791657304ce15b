"""A persona profile as a list of atomic facts, the unit the disclosure curve counts.

Default (`clauses-v1`): a deterministic splitter. Sentences first; then a sentence is cut where a
new clause with its own subject starts (`; `, `, and he ...`, `, but she ...`, ` and they ...`), so
"He is a widower with two daughters, and he is teaching the oldest to tie knots" gives two facts;
a relative or coordinated clause with its own verb ("... fisherman who lives in ...", "... and is
saving up for ...") is cut too. Pieces with fewer than two content words are glued back to the
previous fact (they are not a fact on their own). Optionally an LLM splits the profile (`--facts llm`,
through the call cache).

Facts are memoised per profile text (by its SHA-256), so a persona shared by many conversations is
split once; the method is recorded with the run (`audit.facts_method`).
"""

from __future__ import annotations

import asyncio
import hashlib
import re
from collections.abc import Awaitable, Callable

from aloe_bench.scorers.audit.text import content_stems, sentences

CLAUSES_METHOD = "clauses-v1"

_SUBJECT = r"(?:he|she|they|i|his|her|their|my)\b"
# A relative or coordinated clause with its own verb: "who lives in ...", "and is saving up ...".
_VERB = r"(?:is|has|was|are|have|[a-z]{2,}[^s\W]s)\b"
_CLAUSE_BREAK = re.compile(
    rf"\s*;\s*|,\s*(?:and|but|while|whereas|so)\s+(?={_SUBJECT})|\s+(?:and|but)\s+(?=(?:he|she|they|i)\s)"
    rf"|,?\s+(?:and|who)\s+(?={_VERB})",
    re.I,
)


def profile_sha(profile: str) -> str:
    return hashlib.sha256(profile.strip().encode()).hexdigest()


def split_clauses(profile: str) -> list[str]:
    """The profile's atomic facts, in order (deterministic)."""
    facts: list[str] = []
    for sentence in sentences(profile):
        for piece in _CLAUSE_BREAK.split(sentence):
            piece = piece.strip().rstrip(".!?;,").strip()
            if not piece:
                continue
            if len(content_stems(piece)) < 2 and facts:
                facts[-1] = f"{facts[-1]}, {piece}"
            else:
                facts.append(piece[0].upper() + piece[1:])
    return facts


class FactBook:
    """Facts per profile, computed once per profile hash. `llm` (optional) is an async splitter
    returning the facts or None (unreadable answer: the clause splitter is used for that profile,
    and the fallback is counted)."""

    def __init__(self, llm: Callable[[str], Awaitable[list[str] | None]] | None = None, llm_method: str = ""):
        self._llm = llm
        self._memo: dict[str, asyncio.Task] = {}  # a task, so concurrent askers share one call
        self.method = llm_method if llm else CLAUSES_METHOD
        self.fallbacks = 0  # profiles the LLM could not split (clause splitter used instead)

    async def facts(self, profile: str) -> list[str]:
        key = profile_sha(profile)
        if key not in self._memo:
            self._memo[key] = asyncio.ensure_future(self._split(profile))
        return await self._memo[key]

    async def _split(self, profile: str) -> list[str]:
        facts = await self._llm(profile) if self._llm else None
        if self._llm and not facts:
            self.fallbacks += 1
        return facts or split_clauses(profile)
