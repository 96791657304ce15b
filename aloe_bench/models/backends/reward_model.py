"""A reward model that scores (prompt, reply) pairs: what best-of-N ranks its candidates with.

The checkpoint is what TRL's `RewardTrainer` saves: an `AutoModelForSequenceClassification` with
one label, whose score of a sequence is the logit at its last non-padding token. Pairs are rendered
and tokenized as `RewardTrainer` tokenized its training rows, so a reply is scored the way the model
learned to score: with the tokenizer's chat template when it has one (the conversation plus the reply
as the assistant turn), otherwise in the raw format Janus trained on, `[INST] {system}\\n{instruction}
[/INST] {reply}` followed by the end-of-sequence token (TRL appends it to non-conversational rows).
Sequences are padded on the right with the pad token TRL used (the tokenizer's, else its EOS).

Arguments (`rm_` in a best-of-N spec's args): rm_device (auto), rm_dtype (auto: bfloat16 on CUDA,
float32 on CPU), rm_batch_size (16), rm_revision, rm_trust_remote_code.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.backends.base import Message
from aloe_bench.models.backends.chat_template import prepare_messages
from aloe_bench.models.backends.hf import (
    check_hub_model,
    checkpoint_fingerprint,
    hub_fingerprint,
    looks_like_path,
)

FORMAT_TEMPLATE = "chat_template"
FORMAT_JANUS = "janus"


def janus_text(messages: list[Message], reply: str, eos: str = "</s>") -> str:
    """The raw prompt format of Janus (SPEC 2.3) with the reply after it: `[INST] {system}\\n{first
    user message} [/INST] {reply}`. Earlier exchanges of a longer chat come first, Mistral style, each
    reply closed by `eos`: `[INST] {u1} [/INST] {a1}</s>[INST] {u2} [/INST] {reply}`."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    text, first = "", True
    for m in messages:
        if m["role"] == "user":
            content = f"{system}\n{m['content']}" if first and system else m["content"]
            text += f"[INST] {content} [/INST]"
            first = False
        elif m["role"] == "assistant":
            text += f" {m['content']}{eos}"
    return f"{text} {reply}"


class RewardModel:
    """Loaded lazily, on the first `score`; thread-safe (one scoring at a time)."""

    def __init__(self, source: str, args: dict[str, Any] | None = None):
        self.source = source
        self.args = dict(args or {})
        self.local = looks_like_path(source)
        self.path = Path(os.path.expanduser(source)).resolve() if self.local else None
        self.batch_size = int(self.args.get("batch_size", 16))
        if self.batch_size < 1:
            raise UserInputError(f"reward model {source}: rm_batch_size must be at least 1")
        self.model: Any = None
        self.tokenizer: Any = None
        self._lock = threading.Lock()

    def check(self) -> None:
        if self.path is None:
            check_hub_model(self.source, self.args.get("revision"))
            return
        if not self.path.is_dir():
            raise UserInputError(
                f"reward model {self.source} does not exist; pass the output folder of `aloe-train rm` "
                "(a TRL RewardTrainer checkpoint) or a hub id"
            )
        if not (self.path / "config.json").is_file():
            raise UserInputError(
                f"reward model {self.source} is not a transformers checkpoint (no config.json)"
            )

    def identity(self) -> dict[str, Any]:
        fingerprint = (
            checkpoint_fingerprint(self.path)
            if self.path is not None
            else hub_fingerprint(self.source, self.args.get("revision"))
        )
        return {"path": str(self.path or self.source), "checkpoint": fingerprint}

    @property
    def format(self) -> str:
        """How pairs are rendered: the tokenizer's chat template, or Janus's raw format."""
        self._load_tokenizer()
        return FORMAT_TEMPLATE if getattr(self.tokenizer, "chat_template", None) else FORMAT_JANUS

    # -- loading --------------------------------------------------------------------------------------
    def _kwargs(self) -> dict[str, Any]:
        trust = str(self.args.get("trust_remote_code", "")).lower() in ("1", "true", "yes", "on")
        return {"revision": self.args.get("revision"), "trust_remote_code": trust}

    def _load_tokenizer(self) -> None:
        if self.tokenizer is not None:
            return
        from transformers import AutoTokenizer

        try:
            tok = AutoTokenizer.from_pretrained(str(self.path or self.source), **self._kwargs())
        except (OSError, ValueError) as exc:
            raise BackendFatalError(
                f"could not load the reward model's tokenizer {self.source}: {exc}"
            ) from exc
        # As RewardTrainer: its pad token, else EOS (the model finds the last token by it).
        if tok.pad_token is None:
            tok.pad_token = tok.eos_token
        self.tokenizer = tok

    def _load(self) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification

        self._load_tokenizer()
        device = self.args.get("device", "auto")
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        dtype = self.args.get("dtype", "auto")
        if dtype == "auto":
            dtype = "bfloat16" if str(device).startswith("cuda") else "float32"
        try:
            model = AutoModelForSequenceClassification.from_pretrained(
                str(self.path or self.source), dtype=getattr(torch, dtype), **self._kwargs()
            )
        except (OSError, ValueError) as exc:
            raise BackendFatalError(f"could not load the reward model {self.source}: {exc}") from exc
        if model.config.num_labels != 1:
            raise BackendFatalError(
                f"{self.source} is not a reward model: its head has {model.config.num_labels} labels, "
                "a TRL RewardTrainer checkpoint has 1 (`aloe-train rm` makes one)"
            )
        text_config = model.config.get_text_config()
        if text_config.pad_token_id is None:  # RewardTrainer sets it; a hand-made checkpoint may not
            text_config.pad_token_id = self.tokenizer.pad_token_id
        self.model = model.to(device).eval()

    # -- scoring --------------------------------------------------------------------------------------
    def token_ids(self, messages: list[Message], reply: str) -> list[int]:
        """The tokens the reward model reads for `reply` to `messages`, as RewardTrainer made them."""
        self._load_tokenizer()
        tok = self.tokenizer
        if self.format == FORMAT_TEMPLATE:
            chat = [*prepare_messages(tok, messages), {"role": "assistant", "content": reply}]
            return list(tok.apply_chat_template(chat, tokenize=True, return_dict=True)["input_ids"])
        text = janus_text(messages, reply, tok.eos_token or "")
        if tok.eos_token and not text.endswith(tok.eos_token):
            text += tok.eos_token
        return list(tok(text)["input_ids"])

    def score(self, pairs: list[tuple[list[Message], str]]) -> list[float]:
        """One reward per (messages, reply)."""
        import torch

        with self._lock:
            if self.model is None:
                self._load()
            sequences = [self.token_ids(messages, reply) for messages, reply in pairs]
            pad = self.tokenizer.pad_token_id
            rewards: list[float] = []
            for start in range(0, len(sequences), self.batch_size):
                chunk = sequences[start : start + self.batch_size]
                width = max(len(s) for s in chunk)
                ids = torch.full((len(chunk), width), pad, dtype=torch.long)
                mask = torch.zeros((len(chunk), width), dtype=torch.long)
                for i, seq in enumerate(chunk):  # right padding, as RewardTrainer's collator
                    ids[i, : len(seq)] = torch.tensor(seq)
                    mask[i, : len(seq)] = 1
                with torch.inference_mode():
                    logits = self.model(
                        input_ids=ids.to(self.model.device), attention_mask=mask.to(self.model.device)
                    ).logits
                rewards.extend(float(x) for x in logits[:, 0].float().cpu())
            return rewards

    def close(self) -> None:
        self.model = None
