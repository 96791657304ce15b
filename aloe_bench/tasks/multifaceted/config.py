"""Multifaceted Bench's settings (`MultifacetedConfig`) and how one instance becomes a one-turn
conversation record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.datasets.multifaceted import Instance
from aloe_bench.engine.session import config_hash
from aloe_bench.errors import UserInputError
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.backends import normalize_spec
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.rubric import JUDGE_PROMPT, PROTOCOL

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
        return config_hash({**self.record(), "prompt_versions": {"judge": load_prompt(JUDGE_PROMPT).sha256}})

    @property
    def judges(self) -> list[RoleConfig]:
        """The judge panel (one judge: a rubric run takes no panel)."""
        return [self.judge]

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
