"""Reading the generator's answers, stage by stage. Every answer is either parsed into exactly what
the stage needs or rejected with one cause from CAUSES; nothing half-parsed is kept.

Formats are line-based (numbered lists, `keyword: description`, `Score N:`), not JSON: small models
write a numbered list far more reliably than valid JSON, and a line that does not fit is a clear
rejection, never a guess."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Generic, TypeVar

from aloe_bench.models.backends import Completion

# The closed set of reasons an answer (or an item) is dropped; summary.json counts them per stage.
CAUSES = (
    "request_failed",  # the backend returned an error (after its own retries)
    "empty",  # no text
    "refusal",  # the generator declined ("I'm sorry, but I can't ...")
    "truncated",  # stopped at max_new_tokens (free text cut mid-way; see --keep-truncated)
    "malformed",  # text that does not have the stage's format
    "too_few_items",  # a list shorter than the stage needs
    "near_duplicate",  # a system message too similar to another of the same instruction (the gate)
    "upstream",  # an item whose input was dropped at an earlier stage
)

T = TypeVar("T", covariant=True)


@dataclass(frozen=True)
class Parsed(Generic[T]):
    value: T | None
    cause: str | None = None  # one of CAUSES when value is None

    @property
    def ok(self) -> bool:
        return self.value is not None


_ITEM = re.compile(r"^\s*(?:\d{1,2}\s*[.):]|[-*\u2022])\s*(.+?)\s*$")
_REFUSAL = re.compile(
    r"^\W*(?:i'?m sorry|i am sorry|sorry, (?:but )?i|i (?:can ?not|can't|won't|am unable to|'m unable to)"
    r"|as an ai(?: language model)?, i (?:can ?not|can't))",
    re.I,
)
_LABEL = re.compile(r"^\s*(?:\*\*)?\s*(?:system message|system prompt)\s*(?:\*\*)?\s*:\s*", re.I)
_SCORE = re.compile(r"^\s*\**\s*score\s*([1-5])\s*\**\s*[:.\-]\s*(.+?)\s*$", re.I)
_CRITERIA = re.compile(r"^\s*\**\s*criteria\s*\**\s*[:.\-]\s*(.+?)\s*$", re.I)


def _clean(item: str) -> str:
    return item.replace("**", "").strip().strip("\"'\u201c\u201d").strip()


def is_refusal(text: str) -> bool:
    return bool(_REFUSAL.match(text.strip()))


def _text_of(c: Completion) -> Parsed[str]:
    if not c.ok:
        return Parsed(None, "request_failed")
    if c.text is None or not c.text.strip():
        return Parsed(None, "empty")
    if is_refusal(c.text):
        return Parsed(None, "refusal")
    return Parsed(c.text.strip())


def _items(text: str) -> list[str]:
    return [_clean(m.group(1)) for m in map(_ITEM.match, text.splitlines()) if m]


def parse_subdimensions(c: Completion, count: int) -> Parsed[list[str]]:
    """The first `count` distinct names of a numbered list (a name is the text before a colon)."""
    got = _text_of(c)
    if got.value is None:
        return Parsed(None, got.cause)
    items = _items(got.value)
    if c.finish_reason == "length" and items:  # the last line may be cut
        items = items[:-1]
    if not items:
        return Parsed(None, "malformed")
    names: list[str] = []
    for item in items:
        name = _clean(re.split(r":|\s[-\u2013\u2014]\s", item, maxsplit=1)[0]).rstrip(".")
        if name and len(name.split()) <= 8 and name.lower() not in {n.lower() for n in names}:
            names.append(name)
    if len(names) < count:
        return Parsed(None, "too_few_items")
    return Parsed(names[:count])


@dataclass(frozen=True)
class Preference:
    dimension: str
    subdimension: str
    preference: str  # the keyword
    description: str

    def to_dict(self) -> dict[str, str]:
        # the released column's field order
        return {
            "dimension": self.dimension,
            "subdimension": self.subdimension,
            "preference": self.preference,
            "description": self.description,
        }


def parse_preferences(c: Completion, dimension: str, subdimensions: list[str]) -> Parsed[list[Preference]]:
    """One `N. keyword: description` line per subdimension, in order; any line without both parts,
    or fewer lines than subdimensions, rejects the whole answer."""
    got = _text_of(c)
    if got.value is None:
        return Parsed(None, got.cause)
    items = _items(got.value)
    if c.finish_reason == "length" and items:
        items = items[:-1]
    if not items:
        return Parsed(None, "malformed")
    prefs: list[Preference] = []
    for sub, item in zip(subdimensions, items, strict=False):
        keyword, sep, description = item.partition(":")
        keyword, description = _clean(keyword), _clean(description)
        if not sep or not keyword or not description or len(keyword.split()) > 10:
            return Parsed(None, "malformed")
        prefs.append(Preference(dimension, sub, keyword, description))
    if len(prefs) < len(subdimensions):
        return Parsed(None, "too_few_items")
    return Parsed(prefs)


def parse_free_text(c: Completion, keep_truncated: bool, strip_label: bool = False) -> Parsed[str]:
    """A system message or a response: any non-empty text that is not a refusal; cut at the token
    limit only with --keep-truncated."""
    got = _text_of(c)
    if got.value is None:
        return got
    if c.finish_reason == "length" and not keep_truncated:
        return Parsed(None, "truncated")
    text = _LABEL.sub("", got.value, count=1).strip() if strip_label else got.value
    return Parsed(text) if text else Parsed(None, "empty")


def parse_rubric(c: Completion) -> Parsed[dict]:
    """{criteria, score_descriptions {"1".."5"}} from `Criteria:` and `Score N:` lines (all six)."""
    got = _text_of(c)
    if got.value is None:
        return Parsed(None, got.cause)
    criteria, scores = None, {}
    for line in got.value.splitlines():
        m = _CRITERIA.match(line)
        if m and criteria is None:
            criteria = _clean(m.group(1))
            continue
        s = _SCORE.match(line)
        if s and s.group(1) not in scores:
            scores[s.group(1)] = _clean(s.group(2))
    if not criteria or any(not scores.get(k) for k in "12345"):
        return Parsed(None, "malformed")
    return Parsed({"criteria": criteria, "score_descriptions": {k: scores[k] for k in "12345"}})
