"""Milliseconds per decoding step of the gpu_check checkpoint, by batch size and attention implementation.

Written to explain the H200 figures of gpu_check.py: with PyTorch's SDPA a step took ~48 ms at every
batch size, with eager attention ~4.6 ms. The profiler table at the end (SDPA, batch 8, shapes already
seen) shows `aten::_cudnn_attention_forward`: SDPA picks cuDNN attention on Hopper, and cuDNN builds a
graph for every new shape, i.e. for every new sequence length, i.e. at every decoding step.

    python benchmarks/decode_step.py [--device cuda]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from transformers import AutoModelForCausalLM

from aloe_bench.testing.tiny_llama import build_tiny_llama


def step_ms(model, device: str, batch: int, steps: int = 32, prompt: int = 40) -> float:
    def sync() -> None:
        if device.startswith("cuda"):
            torch.cuda.synchronize()

    ids = torch.randint(10, 1000, (batch, prompt), device=device)
    with torch.inference_mode():
        out = model(input_ids=ids, use_cache=True)
        cache = out.past_key_values
        token = out.logits[:, -1].argmax(-1, keepdim=True)
        sync()
        start = time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=token, past_key_values=cache, use_cache=True)
            token = out.logits[:, -1].argmax(-1, keepdim=True)
        sync()
    return (time.perf_counter() - start) / steps * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    args = parser.parse_args()
    device = args.device
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    checkpoint = build_tiny_llama(Path(tempfile.mkdtemp()) / "tiny", hidden=512, layers=4, heads=8)
    print(f"device {device}, {dtype}, torch {torch.__version__}, threads {torch.get_num_threads()}")
    for attn in ("sdpa", "eager"):
        model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype, attn_implementation=attn)
        model = model.to(device).eval()
        step_ms(model, device, 1, 4)  # warm-up
        print(attn, " ".join(f"b{b}={step_ms(model, device, b):.2f}ms" for b in (1, 2, 8, 32)), flush=True)
    from torch.profiler import ProfilerActivity, profile

    model = AutoModelForCausalLM.from_pretrained(checkpoint, dtype=dtype).to(device).eval()
    step_ms(model, device, 8, 4)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.startswith("cuda") else [])
    with profile(activities=activities) as prof:
        step_ms(model, device, 8, 8)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12, max_name_column_width=50))


if __name__ == "__main__":
    main()
