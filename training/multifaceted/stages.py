"""The synthesis, stage after stage over the whole instruction set (paper section 3):

1. subdimensions   one call per (instruction, dimension): subdimensions that fit the instruction
2. preferences     one call per (instruction, dimension): a keyword + description under each
                   -> preference set j = the j-th preference of every dimension (so the sets of
                   one instruction differ in every dimension)
3. system          one call per preference set: the system message; then the near-duplicate gate
4. response        one call per kept system message: the gold response (system + instruction)
5. rubric          (held-out instructions only) one call per (system message, dimension)

A stage sends all its calls at once (in-process backends batch them, API backends fan out under
their concurrency limit, the Batch API gets one file), and every call goes through the role's
call cache, so a re-run replays what finished and asks only for the rest. A malformed answer is
re-asked with a new seed up to `retries` times; every rejected answer is counted by cause.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from aloe_bench.concurrency import each_item
from aloe_bench.models.backends import ChatRequest, Completion
from aloe_bench.models.embeddings import Embedder, select_novel
from aloe_bench.models.roles import Role
from aloe_bench.seeds import seed32
from aloe_train.generation import RoleBinding
from aloe_train.multifaceted.instructions import Instruction
from aloe_train.multifaceted.parsing import (
    Parsed,
    Preference,
    parse_free_text,
    parse_preferences,
    parse_rubric,
    parse_subdimensions,
)
from aloe_train.multifaceted.progress import StageProgress
from aloe_train.multifaceted.stats import StageStats
from aloe_train.multifaceted.taxonomy import Taxonomy

T = TypeVar("T")


@dataclass
class InstructionWork:
    """Everything made for one instruction, filled in stage by stage (None: dropped)."""

    instruction: Instruction
    held_out: bool = False
    subdimensions: dict[str, list[str] | None] = field(default_factory=dict)
    preferences: dict[str, list[Preference] | None] = field(default_factory=dict)
    sets: list[list[Preference]] = field(default_factory=list)
    systems: list[str | None] = field(default_factory=list)
    responses: list[str | None] = field(default_factory=list)
    rubrics: list[list[dict[str, Any]] | None] = field(default_factory=list)


@dataclass
class SynthesisSettings:
    sets: int
    retries: int
    seed: int
    keep_truncated: bool
    threshold: float
    interactive: bool
    quiet: bool = False


class Synthesizer:
    def __init__(
        self,
        roles: dict[str, Role],
        bindings: dict[str, RoleBinding],
        taxonomy: Taxonomy,
        settings: SynthesisSettings,
        stats: dict[str, StageStats],
        embedder: Embedder,
    ):
        self.roles, self.bindings, self.taxonomy = roles, bindings, taxonomy
        self.settings, self.stats, self.embedder = settings, stats, embedder

    # -- one call, re-asked while its answer is unusable ----------------------------------------------
    async def _ask(
        self,
        stage: str,
        messages: list[dict[str, str]],
        seed_parts: tuple[object, ...],
        parse: Callable[[Completion], Parsed[T]],
    ) -> T | None:
        stats, cause = self.stats[stage], None
        for attempt in range(self.settings.retries + 1):
            settings = self.bindings[stage].settings.with_seed(
                seed32(self.settings.seed, stage, *seed_parts, attempt)
            )
            completion = await self.roles[stage].generate_one(ChatRequest(messages, settings))
            parsed = parse(completion)
            stats.answer(completion, parsed.cause)
            if parsed.value is not None:
                stats.kept += 1
                return parsed.value
            cause = parsed.cause
            if cause == "request_failed":  # the backend already retried; a new seed will not help
                break
        stats.drop(cause or "malformed")
        return None

    async def _stage(self, stage: str, jobs: list[Callable[[], Awaitable[None]]]) -> None:
        self.stats[stage].items += len(jobs)
        progress = StageProgress(
            stage, len(jobs), interactive=self.settings.interactive, quiet=self.settings.quiet
        )

        async def tracked(job: Callable[[], Awaitable[None]]) -> None:
            await job()
            progress.step()

        try:
            await each_item(tracked(j) for j in jobs)
        finally:
            progress.close(self.stats[stage].kept)

    def _render(self, stage: str, **variables: Any) -> list[dict[str, str]]:
        return self.bindings[stage].template().render(**variables)

    # -- stages ----------------------------------------------------------------------------------------
    async def subdimensions(self, works: list[InstructionWork]) -> None:
        def job(w: InstructionWork, d: Any) -> Callable[[], Awaitable[None]]:
            async def run() -> None:
                messages = self._render(
                    "subdimensions",
                    instruction=w.instruction.text,
                    dimension=d.label,
                    description=d.description,
                    seeds=list(d.seeds),
                    count=self.settings.sets,
                )
                w.subdimensions[d.name] = await self._ask(
                    "subdimensions",
                    messages,
                    (w.instruction.id, d.name),
                    lambda c: parse_subdimensions(c, self.settings.sets),
                )

            return run

        await self._stage("subdimensions", [job(w, d) for w in works for d in self.taxonomy.dimensions])

    async def preferences(self, works: list[InstructionWork]) -> None:
        jobs = []
        for w in works:
            for d in self.taxonomy.dimensions:
                subs = w.subdimensions.get(d.name)
                if subs is None:
                    w.preferences[d.name] = None
                    continue
                jobs.append(self._preference_job(w, d, subs))
        await self._stage("preferences", jobs)
        for w in works:
            per_dim = [w.preferences.get(d.name) for d in self.taxonomy.dimensions]
            if any(p is None for p in per_dim):
                continue  # a dimension was lost: this instruction has no complete set
            w.sets = [[prefs[j] for prefs in per_dim if prefs] for j in range(self.settings.sets)]

    def _preference_job(self, w: InstructionWork, d: Any, subs: list[str]) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            messages = self._render(
                "preferences",
                instruction=w.instruction.text,
                dimension=d.label,
                description=d.description,
                subdimensions=subs,
            )
            w.preferences[d.name] = await self._ask(
                "preferences",
                messages,
                (w.instruction.id, d.name),
                lambda c: parse_preferences(c, d.name, subs),
            )

        return run

    async def systems(self, works: list[InstructionWork]) -> None:
        jobs = []
        for w in works:
            w.systems = [None] * len(w.sets)
            for j, prefs in enumerate(w.sets):
                jobs.append(self._system_job(w, j, prefs))
        await self._stage("system", jobs)
        self._near_duplicate_gate(works)

    def _system_job(
        self, w: InstructionWork, j: int, prefs: list[Preference]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            messages = self._render(
                "system",
                instruction=w.instruction.text,
                preferences=[p.to_dict() | {"dimension": p.dimension.replace("_", " ")} for p in prefs],
            )
            w.systems[j] = await self._ask(
                "system",
                messages,
                (w.instruction.id, j),
                lambda c: parse_free_text(c, self.settings.keep_truncated, strip_label=True),
            )

        return run

    def _near_duplicate_gate(self, works: list[InstructionWork]) -> None:
        """Within each instruction, a system message at most `threshold` similar to those kept before
        it stays; the rest are dropped (a pair needs two system messages that really differ)."""
        stats = self.stats["system"]
        for w in works:
            present = [(j, s) for j, s in enumerate(w.systems) if s is not None]
            if len(present) < 2:
                continue
            texts = [s for _, s in present]
            _, highest = select_novel(texts, [], self.settings.threshold, self.embedder)
            for (j, _text), best in zip(present, highest, strict=True):
                if best > self.settings.threshold:  # select_novel keeps exactly those at most it
                    w.systems[j] = None
                    stats.kept -= 1
                    stats.drop("near_duplicate")

    async def responses(self, works: list[InstructionWork]) -> None:
        jobs = []
        for w in works:
            w.responses = [None] * len(w.systems)
            for j, system in enumerate(w.systems):
                if system is not None:
                    jobs.append(self._response_job(w, j, system))
        await self._stage("response", jobs)

    def _response_job(self, w: InstructionWork, j: int, system: str) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            messages = self._render("response", system=system, instruction=w.instruction.text)
            w.responses[j] = await self._ask(
                "response",
                messages,
                (w.instruction.id, j, system),
                lambda c: parse_free_text(c, self.settings.keep_truncated),
            )

        return run

    async def rubrics(self, works: list[InstructionWork]) -> None:
        jobs = []
        found: dict[tuple[int, int], list[Any]] = {}
        for wi, w in enumerate(works):
            w.rubrics = [None] * len(w.systems)
            if not w.held_out:
                continue
            for j, response in enumerate(w.responses):
                if response is None:
                    continue
                slots: list[Any] = [None] * len(w.sets[j])
                found[(wi, j)] = slots
                for k, pref in enumerate(w.sets[j]):
                    jobs.append(self._rubric_job(w, j, k, pref, slots))
        await self._stage("rubric", jobs)
        for (wi, j), slots in found.items():
            # a bench row needs one rubric per dimension; a row missing one is left out of bench.jsonl
            works[wi].rubrics[j] = slots if all(s is not None for s in slots) else None

    def _rubric_job(
        self, w: InstructionWork, j: int, k: int, pref: Preference, slots: list[Any]
    ) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            messages = self._render(
                "rubric",
                instruction=w.instruction.text,
                preference=pref.to_dict() | {"dimension": pref.dimension.replace("_", " ")},
            )
            slots[k] = await self._ask(
                "rubric", messages, (w.instruction.id, j, pref.dimension, w.systems[j]), parse_rubric
            )

        return run
