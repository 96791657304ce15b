"""The score/metric contract: a scorer's verdict on one turn is a `Score` (Inspect's: value, answer,
explanation, metadata); what a metric sees of one item is a `ScoredSample` (its id, status, the group
its intervals resample, and each turn's scores keyed by scorer); a metric is a function of scored
samples and `MetricSettings`, never of the recorder.

A journaled run releases a finished conversation's transcript from memory but keeps its
`ScoredSample` (values only, no text), so every metric sees every item, on a run of any size.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import chain
from types import MappingProxyType
from typing import Any

import numpy as np

from aloe_bench.log.results import ConversationRecord, TurnRecord

# The key of a turn's main score (`turn.score` in conversations.jsonl: the judge's, the rubric
# grader's, or a task's own scorer's).
MAIN_SCORER = "score"
_NAN = float("nan")


@dataclass(frozen=True, slots=True)
class Score:
    """One scorer's verdict on one turn. `value` None: no verdict (unreadable after re-asks, or not
    scored yet); `answer` the text that was scored; `explanation` what the scorer said (a judge's
    raw answer, a rule's name); `metadata` anything else it reports."""

    value: float | None
    answer: str | None = None
    explanation: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ScoredSample:
    """What a metric sees of one item (a conversation, an instance)."""

    id: str
    status: str  # running, complete, failed
    group: str  # what the bootstrap resamples: the persona (epochs of one persona share it)
    turns: tuple[Mapping[str, Score], ...]  # per turn: the scores keyed by scorer
    meta: Mapping[str, Any] = field(default_factory=dict)
    # The main scorer's values per turn (NaN: none), kept once: every flush of a long run reads them.
    main: tuple[float, ...] = ()

    @classmethod
    def of(cls, conv: ConversationRecord, *, with_text: bool = True) -> ScoredSample:
        """The sample of a conversation record; `with_text=False` keeps the values alone (what a
        journaled run keeps in memory once the transcript is on disk)."""
        scores = tuple(turn_score(t, with_text=with_text) for t in conv.turns)
        keyed = tuple(
            _keyed(score, turn) if with_text else _shared(score.value, _named(turn))[1]
            for score, turn in zip(scores, conv.turns, strict=True)
        )
        return cls(
            id=conv.id,
            status=conv.status,
            group=str(conv.meta.get("persona_id", conv.id)),
            turns=keyed,
            meta=conv.meta,
            main=tuple(_value(score) for score in scores),
        )

    def __post_init__(self) -> None:
        if len(self.main) != len(self.turns):  # built by hand: the main values from the turns
            main = tuple(_value(t.get(MAIN_SCORER)) for t in self.turns)
            object.__setattr__(self, "main", main)

    def value(self, turn: int, scorer: str = MAIN_SCORER) -> float:
        """The turn's score as a number, NaN where there is none."""
        if scorer == MAIN_SCORER:
            return self.main[turn] if turn < len(self.main) else _NAN
        if turn >= len(self.turns):
            return float("nan")
        score = self.turns[turn].get(scorer)
        return float("nan") if score is None or score.value is None else float(score.value)


def _named(turn: TurnRecord) -> tuple[tuple[str, float | None], ...]:
    """The turn's scores by scorer (`turn.scores`) as (name, value) pairs."""
    return tuple((name, s.value) for name, s in (turn.scores or {}).items())


def _keyed(score: Score, turn: TurnRecord) -> Mapping[str, Score]:
    """A turn's scores keyed by scorer: the main one, and each named one the run log holds."""
    return {MAIN_SCORER: score, **{name: Score(value) for name, value in _named(turn)}}


def _value(score: Score | None) -> float:
    return _NAN if score is None or score.value is None else float(score.value)


def turn_score(turn: TurnRecord, *, with_text: bool = True) -> Score:
    """A turn's main score as a `Score`: the value the run log records, the reply it scored, and
    what the scorer answered (the judge's raw text)."""
    value = None if turn.score is None else float(turn.score)
    if not with_text:
        return _bare(value)
    return Score(value, turn.assistant, turn.judge_raw)


# Bare scores (a value, no text) and their scorer mappings are shared between samples: a run of
# 10,000 x 10 released turns keeps a few of them, not 100,000 (the values are few: 1-5, a mean).
_Named = tuple[tuple[str, float | None], ...]
_BARE: dict[tuple[float | None, _Named], tuple[Score, Mapping[str, Score]]] = {}


def _bare(value: float | None) -> Score:
    return _shared(value, ())[0]


def _shared(value: float | None, named: _Named) -> tuple[Score, Mapping[str, Score]]:
    found = _BARE.get((value, named))
    if found is None:
        score = Score(value)
        keyed = {MAIN_SCORER: score, **{name: _bare(v) if v != value else score for name, v in named}}
        found = (score, MappingProxyType(keyed))
        if len(_BARE) < 4096:  # means of panels can take many values: keep the cache small
            _BARE[(value, named)] = found
    return found


@dataclass(frozen=True)
class MetricSettings:
    """What every metric is computed with: the task's turns, the seed of its resampling, and how
    many bootstrap resamples (0: point estimates only, as while a run is still going)."""

    turns: int
    seed: int = 0
    n_bootstrap: int = 0


# A metric: scored samples in, named figures out (each with its interval and n where it has them).
SampleMetrics = Callable[[Sequence[ScoredSample], MetricSettings], dict[str, Any]]


def score_rows(samples: Sequence[ScoredSample], turns: int, scorer: str = MAIN_SCORER) -> np.ndarray:
    """(complete samples x turns) scores, NaN where a turn has none: the matrix the curve is of."""
    complete = [s for s in samples if s.status == "complete"]
    if scorer == MAIN_SCORER:  # the fast path: the values each sample keeps (every flush reads them)
        pad = (_NAN,) * turns
        rows = [s.main if len(s.main) == turns else (s.main + pad)[:turns] for s in complete]
    else:
        rows = [tuple(s.value(k, scorer) for k in range(turns)) for s in complete]
    flat = np.fromiter(chain.from_iterable(rows), dtype=float, count=len(rows) * turns)
    return flat.reshape(len(rows), turns)
