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

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.activity import ACTIVITY
from aloe_bench.models.backends.base import BatchingBackend, ChatRequest, Completion
from aloe_bench.models.backends.chat_template import render_prompt, system_role_mode


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


def check_hub_model(repo_id: str, revision: str | None) -> None:
    """Fail fast, before any model loads, on a hub id that cannot be had: not in the local cache and
    the hub unreachable (offline, firewalled), no such repository, or a gated one. Without this,
    transformers retries the download for about a minute, logging every retry, then fails deep in
    the run. One probe with a short timeout; a cached model needs no network at all."""
    import huggingface_hub
    from huggingface_hub import errors

    if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, "config.json", revision=revision), str):
        return
    spec = f"hf/{repo_id}"
    if huggingface_hub.constants.HF_HUB_OFFLINE:
        raise UserInputError(
            f"{spec} is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; download it first "
            f"(`hf download {repo_id}`) where there is network, or pass a local checkpoint folder"
        )
    try:
        huggingface_hub.model_info(repo_id, revision=revision, timeout=10)
    except errors.GatedRepoError:
        raise UserInputError(
            f"{spec} is gated on the Hugging Face hub; accept its terms there and log in (`hf auth login`)"
        ) from None
    except errors.RepositoryNotFoundError:
        raise UserInputError(
            f"{spec}: no such model on the Hugging Face hub (or it is private); check the id, "
            "or pass a local checkpoint folder"
        ) from None
    except errors.RevisionNotFoundError:
        raise UserInputError(f"{spec}: revision {revision!r} not found on the hub") from None
    except Exception as exc:  # noqa: BLE001 - any transport failure means the same to the user
        raise UserInputError(
            f"{spec} is not in the local Hugging Face cache and the hub is unreachable "
            f"({_first_line(exc)}); download it where there is network (`hf download {repo_id}`), "
            "or pass a local checkpoint folder"
        ) from None


class HFBackend(BatchingBackend):
    provider = "hf"
    takes_repetition_penalty = True  # transformers' repetition_penalty, in both decoding paths

    def __init__(self, name: str, args: dict[str, Any] | None = None):
        super().__init__(name, args)
        if "batch_size" not in self.args:
            import torch

            self.batch_size = 64 if torch.cuda.is_available() else 32
        # Loaded lazily; typed Any because transformers' Auto classes return model-specific classes
        # (and a tokenizer union) whose attributes mypy cannot resolve statically.
        self.model: Any = None
        self.prefix_store = None  # set when loading (see _prefix_store)
        self.tokenizer: Any = None
        self._local = looks_like_path(name)
        self.path = Path(os.path.expanduser(name)).resolve() if self._local else None

    def check(self) -> None:
        if self.path is not None:  # a local checkpoint folder
            if not self.path.is_dir():
                raise UserInputError(
                    f"model path {self.name} does not exist; pass an existing checkpoint folder or a hub id"
                )
            if not (self.path / "config.json").is_file():
                raise UserInputError(f"{self.name} is not a transformers checkpoint (no config.json in it)")
        else:
            check_hub_model(self.name, self.args.get("revision"))

    def identity(self) -> dict[str, Any]:
        ident = super().identity()
        ident["checkpoint"] = (
            checkpoint_fingerprint(self.path)
            if self.path is not None
            else hub_fingerprint(self.name, self.args.get("revision"))
        )
        # Batching and device placement do not change what a seeded request returns.
        ident["args"] = {
            k: v for k, v in ident["args"].items() if k not in ("batch_size", "device", "prefix_cache_gb")
        }
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
        if device.startswith("cuda"):
            # SDPA picks cuDNN attention on Hopper, which builds a graph for every new sequence length,
            # i.e. at every decoding step: ~48 ms a step vs ~4.6 ms on an H200 (benchmarks/decode_step.py;
            # generate() 10x faster at batch 8, benchmarks/README.md). Flash/memory-efficient SDPA remain.
            torch.backends.cuda.enable_cudnn_sdp(False)
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
        self.prefix_store = self._prefix_store(model, device)

    def _prefix_store(self, model: Any, device: str):
        """Keys/values of earlier prompts, reused by later ones (`prefix_cache_gb=0` turns it off)."""
        from aloe_bench.models.backends.hf_decoding import PrefixStore, supports_prefix_reuse

        budget_gb = float(self.args.get("prefix_cache_gb", 4 if device.startswith("cuda") else 2))
        if budget_gb <= 0 or not supports_prefix_reuse(model):
            return None
        cfg = model.config
        head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
        kv_heads = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
        per_token = 2 * cfg.num_hidden_layers * kv_heads * head_dim * model.dtype.itemsize
        return PrefixStore(max_tokens=int(budget_gb * 2**30 / per_token))

    def system_role(self) -> str:
        """Needs only the tokenizer, so a fully cached run records it without loading the weights."""
        if self.tokenizer is None:
            self.tokenizer = self._load_tokenizer()
        return system_role_mode(self.tokenizer)

    # -- generation ---------------------------------------------------------------------------------
    def _generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        from aloe_bench.models.backends.hf_decoding import generate_reusing_prefixes
        from aloe_bench.models.backends.sampling import PerRowSampler

        tok, model = self.tokenizer, self.model
        prompts = [tok(render_prompt(tok, r.messages), add_special_tokens=False).input_ids for r in requests]
        rows = [self._row_sampling(r) for r in requests]
        max_new = requests[0].settings.max_new_tokens
        penalty = self._repetition_penalty(requests[0])  # one per batch (part of its batch key)
        ACTIVITY.begin_batch(len(requests), max_new)  # progress inside a turn: steps and tokens
        try:
            if self.prefix_store is not None:
                results = generate_reusing_prefixes(
                    model, prompts, PerRowSampler(rows, 0), max_new_tokens=max_new, eos_ids=self._eos_ids,
                    pad_id=tok.pad_token_id, store=self.prefix_store,
                    repetition_penalty=penalty, on_step=ACTIVITY.step,
                )  # fmt: skip
                self.batch_stats.update(self.prefix_store.stats)
                replies = [(r.tokens, r.stopped) for r in results]
            else:
                sampler = PerRowSampler(rows, max(len(p) for p in prompts))
                replies = self._generate(prompts, sampler, max_new, penalty)
        finally:
            ACTIVITY.end_batch(len(requests))
        return [
            Completion(
                text=tok.decode(reply, skip_special_tokens=True).strip(),
                finish_reason="stop" if stopped else "length",
                prompt_tokens=len(prompt),
                completion_tokens=len(reply) + int(stopped),  # the end-of-turn token counts, as in APIs
            )
            for (reply, stopped), prompt in zip(replies, prompts, strict=True)
        ]

    def _repetition_penalty(self, request: ChatRequest) -> float | None:
        """The request's penalty, else the checkpoint's generation config's (None or 1.0: none)."""
        given = request.settings.repetition_penalty
        return given if given is not None else self.model.generation_config.repetition_penalty

    def _generate(
        self, prompts: list[list[int]], sampler: Any, max_new: int, penalty: float | None = None
    ) -> list[tuple[list[int], bool]]:
        """transformers' generate() on a left-padded batch: for models the prefix reuse does not cover."""
        import torch
        from transformers import GenerationConfig, LogitsProcessorList

        tok, model = self.tokenizer, self.model
        enc = tok.pad({"input_ids": prompts}, return_tensors="pt").to(model.device)
        gen_config = GenerationConfig(
            max_new_tokens=max_new,
            do_sample=False,  # sampling, when asked for, happens per row inside `sampler`
            eos_token_id=self._eos_ids,
            pad_token_id=tok.pad_token_id,
            repetition_penalty=penalty,
        )
        with torch.inference_mode():
            out = model.generate(
                **enc,
                generation_config=gen_config,
                logits_processor=LogitsProcessorList([sampler, _count_step]),
            )
        replies = []
        for row in out[:, enc["input_ids"].shape[1] :].tolist():
            cut = next((i for i, t in enumerate(row) if t in self._eos_ids), None)
            replies.append((row, False) if cut is None else (row[:cut], True))
        return replies

    def _row_sampling(self, request: ChatRequest):
        from aloe_bench.models.backends.sampling import RowSampling
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
    return _eos_ids_of(model.generation_config, tok)


def _eos_ids_of(generation_config: Any, tok: Any) -> list[int]:
    """The end-of-turn tokens: the generation config's and the tokenizer's."""
    ids: set[int] = set()
    eos = generation_config.eos_token_id
    if eos is not None:
        ids.update(eos if isinstance(eos, list) else [eos])
    if tok.eos_token_id is not None:
        ids.add(tok.eos_token_id)
    return sorted(ids)


def _count_step(input_ids: Any, scores: Any) -> Any:
    """A logits processor that only counts decoding steps for the progress display."""
    ACTIVITY.step(int(input_ids.shape[0]))
    return scores


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _truthy(value: Any) -> bool:
    return str(value).lower() in ("1", "true", "yes", "on") if value is not None else False
