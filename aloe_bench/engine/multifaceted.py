"""One Multifaceted Bench run: instances -> model (system message + prompt) -> rubric judge -> metrics.

It reuses the ALOE run machinery (roles, call cache, backend pool, atomic run directory, results
header, progress), so resuming is re-running here too, and the run directory has the same contract:
each instance is a one-turn conversation whose `persona.profile` is the system message (the stated
preferences), whose turn score is the instance score, with per-rubric scores beside it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aloe_bench.datasets.multifaceted import Instance, MultifacetedSet, load_multifaceted
from aloe_bench.engine.config import RoleConfig
from aloe_bench.engine.progress import TurnProgress
from aloe_bench.engine.runner import (
    RunRecorder,
    check_output_dir,
    open_cache,
    recorder_for,
    role_backends,
    run_header,
)
from aloe_bench.errors import UserInputError
from aloe_bench.log.models import RunResults
from aloe_bench.log.results import ConversationRecord, TurnRecord
from aloe_bench.models.backends import PRIORITY_BACKGROUND, Backend, BackendPool, ChatRequest, normalize_spec
from aloe_bench.models.cache import CallCache
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.rubric import JUDGE_PROMPT, PROTOCOL, RubricGrader, apply_grades, rubric_metrics
from aloe_bench.seeds import request_seed

MODEL_MAX_NEW_TOKENS = 2048


@dataclass
class MultifacetedConfig:
    model: RoleConfig
    judge: RoleConfig = field(default_factory=lambda: RoleConfig("embedded"))
    data: str | None = None  # "sample", a file or folder; None: the Hugging Face dataset
    limit: int | None = None
    seed: int = 0
    judge_reasks: int = 2
    judge_repeats: int = 1
    concurrency: int = 32
    n_bootstrap: int = 2000
    task: str | None = None
    output: str | None = None
    cache: str | None = None  # None: the default cache; "" disables caching (and resuming)
    data_sha256: str | None = None  # filled in once the data is loaded: part of the config hash

    def validate(self) -> None:
        if self.limit is not None and self.limit < 1:
            raise UserInputError(f"--limit must be at least 1 (got {self.limit})")
        if self.concurrency < 1:
            raise UserInputError(f"--concurrency must be at least 1 (got {self.concurrency})")
        if self.judge_reasks < 0:
            raise UserInputError("--judge-reasks cannot be negative")
        if self.judge_repeats < 1:
            raise UserInputError(f"--judge-repeats must be at least 1 (got {self.judge_repeats})")
        for role in (self.model, self.judge):
            role.validate()

    def record(self) -> dict[str, Any]:
        """As results.json records it. The ALOE keys that other tools read keep their meaning:
        one turn, no simulated user, preferences stated in the system message."""
        return {
            "task": self.task,
            "kind": "multifaceted",
            "model": self.model.record(),
            "simulator": {"spec": None},
            "judge": self.judge.record(),
            "data": self.data,
            "data_sha256": self.data_sha256,
            "limit": self.limit,
            "turns": 1,
            "seed": self.seed,
            "protocol": PROTOCOL,
            "persona_disclosure": "system",
            "judge_reasks": self.judge_reasks,
            "judge_repeats": self.judge_repeats,
        }

    def config_hash(self) -> str:
        """Settings and the judge prompt's wording: resuming into a folder requires the same hash."""
        blob = {**self.record(), "prompt_versions": {"judge": load_prompt(JUDGE_PROMPT).sha256}}
        return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()[:16]

    def default_output(self) -> Path:
        def slug(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"

        model = normalize_spec(self.model.spec).replace("/", "_")
        return Path("runs") / f"{slug(self.task or 'multifaceted')}__{slug(model)}"


def instance_record(instance: Instance) -> ConversationRecord:
    return ConversationRecord(
        id=instance.id,
        persona={"profile": instance.system, "source": instance.source},  # no personality: no simulated user
        meta={
            "where": instance.where,
            "reference_answer": instance.reference_answer,
            "rubric": [r.to_dict() for r in instance.rubrics],
        },
    )


@dataclass
class RubricRecorder(RunRecorder):
    """The ALOE recorder with the rubric metrics in place of the per-turn curve."""

    repeats: int = 1

    def metrics(self, with_ci: bool) -> dict[str, Any]:
        return rubric_metrics(
            self.conversations,
            repeats=self.repeats,
            seed=self.seed,
            n_bootstrap=self.n_bootstrap if with_ci else 0,
        )


async def run_rubric_engine(
    config: MultifacetedConfig,
    dataset: MultifacetedSet,
    *,
    pool: BackendPool,
    cache: CallCache | None,
    out: Path | None,
    progress_enabled: bool | None = None,
    backends: Mapping[str, Backend] | None = None,
) -> tuple[RunResults, list[ConversationRecord]]:
    """Generation and rubric grading of `dataset` with the roles of `config`: (results, instances as
    one-turn conversations). As `runner.run_engine`: `backends` replaces a role's backend by name
    (the lm-eval interception hands in its LM as the model under test); the run directory is written
    only when `out` is given."""
    config = replace(config, data_sha256=dataset.sha256)
    judge_prompt = load_prompt(JUDGE_PROMPT)
    backend = role_backends(
        pool, {"model": config.model, "judge": config.judge}, config.concurrency, backends
    )
    roles = {
        "model": Role("model", backend["model"], cache),
        "judge": Role(
            "judge", backend["judge"], cache, prompt_version=judge_prompt.tag, priority=PRIORITY_BACKGROUND
        ),
    }
    header = run_header(config, roles, {"judge": judge_prompt.record()}, dataset.record())
    header["config"]["model"]["system_role"] = roles["model"].backend.system_role()
    conversations = [instance_record(i) for i in dataset.instances]
    recorder = recorder_for(
        roles,
        RubricRecorder,
        out=out,
        header=header,
        conversations=conversations,
        turns=1,
        seed=config.seed,
        n_bootstrap=config.n_bootstrap,
        repeats=config.judge_repeats,
    )
    progress = TurnProgress(len(conversations), 1, enabled=progress_enabled)
    grader = RubricGrader(
        roles["judge"],
        config.judge.settings(int(judge_prompt.defaults["max_new_tokens"])),
        reasks=config.judge_reasks,
        repeats=config.judge_repeats,
        seed=config.seed,
        prompt=judge_prompt,
    )
    model_settings = config.model.settings(MODEL_MAX_NEW_TOKENS)

    async def evaluate(conv: ConversationRecord, instance: Instance) -> None:
        seed = request_seed(config.seed, instance.id, 1, "model")
        reply = await roles["model"].generate_one(
            ChatRequest(instance.model_messages(), model_settings.with_seed(seed))
        )
        if not reply.ok or reply.text is None:
            conv.status, conv.error = "failed", f"model under test failed: {reply.error}"
            progress.conversation_failed()
            recorder.mark_dirty()
            return
        conv.turns = [TurnRecord(user=instance.prompt, assistant=reply.text)]
        progress.turn_done(1)
        recorder.mark_dirty()
        apply_grades(conv.turns[0], await grader.grade(instance, reply.text))
        conv.status = "complete"
        progress.judged_one(1)
        recorder.mark_dirty()

    recorder.flush("running")
    tasks = [
        asyncio.create_task(evaluate(c, i)) for c, i in zip(conversations, dataset.instances, strict=True)
    ]
    try:
        await asyncio.gather(*tasks)
    except BaseException:  # a fatal backend error or an interrupt: keep what finished
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        recorder.flush("interrupted")
        raise
    finally:
        progress.close()
    status = "complete" if all(c.status == "complete" for c in conversations) else "incomplete"
    return recorder.flush(status), conversations


async def _run_async(
    config: MultifacetedConfig, out: Path, dataset: MultifacetedSet, progress_enabled: bool | None
) -> RunResults:
    cache = open_cache(config.cache)
    pool = BackendPool()
    try:
        results, _ = await run_rubric_engine(
            config, dataset, pool=pool, cache=cache, out=out, progress_enabled=progress_enabled
        )
        return results
    finally:
        await pool.aclose()
        if cache is not None:
            cache.close()


def run_multifaceted(
    config: MultifacetedConfig, *, overwrite: bool = False, progress: bool | None = None
) -> tuple[Path, RunResults]:
    """Run (or resume) Multifaceted Bench and return the run directory with its results."""
    config.validate()
    dataset = load_multifaceted(config.data).limit(config.limit)
    config = replace(config, data_sha256=dataset.sha256)
    out = Path(config.output) if config.output else config.default_output()
    check_output_dir(out, config.config_hash(), overwrite)
    results = asyncio.run(_run_async(config, out, dataset, progress))
    return out, results
