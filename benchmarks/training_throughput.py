"""Training throughput of SFT, DPO and reward-model training on the embedded model, and the cost of
best-of-N against plain sampling, side by side in one run.

Training: TRL's own SFTTrainer, DPOTrainer and RewardTrainer, called directly on the embedded model
(SmolLM2-135M-Instruct) for a few optimizer steps on tiny Multifaceted-shaped data this script writes
(a system message stating preferences, an instruction, a reply; preference pairs for DPO and the
reward model). The figure is training tokens per second of wall time: the non-padding tokens of the
batches the collator built (DPO and the reward model count the chosen and the rejected sequence,
prompt included), over every step after the first (the first pays for lazy set-up); per-step rates
give the spread.

Best-of-N: the same prompts answered by plain sampling from the embedded model and by
`bon/N:embedded@RM`, with RM the reward model trained above (a real RewardTrainer checkpoint), both
at Janus's sampling settings (temperature 1.0, top-p 0.9, repetition penalty 1.03), each backend
warmed up first on other prompts. Overhead = best-of-N wall time / plain wall time, split into the
policy's sampling and the reward model's scoring; repeated with distinct seeds.

    python benchmarks/training_throughput.py [--steps 6] [--batch-size 4] [--max-length 256] \
        [--bon-n 4] [--prompts 8] [--bon-tokens 48] [--repeats 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
os.environ.setdefault("HF_HUB_OFFLINE", "1")

TOPICS = ["sourdough bread", "a first marathon", "learning the cello", "a balcony garden", "budget travel in Japan",
          "saving for a house", "a home espresso setup", "writing a cover letter", "teaching a dog to sit",
          "reading more books", "a job interview", "fixing a bike chain", "planning a wedding toast",
          "starting to run", "choosing a laptop", "a vegetable soup"]  # fmt: skip
STYLES = [
    ("brief, plain answers without jargon", "Keep it short."),
    ("step-by-step guidance with concrete numbers", "Give me the steps."),
    ("a warm, encouraging tone and one practical tip", "Be encouraging."),
    ("expert depth and the reasons behind each point", "Explain why."),
]


def sft_rows(count: int) -> list[dict[str, Any]]:
    """Multifaceted-shaped SFT rows (system preferences, instruction, reply) as chat messages."""
    rows = []
    for i in range(count):
        topic, (style, ask) = TOPICS[i % len(TOPICS)], STYLES[i % len(STYLES)]
        system = f"You are a helpful assistant. The user values {style}; adapt every answer to that."
        reply = " ".join(f"Point {k + 1} on {topic}: start small and adjust." for k in range(2 + i % 3))
        rows.append(
            {
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": f"I need advice on {topic}. {ask}"},
                    {"role": "assistant", "content": reply},
                ]
            }
        )
    return rows


def preference_rows(count: int) -> list[dict[str, Any]]:
    """Multifaceted-DPO-shaped pairs: chosen = the reply for this system message, rejected = one
    written for another preference (as the release built them)."""
    rows = []
    for i, row in enumerate(sft_rows(count)):
        other = STYLES[(i + 1) % len(STYLES)][0]
        topic = TOPICS[i % len(TOPICS)]
        rows.append(
            {
                "prompt": row["messages"][:2],
                "chosen": row["messages"][2:],
                "rejected": [{"role": "assistant", "content": f"On {topic}, with {other}: try it and see."}],
            }
        )
    return rows


class CountingCollator:
    """Wraps a trainer's collator: the non-padding tokens of every batch, in the order built."""

    def __init__(self, inner: Any):
        self.inner, self.tokens = inner, []

    def __call__(self, features: list[dict[str, Any]]) -> dict[str, Any]:
        batch = self.inner(features)
        mask = batch.get("attention_mask")
        self.tokens.append(int(mask.sum()) if mask is not None else int(batch["input_ids"].numel()))
        return batch


def step_timer():
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self) -> None:
            self.ends: list[float] = []

        def on_step_end(self, args, state, control, **kwargs):  # noqa: ANN001 - transformers' signature
            self.ends.append(time.perf_counter())

    return StepTimer()


def common_args(out: Path, args: argparse.Namespace) -> dict[str, Any]:
    import torch

    cuda = torch.cuda.is_available()
    return {
        "output_dir": str(out),
        "max_steps": args.steps,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": 1,  # one collated batch per step: tokens and times pair up
        "logging_steps": 1,
        "save_strategy": "no",
        "report_to": [],
        "seed": 0,
        "bf16": cuda,
        "use_cpu": not cuda,
        "dataloader_num_workers": 0,
        "disable_tqdm": True,
    }


def measure(trainer: Any, steps: int) -> dict[str, Any]:
    counter = CountingCollator(trainer.data_collator)
    trainer.data_collator = counter
    timer = step_timer()
    trainer.add_callback(timer)
    start = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - start
    ends, tokens = timer.ends, counter.tokens
    assert len(ends) == steps and len(tokens) >= steps, (len(ends), len(tokens))
    rates = [tokens[k] / (ends[k] - ends[k - 1]) for k in range(1, steps)]
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return {
        "tokens_per_s": sum(tokens[1:steps]) / (ends[-1] - ends[0]),
        "step_rates": rates,
        "tokens_per_step": statistics.mean(tokens[:steps]),
        "wall_s": total,
        "loss_first": losses[0] if losses else None,
        "loss_last": losses[-1] if losses else None,
    }


def train_sft(checkpoint: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    config = SFTConfig(**common_args(root / "sft", args), max_length=args.max_length, learning_rate=5e-6)
    trainer = SFTTrainer(
        model=str(checkpoint), args=config, train_dataset=Dataset.from_list(sft_rows(args.rows))
    )
    return measure(trainer, args.steps)


def train_dpo(checkpoint: Path, root: Path, args: argparse.Namespace) -> dict[str, Any]:
    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    config = DPOConfig(**common_args(root / "dpo", args), max_length=args.max_length, learning_rate=5e-7)
    trainer = DPOTrainer(
        model=str(checkpoint), args=config, train_dataset=Dataset.from_list(preference_rows(args.rows))
    )
    return measure(trainer, args.steps)


def train_rm(checkpoint: Path, root: Path, args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    from datasets import Dataset
    from trl import RewardConfig, RewardTrainer

    out = root / "rm"
    config = RewardConfig(**common_args(out, args), max_length=args.max_length, learning_rate=5e-6)
    trainer = RewardTrainer(
        model=str(checkpoint), args=config, train_dataset=Dataset.from_list(preference_rows(args.rows))
    )
    if len(trainer.train_dataset) < args.rows:  # RewardTrainer drops rows over max_length
        raise SystemExit(f"--max-length {args.max_length} drops reward-model rows; raise it")
    result = measure(trainer, args.steps)
    trainer.save_model(str(out))
    return result, out


def bon_prompts(count: int, offset: int) -> list[list[dict[str, str]]]:
    rows = sft_rows(count + offset)[offset:]
    return [row["messages"][:2] for row in rows]


async def time_sampling(spec: str, args: argparse.Namespace) -> dict[str, Any]:
    from aloe_bench.models.backends import BackendPool, ChatRequest, GenerationSettings

    def requests(prompts: list[list[dict[str, str]]], seed: int) -> list[Any]:
        settings = GenerationSettings(
            max_new_tokens=args.bon_tokens, temperature=1.0, top_p=0.9, repetition_penalty=1.03
        )
        return [ChatRequest(p, settings.with_seed(seed + i)) for i, p in enumerate(prompts)]

    pool = BackendPool()
    try:
        backend = pool.get(spec)
        await backend.generate(requests(bon_prompts(2, 100), 999))  # loads weights, warms up
        walls, tokens, scoring = [], [], []
        for r in range(args.repeats):
            scored_before = getattr(backend, "stats", {}).get("reward_seconds", 0.0)
            start = time.perf_counter()
            answers = await backend.generate(requests(bon_prompts(args.prompts, 0), 1000 * (r + 1)))
            walls.append(time.perf_counter() - start)
            assert all(a.ok for a in answers), [a.error for a in answers if not a.ok]
            tokens.append(sum(a.completion_tokens for a in answers))
            scoring.append(getattr(backend, "stats", {}).get("reward_seconds", 0.0) - scored_before)
        return {"walls": walls, "tokens": tokens, "scoring": scoring}
    finally:
        await pool.aclose()


def spread(values: list[float], digits: int = 1) -> str:
    if len(values) < 2:
        return f"n={len(values)}"
    return f"range {min(values):,.{digits}f}-{max(values):,.{digits}f}, n={len(values)}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument(
        "--steps", type=int, default=6, help="optimizer steps per trainer (the first is not timed)"
    )
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--max-length", type=int, default=256)
    p.add_argument("--rows", type=int, default=48, help="rows of the written training data")
    p.add_argument("--bon-n", type=int, default=4)
    p.add_argument("--prompts", type=int, default=8, help="prompts answered per best-of-N measurement")
    p.add_argument("--bon-tokens", type=int, default=48, help="max new tokens per reply")
    p.add_argument("--repeats", type=int, default=3, help="best-of-N and plain measurements (distinct seeds)")
    p.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = p.parse_args()
    if args.steps < 3:
        raise SystemExit("--steps must be at least 3 (the first step is not timed)")

    import torch

    from aloe_bench.models.backends.embedded import embedded_checkpoint

    checkpoint = embedded_checkpoint()
    device = (
        torch.cuda.get_device_name(0)
        if torch.cuda.is_available()
        else f"CPU ({torch.get_num_threads()} threads)"
    )
    with tempfile.TemporaryDirectory(prefix="aloe-train-bench-") as tmp:
        root = Path(tmp)
        sft = train_sft(checkpoint, root, args)
        dpo = train_dpo(checkpoint, root, args)
        rm, rm_path = train_rm(checkpoint, root, args)
        plain = asyncio.run(time_sampling("embedded", args))
        bon = asyncio.run(time_sampling(f"bon/{args.bon_n}:embedded@{rm_path}", args))

    print(f"training throughput, embedded model (SmolLM2-135M), {device}; batch {args.batch_size}, "
          f"max length {args.max_length}, {args.steps} steps (first not timed)")  # fmt: skip
    print(
        f"{'trainer':<22} {'tokens/s':>10}  {'per-step spread':<28} {'tokens/step':>11} {'loss first -> last':>20}"
    )
    for name, r in (("SFT (SFTTrainer)", sft), ("DPO (DPOTrainer)", dpo), ("RM (RewardTrainer)", rm)):
        loss = f"{r['loss_first']:.3f} -> {r['loss_last']:.3f}" if r["loss_first"] is not None else "-"
        print(f"{name:<22} {r['tokens_per_s']:>10,.1f}  {spread(r['step_rates'], 1):<28} "
              f"{r['tokens_per_step']:>11,.0f} {loss:>20}")  # fmt: skip

    print(f"\nbest-of-{args.bon_n} vs plain sampling, embedded model, {args.prompts} prompts x {args.bon_tokens} "
          "new tokens, temperature 1.0, top-p 0.9, repetition penalty 1.03 (Janus)")  # fmt: skip
    mean_plain, mean_bon = statistics.mean(plain["walls"]), statistics.mean(bon["walls"])
    ratios = [b / a for a, b in zip(plain["walls"], bon["walls"], strict=True)]
    print(f"{'':<22} {'wall s':>8}  {'spread':<26} {'gen tokens':>10} {'RM scoring s':>12}")
    print(f"{'plain sampling':<22} {mean_plain:>8.2f}  {spread(plain['walls'], 2):<26} "
          f"{statistics.mean(plain['tokens']):>10,.0f} {'-':>12}")  # fmt: skip
    print(f"{f'best-of-{args.bon_n}':<22} {mean_bon:>8.2f}  {spread(bon['walls'], 2):<26} "
          f"{statistics.mean(bon['tokens']):>10,.0f} {statistics.mean(bon['scoring']):>12.2f}")  # fmt: skip
    print(f"overhead: {statistics.mean(ratios):.2f}x the wall time of plain sampling ({spread(ratios, 2)}; "
          f"{args.bon_n}x the generated tokens); reward scoring is "
          f"{100 * statistics.mean(bon['scoring']) / mean_bon:.0f}% of best-of-N's time")  # fmt: skip
    print(
        "note: a few steps on tiny data; on a shared machine the figures vary with its load (see the spread)"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "device": device,
                    "args": vars(args),
                    "sft": sft,
                    "dpo": dpo,
                    "rm": rm,
                    "plain": plain,
                    "best_of_n": bon,
                },
                indent=2,
            )  # fmt: skip
        )


if __name__ == "__main__":
    main()
