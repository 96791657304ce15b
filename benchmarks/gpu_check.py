"""A GPU check to run whenever a GPU is there: scoring and training on CUDA, end to end, in minutes.

Builds a small random-weight Llama checkpoint (no download: a byte-level BPE tokenizer trained here,
a ChatML template; see aloe_bench/testing/tiny_llama.py), then
1. runs the engine's fixed workload (the demo personas and their variants, `--turns` turns, the
   model, simulated user and judge all `hf/<checkpoint>`, greedy, no call cache) at 1, 8 and 32
   concurrent conversations and prints generated tokens/s of wall time and peak GPU memory, beside
   transformers' generate() alone on the same checkpoint (with cuDNN attention as hf/ leaves it: off
   on CUDA, and on, PyTorch's default, for comparison);
2. greedy agreement with the CPU reference: the same 8-conversation workload in float32 on the device
   and on the CPU, reply by reply (and the device's bf16 replies against the same reference);
3. the same through `vllm/` when vLLM is importable (said plainly when it is not);
4. one SFT and one DPO run of `--train-steps` steps through aloe-train's own code (TRL), in bf16 on
   CUDA, on tiny data written here; the loss of every step is printed.

    python benchmarks/gpu_check.py                 # the GPU when there is one, else the CPU
    python benchmarks/gpu_check.py --device cpu --hidden 64 --layers 2 --concurrency 1,4 --turns 1
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _personas import demo_personas, write_personas  # noqa: E402

from aloe_bench.models.role_config import RoleConfig  # noqa: E402
from aloe_bench.tasks.aloe.config import RunConfig  # noqa: E402
from aloe_bench.tasks.aloe.run import run_benchmark  # noqa: E402
from aloe_bench.testing.tiny_llama import build_tiny_llama  # noqa: E402


def _torch():
    import torch

    return torch


def run_workload(
    spec: str, args: dict[str, str], n: int, turns: int, limits: dict[str, int], work: Path
) -> dict[str, Any]:
    """The engine's workload for `n` concurrent conversations; returns tokens, seconds, replies."""
    work.mkdir(parents=True, exist_ok=True)
    role = {"spec": spec, "args": dict(args)}
    config = RunConfig(
        model=RoleConfig(**role, max_new_tokens=limits["model"], temperature=0.0),
        simulator=RoleConfig(**role, max_new_tokens=limits["simulator"], temperature=0.0),
        judge=RoleConfig(**role, max_new_tokens=limits["judge"], temperature=0.0),
        personas=str(write_personas(demo_personas(n), work / "personas.jsonl")),
        turns=turns,
        output=str(work / "run"),
        cache="",  # no call cache: every call is generated
        n_bootstrap=0,
        judge_reasks=0,
        simulator_retries=0,
        concurrency=max(n, 1),
    )
    start = time.perf_counter()
    _, run = run_benchmark(config, progress=False)
    seconds = time.perf_counter() - start
    results = run.to_dict()
    rows = [json.loads(line) for line in (work / "run" / "conversations.jsonl").read_text().splitlines()]
    replies = [t.get("assistant") for r in rows for t in r.get("turns", [])]
    users = [t.get("user") for r in rows for t in r.get("turns", [])]
    return {
        "tokens": sum(u["completion_tokens"] for u in results["usage"].values()),
        "calls": sum(u["calls"] for u in results["usage"].values()),
        "seconds": seconds,
        "complete": sum(r["status"] == "complete" for r in rows),
        "conversations": len(rows),
        "texts": users + replies,
    }


def raw_generate(checkpoint: Path, device: str, batches: list[int], new_tokens: int) -> None:
    """transformers' generate() alone on the same checkpoint: the ceiling the engine's figures sit under."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch = _torch()
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype).to(device).eval()
    tok = AutoTokenizer.from_pretrained(checkpoint)
    prompt = tok.apply_chat_template([{"role": "user", "content": "Tell me about the harbour."}],
                                     add_generation_prompt=True, return_dict=False)  # fmt: skip
    print(
        f"  {'batch':>13} {'new tokens':>10} {'seconds':>8} {'tokens/s':>9}   (generate(), greedy, {dtype})"
    )
    for i, batch in enumerate([1, *batches]):  # the first is a warm-up, not printed
        ids = torch.tensor([prompt] * batch, device=device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=new_tokens,
                                 min_new_tokens=new_tokens, do_sample=False)  # fmt: skip
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        made = (out.shape[1] - ids.shape[1]) * batch
        if i == 0:
            continue
        print(f"  {batch:13d} {made:10d} {seconds:8.2f} {made / seconds:9.1f}")
    del model


def agreement(a: list, b: list) -> str:
    same = sum(x == y for x, y in zip(a, b, strict=False))
    return f"{same}/{max(len(a), len(b))} texts identical"


def throughput(spec: str, base_args: dict[str, str], device: str, concurrencies: list[int], turns: int,
               limits: dict[str, int], tmp: Path) -> None:  # fmt: skip
    torch = _torch()
    cuda = device.startswith("cuda")
    fresh = lambda name: Path(tempfile.mkdtemp(prefix=f"{name}-", dir=tmp))  # noqa: E731 - never resume a run
    run_workload(spec, base_args, 1, 1, limits, fresh("warmup"))  # kernels, allocator
    print(
        f"  {'conversations':>13} {'calls':>6} {'tokens':>7} {'seconds':>8} {'tokens/s':>9} {'peak GPU MiB':>13}"
    )
    for n in concurrencies:
        if cuda:
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        r = run_workload(spec, base_args, n, turns, limits, fresh(f"n{n}"))
        peak = f"{torch.cuda.max_memory_allocated() / 2**20:13.0f}" if cuda else f"{'(cpu)':>13}"
        print(f"  {n:13d} {r['calls']:6d} {r['tokens']:7d} {r['seconds']:8.2f} {r['tokens'] / r['seconds']:9.1f} {peak}"
              f"   ({r['complete']}/{r['conversations']} complete)")  # fmt: skip


def training_steps(checkpoint: Path, steps: int, tmp: Path) -> None:
    from aloe_train.train import DPORunConfig, SFTRunConfig, run_dpo, run_sft

    data = tmp / "pairs.jsonl"
    rows = [
        {
            "system": "Answer in the user's style.",
            "prompt": f"I fish for {w} every morning. What should I pack?",
            "chosen": f"Pack bait, a thermos and warm gloves for {w}.",
            "rejected": "Packing depends on many factors that vary by situation.",
        }
        for w in ("cod", "lobster", "mackerel", "herring", "halibut", "trout", "salmon", "pollock")
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in rows))
    common = {"model": f"hf/{checkpoint}", "data": str(data), "max_steps": steps, "logging_steps": 1,
              "max_length": 128, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
              "learning_rate": 1e-3, "warmup_steps": 0}  # fmt: skip
    for name, make, run in (("SFT", SFTRunConfig, run_sft), ("DPO", DPORunConfig, run_dpo)):
        start = time.perf_counter()
        record = run(make(**common, output=str(tmp / name.lower())))
        losses = [round(h["loss"], 4) for h in record["log_history"] if "loss" in h]
        args = record["train"]["trainer_args"]
        print(f"  {name}: {record['train']['steps']} steps in {time.perf_counter() - start:.1f} s, bf16={args['bf16']}, "
              f"loss per step {losses}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto (cuda when present), cpu, cuda, cuda:N")
    parser.add_argument("--concurrency", default="1,8,32", help="concurrent conversations, comma-separated")
    parser.add_argument("--turns", type=int, default=2)
    parser.add_argument("--model-tokens", type=int, default=64)
    parser.add_argument("--simulator-tokens", type=int, default=32)
    parser.add_argument("--judge-tokens", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=512, help="checkpoint width")
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--agreement-conversations", type=int, default=8)
    parser.add_argument("--train-steps", type=int, default=2, help="SFT and DPO steps (0: skip training)")
    parser.add_argument(
        "--parts", default="scoring,cudnn,agreement,vllm,training", help="which checks to run"
    )
    args = parser.parse_args()
    torch = _torch()
    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    limits = {"model": args.model_tokens, "simulator": args.simulator_tokens, "judge": args.judge_tokens}
    concurrencies = [int(c) for c in args.concurrency.split(",") if c.strip()]
    print(f"gpu_check: device {device}", end="")
    if device.startswith("cuda"):
        print(f" = {torch.cuda.get_device_name(device)}", end="")
    print(f"; torch {torch.__version__}, python {platform.python_version()}, host {platform.node()}")
    print(
        f"workload: demo personas x {args.turns} turns, hf/ in every role, greedy, limits {limits}, no cache"
    )

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        checkpoint = build_tiny_llama(tmp / "tiny-llama", hidden=args.hidden, layers=args.layers,
                                      heads=max(args.hidden // 64, 1))  # fmt: skip
        print(f"checkpoint: random-weight Llama, hidden {args.hidden}, {args.layers} layers, {checkpoint}")
        spec = f"hf/{checkpoint}"

        parts = set(args.parts.split(","))
        if "scoring" in parts:
            print(
                f"\n[1] hf/ on {device} (dtype auto: bf16 on CUDA, float32 on CPU): tokens/s, model load included"
            )
            throughput(spec, {"device": device}, device, concurrencies, args.turns, limits, tmp)
            cudnn = torch.backends.cuda.cudnn_sdp_enabled()
            note = (
                f", cuDNN attention {'on' if cudnn else 'off'} (as hf/ leaves it)" if device != "cpu" else ""
            )
            print(
                f"\n[1b] the same checkpoint through generate() alone, {args.model_tokens} new tokens{note}"
            )
            raw_generate(checkpoint, device, concurrencies, args.model_tokens)
        if device.startswith("cuda") and "cudnn" in parts:
            # PyTorch's SDPA prefers cuDNN attention on Hopper; cuDNN builds a graph for every new
            # sequence length, i.e. at every decoding step (hf/ turns it off on CUDA for that reason).
            before = torch.backends.cuda.cudnn_sdp_enabled()
            torch.backends.cuda.enable_cudnn_sdp(True)
            print("\n[1c] generate() alone with cuDNN attention on (PyTorch's default), for comparison")
            raw_generate(checkpoint, device, concurrencies, args.model_tokens)
            torch.backends.cuda.enable_cudnn_sdp(before)

        n = args.agreement_conversations
        if "agreement" not in parts:
            pass
        elif device == "cpu":
            print(
                "\n[2] greedy agreement: the device is the CPU, the reference itself (run on a GPU to check)"
            )
        else:
            print(f"\n[2] greedy agreement with the CPU reference ({n} conversations)")
            reference = run_workload(
                spec, {"device": "cpu", "dtype": "float32"}, n, args.turns, limits, tmp / "ref"
            )
            same32 = run_workload(
                spec, {"device": device, "dtype": "float32"}, n, args.turns, limits, tmp / "d32"
            )
            bf16 = run_workload(
                spec, {"device": device, "dtype": "bfloat16"}, n, args.turns, limits, tmp / "d16"
            )
            print(f"  {device} float32 vs cpu float32: {agreement(same32['texts'], reference['texts'])}")
            print(f"  {device} bfloat16 vs cpu float32: {agreement(bf16['texts'], reference['texts'])}"
                  " (random weights: near-ties flip under bf16 rounding)")  # fmt: skip

        print("\n[3] vllm/")
        if "vllm" not in parts:
            print("  not asked for (--parts)")
        elif importlib.util.find_spec("vllm") is None:
            print("  vLLM is not importable here: not measured")
        else:
            import vllm

            print(
                f"  vLLM {vllm.__version__} (peak GPU MiB counts this process only: the engine runs in its own)"
            )
            throughput(f"vllm/{checkpoint}", {"gpu_memory": "0.5", "max_model_len": "4096"}, device,
                       concurrencies, args.turns, limits, tmp)  # fmt: skip

        if args.train_steps > 0 and "training" in parts:
            print(f"\n[4] training on {device} through aloe-train (TRL), {args.train_steps} steps each")
            if device == "cpu":
                os.environ["CUDA_VISIBLE_DEVICES"] = ""  # the trainers pick CUDA whenever they see one
            training_steps(checkpoint, args.train_steps, tmp)
    print("\ngpu_check: done")


if __name__ == "__main__":
    main()
