"""Chat-template helpers shared by every in-process backend and by training."""

from __future__ import annotations

from typing import Any

from aloe_bench.models.backends.base import Message

_PROBE = "ALOE_SYSTEM_PROBE_7f3a"


def supports_system_role(tokenizer: Any) -> bool:
    """Whether the checkpoint's template renders a system message (some raise, some drop it)."""
    cached = getattr(tokenizer, "_aloe_supports_system", None)
    if cached is not None:
        return cached
    try:
        text = tokenizer.apply_chat_template(
            [{"role": "system", "content": _PROBE}, {"role": "user", "content": "hi"}],
            tokenize=False,
            add_generation_prompt=True,
        )
        ok = _PROBE in text
    except Exception:  # noqa: BLE001 - jinja raises whatever the template author chose
        ok = False
    tokenizer._aloe_supports_system = ok
    return ok


def system_role_mode(tokenizer: Any) -> str:
    """ "native" when the template renders system messages, else "folded" (see `prepare_messages`)."""
    return "native" if supports_system_role(tokenizer) else "folded"


def fold_system_message(messages: list[Message]) -> list[Message]:
    """For templates without a system role: the system text goes in front of the first user turn."""
    if not messages or messages[0]["role"] != "system":
        return messages
    system, rest = messages[0]["content"], list(messages[1:])
    for i, m in enumerate(rest):
        if m["role"] == "user":
            rest[i] = {"role": "user", "content": f"{system}\n\n{m['content']}"}
            return rest
    return [{"role": "user", "content": system}, *rest]


def prepare_messages(tokenizer: Any, messages: list[Message]) -> list[Message]:
    if messages and messages[0]["role"] == "system" and not supports_system_role(tokenizer):
        return fold_system_message(messages)
    return messages


def render_prompt(tokenizer: Any, messages: list[Message]) -> str:
    """The prompt text for the next assistant turn, with the checkpoint's own template."""
    if not getattr(tokenizer, "chat_template", None):
        from aloe_bench.errors import UserInputError

        raise UserInputError(
            f"the tokenizer of {getattr(tokenizer, 'name_or_path', '?')} has no chat template; "
            "use an instruction-tuned checkpoint or add a chat_template to its tokenizer_config.json"
        )
    return tokenizer.apply_chat_template(
        prepare_messages(tokenizer, messages), tokenize=False, add_generation_prompt=True
    )
