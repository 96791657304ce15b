"""ALOE as a task: persona set -> K-turn rollout (simulated user <-> model) -> judge every reply
(one judge or a panel, repeats, swap control) -> the per-turn alignment curve AL(k), AVG, IR, N-IR."""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from aloe_bench.datasets.personas import Persona, PersonaSet, load_persona_set
from aloe_bench.engine.execute import role_backends, run_header
from aloe_bench.engine.session import RunBackends
from aloe_bench.engine.task_api import Hooks, Scorer, TaskRun
from aloe_bench.engine.task_files import controls_setting, typed_settings
from aloe_bench.models.backends import PRIORITY_BACKGROUND, Backend
from aloe_bench.models.cost import Price
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.role_settings import judge_panel, role_config
from aloe_bench.models.roles import Role
from aloe_bench.prompts import load_prompt
from aloe_bench.scorers.judge import get_protocol
from aloe_bench.solvers.rollout import Rollout, RolloutSettings
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_bench.tasks.aloe.judging import (
    SCORER,
    epoch_conversations,
    judge_label,
    judge_role_names,
    judge_scorer,
    panel_judges,
    panel_usage,
    persona_set_record,
    priced_roles,
    pricing_record,
)

# RunConfig fields a task (or a command-line flag) may set, with their types.
SETTINGS: dict[str, type] = {
    "personas": str,
    "data_dir": str,
    "limit": int,
    "turns": int,
    "seed": int,
    "protocol": str,
    "persona_disclosure": str,
    "judge_reasks": int,
    "simulator_retries": int,
    "concurrency": int,
    "n_bootstrap": int,
    "judge_repeats": int,
    "epochs": int,
}
ROLE_KEYS = frozenset(
    {
        *(f"{role}{suffix}" for role in ("model", "simulator", "judge") for suffix in ("", "_args")),
        *(
            f"{role}_{knob}"
            for role in ("simulator", "judge")
            for knob in ("max_new_tokens", "temperature", "top_p", "repetition_penalty")
        ),
        "max_new_tokens",  # the model under test's
        "temperature",
        "top_p",
        "repetition_penalty",
    }
)
RUNTIME_KEYS = frozenset({"cache"})  # only the lm-eval path reads it (`aloe-bench run` has --cache)
# Command-line flags only a conversation task takes (dest -> flag): refused for other kinds.
FLAGS = {
    "personas": "--personas",
    "data_dir": "--data-dir",
    "turns": "--turns",
    "protocol": "--protocol",
    "simulator": "--simulator",
    "simulator_args": "--simulator-args",
    "simulator_base_url": "--simulator-base-url",
    "simulator_max_new_tokens": "--simulator-max-new-tokens",
    "simulator_temperature": "--simulator-temperature",
    "simulator_top_p": "--simulator-top-p",
    "simulator_repetition_penalty": "--simulator-repetition-penalty",
    "controls": "--controls",
    "epochs": "--epochs",
}


def make_config(
    task_name: str | None,
    task: dict[str, Any],
    flags: argparse.Namespace,
    *,
    model: RoleConfig | None = None,
    **fields: Any,
) -> RunConfig:
    """The run a task means: its settings, overridden by command-line `flags` (absent attributes
    count as unset); `model` replaces the model-under-test role."""
    values = typed_settings(task_name, task, flags, SETTINGS)
    panel = judge_panel(flags, task, "embedded")
    config = RunConfig(
        model=model or role_config(flags, "model", task, None),
        simulator=role_config(flags, "simulator", task, "embedded"),
        judge=panel[0],
        extra_judges=panel[1:],
        controls=controls_setting(task_name, task, flags),
        task=task_name,
        **values,
        **fields,
    )
    config.validate()
    return config


def dataset(config: RunConfig) -> list[Persona]:
    return load_persona_set(config.personas, config.data_dir).limit(config.limit).personas


def setup(
    config: RunConfig,
    personas: PersonaSet,
    engine: RunBackends,
    out: Path | None,
    backends: Mapping[str, Backend] | None = None,
    *,
    price_overrides: Mapping[str, Price] | None = None,
    judge_batch: bool = False,
) -> TaskRun:
    """The ALOE run of `personas`. `backends` replaces a role's backend by name (the lm-eval
    interception hands in its LM as the model under test)."""
    protocol = get_protocol(config.protocol)
    simulator_prompt = load_prompt("simulator.yaml")
    explicit_prompt = load_prompt("model_explicit.yaml") if config.persona_disclosure == "system" else None
    judge_names = judge_role_names(config.judges)
    backend = role_backends(
        engine.pool,
        {
            "model": config.model,
            "simulator": config.simulator,
            **{name: judge for name, judge in zip(judge_names, config.judges, strict=True)},
        },
        config.concurrency,
        backends,
    )
    closers: list[Callable[[], Awaitable[None]]] = []
    if judge_batch:  # the judge goes through the Batch API; its ids are kept in the run directory
        from aloe_bench.models.batch import BatchBackend

        batch = BatchBackend(backend["judge"], out)  # type: ignore[arg-type]
        backend["judge"] = batch
        closers.append(batch.aclose)  # its pollers; the wrapped client is the pool's
    judge_roles = {
        name: Role(
            "judge",  # the cache key's role: one judge's calls are the same whatever the panel
            backend[name],
            engine.cache,
            prompt_version=protocol.prompt.tag,
            priority=PRIORITY_BACKGROUND,
        )
        for name in judge_names
    }
    roles = {
        "model": Role("model", backend["model"], engine.cache),
        "simulator": Role(
            "simulator", backend["simulator"], engine.cache, prompt_version=simulator_prompt.tag
        ),
        "judge": judge_roles[judge_names[0]],
    }
    prompts = {"simulator": simulator_prompt.record(), "judge": protocol.prompt.record()}
    if explicit_prompt is not None:
        prompts["model_system"] = explicit_prompt.record()
        roles["model"].prompt_version = explicit_prompt.tag
    header = run_header(config, roles, prompts, persona_set_record(personas))
    for record, name in zip(header["config"].get("judges", []), judge_names, strict=False):
        record["backend"] = judge_roles[name].backend.describe()
        record["label"] = judge_label(config.judges, judge_names.index(name))
    if explicit_prompt is not None:  # templates without a system role get the persona folded in
        header["config"]["model"]["system_role"] = roles["model"].backend.system_role()

    conversations = epoch_conversations(personas, config.epochs)
    swap = "swap" in config.controls
    panel = panel_judges(config.judges, judge_names, judge_roles, protocol, engine.cache, swap)
    usage_roles = {**roles, **panel_usage(judge_roles, panel)}
    prices = priced_roles(
        {
            "model": config.model.spec,
            "simulator": config.simulator.spec,
            **{n: r.backend.spec for n, r in usage_roles.items() if n.startswith("judge")},
        },
        price_overrides,
    )
    header["pricing"] = pricing_record(prices)
    scorer = judge_scorer(
        protocol,
        panel,
        conversations,
        reasks=config.judge_reasks,
        seed=config.seed,
        repeats=config.judge_repeats,
        swap=swap,
        turns_to_judge=len(conversations) * config.turns,
    )

    def rollout(hooks: Hooks, scorer: Scorer) -> Rollout:
        return Rollout(
            simulator=roles["simulator"],
            model=roles["model"],
            simulator_prompt=simulator_prompt,
            settings=RolloutSettings(
                turns=config.turns,
                seed=config.seed,
                simulator=config.simulator.settings(
                    int(simulator_prompt.defaults.get("max_new_tokens", 300))
                ),
                model=config.model.settings(2048),
                simulator_retries=config.simulator_retries,
            ),
            judge_turn=scorer.submit,
            model_system_prompt=explicit_prompt,
            on_progress=hooks.rollout_event,
        )

    return TaskRun(
        scorer_name=SCORER,
        header=header,
        conversations=conversations,
        usage_roles=usage_roles,
        turns=config.turns,
        seed=config.seed,
        n_bootstrap=config.n_bootstrap,
        scorer=scorer,
        solver=rollout,
        journaled=True,
        prices=prices,
        batch_roles=frozenset({"judge"} if judge_batch else ()),
        closers=closers,
    )


def _setup_from_items(
    config: RunConfig,
    items: list[Persona],
    engine: RunBackends,
    out: Path | None,
    backends: Mapping[str, Backend] | None = None,
) -> TaskRun:
    return setup(config, PersonaSet(config.personas, items, source="lm-eval requests"), engine, out, backends)
