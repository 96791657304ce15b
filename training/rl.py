"""`aloe-train rl`: online RL against the simulated user (GRPO, RLPA-style; docs/rl.md).

Options are TRL's own, parsed as trl/scripts/grpo.py does: `TrlParser` over this module's script
arguments (who plays the user, who judges, which personas, how many turns) plus `GRPOConfig` and
`ModelConfig`, so every GRPO, transformers and peft option is a flag (`--max_steps`,
`--num_generations`, `--beta`, `--reward_weights`, `--use_peft --lora_r 8`, `--use_vllm`, ...) and
none is declared again here. Values come, weakest first, from TRL's defaults, this machine (bf16 only
with a GPU), the preset (`--preset rlpa|none`, YAML in aloe_train/presets/rl), `--config FILE.yaml`,
then the command line. The other trainers' old names work too (`--model`, `--output`, `--lora`,
`--no-X`; aloe_train/args.py).

Rewards (TRL's `reward_funcs`, weighted by GRPOConfig's `reward_weights`): `aloe`, the mean of the
judge's per-turn ALOE scores (1-5) over the conversation; with `--profile_reward`, `profile`, the
judge's 1-5 rating of the profile the policy states at the end of the conversation against the true
one (RLPA's profile-level reward). A conversation the judge could not score gets no reward (TRL
gives it no advantage), never a made-up one.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import sys
import time
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError

PRESETS = ("rlpa", "none")
RECORD_FILE = "aloe_train.json"
ROLLOUTS_FILE = "rollouts.jsonl"


@dataclass
class RLScriptArguments:
    """Who the policy talks to and who scores it (the project's own; TRL's configs hold the rest)."""

    simulator: str = field(
        default="embedded",
        metadata={"help": "the simulated user: any backend spec (embedded, hf/..., openai/..., vllm/...)"},
    )
    judge: str = field(default="embedded", metadata={"help": "the judge: any backend spec"})
    simulator_args: str | None = field(
        default=None, metadata={"help": "the simulator backend's arguments, k=v,k2=v2 (base_url=...)"}
    )
    judge_args: str | None = field(default=None, metadata={"help": "the judge backend's arguments, k=v"})
    judge_protocol: str = field(
        default="aloe-v1", metadata={"help": "judge protocol (aloe-v1: the paper's; aloe-history)"}
    )
    personas: str = field(
        default="pool",
        metadata={
            "help": "training personas: pool (ALOE's training pool, 331 profiles x a random personality), "
            "demo, or a JSONL of {profile, personality}"
        },
    )
    eval_personas: str = field(
        default="aloe",
        metadata={
            "help": "the evaluation set training must not touch (aloe: the benchmark's 100); an overlap "
            "is refused. 'none' skips the check (say why in your report)"
        },
    )
    data_dir: str | None = field(
        default=None, metadata={"help": "folder with the original ALOE files (else fetched and verified)"}
    )
    limit: int | None = field(default=None, metadata={"help": "use only the first N training personas"})
    turns: int = field(default=3, metadata={"help": "turns per conversation (user message + reply)"})
    simulator_max_new_tokens: int = field(default=300, metadata={"help": "simulator tokens per message"})
    simulator_temperature: float | None = field(
        default=None, metadata={"help": "simulator temperature (default: the backend's)"}
    )
    judge_max_new_tokens: int | None = field(
        default=None, metadata={"help": "judge tokens per answer (default: the protocol's)"}
    )
    profile_reward: bool = field(
        default=False,
        metadata={
            "help": "add RLPA's profile reward: after the last turn the policy states the user's profile and "
            "the judge rates it against the true one (a second reward function; weigh with --reward_weights)"
        },
    )
    cache: str | None = field(
        default=None, metadata={"help": "call cache file for simulator and judge calls ('' for none)"}
    )
    preset: str = field(
        default="none", metadata={"help": "settings to start from: rlpa or none", "choices": list(PRESETS)}
    )
    overwrite: bool = field(default=False, metadata={"help": "replace a checkpoint already in --output"})


@dataclass
class RLStage:
    script: RLScriptArguments
    train: Any  # GRPOConfig
    model: Any  # ModelConfig

    def record(self) -> dict[str, Any]:
        return {
            "script": dataclasses.asdict(self.script),
            "model": dataclasses.asdict(self.model),
            "grpo": {k: v for k, v in self.train.to_dict().items() if not k.startswith("_")},
        }


def make_parser() -> Any:
    from trl import GRPOConfig, ModelConfig, TrlParser

    types: Any = (RLScriptArguments, GRPOConfig, ModelConfig)
    return TrlParser(types, prog="aloe-train rl")


def load_preset(name: str) -> dict[str, Any]:
    import yaml

    if name not in PRESETS:
        raise UserInputError(f"--preset must be one of {', '.join(PRESETS)} (got {name!r})")
    if name == "none":
        return {}
    # beside the papers' presets, not among them: these are this project's starting values
    resource = resources.files("aloe_train") / "presets" / "rl" / f"{name}.yaml"
    return dict(yaml.safe_load(resource.read_text()) or {})


def machine_defaults() -> dict[str, Any]:
    """The other trainers' machine defaults (aloe_train.args), and a step logged at every step."""
    from aloe_train.args import machine_defaults as trainer_defaults

    return {
        **trainer_defaults(),
        "save_strategy": "no",  # the final checkpoint is saved merged; --save_strategy steps to resume
        "logging_steps": 1,
    }


def _option(argv: list[str], name: str) -> str | None:
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return None


def parse_rl(argv: list[str]) -> RLStage:
    """argv -> the three config objects; bad values are one line (UserInputError)."""
    from aloe_train.args import translate_legacy

    parser = make_parser()
    argv = translate_legacy([str(a) for a in argv], parser)  # --model, --output, --lora, --no-X
    preset = _option(argv, "--preset") or "none"
    unused = parser.set_defaults_with_config(**{**machine_defaults(), **load_preset(preset)})
    if unused:
        raise UserInputError(f"preset {preset}/rl has settings this TRL does not know: {unused[::2]}")
    try:
        script, train, model = parser.parse_args_and_config(argv)
    except (ValueError, TypeError, OSError, ImportError) as exc:
        raise UserInputError(f"aloe-train rl: {str(exc).splitlines()[0]}") from None
    if not model.model_name_or_path:
        raise UserInputError("aloe-train rl: --model is required (hf/<path|hub id>, a folder, or embedded)")
    if not train.output_dir or train.output_dir == "trainer_output":
        raise UserInputError("aloe-train rl: --output is required (the folder for the checkpoint)")
    if script.turns < 1:
        raise UserInputError(f"--turns must be at least 1 (got {script.turns})")
    if train.bf16 and train.use_cpu:
        raise UserInputError("--bf16 needs a GPU; on CPU training runs in float32 (drop --bf16)")
    if train.use_vllm and not vllm_importable():
        raise UserInputError(
            "--use_vllm needs vLLM, which is not installed here (it needs CUDA): on a GPU machine "
            "`pip install -e '.[train,vllm]'` (docs/rl.md), or drop --use_vllm to generate with the "
            "trainer's own weights"
        )
    n_rewards = 1 + script.profile_reward
    if train.reward_weights is not None and len(train.reward_weights) != n_rewards:
        raise UserInputError(
            f"--reward_weights has {len(train.reward_weights)} value(s) for {n_rewards} reward(s) "
            f"({'aloe, profile' if script.profile_reward else 'aloe'})"
        )
    return RLStage(script, train, model)


def vllm_importable() -> bool:
    """vLLM is optional (CUDA only): `--use_vllm` checks for it before anything is loaded."""
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def training_hash(stage: RLStage, personas: dict[str, Any]) -> str:
    """What determines the trained checkpoint: re-running the same training finds it finished."""
    from aloe_bench.engine.session import config_hash
    from aloe_train.train import NOT_HASHED

    record = stage.record()
    script = {k: v for k, v in record["script"].items() if k not in ("overwrite", "preset")}
    train = {k: v for k, v in record["grpo"].items() if k not in NOT_HASHED}
    return config_hash(
        {"kind": "rl", "script": script, "grpo": train, "model": record["model"], "personas": personas}
    )


# -- personas ---------------------------------------------------------------------------------------
def training_personas(script: RLScriptArguments, seed: int) -> tuple[list[dict[str, str]], dict[str, Any]]:
    """The training personas, refused when any of them is in the evaluation set."""
    import random

    from aloe_bench.datasets.personas import load_persona_set, persona_id
    from aloe_bench.datasets.personas.official import load_official_pool
    from aloe_bench.seeds import seed32

    if script.personas == "pool":
        profiles, personalities = load_official_pool(script.data_dir)
        rng = random.Random(seed32(seed, "pairing"))
        personas = [
            {"profile": p, "personality": personalities[rng.randrange(len(personalities))]} for p in profiles
        ]
        source: dict[str, Any] = {"pool": "aloe-training-pool", "profiles": len(profiles)}
    else:
        chosen = load_persona_set(script.personas, script.data_dir)
        personas = [p.to_dict() for p in chosen.personas]
        source = {"set": chosen.name, "source": chosen.source, "sha256": chosen.sha256}
    if script.limit is not None:
        personas = personas[: script.limit]
    if not personas:
        raise UserInputError(f"--personas {script.personas} gives no personas to train on")
    if script.eval_personas != "none":
        held_out = load_persona_set(script.eval_personas, script.data_dir).personas
        eval_ids = {p.id for p in held_out}
        eval_profiles = {p.profile.strip() for p in held_out}
        clash = [
            p for p in personas
            if persona_id(p["profile"], p["personality"]) in eval_ids or p["profile"].strip() in eval_profiles
        ]  # fmt: skip
        if clash:
            raise UserInputError(
                f"{len(clash)} training persona(s) of --personas {script.personas} are in the evaluation set "
                f"--eval_personas {script.eval_personas} (e.g. {clash[0]['profile'][:60]!r}...): training on "
                "held-out personas would inflate the benchmark; train on another set"
            )
        source["held_out"] = {"set": script.eval_personas, "checked": len(held_out)}
    return personas, source


# -- the run ----------------------------------------------------------------------------------------
def _check_output(out: Path, overwrite: bool, digest: str | None = None) -> bool:
    """An empty folder, or the rollouts of an unfinished run of it (which is resumed): False; the
    finished checkpoint of this very training (`digest`): True, nothing to do."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--output {out} is a file; pass a folder for the checkpoint")
    if overwrite or not out.exists():
        return False
    if (out / RECORD_FILE).is_file():
        try:
            finished = json.loads((out / RECORD_FILE).read_text()).get("config_hash")
        except (OSError, json.JSONDecodeError):
            finished = None
        if digest is not None and finished == digest:
            return True
        raise UserInputError(
            f"{out} already holds a finished checkpoint of another training; pass --overwrite or another --output"
        )
    if any(child.name != ROLLOUTS_FILE for child in out.iterdir()):
        raise UserInputError(f"{out} is not empty; pass --overwrite or another --output")
    return False


def latest_checkpoint(work_dir: Path) -> Path | None:
    """TRL's last complete checkpoint of an interrupted run (with --save_strategy steps)."""
    done = [
        d for d in work_dir.glob("checkpoint-*")
        if d.name.split("-")[-1].isdigit() and (d / "trainer_state.json").is_file()
    ]  # fmt: skip
    return max(done, key=lambda d: int(d.name.split("-")[-1])) if done else None


def keep_rollouts_before(path: Path, step: int) -> None:
    """On resume, the rollouts of steps the checkpoint does not hold are played again: drop them."""
    if not path.is_file():
        return
    kept = [line for line in path.read_text().splitlines(keepends=True) if json.loads(line)["step"] < step]
    tmp = path.with_suffix(".tmp")
    tmp.write_text("".join(kept))
    tmp.replace(path)


def run_rl(argv: list[str]) -> dict[str, Any]:
    stage = parse_rl(argv)
    return train_rl(stage)


def train_rl(stage: RLStage) -> dict[str, Any]:
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is TRL-experimental, knowingly
    from aloe_train.rl_trainer import build_and_train

    script, train = stage.script, stage.train
    out = Path(train.output_dir).expanduser()
    personas, source = training_personas(script, train.seed)  # bad personas fail before any model loads
    digest = training_hash(stage, source)
    if _check_output(out, script.overwrite, digest):
        print(f"aloe-train rl: {out} already holds this training; nothing to do", file=sys.stderr)
        return dict(json.loads((out / RECORD_FILE).read_text()))
    started = time.perf_counter()
    work_dir = out.parent / f".{out.name}.trainer"
    train.output_dir = str(work_dir)  # TRL's own files beside the checkpoint, not in it
    if script.overwrite:
        shutil.rmtree(work_dir, ignore_errors=True)
        (out / ROLLOUTS_FILE).unlink(missing_ok=True)
    resume = train.resume_from_checkpoint or latest_checkpoint(work_dir)
    if resume is not None:
        state = json.loads((Path(resume) / "trainer_state.json").read_text())
        keep_rollouts_before(out / ROLLOUTS_FILE, int(state["global_step"]))
        print(f"aloe-train rl: resuming from {resume} (step {state['global_step']})", file=sys.stderr)
    elif (out / ROLLOUTS_FILE).is_file():
        (out / ROLLOUTS_FILE).unlink()  # an unfinished run with no checkpoint: start again
    try:
        trainer, tok, result, usage = build_and_train(stage, personas, out, resume)
        record = {
            "kind": "rl",
            "config_hash": digest,
            "output": str(out),
            "config": {**stage.record(), "output_dir": str(out)},
            "personas": source,
            "train": {
                "loss": result.training_loss,
                "steps": trainer.state.global_step,
                "seconds": round(time.perf_counter() - started, 1),
            },
            "usage": usage,  # this invocation's calls (a resumed run's earlier calls are in the cache)
            "resumed_from": str(resume) if resume else None,
            "log_history": trainer.state.log_history,
        }
        from aloe_bench.log.provenance import package_versions

        record["packages"] = package_versions()
        save_checkpoint(trainer, tok, out, record, script.overwrite)
    finally:
        train.output_dir = str(out)
    shutil.rmtree(work_dir, ignore_errors=True)
    return record


def save_checkpoint(trainer: Any, tok: Any, out: Path, record: dict[str, Any], overwrite: bool) -> None:
    """LoRA merged in, model + tokenizer (chat template included) + record: a checkpoint `aloe-bench
    run --model hf/OUT` scores like any other; rank 0 writes."""
    from peft import PeftModel

    from aloe_bench.log.results import write_json_atomic

    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        rollouts = out / ROLLOUTS_FILE
        keep = rollouts.read_bytes() if rollouts.is_file() else None
        if out.exists() and overwrite:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        out.mkdir(parents=True, exist_ok=True)
        if keep is not None:
            rollouts.write_bytes(keep)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        write_json_atomic(out / RECORD_FILE, record)  # last: its presence marks a finished checkpoint
    trainer.accelerator.wait_for_everyone()


def summary(record: dict[str, Any], output: str) -> str:
    rewards = [e["reward"] for e in record["log_history"] if "reward" in e]
    scored = [r for r in rewards if r is not None]
    first, last = (scored[0], scored[-1]) if scored else (float("nan"), float("nan"))
    usage = record["usage"]
    return (
        f"rl: {output}  ({record['train']['steps']} GRPO steps, {record['train']['seconds']}s)\n"
        f"  mean reward per step: first {first:.3f}, last {last:.3f} ({len(scored)} of {len(rewards)} logged "
        f"steps had a scored conversation; each is a mean over that step's conversations, noisy with few: "
        f"see {output}/{RECORD_FILE} log_history and {ROLLOUTS_FILE})\n"
        f"  simulator: {usage['simulator']['calls']} calls, {usage['simulator']['cached']} cached, "
        f"{usage['simulator']['prompt_tokens']}+{usage['simulator']['completion_tokens']} tokens; "
        f"judge: {usage['judge']['calls']} calls, {usage['judge']['cached']} cached, "
        f"{usage['judge']['prompt_tokens']}+{usage['judge']['completion_tokens']} tokens"
    )


def main(argv: list[str]) -> int:
    record = run_rl(argv)
    if os.environ.get("RANK", "0") == "0":
        print(summary(record, record["output"]))
        sys.stdout.flush()
    return 0


def rollout_lines(step: int, records: list[dict[str, Any]]) -> str:
    return "".join(json.dumps({"step": step, **r}, ensure_ascii=False) + "\n" for r in records)
