"""How every `aloe-train` trainer reads its options: TRL's own way (trl/scripts/dpo.py).

`TrlParser` over the project's script arguments (what to train on, and how to read it) plus TRL's
config class of the trainer (`SFTConfig`, `DPOConfig`, `ORPOConfig`, `RewardConfig`) and
`ModelConfig`, so every TRL, transformers and peft option is a flag (`--weight_decay 0.1`,
`--optim adafactor`, `--deepspeed ds.json`, `--use_peft --lora_r 8`, ...) and nothing of theirs is
declared again here. Values come, weakest first, from: TRL's defaults, this machine (bf16 and
activation checkpointing only with a GPU), the preset (`--preset aloe|janus|none`, YAML shipped in
aloe_train/presets), `--config FILE.yaml`, then the command line.

The ALOE-era flag names keep working: `--model` (a backend spec: hf/..., a folder, embedded),
`--output`, `--lora`, and `--no-FLAG` for any on/off option.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError

KINDS = ("sft", "dpo", "orpo", "rm")
PRESETS = ("aloe", "janus", "none")
DEFAULT_PRESET = {"sft": "aloe", "dpo": "aloe", "orpo": "janus", "rm": "janus"}
DATA_FORMATS = ("auto", "aloe", "multifaceted", "pairs", "rm")
PROMPT_FORMATS = ("auto", "template", "janus")
# the first ALOE command line's names -> TRL's
LEGACY_FLAGS = {
    "--model": "--model_name_or_path",
    "--output": "--output_dir",
    "--lora": "--use_peft",
    "--no-lora": "--use_peft=false",
    "--no_lora": "--use_peft=false",
    # transformers renamed it; our machine default sets the new name, so the old one must follow it
    "--gradient-checkpointing": "--activation_checkpointing",
    "--gradient_checkpointing": "--activation_checkpointing",
    "--no-gradient-checkpointing": "--activation_checkpointing=false",
    "--no_gradient_checkpointing": "--activation_checkpointing=false",
}


@dataclass
class ScriptArguments:
    """What to train on and how to read it (the project's own; TRL's configs hold the rest)."""

    data: str | None = field(
        default=None,
        metadata={
            "help": "training data: a JSON/JSONL/Parquet file, or a Hugging Face dataset name "
            "(e.g. kaist-ai/Multifaceted-Collection-DPO)",
            "aliases": ["--dataset_name"],
        },
    )
    revision: str | None = field(
        default=None, metadata={"help": "revision (branch, tag, commit) of a hub dataset"}
    )
    split: str = field(default="train", metadata={"help": "split of a hub dataset"})
    format: str = field(
        default="auto",
        metadata={
            "help": "data format (auto: recognised by its columns): aloe (tree conversations), multifaceted "
            "(system, prompt, output), pairs (system, prompt, chosen, rejected), rm (input, chosen, rejected)",
            "choices": list(DATA_FORMATS),
        },
    )
    prompt_format: str = field(
        default="auto",
        metadata={
            "help": "template: the checkpoint's chat template; janus: Janus's raw `[INST] {system}\\n"
            "{instruction} [/INST]` (saved as the checkpoint's template, so evaluation uses it too); "
            "auto: the template when the checkpoint has one, else janus",
            "choices": list(PROMPT_FORMATS),
        },
    )
    preset: str | None = field(
        default=None,
        metadata={
            "help": "paper settings to start from: aloe (SPEC 1.5), janus (SPEC 2.3), none (TRL's "
            "defaults); default aloe for sft/dpo, janus for orpo/rm; flags and --config override it",
            "choices": list(PRESETS),
        },
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a different checkpoint already in --output"}
    )


@dataclass
class SFTScriptArguments(ScriptArguments):
    target: str = field(
        default="preferred",
        metadata={
            "help": "ALOE conversations: replies to train on (rejected: the paper's ablation)",
            "choices": ["preferred", "rejected"],
        },
    )
    mode: str = field(
        default="branch",
        metadata={
            "help": "ALOE conversations: branch (one sequence per conversation) or per_turn",
            "choices": ["branch", "per_turn"],
        },
    )
    mix_data: str | None = field(
        default=None,
        metadata={
            "help": "a general instruction set (file or hub name; rows of messages, prompt/output, or "
            "instruction/input/output) mixed into SFT, as the ALOE release did"
        },
    )
    mix_ratio: float = field(
        default=0.0,
        metadata={"help": "share of the mixed set in the final SFT data, 0 <= r < 1 (0: no mixing)"},
    )
    mix_revision: str | None = field(default=None, metadata={"help": "revision of a hub --mix_data"})


@dataclass
class RMScriptArguments(ScriptArguments):
    stage2_data: str | None = field(
        default=None,
        metadata={
            "help": "second stage (Janus-RM): another preference set (file or hub name) trained after "
            "--data, from the stage-1 weights"
        },
    )
    stage2_revision: str | None = field(default=None, metadata={"help": "revision of a hub --stage2_data"})
    stage2_split: str = field(default="train", metadata={"help": "split of a hub --stage2_data"})


def _trl_config(kind: str) -> type:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # ORPO lives in trl.experimental, knowingly
    if kind == "sft":
        from trl import SFTConfig

        return SFTConfig
    if kind == "dpo":
        from trl import DPOConfig

        return DPOConfig
    if kind == "orpo":
        from trl.experimental.orpo import ORPOConfig

        return ORPOConfig
    from trl import RewardConfig

    return RewardConfig


def script_class(kind: str) -> type[ScriptArguments]:
    return {"sft": SFTScriptArguments, "rm": RMScriptArguments}.get(kind, ScriptArguments)


def make_parser(kind: str):
    from trl import ModelConfig, TrlParser

    if kind not in KINDS:
        raise UserInputError(f"unknown trainer {kind!r}: use one of {', '.join(KINDS)}")
    types: Any = (script_class(kind), _trl_config(kind), ModelConfig)
    return TrlParser(types, prog=f"aloe-train {kind}")


def load_preset(kind: str, name: str) -> dict[str, Any]:
    """The preset's settings ({} for none); a combination the papers do not have is refused."""
    import yaml

    if name not in PRESETS:
        raise UserInputError(f"--preset must be one of {', '.join(PRESETS)} (got {name!r})")
    if name == "none":
        return {}
    resource = resources.files("aloe_train") / "presets" / f"{name}_{kind}.yaml"
    if not resource.is_file():
        raise UserInputError(
            f"there is no {name} preset for {kind} (the ALOE paper trained SFT and DPO only); "
            "use --preset janus or --preset none"
        )
    loaded = yaml.safe_load(resource.read_text()) or {}
    return dict(loaded)


def machine_defaults() -> dict[str, Any]:
    """Defaults that depend on this machine, and operational ones (not paper settings)."""
    import torch

    cuda = torch.cuda.is_available()
    return {
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "use_cpu": not cuda,
        "activation_checkpointing": cuda,  # saves GPU memory; on a CPU it only costs time
        "report_to": "none",
        "save_total_limit": 2,  # resume needs the last checkpoint only; a 7B one is ~30 GB
        "ddp_find_unused_parameters": False,
    }


def _option_value(argv: list[str], name: str) -> str | None:
    """The value of the last `name` in argv (the last one wins, as argparse does)."""
    found = None
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            found = argv[i + 1]
        elif arg.startswith(name + "="):
            found = arg.split("=", 1)[1]
    return found


def _config_preset(argv: list[str]) -> str | None:
    """`preset:` inside the --config YAML (the preset sets defaults, so it must be known first)."""
    import yaml

    path = _option_value(argv, "--config")
    if not path:
        return None
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise UserInputError(f"--config {path}: {str(exc).splitlines()[0]}") from None
    value = loaded.get("preset") if isinstance(loaded, dict) else None
    return str(value) if value else None


def translate_legacy(argv: list[str], parser: Any) -> list[str]:
    """Old flag names -> TRL's; `--no-X` -> `--X false` for an on/off option TRL declares without one."""
    known = {s for a in parser._actions for s in a.option_strings}
    bools = {a.dest for a in parser._actions if a.const is True or getattr(a, "type", None) is bool}
    out: list[str] = []
    for arg in argv:
        flag, eq, value = arg.partition("=")
        if flag in LEGACY_FLAGS:
            new = LEGACY_FLAGS[flag]
            out.append(new + (eq + value if eq else "") if "=" not in new else new)
            continue
        if flag.startswith("--no") and flag not in known:
            dest = flag[5:].replace("-", "_") if flag[4] in "-_" else ""
            if dest in bools:
                out += [f"--{dest}", "false"]
                continue
        out.append(arg)
    # `--lora_target_modules a,b` (the old comma form) -> `a b`
    fixed: list[str] = []
    for i, arg in enumerate(out):
        if i > 0 and out[i - 1] in ("--lora_target_modules", "--lora-target-modules") and "," in arg:
            fixed += [t for t in arg.split(",") if t]
        else:
            fixed.append(arg)
    return fixed


@dataclass
class Stage:
    """One trainer's parsed settings."""

    kind: str
    script: Any
    train: Any
    model: Any
    preset: str
    argv: list[str]

    def record(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "preset": self.preset,
            "script": dataclasses.asdict(self.script),
            "model": dataclasses.asdict(self.model),
        }


def known_flags(parser: Any) -> set[str]:
    """Every flag a trainer's parser takes, with the old names and `--no-X` of its on/off options."""
    known = {s for a in parser._actions for s in a.option_strings} | set(LEGACY_FLAGS) | {"--config"}
    bools = {a.dest for a in parser._actions if a.const is True}
    return known | {f"--no-{b.replace('_', '-')}" for b in bools} | {f"--no_{b}" for b in bools}


def unknown_flag(known: set[str], argv: list[str]) -> str | None:
    """The first flag of argv that is neither a known flag nor an abbreviation of one."""
    for arg in argv:
        flag = arg.split("=", 1)[0]
        if flag.startswith("--") and flag not in known and not any(k.startswith(flag) for k in known):
            return flag
    return None


def parse_stage(kind: str, argv: list[str]) -> Stage:
    """argv -> the stage's three config objects; bad values are one line (UserInputError)."""
    parser = make_parser(kind)
    argv = translate_legacy([str(a) for a in argv], parser)
    preset = _option_value(argv, "--preset") or _config_preset(argv) or DEFAULT_PRESET[kind]
    defaults = {**machine_defaults(), **load_preset(kind, preset)}
    unused = parser.set_defaults_with_config(**defaults)
    if unused:  # a preset names a field this TRL does not have: the preset is stale, say so
        raise UserInputError(
            f"preset {preset}/{kind} has unknown settings {unused[::2]} for this TRL version"
        )
    try:
        script, train, model = parser.parse_args_and_config(argv)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise UserInputError(f"aloe-train {kind}: {str(exc).splitlines()[0]}") from None
    script.preset = preset
    if not script.data:
        raise UserInputError(f"aloe-train {kind}: --data is required (a file or a hub dataset name)")
    if not model.model_name_or_path:
        raise UserInputError(
            f"aloe-train {kind}: --model is required (hf/<path|hub id>, a folder, or embedded)"
        )
    if not train.output_dir or train.output_dir == "trainer_output":
        raise UserInputError(f"aloe-train {kind}: --output is required (the folder for the checkpoint)")
    if train.bf16 and train.use_cpu:
        raise UserInputError("--bf16 needs a GPU; on CPU training runs in float32 (drop --bf16)")
    mix = getattr(script, "mix_ratio", 0.0)
    if not 0.0 <= mix < 1.0:
        raise UserInputError(f"--mix_ratio must be in [0, 1) (got {mix})")
    if mix > 0 and not getattr(script, "mix_data", None):
        raise UserInputError("--mix_ratio needs --mix_data (the general instruction set to mix in)")
    return Stage(kind, script, train, model, preset, argv)
