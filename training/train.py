"""`aloe-train sft | dpo | orpo | rm`: TRL's trainers on ALOE conversations or Multifaceted data.

Options are TRL's own config classes (see aloe_train.args). SFT gets pre-tokenized rows with
`assistant_masks` (loss on the trained replies only, any chat template or Janus's raw format); DPO,
ORPO and the reward model get conversational prompt/chosen/rejected and apply the template
themselves. The result is a plain Hugging Face checkpoint (LoRA merged in) with the tokenizer and the
template it was trained with, `training_args.json` (every TRL setting in force) and `aloe_train.json`
(config, data report, losses), that `aloe-bench run --model hf/OUT` scores.

Resuming: TRL saves `checkpoint-N/` folders in --output while training (`--save_steps`); run the same
command again after a crash or a SIGKILL and it resumes from the last one (TRL's
`resume_from_checkpoint`); once the final model is written the checkpoints are removed, and the same
command again does nothing.
Multi-GPU: `accelerate launch -m aloe_train.cli sft ...` (rank 0 writes the checkpoint).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from aloe_bench.engine.session import config_hash
from aloe_bench.errors import UserInputError
from aloe_bench.log.provenance import package_versions
from aloe_bench.log.results import write_json_atomic
from aloe_bench.models.backends import parse_spec
from aloe_train.args import Stage, parse_stage
from aloe_train.data import DataReport, load_source, pair_rows, read_rows, sft_rows
from aloe_train.formatting import apply_prompt_format

RECORD_FILE = "aloe_train.json"
PARTIAL_FILE = "aloe_train.partial.json"  # marks a training under way in --output (its checkpoints)
ARGS_FILE = "training_args.json"
# TrainingArguments that change where or how often things are written, not what is learnt
NOT_HASHED = {
    "output_dir", "logging_dir", "overwrite_output_dir", "resume_from_checkpoint", "logging_steps",
    "save_steps", "save_total_limit", "save_strategy", "report_to", "run_name", "push_to_hub",
    "hub_model_id", "hub_token", "hub_strategy", "hub_private_repo", "logging_first_step",
    "disable_tqdm", "dataloader_num_workers", "local_rank",
}  # fmt: skip


def resolve_model(spec: str) -> str:
    """A base spec -> what from_pretrained takes (a folder or a hub id). TRL's habit, a bare hub id
    (`--model_name_or_path mistralai/Mistral-7B-v0.1`), is accepted beside `hf/<id>`."""
    if os.path.isdir(os.path.expanduser(spec)):
        return str(Path(spec).expanduser())
    try:
        provider, name = parse_spec(spec)
    except UserInputError:
        if re.fullmatch(r"[\w.-]+/[\w.-]+", spec):
            return spec
        raise
    if provider == "embedded":
        from aloe_bench.models.backends.embedded import embedded_checkpoint

        return str(embedded_checkpoint())
    if provider != "hf":
        raise UserInputError(
            f"cannot train {spec}: training needs weights (hf/<path|hub id>, a folder, or embedded)"
        )
    return str(Path(name).expanduser()) if os.path.isdir(os.path.expanduser(name)) else name


def _main_process() -> bool:
    return os.environ.get("RANK", "0") == "0"


def stage_hash(stage: Stage, data_sha256: str) -> str:
    train = {k: v for k, v in stage.train.to_dict().items() if k not in NOT_HASHED}
    script = {k: v for k, v in dataclasses.asdict(stage.script).items() if k not in ("overwrite", "preset")}
    model = dataclasses.asdict(stage.model)
    return config_hash(
        {"kind": stage.kind, "script": script, "train": train, "model": model, "data": data_sha256}
    )


def _prepare_output(out: Path, digest: str, overwrite: bool) -> str:
    """ "done" (this exact training is there), "resume" (its checkpoints are), or "fresh"."""
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--output {out} is a file; pass a folder for the checkpoint")
    for name, state in ((RECORD_FILE, "done"), (PARTIAL_FILE, "resume")):
        try:
            if json.loads((out / name).read_text()).get("config_hash") == digest and not overwrite:
                return state
        except (OSError, json.JSONDecodeError):
            pass
    if out.exists() and any(out.iterdir()):
        if not overwrite:
            raise UserInputError(
                f"{out} is not empty and holds no checkpoint of this training; pass --overwrite or another --output"
            )
        if _main_process():
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
    return "fresh"


def last_complete_checkpoint(out: Path) -> str | None:
    """The newest `checkpoint-N` that was written to the end: a SIGKILL during a save leaves a folder
    without `trainer_state.json` (the Trainer writes it last), which resuming must skip."""
    done = [
        p for p in out.glob("checkpoint-*") if p.name[11:].isdigit() and (p / "trainer_state.json").is_file()
    ]
    return str(max(done, key=lambda p: int(p.name[11:]))) if done else None


def _peft_config(stage: Stage):
    from trl import get_peft_config

    margs = copy.copy(stage.model)
    if not margs.use_peft:
        return None
    targets = margs.lora_target_modules or ["all-linear"]  # the first ALOE version's default
    margs.lora_target_modules = "all-linear" if targets == ["all-linear"] else targets
    if stage.kind == "rm" and margs.lora_task_type == "CAUSAL_LM":
        margs.lora_task_type = "SEQ_CLS"  # the reward head must train with the adapters
    return get_peft_config(margs)


def _load(stage: Stage, source: str):
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    margs = stage.model
    kwargs: dict[str, Any] = {
        "revision": margs.model_revision,
        "trust_remote_code": bool(getattr(stage.train, "trust_remote_code", False)),
    }
    try:
        tok = AutoTokenizer.from_pretrained(source, **kwargs)
    except OSError as exc:
        raise UserInputError(f"cannot load the tokenizer of {source} ({str(exc).splitlines()[0]})") from None
    used = apply_prompt_format(tok, stage.script.prompt_format, margs.model_name_or_path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    dtype = margs.dtype if margs.dtype not in (None, "auto") else None
    kwargs["dtype"] = (
        getattr(torch, dtype) if dtype else (torch.bfloat16 if stage.train.bf16 else torch.float32)
    )
    if margs.attn_implementation:
        kwargs["attn_implementation"] = margs.attn_implementation
    if stage.kind == "rm":
        model = AutoModelForSequenceClassification.from_pretrained(source, num_labels=1, **kwargs)
        model.config.pad_token_id = tok.pad_token_id
    else:
        model = AutoModelForCausalLM.from_pretrained(source, **kwargs)
    return tok, model, used


def _build(stage: Stage, tok: Any, data: str, revision: str | None, split: str):
    script, train = stage.script, stage.train
    if stage.kind == "sft":
        return sft_rows(
            tok, data, requested=script.format, target=script.target, mode=script.mode,
            max_length=train.max_length, revision=revision, split=split, mix=script.mix_data,
            mix_ratio=script.mix_ratio, mix_revision=script.mix_revision, seed=train.seed,
        )  # fmt: skip
    return pair_rows(
        tok, data, requested=script.format, max_length=train.max_length, revision=revision, split=split
    )


def _trainer(stage: Stage, model: Any, tok: Any, dataset: Any):
    peft = _peft_config(stage)
    common = {"model": model, "args": stage.train, "train_dataset": dataset, "processing_class": tok}
    if stage.kind == "sft":
        from trl import SFTTrainer

        # `input_ids` rows are used as they are; labels come from `assistant_masks` (loss on replies only).
        return SFTTrainer(**common, peft_config=peft)
    if stage.kind == "dpo":
        from trl import DPOTrainer

        # ref_model=None: full fine-tuning loads a frozen copy of the base; with LoRA the reference is
        # the model with its adapters disabled.
        return DPOTrainer(**common, ref_model=None, peft_config=peft)
    if stage.kind == "orpo":
        from trl.experimental.orpo import ORPOTrainer

        return ORPOTrainer(**common, peft_config=peft)  # ORPO needs no reference model
    from trl import RewardTrainer

    return RewardTrainer(**common, peft_config=peft)


def _save(trainer: Any, tok: Any, out: Path, record: dict[str, Any], stage: Stage) -> None:
    """Merge LoRA if any, write model + tokenizer (with its template) + settings + record; rank 0."""
    from peft import PeftModel

    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        for child in out.glob("checkpoint-*"):  # finished: the resume points are no longer needed
            shutil.rmtree(child, ignore_errors=True)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        (out / ARGS_FILE).write_text(stage.train.to_json_string())
        write_json_atomic(out / RECORD_FILE, record)  # last: its presence marks a finished checkpoint
        (out / PARTIAL_FILE).unlink(missing_ok=True)
    trainer.accelerator.wait_for_everyone()


def run_stage(stage: Stage) -> dict[str, Any]:
    """Train (or resume, or find finished) one stage; returns its record."""
    script = stage.script
    if stage.kind == "rm" and script.stage2_data:
        return _run_two_stage_rm(stage)
    started = time.perf_counter()
    out = Path(stage.train.output_dir).expanduser()
    # bad data fails here, before a model is loaded; its digest is part of the training's identity
    use = "sft" if stage.kind == "sft" else "pairs"
    _, first = read_rows(script.data, script.format, revision=script.revision, split=script.split, use=use)
    mix_sha = ""
    if getattr(script, "mix_data", None) and script.mix_ratio > 0:
        mix_sha = load_source(script.mix_data, script.mix_revision).sha256
    digest = stage_hash(stage, first.sha256 + mix_sha)
    state = _prepare_output(out, digest, script.overwrite)
    if state == "done":
        print(f"aloe-train {stage.kind}: {out} already holds this training; nothing to do", file=sys.stderr)
        return json.loads((out / RECORD_FILE).read_text())
    if _main_process():
        out.mkdir(parents=True, exist_ok=True)
        write_json_atomic(out / PARTIAL_FILE, {"config_hash": digest, "kind": stage.kind})
    source = resolve_model(stage.model.model_name_or_path)
    tok, model, prompt_format = _load(stage, source)
    rows, report = _build(stage, tok, script.data, script.revision, script.split)
    from datasets import Dataset

    trainer = _trainer(stage, model, tok, Dataset.from_list(rows))
    resume = stage.train.resume_from_checkpoint
    if resume is None and state == "resume":
        resume = last_complete_checkpoint(out)
        if resume:
            print(f"aloe-train {stage.kind}: resuming from {resume}", file=sys.stderr)
    result = trainer.train(resume_from_checkpoint=resume)
    record = {
        "config_hash": digest,
        "output": str(out),
        "config": stage.record(),
        "base": {"spec": stage.model.model_name_or_path, "source": source, "prompt_format": prompt_format},
        "data": dataclasses.asdict(report),
        "train": {
            "loss": result.training_loss,
            "steps": trainer.state.global_step,
            "seconds": round(time.perf_counter() - started, 1),
            "resumed_from": resume,
            "args_file": ARGS_FILE,
        },
        "log_history": trainer.state.log_history,
        "packages": package_versions(),
    }
    _save(trainer, tok, out, record, stage)
    return record


def _run_two_stage_rm(stage: Stage) -> dict[str, Any]:
    """Janus-RM: stage 1 on --data into OUT.stage1, then stage 2 on --stage2_data from it into OUT.
    Each stage is a finished checkpoint of its own, so a crash in stage 2 never redoes stage 1."""
    out = Path(stage.train.output_dir).expanduser()
    first = copy.deepcopy(stage)
    first.script.stage2_data = None
    first.train.output_dir = str(out.parent / f"{out.name}.stage1")
    record1 = run_stage(first)
    second = copy.deepcopy(stage)
    second.script.stage2_data = None
    second.script.data, second.script.revision = stage.script.stage2_data, stage.script.stage2_revision
    second.script.split = stage.script.stage2_split
    second.model.model_name_or_path = first.train.output_dir
    record = run_stage(second)
    if "stage1" not in record:
        record["stage1"] = {
            "output": first.train.output_dir,
            **{k: record1[k] for k in ("config_hash", "data", "train")},
        }
        if _main_process():
            write_json_atomic(out / RECORD_FILE, record)
    return record


def run(kind: str, argv: list[str]) -> dict[str, Any]:
    """`aloe-train KIND ARGV...` as a function."""
    return run_stage(parse_stage(kind, argv))


def run_sft(argv: list[str]) -> dict[str, Any]:
    return run("sft", argv)


def run_dpo(argv: list[str]) -> dict[str, Any]:
    return run("dpo", argv)


def run_orpo(argv: list[str]) -> dict[str, Any]:
    return run("orpo", argv)


def run_rm(argv: list[str]) -> dict[str, Any]:
    return run("rm", argv)


def summary(record: dict[str, Any], output: str) -> str:
    data: dict[str, Any] = record["data"]
    report = DataReport(**data)
    kind = record["config"]["kind"]
    dropped = ", ".join(f"{n} {why}" for why, n in report.dropped.items()) or "none"
    mixed = (
        f", mixed in {report.mixed['used']} general rows from {report.mixed['data']}" if report.mixed else ""
    )
    return (
        f"{kind}: {output}  (base {record['base']['spec']}, preset {record['config'].get('preset')}, "
        f"prompt format {record['base'].get('prompt_format')})\n"
        f"  data {report.file} [{report.format}]: {report.examples} "
        f"{'examples' if kind == 'sft' else 'pairs'}, {report.trained_replies} trained replies, "
        f"{report.skipped_not_complete} conversations skipped (not complete), {report.trimmed_examples} trimmed to "
        f"max_length ({report.replies_lost_to_length} replies lost), dropped: {dropped}{mixed}\n"
        f"  {record['train']['steps']} steps, loss {record['train']['loss']:.4f}, {record['train']['seconds']}s"
    )
