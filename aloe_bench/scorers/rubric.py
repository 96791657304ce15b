"""Rubric grading and its aggregation (SPEC 2.2).

One judge call per (instance, rubric, repeat); the answer is feedback then `[RESULT] N`, and only the
integer after the marker counts (feedback that quotes rubric levels is never read as the verdict).
An answer without it is re-asked for the score alone (bounded; that reply is read leniently, like
any score answer), then kept as `score: null` with its raw text and counted.

A rubric's score is the mean of its repeats' scores; an instance's score is the mean of its rubric
scores; the benchmark score is the mean over instances: a micro average, so a source with more
instances weighs more (never the mean of per-source means).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import numpy as np

from aloe_bench.datasets.multifaceted import Instance, Rubric
from aloe_bench.log.records import Json, Metrics, RubricSample, RubricScore
from aloe_bench.log.results import ConversationRecord, TurnRecord, score_matrix
from aloe_bench.metrics.alignment import _clean, alignment_metrics
from aloe_bench.models.backends import GenerationSettings
from aloe_bench.prompts import PromptTemplate, load_prompt
from aloe_bench.scorers.judge import Judgement, judge_with_reasks, parse_after_marker, parse_score
from aloe_bench.seeds import request_seed

# What a rubric scorer's metrics always hold (`rubric_metrics`): how a reader knows it has them.
RUBRIC_KEYS = frozenset({"by_source", "by_dimension", "rubrics"})


@dataclass(kw_only=True)
class RubricMetrics(Metrics):
    """The rubric scorer's metrics read as their record: the one-turn curve contract plus the
    rubric score and its breakdowns (the run log keeps them as `Metrics` with these in `extra`)."""

    score: float | None = None
    instances: int = 0
    by_source: dict[str, dict[str, Json]] = field(default_factory=dict)
    by_dimension: dict[str, dict[str, Json]] = field(default_factory=dict)
    rubrics: dict[str, int] = field(default_factory=dict)
    judge_repeats: dict[str, Json] = field(default_factory=dict)

    @classmethod
    def of(cls, metrics: Metrics) -> RubricMetrics | None:
        """`metrics` read as a rubric scorer's, or None when a rubric scorer did not make them."""
        data = metrics.to_dict()
        return cls.from_dict(data, "metrics") if data.keys() >= RUBRIC_KEYS else None


JUDGE_PROMPT = "judge_multifaceted_v1.yaml"
PROTOCOL = "multifaceted-rubric"


def _mean(values: Iterable[float | None]) -> float | None:
    valid = [v for v in values if v is not None]
    return float(np.mean(valid)) if valid else None


@dataclass
class RubricGrader:
    role: Any  # a Role bound to the judge backend
    settings: GenerationSettings
    reasks: int = 2
    repeats: int = 1
    seed: int = 0
    prompt: PromptTemplate | None = None

    def __post_init__(self) -> None:
        self.prompt = self._template = self.prompt or load_prompt(JUDGE_PROMPT)
        self._parse = partial(parse_after_marker, marker=self._template.defaults["marker"])

    def messages(self, instance: Instance, response: str, rubric: Rubric) -> list[dict[str, str]]:
        """The instruction WITHOUT the system message, the answer, the reference (a 5), one rubric."""
        return self._template.render(
            instruction=instance.prompt,
            response=response,
            reference_answer=instance.reference_answer,
            criteria=rubric.criteria,
            score_descriptions=rubric.score_descriptions,
        )

    async def _sample(self, instance: Instance, index: int, messages: list, repeat: int) -> Judgement[int]:
        # Each repeat is an independent judge sample: its own seed per (instance, rubric, repeat).
        settings = self.settings.with_seed(request_seed(self.seed, instance.id, index, "judge", repeat))
        return await judge_with_reasks(
            self.role,
            messages,
            settings,
            self._template.text("reask"),
            self.reasks,
            parse=self._parse,
            reask_parse=parse_score,  # the reminder asks for the score alone: read it as any score answer
        )

    async def grade(self, instance: Instance, response: str) -> list[RubricScore]:
        """Every rubric x repeat judged concurrently; one entry per rubric, samples in repeat order."""
        plan = [
            (i, rubric, self.messages(instance, response, rubric))
            for i, rubric in enumerate(instance.rubrics, start=1)
        ]
        judged = await asyncio.gather(
            *(self._sample(instance, i, msgs, r) for i, _, msgs in plan for r in range(self.repeats))
        )
        graded = []
        for n, (i, rubric, _) in enumerate(plan):
            samples = judged[n * self.repeats : (n + 1) * self.repeats]
            graded.append(
                RubricScore(
                    rubric=i,
                    dimension=rubric.dimension,
                    criteria=rubric.criteria,
                    score=_clean(_mean(s.score for s in samples)),
                    samples=[_sample_record(s) for s in samples],
                )
            )
        return graded


def _sample_record(judgement: Judgement[int]) -> RubricSample:
    """One judge sample; when it was re-asked, every answer (the first one holds the feedback)."""
    return RubricSample(
        score=judgement.score,
        raw=judgement.raw,
        attempts=judgement.attempts,
        error=judgement.error,
        answers=list(judgement.history) if len(judgement.history) > 1 else None,
    )


def apply_grades(turn: TurnRecord, graded: list[RubricScore]) -> None:
    """The turn's score is the instance score; every raw judge answer stays readable in judge_raw."""
    samples = [s for g in graded for s in g.samples]
    turn.score = _clean(_mean(g.score for g in graded))
    turn.judge_raw = "\n\n".join(
        f"[rubric {g.rubric}: {g.dimension}"
        + (f", repeat {r + 1}" if len(g.samples) > 1 else "")
        + "] "
        + "\n[re-asked] ".join(s.answers or [s.raw if s.raw is not None else "(no answer)"])
        for g in graded
        for r, s in enumerate(g.samples)
    )
    turn.judge_attempts = sum(s.attempts for s in samples)
    turn.judge_error = next((s.error for s in samples if s.error), None)
    turn.judged = True
    turn.rubric_scores = graded


# -- aggregation ------------------------------------------------------------------------------------------
def _grouped(pairs: Iterable[tuple[str, float | None]]) -> dict[str, dict[str, Any]]:
    groups: dict[str, list[float | None]] = {}
    for key, value in pairs:
        groups.setdefault(key, []).append(value)
    return {
        key: {
            "score": _clean(_mean(values)),
            "n": sum(v is not None for v in values),
            "invalid": sum(v is None for v in values),
        }
        for key, values in groups.items()
    }


def _graded(conversations: list[ConversationRecord]) -> list[tuple[ConversationRecord, TurnRecord]]:
    return [(c, c.turns[0]) for c in conversations if c.status == "complete" and c.turns]


def repeat_spread(conversations: list[ConversationRecord], repeats: int) -> dict[str, Any]:
    """The benchmark score each judge repeat alone would give, and their spread (sample std)."""
    per_repeat = []
    for r in range(repeats):
        instance_scores = []
        for _, turn in _graded(conversations):
            graded = turn.rubric_scores or []
            instance_scores.append(_mean(g.samples[r].score for g in graded if len(g.samples) > r))
        per_repeat.append(_mean(instance_scores))
    defined = [s for s in per_repeat if s is not None]
    return {
        "r": repeats,
        "scores": [_clean(s) for s in per_repeat],
        "mean": _clean(_mean(defined)),
        "std": _clean(float(np.std(defined, ddof=1))) if len(defined) > 1 else None,
    }


def rubric_metrics(
    conversations: list[ConversationRecord], *, repeats: int, seed: int = 0, n_bootstrap: int = 2000
) -> dict[str, Any]:
    """The shared metrics contract (a 1-turn curve: al = [benchmark score], avg, ci) plus the
    breakdowns: by_source, by_dimension, judge_repeats, and counts of rubric judgements."""
    metrics = alignment_metrics(score_matrix(conversations, 1), seed=seed, n_bootstrap=n_bootstrap)
    graded = _graded(conversations)
    metrics["score"] = metrics["avg"]
    metrics["score_ci"] = metrics["ci"].get("avg")  # the score's interval, under the figures' convention
    metrics["instances"] = len(graded)
    metrics["by_source"] = _grouped((c.persona.get("source", "?"), t.score) for c, t in graded)
    rubric_scores = [g for _, t in graded for g in t.rubric_scores or []]
    metrics["by_dimension"] = _grouped((g.dimension, g.score) for g in rubric_scores)
    samples = [s for g in rubric_scores for s in g.samples]
    metrics["rubrics"] = {
        "judged": len(rubric_scores),
        "invalid": sum(g.score is None for g in rubric_scores),
        "samples": len(samples),
        "samples_invalid": sum(s.score is None for s in samples),
        "reasked": sum(s.attempts > 1 for s in samples),
    }
    metrics["judge_repeats"] = repeat_spread(conversations, repeats)
    return metrics
