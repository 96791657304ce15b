"""What travels through lm-eval: the request (one item of any task, as its `to_payload()`, with the
task settings, inside the context string) and the answer (the transcript, as the generated text).

The bridge knows no task: the task's definition reads its item back (`Task.item_from_payload`), and
every item comes back as its transcript, as in conversations.jsonl (turns, scores by scorer)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.role_config import RoleConfig

OPEN, CLOSE = "<<ALOE-REQUEST>>", "<</ALOE-REQUEST>>"
_REQUEST = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.S)
TRANSCRIPT_FORMAT = "aloe-transcript/1"

# --gen_kwargs keys that set how the model under test generates (all other keys are refused).
_MAX_TOKEN_KEYS = ("max_gen_toks", "max_new_tokens", "max_tokens")
_GEN_KEYS = {"until", "do_sample", "temperature", "top_p", "repetition_penalty", *_MAX_TOKEN_KEYS}


# The settings each task was built with in this process (`load_docs` records them): requests that
# lm-eval replays from its request cache (--cache_requests) keep the settings they were built with,
# and must not run silently with settings the command line no longer asks for.
_BUILT_WITH: dict[str, dict[str, Any]] = {}


def remember_settings(task: str, settings: dict[str, Any]) -> None:
    _BUILT_WITH[task] = json.loads(json.dumps(settings))


@dataclass
class AloeRequest:
    task: str
    item: Any  # what the request evaluates: an item of the task (read back by its definition)
    settings: dict[str, Any]  # the task's metadata.aloe, with --metadata overrides
    gen_kwargs: dict[str, Any] = field(default_factory=dict)  # the outer request's (--gen_kwargs)

    @property
    def kind(self) -> str:
        """The task definition's kind, as the task's settings name it."""
        from aloe_bench.engine.task_api import DEFAULT_KIND

        return str(self.settings.get("kind", DEFAULT_KIND))

    def group_key(self) -> str:
        """Requests that form one run: same task, settings and generation."""
        return json.dumps([self.task, self.settings, self.gen_kwargs], sort_keys=True, default=str)

    def run_config(self, model_spec: str) -> Any:
        built = _BUILT_WITH.get(self.task)
        if built is not None and built != self.settings:
            raise UserInputError(
                f"task {self.task}: lm-eval replayed requests built with other ALOE settings from its "
                "request cache; run again with --cache_requests refresh"
            )
        return task_run_config(self.task, self.settings, model_spec, self.gen_kwargs)


def encode_request(task: str, item: Any, settings: dict[str, Any]) -> str:
    """The request for one item: the task reads it back (`Task.item_from_payload`)."""
    payload = {"task": task, "settings": settings, "item": item.to_payload()}
    return OPEN + json.dumps(payload, sort_keys=True, ensure_ascii=False) + CLOSE


# Where requests built before items travelled under one key carried them (lm-eval's request cache
# may replay such requests): the same payloads, under the name of what they were.
_OLDER_ITEM_KEYS = ("persona", "instance")


def _texts(context: Any) -> list[str]:
    """The strings a context may hide the request in: the plain string (possibly wrapped by
    --apply_chat_template / --system_instruction), or an API model's JSON chat (JsonChatStr)."""
    if isinstance(context, str):
        return [context]
    prompt = getattr(context, "prompt", None)
    if isinstance(prompt, str):
        try:
            messages = json.loads(prompt)
        except json.JSONDecodeError:
            return [prompt]
        if isinstance(messages, list):
            return [m.get("content", "") for m in messages if isinstance(m, dict)]
        return [prompt]
    return []


def decode_request(context: Any, gen_kwargs: dict[str, Any] | None = None) -> AloeRequest | None:
    for text in _texts(context):
        if OPEN not in text:
            continue
        found = _REQUEST.search(text)
        if found:
            data = json.loads(found.group(1))
            return AloeRequest(
                task=data["task"],
                item=_item(data),
                settings=data["settings"],
                gen_kwargs=dict(gen_kwargs or {}),
            )
    return None


def _item(data: dict[str, Any]) -> Any:
    from aloe_bench.engine.task_api import DEFAULT_KIND, get_task

    payload = next((data[k] for k in ("item", *_OLDER_ITEM_KEYS) if data.get(k) is not None), None)
    if payload is None:
        raise UserInputError(f"task {data['task']}: an aloe-bench request without its item")
    task = get_task(str(data["settings"].get("kind", DEFAULT_KIND)), data["task"])
    if task.item_from_payload is None:
        raise UserInputError(f"task {data['task']}: its definition has no item_from_payload for lm-eval")
    return task.item_from_payload(payload)


def model_role(spec: str, settings: dict[str, Any], gen_kwargs: dict[str, Any]) -> RoleConfig:
    """The model under test: the task's generation settings, overridden by lm-eval's --gen_kwargs
    (the same keys for both kinds of task)."""
    unknown = sorted(set(gen_kwargs) - _GEN_KEYS)
    if unknown:
        raise UserInputError(
            f"--gen_kwargs {', '.join(unknown)}: not used by the aloe-bench tasks; "
            f"they take {', '.join(sorted(_GEN_KEYS - {'until'}))}"
        )
    if gen_kwargs.get("until"):
        raise UserInputError(
            "--gen_kwargs until=...: aloe-bench replies end at the model's end of turn; drop `until`"
        )
    max_new = settings.get("max_new_tokens")
    temperature, top_p = settings.get("temperature"), settings.get("top_p")
    for key in _MAX_TOKEN_KEYS:
        if gen_kwargs.get(key) is not None:
            max_new = int(gen_kwargs[key])
            break
    if gen_kwargs.get("temperature") is not None:
        temperature = float(gen_kwargs["temperature"])
    if gen_kwargs.get("do_sample") is False:
        temperature = 0.0
    elif gen_kwargs.get("do_sample") is True and not temperature:
        temperature = 1.0
    if gen_kwargs.get("top_p") is not None:
        top_p = float(gen_kwargs["top_p"])
    penalty = settings.get("repetition_penalty")
    if gen_kwargs.get("repetition_penalty") is not None:
        penalty = float(gen_kwargs["repetition_penalty"])
    return RoleConfig(
        spec=spec, max_new_tokens=max_new, temperature=temperature, top_p=top_p, repetition_penalty=penalty
    )


def task_run_config(
    task: str, settings: dict[str, Any], model_spec: str, gen_kwargs: dict[str, Any] | None = None
) -> Any:
    """The run the task's settings mean (the config of its kind's definition), the lm-eval LM as model."""
    from aloe_bench.engine.task_files import build_task_config

    return build_task_config(
        task,
        settings,
        model=model_role(model_spec, settings, gen_kwargs or {}),
        cache=settings.get("cache"),
    )


def encode_transcript(task: str, conversation: ConversationRecord, run: dict[str, Any]) -> str:
    return json.dumps(
        {"format": TRANSCRIPT_FORMAT, "task": task, **conversation.to_dict(), "run": run},
        ensure_ascii=False,
    )


def decode_transcript(text: Any) -> dict[str, Any]:
    """The transcript lm-eval hands back as the response; anything else means the model was asked
    the raw request, i.e. the interception was not installed."""
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        data = None
    if not isinstance(data, dict) or data.get("format") != TRANSCRIPT_FORMAT:
        raise RuntimeError(
            "ALOE: the model's response is not an ALOE transcript, so lm-eval generated text for the "
            "raw request: the aloe-bench interception was not installed. Run `aloe-bench lm-eval ...`, "
            f"or make sure aloe-bench is importable where lm-eval runs. Response: {str(text)[:120]!r}"
        )
    return data
