"""What every data-generation step shares: roles bound to backends through the evaluation engine's
pool and call cache, prompt templates of this package, and the sidecar that records a run."""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_bench.engine.session import open_backends
from aloe_bench.errors import UserInputError
from aloe_bench.log.provenance import package_versions
from aloe_bench.models.backends import GenerationSettings, parse_args
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role
from aloe_bench.prompts import PromptTemplate, load_prompt

PROMPTS_PACKAGE = "aloe_train.prompts"


def train_prompt(filename: str) -> PromptTemplate:
    return load_prompt(filename, PROMPTS_PACKAGE)


@dataclass
class RoleBinding:
    """One data-generation role: the benchmark's RoleConfig (spec, arguments, generation settings)
    under a role name, with the prompt template it speaks through."""

    name: str
    config: RoleConfig
    prompt: PromptTemplate | None = None

    @classmethod
    def make(
        cls,
        name: str,
        spec: str,
        args_text: str | None,
        *,
        max_new_tokens: int,
        temperature: float | None,
        prompt: PromptTemplate | None = None,
    ) -> RoleBinding:
        args = parse_args(args_text, f"--{name.replace('_', '-')}-args")
        return cls(
            name, RoleConfig(spec, args, max_new_tokens=max_new_tokens, temperature=temperature), prompt
        )

    @property
    def spec(self) -> str:
        return self.config.spec

    @property
    def settings(self) -> GenerationSettings:
        return self.config.settings(self.config.max_new_tokens or 512)

    def record(self) -> dict[str, Any]:
        return {**self.config.record(), "prompt": self.prompt.record() if self.prompt else None}

    def template(self) -> PromptTemplate:
        """The prompt, for a role that speaks through one (every role of a generator does)."""
        if self.prompt is None:
            raise ValueError(f"role {self.name} has no prompt template")
        return self.prompt


@contextlib.asynccontextmanager
async def bound_roles(
    bindings: list[RoleBinding], cache_setting: str | None
) -> AsyncIterator[dict[str, Role]]:
    """Roles over one backend pool (roles with the same spec share one loaded model) and one cache,
    both the engine's (engine/session.py), closed when the block ends."""
    async with open_backends(cache_setting) as run_engine:
        yield {
            b.name: Role(
                b.name,
                run_engine.pool.get(b.config.spec, b.config.args),
                run_engine.cache,
                prompt_version=b.prompt.tag if b.prompt else None,
            )
            for b in bindings
        }


def meta_path(output: Path) -> Path:
    return output.with_name(output.name + ".meta.json")


def check_same_config(output: Path, config_hash: str, overwrite: bool) -> dict[str, Any] | None:
    """The previous meta when `output` holds the same job (resume); refuse a different one."""
    meta = meta_path(output)
    if not output.exists() or overwrite:
        return None
    previous = None
    if meta.is_file():
        try:
            previous = json.loads(meta.read_text())
        except (OSError, json.JSONDecodeError):
            previous = None
    if not previous or previous.get("config_hash") != config_hash:
        raise UserInputError(
            f"{output} holds the output of a different job (or has no {meta.name}); "
            "pass another --output, or --overwrite to replace it"
        )
    return previous


def provenance() -> dict[str, Any]:
    return {"packages": package_versions()}
