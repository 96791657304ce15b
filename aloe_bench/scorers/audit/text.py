"""Text helpers shared by the offline auditor: words, crude stems, content words, shingles.

Deliberately simple and deterministic (no NLP library): the same text always gives the same terms,
and a user can see why two texts matched.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*[A-Za-z]|[A-Za-z]|\d+(?:[.,]\d+)?")

NUMBER_WORDS = {
    "two": "2", "three": "3", "four": "4", "five": "5", "six": "6", "seven": "7",
    "eight": "8", "nine": "9", "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13",
    "fourteen": "14", "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18",
    "nineteen": "19", "twenty": "20", "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60",
    "seventy": "70", "eighty": "80", "ninety": "90", "hundred": "100",
}  # fmt: skip

# Function words, pronouns, and words every profile uses ("is", "years", "old" in "34 years old"):
# they carry no fact on their own, so sharing them is no evidence that a fact was revealed.
_STOPWORD_TEXT = """a about above after again against all also am an and any are as at be because been before being
below between both but by can could did do does doing down during each few for from further had has
have having he her here hers herself him himself his how i if in into is it its itself just me more
most my myself no nor not now of off on once only or other our ours ourselves out over own same she
should so some such than that the their theirs them themselves then there these they this those
through to too under until up very was we were what when where which while who whom why will with
would you your yours yourself yourselves i'm i've i'd i'll it's that's there's he's she's they're
don't doesn't didn't isn't wasn't can't won't lot lots really quite get got gets getting like just
year years old age aged lives live living currently recently lately now days day time times thing
things way much many well still even ever always often sometimes usually one ones someone something
person people man woman guy girl who's let's oh yeah hey hi hello okay ok sure thanks thank"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def words(text: str) -> list[str]:
    """Lower-cased word and number tokens; hyphenated words also split ("71-year-old" -> 71, year, old)."""
    out: list[str] = []
    for token in _WORD.findall(text):
        for part in token.lower().split("-"):
            if part:
                out.append(NUMBER_WORDS.get(part, part))
    return out


def stem(word: str) -> str:
    """A crude suffix stripper, applied to both sides of every comparison (so it only has to be consistent)."""
    w = word.lower().removesuffix("'s").strip("'")
    if w.isdigit() or len(w) <= 3:
        return w
    for suffix, repl, min_len in (
        ("ies", "y", 5),
        ("sses", "ss", 5),
        ("ing", "", 6),
        ("ed", "", 5),
        ("es", "", 5),
        ("s", "", 4),
    ):
        if w.endswith(suffix) and len(w) >= min_len and not (suffix == "s" and w.endswith("ss")):
            return w[: len(w) - len(suffix)] + repl
    return w


def content_stems(text: str) -> list[str]:
    """Stems of the words that can carry a fact, in order."""
    return [stem(w) for w in words(text) if w not in STOPWORDS]


def names(text: str) -> set[str]:
    """Stems of capitalised words that do not start a sentence (places, names, brands) and numbers."""
    found: set[str] = set()
    for sentence in re.split(r"(?<=[.!?])\s+|\n+", text):
        tokens = _WORD.findall(sentence)
        for i, token in enumerate(tokens):
            if token[0].isdigit():
                found.add(stem(token))
            elif i > 0 and token[0].isupper() and token.lower() not in STOPWORDS:
                found.update(stem(p) for p in token.lower().split("-") if p)
    for w in words(text):
        if w.isdigit():
            found.add(w)
    return found


def shingles(text: str, n: int) -> set[tuple[str, ...]]:
    """Every run of `n` consecutive words (lower-cased, stopwords kept): verbatim overlap."""
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if s.strip()]
