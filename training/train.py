"""`aloe-train sft` / `aloe-train dpo`: TRL trainers on tree conversations or Multifaceted rows.

Defaults are the paper's (SPEC 1.5); every one is a flag. SFT gets pre-tokenized rows with
`assistant_masks` (loss on the trained assistant replies only, any chat template); DPO gets
conversational prompt/chosen/rejected and applies the checkpoint's template itself. The result is a
plain Hugging Face checkpoint (LoRA merged in) with the tokenizer and chat template, plus
`aloe_train.json` (config, data report, losses), that `aloe-bench run --model hf/OUT` scores.
Multi-GPU: `accelerate launch -m aloe_train.cli sft ...` (rank 0 writes the checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.engine.session import config_hash
from aloe_bench.errors import UserInputError, required
from aloe_bench.log.provenance import package_versions
from aloe_bench.log.results import write_json_atomic
from aloe_bench.models.backends import parse_spec
from aloe_train.data import FORMATS, DataReport, read_rows
from aloe_train.formatting import SFT_MODES, TARGETS

RECORD_FILE = "aloe_train.json"


@dataclass
class TrainConfig:
    """What SFT and DPO share. Defaults are the paper's (SPEC 1.5)."""

    model: str | None = field(
        default=None,
        metadata={
            "help": "base checkpoint: hf/<path|hub id>, a folder, or embedded",
            "required": True,
            "metavar": "SPEC",
        },
    )
    data: str | None = field(
        default=None,
        metadata={
            "help": "training data: `aloe-train conversations` output or Multifaceted rows (JSONL)",
            "required": True,
            "metavar": "PATH",
        },
    )
    output: str | None = field(
        default=None,
        metadata={"help": "folder for the trained checkpoint", "required": True, "metavar": "DIR"},
    )
    format: str = field(
        default="auto",
        metadata={"help": "data format (auto: detected from the first row)", "choices": list(FORMATS)},
    )
    learning_rate: float = field(default=1e-5, metadata={"help": "peak learning rate"})
    num_train_epochs: float = field(default=1.0, metadata={"help": "epochs"})
    max_steps: int = field(
        default=-1, metadata={"help": "stop after this many optimizer steps (-1: the epochs decide)"}
    )
    per_device_train_batch_size: int = field(
        default=1, metadata={"help": "examples per device per micro-batch"}
    )
    gradient_accumulation_steps: int = field(
        default=48,
        metadata={
            "help": "micro-batches per optimizer step (divide by the GPU count to keep the paper's effective batch)"
        },
    )
    max_length: int = field(
        default=8192, metadata={"help": "max tokens per example (the oldest turns are dropped to fit)"}
    )
    lr_scheduler_type: str = field(default="linear", metadata={"help": "transformers scheduler name"})
    warmup_steps: float = field(
        default=0.0, metadata={"help": "warm-up steps (a value below 1 is a fraction of all steps)"}
    )
    logging_steps: int = field(default=10, metadata={"help": "log every N steps"})
    seed: int = field(default=0, metadata={"help": "seed for data order and initialisation"})
    lora: bool = field(
        default=False,
        metadata={
            "help": "train LoRA adapters (peft) instead of all weights; merged into the saved checkpoint"
        },
    )
    lora_r: int = field(default=16, metadata={"help": "LoRA rank"})
    lora_alpha: int = field(default=32, metadata={"help": "LoRA alpha"})
    lora_dropout: float = field(default=0.05, metadata={"help": "LoRA dropout"})
    lora_target_modules: str = field(
        default="all-linear", metadata={"help": "comma-separated module names, or all-linear"}
    )
    bf16: bool | None = field(
        default=None,
        metadata={"help": "bfloat16 mixed precision (default: on with a bf16-capable GPU, off on CPU)"},
    )
    gradient_checkpointing: bool | None = field(
        default=None, metadata={"help": "activation checkpointing (default: on with a GPU, off on CPU)"}
    )
    overwrite: bool = field(
        default=False, metadata={"help": "replace a different checkpoint already in --output"}
    )

    kind = "train"

    def validate(self) -> None:
        for name in ("model", "data", "output"):
            if not getattr(self, name):
                raise UserInputError(f"--{name} is required")
        if self.format not in FORMATS:
            raise UserInputError(f"--format must be one of {', '.join(FORMATS)}")
        if self.per_device_train_batch_size < 1 or self.gradient_accumulation_steps < 1:
            raise UserInputError("batch size and gradient accumulation steps must be at least 1")
        if self.max_length < 16:
            raise UserInputError("--max-length must be at least 16 tokens")
        if self.learning_rate <= 0:
            raise UserInputError("--learning-rate must be positive")

    def record(self) -> dict[str, Any]:
        return {"kind": self.kind, **asdict(self)}

    def config_hash(self, data_sha256: str) -> str:
        rec = {k: v for k, v in self.record().items() if k not in ("output", "overwrite", "logging_steps")}
        rec["data"] = data_sha256
        return config_hash(rec)


@dataclass
class SFTRunConfig(TrainConfig):
    target: str = field(
        default="preferred",
        metadata={"help": "replies to train on (rejected: the paper's ablation)", "choices": list(TARGETS)},
    )
    mode: str = field(
        default="branch",
        metadata={
            "help": "branch: one sequence per conversation (+ short examples where the branch took the other reply); per_turn: one example per turn",
            "choices": list(SFT_MODES),
        },
    )
    packing: bool = field(
        default=True, metadata={"help": "pack examples into max_length sequences (paper: on)"}
    )

    kind = "sft"

    def validate(self) -> None:
        super().validate()
        if self.target not in TARGETS or self.mode not in SFT_MODES:
            raise UserInputError(f"--target must be one of {TARGETS}, --mode one of {SFT_MODES}")


@dataclass
class DPORunConfig(TrainConfig):
    per_device_train_batch_size: int = field(default=4, metadata={"help": "pairs per device per micro-batch"})
    gradient_accumulation_steps: int = field(
        default=12, metadata={"help": "micro-batches per optimizer step"}
    )
    beta: float = field(default=0.9, metadata={"help": "DPO beta (paper 0.9; TRL's default is 0.1)"})
    loss_type: str = field(default="sigmoid", metadata={"help": "TRL DPO loss type"})

    kind = "dpo"


# -- shared machinery -------------------------------------------------------------------------------
def resolve_model(spec: str) -> str:
    """A base spec -> what from_pretrained takes (a folder or a hub id)."""
    provider, name = parse_spec(spec)
    if provider == "embedded":
        from aloe_bench.models.backends.embedded import embedded_checkpoint

        return str(embedded_checkpoint())
    if provider != "hf":
        raise UserInputError(
            f"cannot train {spec}: training needs weights (hf/<path|hub id>, a folder, or embedded)"
        )
    return str(Path(name).expanduser()) if os.path.isdir(os.path.expanduser(name)) else name


def _accelerator_settings(config: TrainConfig) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    bf16 = (cuda and torch.cuda.is_bf16_supported()) if config.bf16 is None else config.bf16
    if bf16 and not cuda:
        raise UserInputError("--bf16 needs a GPU; on CPU training runs in float32 (drop --bf16)")
    checkpointing = cuda if config.gradient_checkpointing is None else config.gradient_checkpointing
    return {"bf16": bool(bf16), "use_cpu": not cuda, "activation_checkpointing": bool(checkpointing)}


def _trl_common(config: TrainConfig, work_dir: Path) -> dict[str, Any]:
    return {
        "output_dir": str(work_dir),
        "learning_rate": config.learning_rate,
        "num_train_epochs": config.num_train_epochs,
        "max_steps": config.max_steps,
        "per_device_train_batch_size": config.per_device_train_batch_size,
        "gradient_accumulation_steps": config.gradient_accumulation_steps,
        "max_length": config.max_length,
        "lr_scheduler_type": config.lr_scheduler_type,
        "warmup_steps": config.warmup_steps,
        "logging_steps": config.logging_steps,
        "seed": config.seed,
        "save_strategy": "no",  # the final checkpoint is saved merged, below
        "report_to": "none",
        "ddp_find_unused_parameters": False,
        **_accelerator_settings(config),
    }


def _peft_config(config: TrainConfig):
    if not config.lora:
        return None
    from peft import LoraConfig

    targets = config.lora_target_modules
    return LoraConfig(
        r=config.lora_r,
        lora_alpha=config.lora_alpha,
        lora_dropout=config.lora_dropout,
        target_modules=targets
        if targets == "all-linear"
        else [t.strip() for t in targets.split(",") if t.strip()],
        task_type="CAUSAL_LM",
    )


def _check_output(config: TrainConfig, config_hash: str) -> bool:
    """True when --output already holds this exact training (nothing to do)."""
    out = Path(required(config.output, "--output")).expanduser()
    record = out / RECORD_FILE
    if record.is_file():
        try:
            previous = json.loads(record.read_text()).get("config_hash")
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous == config_hash and not config.overwrite:
            return True
    if out.exists() and not out.is_dir():
        raise UserInputError(f"--output {out} is a file; pass a folder for the checkpoint")
    if out.exists() and any(out.iterdir()) and not config.overwrite:
        raise UserInputError(
            f"{out} is not empty and holds no checkpoint of this training; pass --overwrite or another --output"
        )
    return False


def _load(config: TrainConfig):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    source = resolve_model(required(config.model, "--model"))
    try:
        tok = AutoTokenizer.from_pretrained(source)
    except OSError as exc:
        raise UserInputError(
            f"cannot load the tokenizer of {config.model} ({str(exc).splitlines()[0]})"
        ) from None
    if not tok.chat_template:
        raise UserInputError(f"{config.model} has no chat template; train an instruction-tuned checkpoint")
    dtype = torch.bfloat16 if _accelerator_settings(config)["bf16"] else torch.float32
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype)
    return source, tok, model


def _save(trainer, tok, config: TrainConfig, record: dict[str, Any]) -> Path:
    """Merge LoRA if any, write model + tokenizer (with its chat template) + record; rank 0 only."""
    from peft import PeftModel

    out = Path(required(config.output, "--output")).expanduser()
    model = trainer.accelerator.unwrap_model(trainer.model)
    if isinstance(model, PeftModel):
        model = model.merge_and_unload()
    trainer.accelerator.wait_for_everyone()
    if trainer.accelerator.is_main_process:
        if out.exists() and config.overwrite:
            for child in out.iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        out.mkdir(parents=True, exist_ok=True)
        model.save_pretrained(out, safe_serialization=True)
        tok.save_pretrained(out)
        write_json_atomic(out / RECORD_FILE, record)  # last: its presence marks a finished checkpoint
    trainer.accelerator.wait_for_everyone()
    return out


def _train(config: TrainConfig, build_dataset, make_trainer) -> dict[str, Any]:
    config.validate()
    started = time.perf_counter()
    data = Path(required(config.data, "--data")).expanduser()
    if not data.is_file():
        raise UserInputError(
            f"training data {data} does not exist; pass the output of `aloe-train conversations`"
        )
    config_hash = config.config_hash(hashlib.sha256(data.read_bytes()).hexdigest())
    out = Path(required(config.output, "--output")).expanduser()
    if _check_output(config, config_hash):
        print(f"aloe-train {config.kind}: {out} already holds this training; nothing to do", file=sys.stderr)
        return json.loads((out / RECORD_FILE).read_text())
    read_rows(str(data), config.format)  # bad data fails here, before a model is loaded
    source, tok, model = _load(config)
    rows, report = build_dataset(tok)
    from datasets import Dataset

    # beside the output, not in it: every rank checks that the output is empty before rank 0 writes
    work_dir = out.parent / f".{out.name}.trainer"
    trainer = make_trainer(model, tok, Dataset.from_list(rows), work_dir)
    result = trainer.train()
    record = {
        "config_hash": config_hash,
        "config": config.record(),
        "base": {"spec": config.model, "source": source},
        "data": asdict(report),
        "train": {
            "loss": result.training_loss,
            "steps": trainer.state.global_step,
            "seconds": round(time.perf_counter() - started, 1),
            "trainer_args": {k: v for k, v in _trl_common(config, work_dir).items() if k != "output_dir"},
        },
        "log_history": trainer.state.log_history,
        "packages": package_versions(),
    }
    _save(trainer, tok, config, record)
    shutil.rmtree(work_dir, ignore_errors=True)
    return record


def run_sft(config: SFTRunConfig) -> dict[str, Any]:
    from trl import SFTConfig, SFTTrainer

    from aloe_train.data import sft_rows

    def build(tok):
        return sft_rows(
            tok,
            config.data,
            requested=config.format,
            target=config.target,
            mode=config.mode,
            max_length=config.max_length,
        )

    def make(model, tok, dataset, work_dir):
        args = SFTConfig(**_trl_common(config, work_dir), packing=config.packing, packing_strategy="bfd")
        # `input_ids` rows are used as they are; labels come from `assistant_masks` (loss on replies only).
        return SFTTrainer(
            model=model,
            args=args,
            train_dataset=dataset,
            processing_class=tok,
            peft_config=_peft_config(config),
        )

    return _train(config, build, make)


def run_dpo(config: DPORunConfig) -> dict[str, Any]:
    from trl import DPOConfig, DPOTrainer

    from aloe_train.data import dpo_rows

    def build(tok):
        return dpo_rows(tok, config.data, requested=config.format, max_length=config.max_length)

    def make(model, tok, dataset, work_dir):
        args = DPOConfig(**_trl_common(config, work_dir), beta=config.beta, loss_type=[config.loss_type])
        # ref_model=None: full fine-tuning loads a frozen copy of the base from disk; with LoRA the
        # reference is the model with its adapters disabled.
        return DPOTrainer(
            model=model,
            ref_model=None,
            args=args,
            train_dataset=dataset,
            processing_class=tok,
            peft_config=_peft_config(config),
        )

    return _train(config, build, make)


def summary(record: dict[str, Any], output: str) -> str:
    data: dict[str, Any] = record["data"]
    report = DataReport(**data)
    dropped = ", ".join(f"{n} {why}" for why, n in report.dropped.items()) or "none"
    return (
        f"{record['config']['kind']}: {output}  (base {record['base']['spec']})\n"
        f"  data {report.file} [{report.format}]: {report.examples} "
        f"{'pairs' if record['config']['kind'] == 'dpo' else 'examples'}, {report.trained_replies} trained replies, "
        f"{report.skipped_not_complete} conversations skipped (not complete), {report.trimmed_examples} trimmed to "
        f"max_length ({report.replies_lost_to_length} replies lost), dropped: {dropped}\n"
        f"  {record['train']['steps']} steps, loss {record['train']['loss']:.4f}, {record['train']['seconds']}s"
    )
