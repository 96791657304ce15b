"""`aloe-train pipeline --recipe rl`: online RL against the simulated user (RLPA-style, docs/rl.md),
then the base and the RL checkpoint scored on held-out personas and compared.

    training personas (--personas, refused if any is in --eval-personas)
      [-> conversations -> SFT warm start]          with --methods sft,rl
      -> aloe-train rl (GRPO, preset rlpa)           OUT/rl/
      -> aloe-bench run: base [, sft], rl            OUT/eval/{base,sft,rl}/
      -> comparison                                  OUT/comparison.{csv,html}

The RL stage is composed like the other stages (pipeline.stage_argv): the `rlpa` preset, then
`--rl-config FILE.yaml`, then the pipeline's own settings, then every flag of the command line that
`aloe-train rl` knows (`--max_steps`, `--num_generations`, `--use_vllm`, `--judge`, ...). The
simulated user and the judge of training are `--generator` (as for the other recipes' data), unless
`--simulator` / `--judge` are given for the RL stage itself.

Resuming: a finished RL checkpoint of the same training is found and kept ("already holds this
training"); an interrupted one resumes from its last TRL checkpoint (the pipeline saves one every
`--save_steps`, default 50 GRPO steps); evaluations resume as any `aloe-bench run` does.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from aloe_bench.errors import UserInputError, required

if TYPE_CHECKING:
    from aloe_train.pipeline import PipelineConfig

RL_SAVE_STEPS = 50  # a resume point every 50 GRPO steps (an RLPA step is minutes on one GPU)


def rl_settings(config: PipelineConfig, work: Path, start: str) -> list[str]:
    """The RL stage's settings from the pipeline's own flags (forwarded flags come after and win)."""
    settings = [
        "--model", start, "--output", str(work / "rl"),
        "--simulator", config.generator, "--judge", config.generator,
        "--personas", config.personas, "--eval_personas", config.eval_personas,
        "--turns", str(config.turns),
        "--save_strategy", "steps", "--save_steps", str(RL_SAVE_STEPS),
    ]  # fmt: skip
    if config.cache is not None:  # the call cache every stage shares
        settings += ["--cache", config.cache]
    if config.generator_args:
        settings += ["--simulator_args", config.generator_args, "--judge_args", config.generator_args]
    if config.data_dir:
        settings += ["--data_dir", config.data_dir]
    if config.limit is not None:
        settings += ["--limit", str(config.limit)]
    if config.max_new_tokens is not None:
        settings += ["--simulator_max_new_tokens", str(config.max_new_tokens)]
        settings += ["--judge_max_new_tokens", str(config.max_new_tokens)]
    return settings


def train_rl_stage(config: PipelineConfig, work: Path, start: str) -> Path:
    from aloe_train import rl as rl_mod
    from aloe_train.pipeline import _log, stage_argv

    output = work / "rl"
    record = rl_mod.run_rl(stage_argv(config, "rl", rl_settings(config, work, start)))
    _log(rl_mod.summary(record, str(output)))
    return output


def run_rl_recipe(
    config: PipelineConfig, work: Path, methods: list[str]
) -> tuple[dict[str, Path], dict[str, Path]]:
    from aloe_train.pipeline import _evaluate, _generate_conversations, _train

    base = required(config.model, "--model")
    checkpoints: dict[str, Path] = {}
    start = base
    if "sft" in methods:  # the warm start: SFT on ALOE preference conversations, RL from there
        conversations = _generate_conversations(config, work)
        checkpoints["sft"] = _train(config, work, "sft", ["--model", base, "--data", str(conversations)])
        start = f"hf/{checkpoints['sft']}"
    checkpoints["rl"] = train_rl_stage(config, work, start)
    runs = {"base": _evaluate(config, work, "base", base)}
    for method, path in checkpoints.items():
        runs[method] = _evaluate(config, work, method, f"hf/{path}")
    return checkpoints, runs


def validate_rl(config: PipelineConfig, methods: list[str]) -> None:
    if "rl" not in methods:
        raise UserInputError(
            "--recipe rl trains with RL: --methods must include rl (sft,rl for a warm start)"
        )
    if config.grow:
        raise UserInputError(
            "--recipe rl trains on --personas (pool, demo or a JSONL of {profile, personality}); "
            "--grow is for --recipe aloe: grow the pools with `aloe-train personas` and pair them into a JSONL"
        )
