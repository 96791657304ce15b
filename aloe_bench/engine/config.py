"""Typed run configuration: what the CLI fills in, what a task YAML presets, what results record."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends import GenerationSettings, normalize_spec
from aloe_bench.models.backends.base import redact_args

PAPER_MODEL = "openai/gpt-4o-mini-2024-07-18"
DISCLOSURES = ("hidden", "system")
CONTROLS = ("swap",)  # validity controls: `swap` = every reply also judged against another persona


@dataclass
class RoleConfig:
    """One role: which backend (spec + arguments) and how it generates."""

    spec: str
    args: dict[str, str] = field(default_factory=dict)
    max_new_tokens: int | None = None  # None: the role's default (per protocol / prompt template)
    temperature: float | None = None  # None: the backend's own default
    top_p: float | None = None
    repetition_penalty: float | None = None  # None: the backend's own default

    def settings(self, default_max_new_tokens: int) -> GenerationSettings:
        return GenerationSettings(
            max_new_tokens=self.max_new_tokens or default_max_new_tokens,
            temperature=self.temperature,
            top_p=self.top_p,
            repetition_penalty=self.repetition_penalty,
        )

    def validate(self) -> None:
        normalize_spec(self.spec)
        if self.max_new_tokens is not None and self.max_new_tokens < 1:
            raise UserInputError(f"max new tokens for {self.spec} must be at least 1")
        if self.temperature is not None and self.temperature < 0:
            raise UserInputError(f"temperature for {self.spec} cannot be negative")
        if self.repetition_penalty is not None and self.repetition_penalty <= 0:
            raise UserInputError(
                f"repetition penalty for {self.spec} must be positive (1.0 = none; Janus used 1.03), "
                f"got {self.repetition_penalty}"
            )

    def record(self) -> dict[str, Any]:
        record = {
            "spec": normalize_spec(self.spec),
            "args": redact_args(self.args),
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "top_p": self.top_p,
        }
        if self.repetition_penalty is not None:  # absent when unset: older config hashes unchanged
            record["repetition_penalty"] = self.repetition_penalty
        return record


@dataclass
class RunConfig:
    model: RoleConfig
    simulator: RoleConfig = field(default_factory=lambda: RoleConfig("embedded"))
    judge: RoleConfig = field(default_factory=lambda: RoleConfig("embedded"))
    personas: str = "demo"
    data_dir: str | None = None
    limit: int | None = None
    turns: int = 10
    seed: int = 0
    protocol: str = "aloe-v1"
    persona_disclosure: str = "hidden"  # "system": the model under test is told the persona (aloe_explicit)
    judge_reasks: int = 2
    simulator_retries: int = 2
    concurrency: int = 32
    n_bootstrap: int = 2000
    task: str | None = None
    output: str | None = None
    cache: str | None = None  # None: the default cache; "" disables caching (and resuming)
    # Trust (issue 11): more judges after `judge` (a panel), repeats per judge, epochs per persona,
    # validity controls. Their defaults leave the record and config hash of older runs unchanged.
    extra_judges: list[RoleConfig] = field(default_factory=list)
    judge_repeats: int = 1
    epochs: int = 1
    controls: tuple[str, ...] = ()

    @property
    def judges(self) -> list[RoleConfig]:
        """The judge panel: `judge` first, then the others."""
        return [self.judge, *self.extra_judges]

    def validate(self) -> None:
        if self.turns < 1:
            raise UserInputError(f"--turns must be at least 1 (got {self.turns})")
        if self.limit is not None and self.limit < 1:
            raise UserInputError(f"--limit must be at least 1 (got {self.limit})")
        if self.concurrency < 1:
            raise UserInputError(f"--concurrency must be at least 1 (got {self.concurrency})")
        if self.judge_reasks < 0 or self.simulator_retries < 0:
            raise UserInputError("retry counts cannot be negative")
        from aloe_bench.scorers.judge import get_protocol

        get_protocol(self.protocol)
        if self.persona_disclosure not in DISCLOSURES:
            raise UserInputError(f"persona_disclosure must be one of {', '.join(DISCLOSURES)}")
        for role in (self.model, self.simulator, *self.judges):
            role.validate()
        if self.judge_repeats < 1:
            raise UserInputError(f"--judge-repeats must be at least 1 (got {self.judge_repeats})")
        if self.epochs < 1:
            raise UserInputError(f"--epochs must be at least 1 (got {self.epochs})")
        unknown = sorted(set(self.controls) - set(CONTROLS))
        if unknown:
            raise UserInputError(
                f"unknown control(s) {', '.join(unknown)}: use --controls {' or '.join(CONTROLS)}"
            )

    def trust_record(self) -> dict[str, Any]:
        """Panel, repeats, epochs and controls, recorded only when they differ from a plain run, so
        a plain run's record and config hash stay what they were before these options existed."""
        out: dict[str, Any] = {}
        if self.extra_judges:
            out["judges"] = [j.record() for j in self.judges]
        if self.judge_repeats != 1:
            out["judge_repeats"] = self.judge_repeats
        if self.epochs != 1:
            out["epochs"] = self.epochs
        if self.controls:
            out["controls"] = sorted(self.controls)
        return out

    def record(self) -> dict[str, Any]:
        """The configuration as results.json records it (no secrets, no machine-local knobs)."""
        return {
            "task": self.task,
            "model": self.model.record(),
            "simulator": self.simulator.record(),
            "judge": self.judge.record(),
            "personas": self.personas,
            "limit": self.limit,
            "turns": self.turns,
            "seed": self.seed,
            "protocol": self.protocol,
            "persona_disclosure": self.persona_disclosure,
            "judge_reasks": self.judge_reasks,
            "simulator_retries": self.simulator_retries,
            **self.trust_record(),
        }

    def prompt_versions(self) -> dict[str, str]:
        """The SHA-256 of every prompt template this run uses."""
        from aloe_bench.prompts import load_prompt
        from aloe_bench.scorers.judge import get_protocol

        versions = {
            "simulator": load_prompt("simulator.yaml").sha256,
            "judge": get_protocol(self.protocol).prompt.sha256,
        }
        if self.persona_disclosure == "system":
            versions["model_system"] = load_prompt("model_explicit.yaml").sha256
        return versions

    def config_hash(self) -> str:
        """Identifies what determines the results (settings and prompt wording): resuming into a
        folder requires the same hash."""
        from aloe_bench.engine.session import config_hash  # the one hash every run kind uses

        return config_hash({**self.record(), "prompt_versions": self.prompt_versions()})

    def default_output(self) -> Path:
        def slug(text: str) -> str:
            return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")[:60] or "run"

        personas = self.task or Path(self.personas).stem
        return Path("runs") / f"{slug(personas)}__{slug(normalize_spec(self.model.spec).replace('/', '_'))}"
