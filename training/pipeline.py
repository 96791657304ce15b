"""`aloe-train pipeline`: personas -> conversations -> SFT and/or DPO -> evaluation of the base and the
trained checkpoints on the same personas -> a comparison table.

Every stage writes into one work folder and resumes on its own (pool meta, call cache, finished
checkpoints are kept), so re-running the same command continues where it stopped.
    OUT/personas/{profiles,personalities}.jsonl   (with --grow)
    OUT/conversations.jsonl
    OUT/{sft,dpo}/                                 trained checkpoints
    OUT/eval/{base,sft,dpo}/                       aloe-bench run directories
    OUT/comparison.csv                             the table printed at the end
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.engine.config import RoleConfig, RunConfig
from aloe_bench.errors import UserInputError, required
from aloe_bench.log.results import write_json_atomic
from aloe_bench.models.backends import parse_args
from aloe_train import conversations as conv_mod
from aloe_train import personas as personas_mod
from aloe_train import train as train_mod
from aloe_train.report import comparison_board

METHODS = ("sft", "dpo")


@dataclass
class PipelineConfig:
    output: str | None = field(
        default=None, metadata={"help": "work folder for every stage", "required": True, "metavar": "DIR"}
    )
    model: str | None = field(
        default=None,
        metadata={
            "help": "base checkpoint to train: hf/<path|hub id>, a folder, or embedded",
            "required": True,
            "metavar": "SPEC",
        },
    )
    methods: str = field(
        default="sft,dpo", metadata={"help": "what to train from the base: sft, dpo, or sft,dpo"}
    )
    generator: str = field(
        default="embedded",
        metadata={
            "help": "backend spec for every data-generation role (persona growth, simulated user, extractor, responders, judge)",
            "metavar": "SPEC",
        },
    )
    generator_args: str | None = field(
        default=None, metadata={"help": "backend arguments for --generator", "metavar": "K=V,..."}
    )
    personas: str = field(
        default="pool",
        metadata={
            "help": "training personas: pool (ALOE training pool), demo, or a JSONL of {profile, personality}",
            "metavar": "NAME|PATH",
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "folder with the original ALOE files (pool, aloe)", "metavar": "DIR"}
    )
    grow: int = field(
        default=0,
        metadata={
            "help": "grow profile and personality pools from the shipped seeds to this size and use them instead of --personas (0: no growth)"
        },
    )
    grow_per_request: int = field(default=20, metadata={"help": "descriptions asked per growth request"})
    embedder: str = field(
        default="auto",
        metadata={"help": "similarity model for growth: auto, st/<model>, minilm, tfidf", "metavar": "NAME"},
    )
    passes: int = field(default=10, metadata={"help": "conversations per training persona/profile"})
    limit: int | None = field(default=None, metadata={"help": "at most this many training conversations"})
    turns: int = field(default=10, metadata={"help": "turns per training conversation"})
    max_new_tokens: int | None = field(
        default=None,
        metadata={
            "help": "cap on every generated chat message (simulated user, responders, judges, evaluated "
            "models); small for smoke tests"
        },
    )
    extractor_max_new_tokens: int | None = field(
        default=None,
        metadata={"help": "the extractor's budget (it writes two fields; default: its prompt's)"},
    )
    grow_max_new_tokens: int | None = field(
        default=None, metadata={"help": "budget of one growth request (default: its prompt's)"}
    )
    max_steps: int = field(default=-1, metadata={"help": "optimizer steps per training (-1: one epoch)"})
    max_length: int = field(default=8192, metadata={"help": "max tokens per training example"})
    learning_rate: float | None = field(default=None, metadata={"help": "default: the paper's (1e-5)"})
    per_device_train_batch_size: int | None = field(
        default=None, metadata={"help": "default: the paper's (SFT 1, DPO 4)"}
    )
    gradient_accumulation_steps: int | None = field(
        default=None, metadata={"help": "default: the paper's (SFT 48, DPO 12)"}
    )
    lora: bool = field(
        default=False, metadata={"help": "train LoRA adapters (merged into the saved checkpoints)"}
    )
    eval_personas: str = field(
        default="aloe",
        metadata={
            "help": "evaluation personas: aloe (official 100), demo, or a JSONL",
            "metavar": "NAME|PATH",
        },
    )
    eval_limit: int | None = field(default=None, metadata={"help": "only the first N evaluation personas"})
    eval_turns: int = field(default=10, metadata={"help": "turns per evaluation conversation"})
    eval_simulator: str | None = field(
        default=None, metadata={"help": "evaluation simulated user (default: --generator)", "metavar": "SPEC"}
    )
    eval_judge: str | None = field(
        default=None, metadata={"help": "evaluation judge (default: --generator)", "metavar": "SPEC"}
    )
    seed: int = field(default=0, metadata={"help": "seed for every stage"})
    cache: str | None = field(
        default=None,
        metadata={"help": "call cache file shared by every stage ('' = none)", "metavar": "PATH"},
    )

    def validate(self) -> None:
        if not self.output or not self.model:
            raise UserInputError("--output and --model are required")
        if not self.method_list():
            raise UserInputError(f"--methods must name at least one of {', '.join(METHODS)}")
        if self.grow < 0:
            raise UserInputError("--grow cannot be negative")

    def method_list(self) -> list[str]:
        methods = [m.strip() for m in self.methods.split(",") if m.strip()]
        unknown = [m for m in methods if m not in METHODS]
        if unknown:
            raise UserInputError(
                f"unknown method(s) {', '.join(unknown)} in --methods: use sft, dpo or sft,dpo"
            )
        return methods


def _log(message: str) -> None:
    print(f"aloe-train pipeline: {message}", file=sys.stderr, flush=True)


def _grow(config: PipelineConfig, work: Path) -> tuple[str, str]:
    paths = []
    for kind in personas_mod.KINDS:
        out = work / "personas" / f"{personas_mod.PLURAL[kind]}.jsonl"
        meta = personas_mod.grow_pool(
            personas_mod.PersonaGrowthConfig(
                output=str(out),
                kind=kind,
                target=config.grow,
                generator=config.generator,
                generator_args=config.generator_args,
                per_request=config.grow_per_request,
                embedder=config.embedder,
                seed=config.seed,
                cache=config.cache,
                max_new_tokens=config.grow_max_new_tokens,
            ),
            progress=False,
        )
        _log(personas_mod.summary(meta, str(out)))
        paths.append(str(out))
    return paths[0], paths[1]


def _train(config: PipelineConfig, work: Path, data: Path, method: str) -> Path:
    output = work / method
    overrides: dict[str, Any] = {
        "learning_rate": config.learning_rate,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
    }
    settings: dict[str, Any] = {
        "model": config.model,
        "data": str(data),
        "output": str(output),
        "max_steps": config.max_steps,
        "max_length": config.max_length,
        "lora": config.lora,
        "seed": config.seed,
        **{k: v for k, v in overrides.items() if v is not None},
    }
    if method == "sft":
        record = train_mod.run_sft(train_mod.SFTRunConfig(**settings))
    else:
        record = train_mod.run_dpo(train_mod.DPORunConfig(**settings))
    _log(train_mod.summary(record, str(output)))
    return output


def _evaluate(config: PipelineConfig, work: Path, label: str, spec: str) -> Path:
    from aloe_bench.engine.runner import run_benchmark

    def role(spec_: str | None) -> RoleConfig:
        if spec_:
            return RoleConfig(spec_, max_new_tokens=config.max_new_tokens)
        args = parse_args(config.generator_args, "--generator-args")
        return RoleConfig(config.generator, args, max_new_tokens=config.max_new_tokens)

    run_config = RunConfig(
        model=RoleConfig(spec, max_new_tokens=config.max_new_tokens),
        simulator=role(config.eval_simulator),
        judge=role(config.eval_judge),
        personas=config.eval_personas,
        data_dir=config.data_dir,
        limit=config.eval_limit,
        turns=config.eval_turns,
        seed=config.seed,
        output=str(work / "eval" / label),
        cache=config.cache,
    )
    out, results = run_benchmark(run_config, progress=False)
    _log(f"evaluated {label} ({spec}): AVG {results.metrics.avg}, run directory {out}")
    return out


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    config.validate()
    methods = config.method_list()
    work = Path(required(config.output, "--output")).expanduser()
    work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(work / "pipeline.json", {"config": asdict(config), "status": "running"})

    conversations = work / "conversations.jsonl"
    conv_config = conv_mod.ConversationConfig(
        output=str(conversations),
        personas=config.personas,
        data_dir=config.data_dir,
        passes=config.passes,
        limit=config.limit,
        turns=config.turns,
        seed=config.seed,
        generator=config.generator,
        generator_args=config.generator_args,
        cache=config.cache,
        simulator_max_new_tokens=config.max_new_tokens,
        responder_max_new_tokens=config.max_new_tokens,
        judge_max_new_tokens=config.max_new_tokens,
        extractor_max_new_tokens=config.extractor_max_new_tokens,
    )
    if config.grow:
        conv_config.profiles, conv_config.personalities = _grow(config, work)
    _log("generating conversations")
    meta = conv_mod.generate_conversations(conv_config, progress=False)
    _log(conv_mod.summary(meta, str(conversations)))
    if not meta["complete"]:
        raise UserInputError(f"no complete training conversation (failures in {conversations}.meta.json)")

    checkpoints = {m: _train(config, work, conversations, m) for m in methods}
    runs = {"base": _evaluate(config, work, "base", required(config.model, "--model"))}
    for method, path in checkpoints.items():
        runs[method] = _evaluate(config, work, method, f"hf/{path}")
    board = comparison_board(runs)
    board.frame.to_csv(work / "comparison.csv", index=False)
    write_json_atomic(
        work / "pipeline.json",
        {
            "config": asdict(config),
            "status": "complete",
            "conversations": conv_config.output,
            "checkpoints": {m: str(p) for m, p in checkpoints.items()},
            "runs": {k: str(v) for k, v in runs.items()},
        },
    )
    return {"board": board, "runs": runs, "checkpoints": checkpoints}
