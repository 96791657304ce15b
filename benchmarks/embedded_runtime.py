"""The embedded model through each candidate CPU runtime, on one fixed workload, side by side.

The workload is what a benchmark run asks of the embedded model, fixed so that every runtime gets the
same prompts: for each persona and turn, a batch of simulated-user prompts, a batch of model prompts
and a batch of judge prompts (ALOE's own templates), the conversation so far made of fixed texts
(the persona's own sentences as the user's messages, one stock reply as the model's), greedy, with
the task's token limits. Batches go in the order a run sends them, so runtimes that keep earlier
prompts' keys and values (prefix caching) gain what they would gain in a run.

Each candidate runs in its own process (its peak memory is its own) and reports: load time; time to
first token of one fresh prompt (prefill latency); generated tokens per second over the workload;
peak resident memory; the share of the machine's measured fp32 peak that the workload's arithmetic
(2 x parameters x every prompt and generated token, as if nothing were cached) represents; and what
it costs to install (the installed size; with --install-cost, the time to build its wheel here).

    python benchmarks/embedded_runtime.py [--personas 12] [--turns 3] [--candidates torch,openvino,...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CANDIDATES = {
    "torch": "transformers fp32 as the embedded backend ran before (hf/ path: prefix reuse, batching)",
    "torch-int8": "the same, Linear layers int8 (torch dynamic quantization)",
    "torch-compile": "the same, forward compiled with torch.compile (inductor, dynamic shapes)",
    "openvino": "OpenVINO GenAI continuous batching on the GGUF file (int4 weights, prefix caching)",
    "llama.cpp": "llama-cpp-python on the GGUF file, batched decoding, one KV sequence per prompt",
}
# The distribution each candidate installs (for its size and its build time).
PACKAGES = {
    "torch": ["torch", "transformers"],
    "torch-int8": ["torch", "transformers"],
    "torch-compile": ["torch", "transformers"],
    "openvino": ["openvino", "openvino-genai", "openvino-tokenizers"],
    "llama.cpp": ["llama-cpp-python"],
}
STOCK_REPLY = (
    "That is a good question. There are a few things worth weighing here: what you want to get out "
    "of it, how much time you have, and what has worked for you before. Tell me a bit more about "
    "your situation and I can suggest something that fits you."
)


# -- the workload ----------------------------------------------------------------------------------
def build_workload(
    persona_set: str, data_dir: str | None, n: int, turns: int, limits: dict[str, int]
) -> list[dict]:
    from aloe_bench.datasets.personas import load_persona_set
    from aloe_bench.prompts import load_prompt
    from aloe_bench.scorers.judge import get_protocol

    personas = load_persona_set(persona_set, data_dir).personas[:n]
    sim_prompt, judge = load_prompt("simulator.yaml"), get_protocol("aloe-v1")
    batches = []
    histories: list[list[dict[str, str]]] = [[] for _ in personas]
    for k in range(turns):
        sim, chat, verdict = [], [], []
        for persona, history in zip(personas, histories, strict=True):
            messages = sim_prompt.render(profile=persona.profile, personality=persona.personality)
            messages.append({"role": "user", "content": sim_prompt.text("opening")})
            for t in history:
                messages += [
                    {"role": "assistant", "content": t["user"]},
                    {"role": "user", "content": t["assistant"]},
                ]
            sim.append(messages)
            sentences = [s.strip() for s in persona.profile.split(".") if s.strip()]
            user = sentences[k % len(sentences)] + ". What would you suggest?"
            conversation = [m for t in history for m in ({"role": "user", "content": t["user"]},
                                                         {"role": "assistant", "content": t["assistant"]})]  # fmt: skip
            chat.append(conversation + [{"role": "user", "content": user}])
            history.append({"user": user, "assistant": STOCK_REPLY})
            verdict.append(judge.messages(persona.to_dict(), history, k))
        batches += [
            {"role": "simulator", "max_new_tokens": limits["simulator"], "prompts": sim},
            {"role": "model", "max_new_tokens": limits["model"], "prompts": chat},
            {"role": "judge", "max_new_tokens": limits["judge"], "prompts": verdict},
        ]
    return batches


# -- the candidates (each in its own process) -------------------------------------------------------
class Runtime:
    """tokenize -> generate token ids; the tokenizer and chat template are the checkpoint's own."""

    def __init__(self) -> None:
        from transformers import AutoTokenizer

        from aloe_bench.models.backends.embedded import embedded_checkpoint

        self.tok = AutoTokenizer.from_pretrained(embedded_checkpoint())
        self.eos = [self.tok.eos_token_id]

    def ids(self, messages: list[dict[str, str]]) -> list[int]:
        from aloe_bench.models.backends.chat_template import render_prompt

        return self.tok(render_prompt(self.tok, messages), add_special_tokens=False).input_ids

    def generate(self, prompts: list[list[int]], max_new: int) -> list[list[int]]:
        raise NotImplementedError


class TorchRuntime(Runtime):
    def __init__(self, variant: str) -> None:
        super().__init__()
        import torch

        from aloe_bench.models.backends.embedded import embedded_checkpoint
        from aloe_bench.models.backends.hf import HFBackend

        self.backend = HFBackend(str(embedded_checkpoint()), {"batch_size": "64"})
        self.backend.ensure_loaded()
        if variant == "torch-int8":
            self.backend.model = torch.ao.quantization.quantize_dynamic(
                self.backend.model, {torch.nn.Linear}, dtype=torch.qint8
            )
        elif variant == "torch-compile":
            self.backend.model.forward = torch.compile(self.backend.model.forward, dynamic=True)

    def generate(self, prompts: list[list[int]], max_new: int) -> list[list[int]]:
        from aloe_bench.models.backends.hf_decoding import generate_reusing_prefixes
        from aloe_bench.models.backends.sampling import PerRowSampler, RowSampling

        b = self.backend
        results = generate_reusing_prefixes(
            b.model, prompts, PerRowSampler([RowSampling(0.0)] * len(prompts), 0), max_new_tokens=max_new,
            eos_ids=b._eos_ids, pad_id=b.tokenizer.pad_token_id, store=b.prefix_store,
        )  # fmt: skip
        return [r.tokens for r in results]


class OpenVINORuntime(Runtime):
    def __init__(self) -> None:
        super().__init__()
        from aloe_bench.models.backends.embedded import gguf_path
        from aloe_bench.models.backends.openvino_runtime import OpenVINOGenerator

        self.gen = OpenVINOGenerator(gguf_path())

    def generate(self, prompts: list[list[int]], max_new: int) -> list[list[int]]:
        from aloe_bench.models.backends.decoding import Decoding

        out = self.gen.generate(
            prompts, [Decoding(0.0)] * len(prompts), max_new_tokens=max_new, eos_ids=self.eos
        )
        return [g.tokens for g in out]


class LlamaCppRuntime(Runtime):
    """Batched greedy decoding over llama.cpp's C API: each prompt gets a KV sequence; a new prompt
    takes the sequence that already holds its longest prefix (as llama-server's slots do)."""

    def __init__(self, slots: int = 48, per_slot_ctx: int = 2048) -> None:
        super().__init__()
        import llama_cpp as L

        from aloe_bench.models.backends.embedded import gguf_path

        self.L = L
        self._quiet = L.llama_log_callback(lambda level, text, data: None)  # kept: C holds a pointer
        L.llama_log_set(self._quiet, None)  # its per-graph debug lines cost more than a decoding step
        L.llama_backend_init()
        mparams = L.llama_model_default_params()
        self.model = L.llama_model_load_from_file(str(gguf_path()).encode(), mparams)
        cparams = L.llama_context_default_params()
        cparams.n_ctx, cparams.n_seq_max = slots * per_slot_ctx, slots
        cparams.n_batch = cparams.n_ubatch = 512
        cparams.n_threads = cparams.n_threads_batch = os.cpu_count() or 1
        cparams.kv_unified = False  # one stream per sequence: attention reads only its own cells
        self.ctx = L.llama_init_from_model(self.model, cparams)
        self.mem = L.llama_get_memory(self.ctx)
        self.n_vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(self.model))
        self.batch = L.llama_batch_init(512, 0, 1)
        self.slots: list[list[int]] = [[] for _ in range(slots)]
        self.used = [0.0] * slots

    def _logits(self, i: int):
        import numpy as np

        return np.ctypeslib.as_array(self.L.llama_get_logits_ith(self.ctx, i), shape=(self.n_vocab,))

    def _decode(self, tokens: list[tuple[int, int, int, bool]]) -> None:
        b = self.batch
        b.n_tokens = len(tokens)
        for j, (token, pos, seq, logits) in enumerate(tokens):
            b.token[j], b.pos[j], b.n_seq_id[j], b.seq_id[j][0], b.logits[j] = token, pos, 1, seq, logits
        if self.L.llama_decode(self.ctx, b) != 0:
            raise RuntimeError("llama_decode failed")

    def generate(self, prompts: list[list[int]], max_new: int) -> list[list[int]]:
        import numpy as np

        taken: set[int] = set()
        seqs, nexts = [], []
        for ids in prompts:
            best, shared = None, -1
            for s, held in enumerate(self.slots):
                if s in taken:
                    continue
                n = 0
                for a, c in zip(held, ids, strict=False):
                    if a != c:
                        break
                    n += 1
                if n > shared or (n == shared and best is not None and self.used[s] < self.used[best]):
                    best, shared = s, n
            assert best is not None
            taken.add(best)
            shared = min(shared, len(ids) - 1)
            self.L.llama_memory_seq_rm(self.mem, best, shared, -1)
            rest = ids[shared:]
            for start in range(0, len(rest), 512):
                chunk = rest[start : start + 512]
                last = start + len(chunk) == len(rest)
                self._decode(
                    [(t, shared + start + j, best, last and j == len(chunk) - 1) for j, t in enumerate(chunk)]
                )
            nexts.append(int(np.argmax(self._logits(-1))))
            seqs.append(best)
            self.slots[best] = list(ids)
            self.used[best] = time.monotonic()
        outs: list[list[int]] = [[] for _ in prompts]
        live = list(range(len(prompts)))
        for _ in range(max_new):
            for i in list(live):
                outs[i].append(nexts[i])
                if nexts[i] in self.eos or len(outs[i]) >= max_new:
                    live.remove(i)
            if not live:
                break
            self._decode([(nexts[i], len(self.slots[seqs[i]]), seqs[i], True) for i in live])
            for j, i in enumerate(live):
                self.slots[seqs[i]].append(nexts[i])
                nexts[i] = int(np.argmax(self._logits(j)))
        return [o[:-1] if o and o[-1] in self.eos else o for o in outs]


def make_runtime(name: str) -> Runtime:
    if name.startswith("torch"):
        return TorchRuntime(name)
    if name == "openvino":
        return OpenVINORuntime()
    if name == "llama.cpp":
        return LlamaCppRuntime()
    raise SystemExit(f"unknown candidate {name!r}: use {', '.join(CANDIDATES)}")


def worker(name: str, workload_file: Path, out_file: Path) -> None:
    batches = json.loads(workload_file.read_text())
    start = time.perf_counter()
    runtime = make_runtime(name)
    first = runtime.ids(batches[0]["prompts"][0])
    load_s = time.perf_counter() - start
    t = time.perf_counter()
    runtime.generate([first], 1)
    ttft_s = time.perf_counter() - t
    prompt_tokens = generated = 0
    replies = []
    t = time.perf_counter()
    for batch in batches:
        ids = [runtime.ids(m) for m in batch["prompts"]]
        out = runtime.generate(ids, batch["max_new_tokens"])
        prompt_tokens += sum(len(i) for i in ids)
        generated += sum(len(o) for o in out)
        replies.append([runtime.tok.decode(o) for o in out])
    wall = time.perf_counter() - t
    out_file.write_text(json.dumps({"load_s": load_s, "ttft_s": ttft_s, "wall_s": wall, "prompt_tokens": prompt_tokens,
                                    "generated": generated, "replies": replies}))  # fmt: skip


# -- the parent: machine peak, runs, table -----------------------------------------------------------
def fp32_peak_gflops(seconds: float = 3.0) -> float:
    import torch

    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    n, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        a @ b
        n += 1
    return 2 * 1024**3 * n / (time.perf_counter() - start) / 1e9


def _wait(proc: subprocess.Popen, timeout: float) -> tuple[int | None, Any]:
    """The child's exit status and its own resource usage (peak memory), or None past `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, usage
        time.sleep(0.2)
    proc.kill()
    os.wait4(proc.pid, 0)
    return None, None


def installed_mb(packages: list[str]) -> float | None:
    from importlib import metadata

    total = 0
    for name in packages:
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            return None
        total += sum(f.size or 0 for f in dist.files or [] if getattr(f, "size", None))
    return total / 2**20


def build_seconds(package: str) -> tuple[float, str]:
    """Time to get an installable wheel of `package` here: a download when the registry has a wheel,
    a compile when it has only the source."""
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", tmp, package],
                              capture_output=True, text=True)  # fmt: skip
        elapsed = time.perf_counter() - start
        built = next(iter(Path(tmp).glob("*.whl")), None)
        if proc.returncode or built is None:
            return elapsed, "failed"
        return elapsed, f"{built.stat().st_size / 2**20:.0f} MB wheel"


def param_count() -> int:
    from transformers import AutoConfig

    from aloe_bench.models.backends.embedded import embedded_checkpoint

    c = AutoConfig.from_pretrained(embedded_checkpoint())
    head = c.hidden_size // c.num_attention_heads
    per_layer = (c.hidden_size * head * (c.num_attention_heads * 2 + c.num_key_value_heads * 2)
                 + 3 * c.hidden_size * c.intermediate_size)  # fmt: skip
    return c.num_hidden_layers * per_layer + c.vocab_size * c.hidden_size  # the tied head is a matmul too


def agreement(a: list[list[str]], b: list[list[str]]) -> float:
    pairs = [(x, y) for bx, by in zip(a, b, strict=True) for x, y in zip(bx, by, strict=True)]
    return sum(x == y for x, y in pairs) / len(pairs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument(
        "--persona-set",
        default="demo",
        help="demo (shipped), aloe (the official set; needs --data-dir offline)",
    )
    p.add_argument("--data-dir", default=None, help="folder with the official ALOE files")
    p.add_argument("--personas", type=int, default=12)
    p.add_argument("--turns", type=int, default=3)
    p.add_argument("--model-tokens", type=int, default=128)
    p.add_argument("--simulator-tokens", type=int, default=64)
    p.add_argument("--judge-tokens", type=int, default=16)
    p.add_argument("--candidates", default=",".join(CANDIDATES))
    p.add_argument("--timeout", type=float, default=900, help="seconds a candidate may take")
    p.add_argument("--install-cost", action="store_true", help="also time building each candidate's wheel")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--workload", help=argparse.SUPPRESS)
    p.add_argument("--out", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, Path(args.workload), Path(args.out))

    from aloe_bench.models.backends.embedded import embedded_checkpoint

    embedded_checkpoint()  # the torch candidates' checkpoint and the shared tokenizer, outside every timing
    limits = {"model": args.model_tokens, "simulator": args.simulator_tokens, "judge": args.judge_tokens}
    batches = build_workload(args.persona_set, args.data_dir, args.personas, args.turns, limits)
    names = [c.strip() for c in args.candidates.split(",") if c.strip()]
    peak = fp32_peak_gflops()
    params = param_count()
    print(f"workload: {args.personas} {args.persona_set} personas x {args.turns} turns, {len(batches)} batches, "
          f"limits {limits}, greedy; {params / 1e6:.0f}M parameters; machine fp32 peak {peak:.0f} GFLOPS "
          f"(1024x1024 matmul); load average {os.getloadavg()[0]:.2f}", flush=True)  # fmt: skip
    rows, replies = [], {}
    with tempfile.TemporaryDirectory() as tmp:
        wl = Path(tmp) / "workload.json"
        wl.write_text(json.dumps(batches))
        for name in names:
            out, log = Path(tmp) / f"{name}.json", Path(tmp) / f"{name}.log"
            with log.open("w") as log_file:  # a file, not a pipe: llama.cpp logs more than a pipe holds
                proc = subprocess.Popen(
                    [sys.executable, __file__, "--worker", name, "--workload", str(wl), "--out", str(out)],
                    stderr=log_file,
                )
                status, usage = _wait(proc, args.timeout)
            if status is None:
                rows.append((name, None, f"gave up after {args.timeout} s (--timeout)"))
                continue
            err = log.read_text(errors="replace")
            if status != 0 or not out.is_file():
                last = [line for line in err.strip().splitlines() if line.strip()][-1:] or ["no output"]
                rows.append((name, None, last[0][:90]))
                continue
            r = json.loads(out.read_text())
            r["rss_gb"] = usage.ru_maxrss / 2**20  # KiB on Linux
            replies[name] = r.pop("replies")
            rows.append((name, r, ""))
    base = replies.get("torch")
    print(f"\n{'runtime':14} {'load s':>7} {'TTFT s':>7} {'gen tok':>8} {'wall s':>7} {'tok/s':>7} "
          f"{'peak RSS':>9} {'FLOP share':>10} {'same as torch':>13} {'installed':>10}")  # fmt: skip
    for name, r, why in rows:
        size = installed_mb(PACKAGES[name])
        size_text = f"{size:.0f} MB" if size is not None else "absent"
        if r is None:
            print(f"{name:14} not measured: {why}  (installed: {size_text})")
            continue
        flops = 2 * params * (r["prompt_tokens"] + r["generated"])
        share = flops / r["wall_s"] / (peak * 1e9)
        same = f"{agreement(base, replies[name]):.0%}" if base is not None else "-"
        print(f"{name:14} {r['load_s']:7.1f} {r['ttft_s']:7.2f} {r['generated']:8d} {r['wall_s']:7.1f} "
              f"{r['generated'] / r['wall_s']:7.1f} {r['rss_gb']:7.2f} GB {share:10.0%} {same:>13} {size_text:>10}")  # fmt: skip
    print(
        "\ntok/s: generated tokens over the workload's wall time (load excluded, prefill included). "
        "FLOP share: 2 x parameters x (prompt + generated tokens) / wall / machine peak; prefix caching "
        "skips prompt work, so a share can exceed what the hardware did. 'same as torch': replies "
        f"identical to the torch candidate's (n = {sum(len(b['prompts']) for b in batches)}). "
        "One run each, on one machine: re-run before quoting a difference under ~10%."
    )
    if args.install_cost:
        print("\ninstall cost (pip wheel --no-deps from the registry, on this machine):")
        for name in dict.fromkeys(n for n in names for n in [n]):
            for package in PACKAGES[name][:1] if name.startswith("torch") else PACKAGES[name][-1:]:
                seconds, what = build_seconds(package)
                print(f"  {name:14} {package:22} {seconds:7.1f} s  {what}")


if __name__ == "__main__":
    main()
