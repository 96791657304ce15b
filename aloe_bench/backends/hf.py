"""`hf/<path or hub id>`: transformers in-process, truly batched.

Left padding, the checkpoint's own chat template, generation stops at the checkpoint's end-of-turn
tokens, and the reply is cut by token position (never by searching the text for a marker).
Arguments (`--model-args k=v,...`): dtype, device, batch_size, revision, trust_remote_code,
attn_implementation.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from aloe_bench.backends.base import BatchingBackend, ChatRequest, Completion
from aloe_bench.backends.chat_template import render_prompt, system_role_mode
from aloe_bench.errors import BackendFatalError, UserInputError


def looks_like_path(name: str) -> bool:
    return name.startswith(("/", "./", "../", "~")) or os.path.isdir(os.path.expanduser(name))


def checkpoint_fingerprint(path: Path) -> str:
    """Identifies a local checkpoint's contents cheaply: a retrained model in the same folder must
    not be answered from the cache of the old one."""
    h = hashlib.sha256()
    for f in sorted(path.rglob("*")):
        if f.is_file():
            st = f.stat()
            h.update(f"{f.relative_to(path)}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
            if f.suffix in (".json", ".jinja", ".model") and st.st_size < 5_000_000:
                h.update(f.read_bytes())
    return h.hexdigest()[:16]


def hub_fingerprint(repo_id: str, revision: str | None) -> str:
    """The commit a hub id resolves to in the local cache, when known (offline-safe)."""
    try:
        from huggingface_hub import constants

        ref = (
            Path(constants.HF_HUB_CACHE)
            / f"models--{repo_id.replace('/', '--')}"
            / "refs"
            / (revision or "main")
        )
        if ref.is_file():
            return ref.read_text().strip()
    except Exception:  # noqa: BLE001 - best effort only
        pass
    return revision or "main"


class HFBackend(BatchingBackend):
    provider = "hf"

    def __init__(self, name: str, args: dict[str, Any] | None = None):
        super().__init__(name, args)
        if "batch_size" not in self.args:
            import torch

            self.batch_size = 64 if torch.cuda.is_available() else 16  # a 2-core CPU gains little past 16
        self.model = None
        self.tokenizer = None
        self._local = looks_like_path(name)
        self.path = Path(os.path.expanduser(name)).resolve() if self._local else None

    def check(self) -> None:
        if self._local:
            if not self.path.is_dir():
                raise UserInputError(
                    f"model path {self.name} does not exist; pass an existing checkpoint folder or a hub id"
                )
            if not (self.path / "config.json").is_file():
                raise UserInputError(f"{self.name} is not a transformers checkpoint (no config.json in it)")

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["checkpoint"] = (
            checkpoint_fingerprint(self.path)
            if self._local
            else hub_fingerprint(self.name, self.args.get("revision"))
        )
        # Batching and device placement do not change what a seeded request returns.
        ident["args"] = {k: v for k, v in ident["args"].items() if k not in ("batch_size", "device")}
        return ident

    # -- loading ------------------------------------------------------------------------------------
    def _device(self) -> str:
        import torch

        device = self.args.get("device", "auto")
        if device == "auto":
            return "cuda" if torch.cuda.is_available() else "cpu"
        return device

    def _source(self) -> str:
        return str(self.path) if self._local else self.name

    def _common_kwargs(self) -> dict[str, Any]:
        return {
            "revision": self.args.get("revision"),
            "trust_remote_code": _truthy(self.args.get("trust_remote_code")),
        }

    def _load_tokenizer(self) -> Any:
        from transformers import AutoTokenizer

        try:
            return AutoTokenizer.from_pretrained(self._source(), **self._common_kwargs())
        except (OSError, ValueError) as exc:
            raise BackendFatalError(f"could not load hf model {self.name}: {_first_line(exc)}") from exc

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM

        device = self._device()
        dtype = self.args.get("dtype", "auto")
        if dtype == "auto":
            # bf16 on accelerators (the paper's setting); float32 on CPU, where bf16 matmuls are slow.
            dtype = "bfloat16" if device.startswith("cuda") else "float32"
        tok = self.tokenizer or self._load_tokenizer()
        model_kwargs: dict[str, Any] = {"dtype": getattr(torch, dtype)}
        if "attn_implementation" in self.args:
            model_kwargs["attn_implementation"] = self.args["attn_implementation"]
        try:
            model = AutoModelForCausalLM.from_pretrained(
                self._source(), **self._common_kwargs(), **model_kwargs
            )
        except (OSError, ValueError) as exc:
            raise BackendFatalError(f"could not load hf model {self.name}: {_first_line(exc)}") from exc
        model.to(device).eval()
        tok.padding_side = "left"
        if tok.pad_token_id is None:
            tok.pad_token = tok.eos_token
        self.tokenizer, self.model = tok, model
        self._eos_ids = _eos_ids(model, tok)

    def system_role(self) -> str:
        """Needs only the tokenizer, so a fully cached run records it without loading the weights."""
        if self.tokenizer is None:
            self.tokenizer = self._load_tokenizer()
        return system_role_mode(self.tokenizer)

    # -- generation ---------------------------------------------------------------------------------
    def _generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        from aloe_bench.backends.sampling import PerRowSampler

        tok, model = self.tokenizer, self.model
        prompts = [render_prompt(tok, r.messages) for r in requests]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        prompt_len = enc["input_ids"].shape[1]
        max_new = requests[0].settings.max_new_tokens
        sampler = PerRowSampler([self._row_sampling(r) for r in requests], prompt_len)
        gen_config = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,  # sampling, when asked for, happens per row inside `sampler`
            eos_token_id=self._eos_ids,
            pad_token_id=tok.pad_token_id,
            repetition_penalty=model.generation_config.repetition_penalty,
        )
        with torch.inference_mode():
            out = model.generate(
                **enc, generation_config=gen_config, logits_processor=LogitsProcessorList([sampler])
            )
        new_tokens = out[:, prompt_len:].tolist()
        prompt_counts = enc["attention_mask"].sum(dim=1).tolist()
        results = []
        for row, n_prompt in zip(new_tokens, prompt_counts, strict=True):
            cut = next((i for i, t in enumerate(row) if t in self._eos_ids), None)
            reply = row if cut is None else row[:cut]
            results.append(
                Completion(
                    text=tok.decode(reply, skip_special_tokens=True).strip(),
                    finish_reason="length" if cut is None else "stop",
                    prompt_tokens=int(n_prompt),
                    completion_tokens=len(reply) + (0 if cut is None else 1),
                )
            )
        return results

    def _row_sampling(self, request: ChatRequest):
        from aloe_bench.backends.sampling import RowSampling
        from aloe_bench.seeds import seed32

        s, defaults = request.settings, self.model.generation_config
        if s.temperature is None:  # the checkpoint's own generation config decides
            temperature = (defaults.temperature or 1.0) if defaults.do_sample else 0.0
            top_p = s.top_p if s.top_p is not None else (defaults.top_p or 1.0)
            top_k = (defaults.top_k or 0) if defaults.do_sample else 0
        else:
            temperature, top_p, top_k = s.temperature, (s.top_p if s.top_p is not None else 1.0), 0
        seed = seed32("row", s.seed if s.seed is not None else 0, json.dumps(request.messages))
        return RowSampling(temperature=float(temperature), top_p=float(top_p), top_k=int(top_k), seed=seed)


def _eos_ids(model: Any, tok: Any) -> list[int]:
    ids: set[int] = set()
    eos = model.generation_config.eos_token_id
    if eos is not None:
        ids.update(eos if isinstance(eos, list) else [eos])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return sorted(ids)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on") if value is not None else False
