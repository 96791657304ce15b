"""`lmeval/<lm-eval model name>`: any lm-evaluation-harness model as an ALOE role.

`--model lmeval/hf --model-args pretrained=PATH,dtype=float32` builds the model as
`lm_eval --model hf --model_args pretrained=PATH,dtype=float32` would (same argument parsing), then
every conversation waiting for a reply goes to the model's `generate_until` in one call per step,
each prompt rendered by the model's own `apply_chat_template`. lm-eval batches inside that call
(`batch_size`, default 16 here; lm-eval's CLI default is 1).

The lm-eval task suite uses the same class around the LM instance lm-eval already built (`lm=`).

lm-eval's `generate_until` takes no seed: replies sampled with temperature > 0 are not reproducible
from run to run (greedy ones are); the call cache still makes a re-run resume with the same replies.
"""

from __future__ import annotations

import inspect
import logging
from pathlib import Path
from typing import Any

from aloe_bench.errors import BackendFatalError, UserInputError
from aloe_bench.models.backends.base import (
    BatchingBackend,
    ChatRequest,
    Completion,
    GenerationSettings,
    redact_args,
)
from aloe_bench.models.backends.chat_template import prepare_messages, system_role_mode
from aloe_bench.models.backends.hf import checkpoint_fingerprint, hub_fingerprint, looks_like_path

log = logging.getLogger(__name__)

# Set on a generate_until that the lm-eval task suite wrapped (aloe_bench.integrations.lm_eval.intercept).
PATCH_MARK = "__aloe_intercept__"
DEFAULT_LM_BATCH_SIZE = 16
# Arguments that place or batch the model without changing its answers: not part of the identity.
_PLACEMENT_ARGS = ("batch_size", "max_batch_size", "device", "parallelize", "device_map")
# Attributes of a built lm-eval LM that determine its answers (recorded when no arguments are known).
_INSTANCE_FIELDS = (
    "pretrained",
    "revision",
    "peft",
    "delta",
    "model",
    "base_url",
    "model_args",
    "chat_template_args",
    "add_bos_token",
    "think_end_token",
    "max_length",
)
_SCALARS = (str, int, float, bool, type(None))


def require_lm_eval(what: str) -> None:
    try:
        import lm_eval  # noqa: F401
    except ImportError:
        raise UserInputError(
            f'{what} needs lm-evaluation-harness, which is not installed: pip install "aloe-bench[lmeval]"'
        ) from None


def unpatched_generate_until(cls: type[Any]) -> Any:
    """The model class's own generate_until, under any wrapper the task suite installed."""
    fn = cls.generate_until
    while getattr(fn, PATCH_MARK, False):
        fn = fn.__wrapped__
    return fn


def registered_name(cls: type) -> str:
    """The name lm-eval's registry knows a model class by (for records; the class decides)."""
    from lm_eval.api.registry import model_registry

    target = f"{cls.__module__}:{cls.__qualname__}"
    names = sorted(name for name, obj in model_registry.items() if obj is cls or obj == target)
    return names[0] if names else cls.__name__


def describe_instance(lm: Any) -> dict[str, Any]:
    """What a built LM says about itself that determines its answers (plain values only; no keys)."""
    described: dict[str, Any] = {"class": f"{type(lm).__module__}.{type(lm).__qualname__}"}
    for name in _INSTANCE_FIELDS:
        try:
            value = getattr(lm, name, None)
        except Exception:  # noqa: BLE001 - a property that needs state it does not have
            continue
        if isinstance(value, dict):
            value = {k: v for k, v in value.items() if isinstance(v, _SCALARS)}
        if value is not None and isinstance(value, (*_SCALARS, dict)):
            described[name] = value
    dtype = getattr(getattr(lm, "_model", None), "dtype", None)
    if dtype is not None:
        described["dtype"] = str(dtype)
    return redact_args(described)


def lm_gen_kwargs(settings: GenerationSettings) -> dict[str, Any]:
    """Our generation settings as a generate_until request's gen_kwargs (`until: []`: the reply ends
    at the model's end of turn, never at a marker in the text)."""
    kwargs: dict[str, Any] = {"until": [], "max_gen_toks": settings.max_new_tokens}
    if settings.temperature is not None:  # None: lm-eval's own default (greedy for its models)
        kwargs["do_sample"] = settings.temperature > 0
        kwargs["temperature"] = float(settings.temperature)
        if settings.temperature > 0 and settings.top_p is not None:
            kwargs["top_p"] = float(settings.top_p)
    if settings.repetition_penalty is not None:  # lm-eval's hf and vllm models pass it to generation
        kwargs["repetition_penalty"] = float(settings.repetition_penalty)
    return kwargs


class LMEvalBackend(BatchingBackend):
    provider = "lmeval"
    takes_repetition_penalty = True  # in generate_until's gen_kwargs (see lm_gen_kwargs)
    # Every conversation waiting on the same step goes into one generate_until call.
    default_batch_size = 4096

    def __init__(self, name: str, args: dict[str, Any] | None = None, *, lm: Any = None):
        args = dict(args or {})
        # `batch_size` here is lm-eval's (inside generate_until), not the size of our calls.
        super().__init__(name, {k: v for k, v in args.items() if k != "batch_size"})
        self.args = args
        self.lm = lm
        if lm is not None:
            self._loaded = True

    @classmethod
    def around(cls, lm: Any) -> LMEvalBackend:
        """A backend for an LM lm-eval already built (its arguments are read off the instance)."""
        return cls(registered_name(type(lm)), lm=lm)

    # -- checks and identity ------------------------------------------------------------------------
    def check(self) -> None:
        require_lm_eval(self.spec)
        if self.lm is not None:
            refuse_data_parallel(self.lm)
            return
        import lm_eval.models  # noqa: F401 - registers the built-in models first (lazily)
        from lm_eval.api.registry import model_registry

        if self.name not in model_registry.keys():  # noqa: SIM118 - a Registry, not a dict
            known = ", ".join(sorted(model_registry.keys()))
            raise UserInputError(f"unknown lm-eval model {self.name!r} in {self.spec}: use one of {known}")
        if int(str(self.args.get("data_parallel_size", 1))) > 1:
            raise UserInputError(DATA_PARALLEL_MESSAGE)
        source = self._source(self.args)
        if source and looks_like_path(source) and not Path(source).expanduser().is_dir():
            raise UserInputError(f"model path {source} does not exist; pass an existing checkpoint folder")

    def _known(self) -> dict[str, Any]:
        """What determines the answers, as far as known: the arguments given, or what the LM lm-eval
        built says about itself."""
        return describe_instance(self.lm) if self.lm is not None else dict(self.args)

    def _source(self, known: dict[str, Any]) -> str | None:
        """The checkpoint or model name the LM serves (a local folder gets fingerprinted)."""
        nested = known.get("model_args")  # vllm keeps its engine arguments there
        candidates = (
            known.get("pretrained"),
            nested.get("model") if isinstance(nested, dict) else None,
            known.get("model"),
        )
        return next((str(c) for c in candidates if isinstance(c, str) and c), None)

    def identity(self) -> dict[str, Any]:
        ident: dict[str, Any] = {
            "spec": self.spec,
            "args": {k: v for k, v in redact_args(self.args).items() if k not in _PLACEMENT_ARGS},
        }
        known = self._known()
        if self.lm is not None:
            ident["instance"] = known
        source = self._source(known)
        if source and looks_like_path(source):
            ident["checkpoint"] = checkpoint_fingerprint(Path(source).expanduser().resolve())
        elif source and "pretrained" in known:  # a hub id: the commit it resolves to locally
            ident["checkpoint"] = hub_fingerprint(source, known.get("revision"))
        return ident

    def describe(self) -> dict[str, Any]:
        described = self.identity()
        described["seeded"] = False  # generate_until takes no seed
        return described

    def system_role(self) -> str:
        """As `_prompt` treats system messages: by the LM's chat template when it has one (known once
        the LM is built: always for the lm-eval task suite)."""
        tokenizer = getattr(self.lm, "tokenizer", None)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            return system_role_mode(tokenizer)
        return super().system_role()

    # -- loading and generation -----------------------------------------------------------------------
    def _load(self) -> None:
        from lm_eval.api.registry import get_model

        arg_string = ",".join(f"{k}={v}" for k, v in self.args.items())
        # What lm-eval's CLI adds to every model (its --device default "cuda:0" falls back to the
        # CPU without a GPU; the constructors' own default "cuda" does not), batch size aside.
        defaults = {"batch_size": DEFAULT_LM_BATCH_SIZE, "max_batch_size": None, "device": "cuda:0"}
        extra = {k: v for k, v in defaults.items() if k not in self.args}
        try:
            self.lm = get_model(self.name).create_from_arg_string(arg_string, extra)
        except Exception as exc:  # noqa: BLE001 - model constructors raise anything
            first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BackendFatalError(f"could not build lm-eval model {self.spec}: {first_line}") from exc
        refuse_data_parallel(self.lm)

    def _prompt(self, messages: list[dict[str, str]]) -> Any:
        tokenizer = getattr(self.lm, "tokenizer", None)
        if tokenizer is not None and getattr(tokenizer, "chat_template", None):
            # Templates without a system role: fold it into the first user turn (as the hf backend
            # does) instead of lm-eval's fallback, which drops the system message.
            messages = prepare_messages(tokenizer, messages)
        try:
            return self.lm.apply_chat_template(messages, add_generation_prompt=True)
        except NotImplementedError:
            raise BackendFatalError(
                f"{self.spec} has no chat template support in lm-eval (apply_chat_template); "
                "ALOE talks to chat models: use a chat model class (hf, vllm, local-chat-completions, ...)"
            ) from None
        except Exception as exc:  # noqa: BLE001 - jinja and tokenizers raise anything
            raise BackendFatalError(f"{self.spec}: its chat template failed: {exc}") from exc

    def _generate_until(self, instances: list[Any]) -> list[str]:
        generate = unpatched_generate_until(type(self.lm))
        if "disable_tqdm" in inspect.signature(generate).parameters:
            return generate(self.lm, instances, disable_tqdm=True)
        return generate(self.lm, instances)

    def _count_tokens(self, text: Any) -> int:
        encode = getattr(self.lm, "tok_encode", None)
        if not isinstance(text, str) or encode is None or getattr(self.lm, "tokenizer", None) is None:
            return 0
        try:
            return len(encode(text))
        except Exception:  # noqa: BLE001 - counting is informational
            return 0

    def _generate_batch(self, requests: list[ChatRequest]) -> list[Completion]:
        from lm_eval.api.instance import Instance

        prompts = [self._prompt(r.messages) for r in requests]
        instances = [
            Instance(
                request_type="generate_until",
                doc={"aloe_request": i},
                arguments=(prompt, lm_gen_kwargs(r.settings)),
                idx=0,
                metadata=("aloe", i, 1),
            )
            for i, (prompt, r) in enumerate(zip(prompts, requests, strict=True))
        ]
        try:
            texts = self._generate_until(instances)
        except Exception as exc:  # noqa: BLE001 - e.g. an API model out of retries
            log.warning("%s: generate_until failed", self.spec, exc_info=True)
            return [Completion.failure(f"{type(exc).__name__}: {exc}") for _ in requests]
        results = []
        for prompt, request, text in zip(prompts, requests, texts, strict=True):
            reply = (text or "").strip()
            n_reply = self._count_tokens(reply)
            results.append(
                Completion(
                    text=reply,
                    # generate_until does not say why it stopped: estimated from the reply's length
                    finish_reason="length" if n_reply >= request.settings.max_new_tokens else "stop",
                    prompt_tokens=self._count_tokens(prompt),
                    completion_tokens=n_reply,
                )
            )
        return results


DATA_PARALLEL_MESSAGE = (
    "lm-eval's vllm with data_parallel_size > 1 starts a fresh engine per replica on every "
    "generate_until call, and ALOE calls it once per turn: use data_parallel_size=1 "
    "(tensor_parallel_size is fine), or run one process per GPU on separate personas"
)


def refuse_data_parallel(lm: Any) -> None:
    if int(getattr(lm, "data_parallel_size", 1) or 1) > 1:
        raise UserInputError(DATA_PARALLEL_MESSAGE)
