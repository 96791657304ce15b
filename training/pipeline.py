"""`aloe-train pipeline`: train from a base, then score the base and every trained checkpoint on the
same instances with the same judge, and compare them (paired table, HTML report).

`--recipe aloe` (SPEC 1.4-1.5): personas -> conversations -> SFT and/or DPO -> aloe-bench -> comparison.
`--recipe janus` (SPEC 2.3): SFT on Multifaceted rows -> DPO and/or ORPO from the SFT checkpoint
(-> a reward model, optionally two-stage) -> Multifaceted Bench on base, SFT, DPO/ORPO -> comparison.
`--recipe rl` (docs/rl.md): personas -> [conversations -> SFT warm start ->] online RL against the
simulated user (`aloe-train rl`) -> aloe-bench on held-out personas -> comparison (pipeline_rl.py).

Training stages are composed, not repeated: each gets the recipe's preset (`--preset aloe|janus`), an
optional stage file (`--sft-config FILE.yaml`, ...), and every other flag of the pipeline's command
line that its TRL parser knows (`--max-steps 2`, `--weight_decay 0.1`, `--use_peft`, ...).

Every stage writes into one work folder and resumes on its own (pool meta, call cache, finished
checkpoints are kept), so re-running the same command continues where it stopped.
    OUT/personas/{profiles,personalities}.jsonl   (with --grow)
    OUT/conversations.jsonl
    OUT/{sft,dpo,orpo,rm,rl}/                      trained checkpoints (a finished one is never redone;
                                                   an interrupted one resumes from its last checkpoint)
    OUT/eval/{base,sft,dpo,orpo,rl}/               aloe-bench run directories
    OUT/comparison.{csv,html}                      the table printed at the end
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError, required
from aloe_bench.log.results import write_json_atomic
from aloe_bench.models.backends import parse_args
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.tasks.aloe.config import RunConfig
from aloe_train import conversations as conv_mod
from aloe_train import personas as personas_mod
from aloe_train import train as train_mod
from aloe_train.report import comparison_board, format_board

RECIPES = ("aloe", "janus", "rl")
METHODS = {"aloe": ("sft", "dpo"), "janus": ("sft", "dpo", "orpo", "rm"), "rl": ("sft", "rl")}
DEFAULT_METHODS = {"aloe": "sft,dpo", "janus": "sft,dpo,orpo", "rl": "rl"}
STAGE_FILES = {
    "sft": "sft_config",
    "dpo": "dpo_config",
    "orpo": "orpo_config",
    "rm": "rm_config",
    "rl": "rl_config",
}
# a stage's preset: the recipe's, except the RL recipe's stages (its SFT warm start trains as ALOE's)
STAGE_PRESETS = {("rl", "rl"): "rlpa", ("rl", "sft"): "aloe"}


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
    recipe: str = field(
        default="aloe",
        metadata={
            "help": "aloe (SPEC 1.4-1.5), janus (SPEC 2.3) or rl (online RL against the simulated user)",
            "choices": list(RECIPES),
        },
    )
    methods: str | None = field(
        default=None,
        metadata={
            "help": "what to train: aloe: sft,dpo (default) from the base; janus: sft,dpo,orpo (default) "
            "and rm: DPO, ORPO and the reward model start from the SFT checkpoint (as the release); "
            "rl: rl (default), or sft,rl to start RL from an SFT warm start",
            "metavar": "LIST",
        },
    )
    data: str | None = field(
        default=None,
        metadata={
            "help": "janus: SFT data, Multifaceted rows (file or hub name, e.g. kaist-ai/Multifaceted-Collection-small)",
            "metavar": "PATH|NAME",
        },
    )
    pairs: str | None = field(
        default=None,
        metadata={
            "help": "janus: preference pairs for DPO/ORPO (and the RM when --rm-data is not given)",
            "metavar": "PATH|NAME",
        },
    )
    rm_data: str | None = field(
        default=None, metadata={"help": "janus: reward-model pairs", "metavar": "PATH|NAME"}
    )
    rm_stage2_data: str | None = field(
        default=None,
        metadata={"help": "janus: the reward model's second-stage preference set", "metavar": "PATH|NAME"},
    )
    prompt_format: str = field(
        default="auto",
        metadata={
            "help": "janus: auto (the base's chat template, or Janus's [INST] format without one), template, janus",
            "choices": ["auto", "template", "janus"],
        },
    )
    bench: str = field(
        default="sample",
        metadata={
            "help": "janus: Multifaceted Bench instances to score on (sample, a file, or hf for the hub set)",
            "metavar": "NAME|PATH",
        },
    )
    bon_n: int = field(
        default=0,
        metadata={
            "help": "janus with sft and rm: also score best-of-N (N samples of the SFT model at Janus's "
            "temperature 1.0 / top-p 0.9, reranked by the reward model; spec bon/N:POLICY@RM); 0: off"
        },
    )
    sft_config: str | None = field(
        default=None, metadata={"help": "YAML of TRL settings for SFT", "metavar": "FILE"}
    )
    dpo_config: str | None = field(
        default=None, metadata={"help": "YAML of TRL settings for DPO", "metavar": "FILE"}
    )
    orpo_config: str | None = field(
        default=None, metadata={"help": "YAML of TRL settings for ORPO", "metavar": "FILE"}
    )
    rm_config: str | None = field(
        default=None, metadata={"help": "YAML of TRL settings for the reward model", "metavar": "FILE"}
    )
    rl_config: str | None = field(
        default=None,
        metadata={"help": "rl: YAML of aloe-train rl settings (GRPOConfig and its own)", "metavar": "FILE"},
    )
    train_args: list[str] = field(default_factory=list, metadata={"cli": False})
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
    limit: int | None = field(
        default=None,
        metadata={"help": "at most this many training conversations (rl: the first N training personas)"},
    )
    turns: int = field(default=10, metadata={"help": "turns per training conversation (rl: per rollout)"})
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
    eval_personas: str = field(
        default="aloe",
        metadata={
            "help": "evaluation personas: aloe (official 100), demo, or a JSONL",
            "metavar": "NAME|PATH",
        },
    )
    eval_limit: int | None = field(
        default=None, metadata={"help": "only the first N evaluation personas (janus: bench instances)"}
    )
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
        if self.recipe not in RECIPES:
            raise UserInputError(f"--recipe must be one of {', '.join(RECIPES)}")
        methods = self.method_list()
        if not methods:
            raise UserInputError(f"--methods must name at least one of {', '.join(METHODS[self.recipe])}")
        if self.grow < 0:
            raise UserInputError("--grow cannot be negative")
        if self.recipe == "janus":
            if not self.data and "sft" in methods:
                raise UserInputError(
                    "--recipe janus needs --data (Multifaceted SFT rows: a file or a hub name)"
                )
            if {"dpo", "orpo"} & set(methods) and "sft" not in methods:
                raise UserInputError(
                    "--recipe janus trains DPO/ORPO from the SFT checkpoint: add sft to --methods"
                )
            if {"dpo", "orpo"} & set(methods) and not self.pairs:
                raise UserInputError(
                    "--recipe janus with dpo/orpo needs --pairs (system, prompt, chosen, rejected)"
                )
            if "rm" in methods and not (self.rm_data or self.pairs):
                raise UserInputError("--recipe janus with rm needs --rm-data or --pairs")
            if self.bon_n and "rm" not in methods:
                raise UserInputError("--bon-n needs a reward model: add rm to --methods")
            if self.bon_n < 0:
                raise UserInputError("--bon-n cannot be negative")
            if self.bon_n and "sft" not in methods:  # checked before any training: no work lost at the end
                raise UserInputError("--bon-n samples the SFT model: add sft to --methods")
        if self.recipe == "rl":
            from aloe_train.pipeline_rl import validate_rl

            validate_rl(self, methods)

    def method_list(self) -> list[str]:
        text = self.methods if self.methods is not None else DEFAULT_METHODS.get(self.recipe, "")
        methods = [m.strip() for m in text.split(",") if m.strip()]
        allowed = METHODS.get(self.recipe, ())
        unknown = [m for m in methods if m not in allowed]
        if unknown:
            raise UserInputError(
                f"unknown method(s) {', '.join(unknown)} in --methods for --recipe {self.recipe}: "
                f"use {', '.join(allowed)}"
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


def _groups(argv: list[str]) -> list[list[str]]:
    """`--flag value...` groups of a command line (a value never starts with --)."""
    groups: list[list[str]] = []
    for arg in argv:
        if arg.startswith("--") or not groups:
            groups.append([arg])
        else:
            groups[-1].append(arg)
    return groups


def _known_flags(kind: str) -> set[str]:
    from aloe_train.args import known_flags, make_parser

    if kind == "rl":
        from aloe_train.rl import make_parser as rl_parser

        return known_flags(rl_parser()) - {"--config"}
    return known_flags(make_parser(kind)) - {"--config"}  # the pipeline's stage files are its own flags


def unknown_train_flag(argv: list[str]) -> tuple[str | None, set[str]]:
    """The pipeline hands its unknown flags to the training stages: the first one no trainer knows
    (an error, not silently dropped; the CLI names the closest real flag), and every flag they know."""
    known = set().union(*(_known_flags(k) for k in ("sft", "dpo", "orpo", "rm", "rl")))
    for group in _groups(argv):
        flag = group[0].split("=", 1)[0]
        if not flag.startswith("--") or flag not in known:
            return flag, known
    return None, known


def stage_argv(config: PipelineConfig, method: str, settings: list[str]) -> list[str]:
    """A stage's command line: the recipe's preset, the stage file, the pipeline's own settings, then
    every forwarded flag this trainer knows (later wins, as on the command line)."""
    known = _known_flags(method)
    forwarded = [a for g in _groups(config.train_args) if g[0].split("=", 1)[0] in known for a in g]
    stage_file = getattr(config, STAGE_FILES[method])
    preset = STAGE_PRESETS.get((config.recipe, method), config.recipe)
    return [
        "--preset", preset, *(["--config", stage_file] if stage_file else []),
        "--seed", str(config.seed), *settings, *forwarded,
    ]  # fmt: skip


def _train(config: PipelineConfig, work: Path, method: str, settings: list[str]) -> Path:
    output = work / method
    argv = stage_argv(config, method, [*settings, "--output", str(output)])
    record = train_mod.run(method, argv)
    _log(train_mod.summary(record, str(output)))
    return output


def _evaluate(config: PipelineConfig, work: Path, label: str, spec: str) -> Path:
    from aloe_bench.tasks.aloe.run import run_benchmark

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


def _judge_role(config: PipelineConfig) -> RoleConfig:
    if config.eval_judge:
        return RoleConfig(config.eval_judge, max_new_tokens=config.max_new_tokens)
    args = parse_args(config.generator_args, "--generator-args")
    return RoleConfig(config.generator, args, max_new_tokens=config.max_new_tokens)


def _evaluate_multifaceted(
    config: PipelineConfig,
    work: Path,
    label: str,
    spec: str,
    temperature: float | None = None,
    top_p: float | None = None,
) -> Path:
    """Every checkpoint: the same bench instances (--bench, --eval-limit), the same judge, the same seed.
    `temperature`, `top_p`: for best-of-N, whose N candidates must differ."""
    from aloe_bench.tasks.multifaceted.config import MultifacetedConfig
    from aloe_bench.tasks.multifaceted.run import run_multifaceted

    run_config = MultifacetedConfig(
        model=RoleConfig(spec, max_new_tokens=config.max_new_tokens, temperature=temperature, top_p=top_p),
        judge=_judge_role(config),
        data=None if config.bench == "hf" else config.bench,
        limit=config.eval_limit,
        seed=config.seed,
        output=str(work / "eval" / label),
        cache=config.cache,
    )
    out, results = run_multifaceted(run_config, progress=False)
    _log(f"evaluated {label} ({spec}) on Multifaceted Bench: mean {results.metrics.avg}, run directory {out}")
    return out


def base_in_training_format(config: PipelineConfig, work: Path, sft_checkpoint: Path) -> str:
    """The base as the trained checkpoints see their prompts. When SFT trained with Janus's [INST]
    format and the base has no such template (a base model), the base is scored through a view of it:
    its weights linked, its tokenizer saved with the template training used, so that base and trained
    checkpoints get the same prompt text."""
    import json

    from transformers import AutoTokenizer

    base = required(config.model, "--model")
    record = json.loads((sft_checkpoint / train_mod.RECORD_FILE).read_text())
    if record["base"].get("prompt_format") != "janus":
        return base
    source = Path(train_mod.resolve_model(base))
    if not source.is_dir():
        from huggingface_hub import snapshot_download

        try:
            source = Path(snapshot_download(str(source), local_files_only=True))
        except Exception:  # noqa: BLE001 - not in the cache: say what to do
            raise UserInputError(
                f"to score {base} in Janus's format the pipeline needs its files locally; "
                f"`hf download {source}` first"
            ) from None
    view = work / "base_view"
    tok = AutoTokenizer.from_pretrained(str(source))
    from aloe_train.formatting import JANUS_TEMPLATE

    if tok.chat_template == JANUS_TEMPLATE:
        return base
    if not (view / "config.json").exists():
        view.mkdir(parents=True, exist_ok=True)
        tok.chat_template = JANUS_TEMPLATE
        tok.save_pretrained(view)
        saved = {p.name for p in view.iterdir()}
        for f in source.iterdir():
            if f.is_file() and f.name not in saved and not f.name.startswith("."):
                (view / f.name).symlink_to(f.resolve())
    return f"hf/{view}"


def _run_janus(
    config: PipelineConfig, work: Path, methods: list[str]
) -> tuple[dict[str, Path], dict[str, Path]]:
    base = required(config.model, "--model")
    checkpoints: dict[str, Path] = {}
    if "sft" in methods:
        settings = [
            "--model",
            base,
            "--data",
            required(config.data, "--data"),
            "--prompt_format",
            config.prompt_format,
        ]
        checkpoints["sft"] = _train(config, work, "sft", settings)
    for method in ("dpo", "orpo"):
        if method in methods:  # from the SFT checkpoint, which carries the prompt format it trained with
            settings = ["--model", str(checkpoints["sft"]), "--data", required(config.pairs, "--pairs")]
            checkpoints[method] = _train(config, work, method, settings)
    if "rm" in methods:  # as the release: from the SFT checkpoint (its prompt format), else the base
        data = config.rm_data or required(config.pairs, "--pairs")
        start = ["--model", str(checkpoints["sft"])] if "sft" in checkpoints else ["--model", base]
        settings = [
            *start,
            "--data",
            data,
            "--prompt_format",
            config.prompt_format if "sft" not in checkpoints else "auto",
        ]
        if config.rm_stage2_data:
            settings += ["--stage2_data", config.rm_stage2_data]
        checkpoints["rm"] = _train(config, work, "rm", settings)
    base_spec = base_in_training_format(config, work, checkpoints["sft"]) if "sft" in checkpoints else base
    runs = {"base": _evaluate_multifaceted(config, work, "base", base_spec)}
    for method in ("sft", "dpo", "orpo"):
        if method in checkpoints:
            runs[method] = _evaluate_multifaceted(config, work, method, f"hf/{checkpoints[method]}")
    if config.bon_n:
        # Best-of-N (the `bon/N:POLICY@RM` model spec): N samples of the SFT model at Janus's sampling
        # settings (SPEC 2.4), the one the reward model ranks first; candidates kept in the transcript.
        spec = f"bon/{config.bon_n}:hf/{checkpoints['sft']}@{checkpoints['rm']}"
        runs[f"bon{config.bon_n}"] = _evaluate_multifaceted(
            config, work, f"bon{config.bon_n}", spec, temperature=1.0, top_p=0.9
        )
    return checkpoints, runs


def _generate_conversations(config: PipelineConfig, work: Path) -> Path:
    """ALOE's preference conversations for SFT/DPO (resumes: finished conversations are kept)."""
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
    return conversations


def _run_aloe(
    config: PipelineConfig, work: Path, methods: list[str]
) -> tuple[dict[str, Path], dict[str, Path]]:
    conversations = _generate_conversations(config, work)
    base = required(config.model, "--model")
    checkpoints = {
        m: _train(config, work, m, ["--model", base, "--data", str(conversations)]) for m in methods
    }
    runs = {"base": _evaluate(config, work, "base", base)}
    for method, path in checkpoints.items():
        runs[method] = _evaluate(config, work, method, f"hf/{path}")
    return checkpoints, runs


def run_pipeline(config: PipelineConfig) -> dict[str, Any]:
    config.validate()
    methods = config.method_list()
    work = Path(required(config.output, "--output")).expanduser()
    work.mkdir(parents=True, exist_ok=True)
    write_json_atomic(work / "pipeline.json", {"config": asdict(config), "status": "running"})
    if config.recipe == "janus":
        checkpoints, runs = _run_janus(config, work, methods)
    elif config.recipe == "rl":
        from aloe_train.pipeline_rl import run_rl_recipe

        checkpoints, runs = run_rl_recipe(config, work, methods)
    else:
        checkpoints, runs = _run_aloe(config, work, methods)
    board = comparison_board(runs)
    board.frame.to_csv(work / "comparison.csv", index=False)
    (work / "comparison.html").write_text(format_board(board, "html"))
    write_json_atomic(
        work / "pipeline.json",
        {
            "config": asdict(config),
            "status": "complete",
            "checkpoints": {m: str(p) for m, p in checkpoints.items()},
            "runs": {k: str(v) for k, v in runs.items()},
        },
    )
    return {"board": board, "runs": runs, "checkpoints": checkpoints}
