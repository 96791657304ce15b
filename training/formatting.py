"""Training examples from tree conversations and Multifaceted Collection rows.

Tree conversations (turns of {user, preferred, rejected, chosen}): the user message of turn t+1 was
written in reaction to the reply the conversation actually continued with (`chosen`), so every history
follows that branch, with each turn's own user message (the original release repeated the first one).

SFT, `branch` mode (default): one sequence per conversation along the branch taken. Turn t's assistant
message is trained when the taken reply is the target (preferred; rejected for the ablation) or at the
last turn; where the branch took the other reply at an earlier turn, that reply stays as untrained
context and the target reply becomes one extra short example (history up to user t -> target). Every
target reply is trained exactly once, on the history that really happened. `per_turn`: one example per
turn (same supervision, quadratic tokens).
DPO: prompt = the taken branch up to user t, chosen = preferred at t, rejected = rejected at t.

Loss masks work with any chat template: the chat is rendered once; each assistant reply's span runs from
the end of the prompt rendered with a generation prompt to the end-of-turn token; the text is tokenized
once with offsets and a token is trained when it overlaps a trained span.
"""

from __future__ import annotations

import bisect
import logging
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.chat_template import prepare_messages

log = logging.getLogger(__name__)

Message = dict[str, str]
TARGETS = ("preferred", "rejected")
SFT_MODES = ("branch", "per_turn")


def _taken(turn: dict[str, Any]) -> str:
    if turn.get("chosen") not in TARGETS:
        raise UserInputError(f"turn has chosen={turn.get('chosen')!r}; expected 'preferred' or 'rejected'")
    return turn[turn["chosen"]]


def _head(system: str | None) -> list[Message]:
    return [{"role": "system", "content": system}] if system else []


def sft_examples(
    conv: dict[str, Any], target: str = "preferred", mode: str = "branch"
) -> list[tuple[list[Message], list[bool]]]:
    """[(messages, one train flag per assistant message)] for one tree conversation."""
    if target not in TARGETS or mode not in SFT_MODES:
        raise UserInputError(f"target must be one of {TARGETS} and mode one of {SFT_MODES}")
    turns, head = conv["turns"], _head(conv.get("system"))
    examples: list[tuple[list[Message], list[bool]]] = []
    history = list(head)  # along the branch taken
    main, main_flags = list(head), []
    for i, turn in enumerate(turns):
        user = {"role": "user", "content": turn["user"]}
        wanted = {"role": "assistant", "content": turn[target]}
        taken = {"role": "assistant", "content": _taken(turn)}
        assistants_so_far = [False] * sum(m["role"] == "assistant" for m in history)
        if mode == "per_turn":
            examples.append(([*history, user, wanted], [*assistants_so_far, True]))
        else:
            on_target = turn["chosen"] == target or turn["preferred"] == turn["rejected"]
            last = i == len(turns) - 1
            main += [user, wanted if (on_target or last) else taken]
            main_flags.append(on_target or last)
            if not (on_target or last):
                examples.append(([*history, user, wanted], [*assistants_so_far, True]))
        history += [user, taken]
    if mode == "branch" and turns:
        examples.insert(0, (main, main_flags))
    return examples


def dpo_examples(conv: dict[str, Any]) -> list[dict[str, Any]]:
    """One preference pair per turn whose two replies differ."""
    history, out = _head(conv.get("system")), []
    for i, turn in enumerate(conv["turns"]):
        history.append({"role": "user", "content": turn["user"]})
        if turn["preferred"] != turn["rejected"]:
            out.append(
                {
                    "prompt": list(history),
                    "chosen": [{"role": "assistant", "content": turn["preferred"]}],
                    "rejected": [{"role": "assistant", "content": turn["rejected"]}],
                    "source": f"{conv.get('id', '')}#{i}",
                }
            )
        history.append({"role": "assistant", "content": _taken(turn)})
    return out


# -- Multifaceted Collection rows (SPEC 2.1) ----------------------------------------------------------
def _reply_text(value: Any, what: str) -> str:
    """A response given as text, or as a message list ending with the assistant's reply."""
    if isinstance(value, str) and value.strip():
        return value
    if (
        isinstance(value, list)
        and value
        and isinstance(value[-1], dict)
        and value[-1].get("role") == "assistant"
    ):
        return str(value[-1].get("content", ""))
    raise UserInputError(f"{what}: expected a string or a message list ending with an assistant message")


def mfc_sft_example(row: dict[str, Any]) -> tuple[list[Message], list[bool]]:
    """system + prompt -> output (or, in a pairs file, the chosen response: written for this system)."""
    reply = row.get("output", row.get("chosen"))
    messages = [*_head(row.get("system")), {"role": "user", "content": row["prompt"]}]
    return [*messages, {"role": "assistant", "content": _reply_text(reply, "output")}], [True]


def mfc_dpo_example(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "prompt": [*_head(row.get("system")), {"role": "user", "content": row["prompt"]}],
        "chosen": [{"role": "assistant", "content": _reply_text(row["chosen"], "chosen")}],
        "rejected": [{"role": "assistant", "content": _reply_text(row["rejected"], "rejected")}],
        "source": str(row.get("id", row.get("main_source", ""))),
    }


# -- rendering and masks -------------------------------------------------------------------------------
def _render(tok: Any, messages: list[Message], generation_prompt: bool = False) -> str:
    return tok.apply_chat_template(messages, tokenize=False, add_generation_prompt=generation_prompt)


def assistant_spans(
    tok: Any, messages: list[Message], flags: list[bool] | None = None
) -> tuple[str, list[tuple[int, int]]]:
    """(rendered chat, character spans of the trained assistant replies, each up to and including the
    end-of-turn token). A system message is folded into the first user turn for templates without one."""
    messages = prepare_messages(tok, messages)
    full = _render(tok, messages)
    eot = tok.eos_token
    positions = [i for i, m in enumerate(messages) if m["role"] == "assistant"]
    flags = [True] * len(positions) if flags is None else flags
    if len(flags) != len(positions):
        raise ValueError(f"{len(flags)} train flags for {len(positions)} assistant messages")
    spans, cursor = [], 0
    for i, trained in zip(positions, flags, strict=True):
        before = _render(tok, messages[:i], generation_prompt=True)
        through = _render(tok, messages[: i + 1])
        if full.startswith(before) and full.startswith(through) and len(through) > len(before):
            start, end = len(before), len(through)
        else:  # templates that rewrite earlier turns: find the reply text itself
            start = full.find(messages[i]["content"], cursor)
            if start < 0:
                raise ValueError(f"assistant message {i} does not appear verbatim in the rendered chat")
            end = start + len(messages[i]["content"])
            if eot and full.startswith(eot, end):
                end += len(eot)
        if eot:  # what a template adds after the end-of-turn token (e.g. a newline) is never generated
            k = full.rfind(eot, start, end)
            if k >= 0:
                end = k + len(eot)
        cursor = end
        if trained:
            spans.append((start, end))
    return full, spans


def tokenize_with_mask(
    tok: Any, messages: list[Message], flags: list[bool] | None = None
) -> dict[str, list[int]]:
    """{"input_ids", "assistant_masks"}: SFTTrainer's pre-tokenized input (labels come from the mask)."""
    full, spans = assistant_spans(tok, messages, flags)
    enc = tok(full, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    starts = [s for s, _ in spans]
    mask = []
    for a, b in offsets:
        j = bisect.bisect_right(starts, b - 1) - 1  # the last span starting before this token ends
        mask.append(int(b > a and j >= 0 and spans[j][1] > a))
    return {"input_ids": ids, "assistant_masks": mask}


def trained_segments(tok: Any, input_ids: list[int], mask: list[int]) -> list[str]:
    """The decoded runs of trained tokens (for checks and for reading a dataset)."""
    segments, current = [], []
    for token, on in zip(input_ids, mask, strict=True):
        if on:
            current.append(token)
        elif current:
            segments.append(current)
            current = []
    if current:
        segments.append(current)
    return [tok.decode(s) for s in segments]


def count_tokens(tok: Any, messages: list[Message], generation_prompt: bool = False) -> int:
    text = _render(tok, prepare_messages(tok, messages), generation_prompt)
    return len(tok(text, add_special_tokens=False)["input_ids"])


def drop_oldest_turns(
    tok: Any, messages: list[Message], budget: int, generation_prompt: bool = False
) -> tuple[list[Message], int]:
    """Drop the oldest (user, assistant) pairs, keeping a system message and the last turn, until the
    chat fits `budget` tokens. TRL truncates from the end (losing the replies to train on), so long
    histories are cut here, from the start. Returns (messages, pairs dropped)."""
    head = messages[:1] if messages and messages[0]["role"] == "system" else []
    body, dropped = list(messages[len(head) :]), 0
    while (
        len(body) > 2
        and body[1]["role"] == "assistant"
        and count_tokens(tok, head + body, generation_prompt) > budget
    ):
        body, dropped = body[2:], dropped + 1
    return head + body, dropped


def fit_sft_example(
    tok: Any, messages: list[Message], flags: list[bool], max_length: int
) -> tuple[list[Message], list[bool], int]:
    """Drop the oldest turns of an over-long example; trained replies that fall off are lost (counted)."""
    messages, dropped = drop_oldest_turns(tok, messages, max_length)
    lost = sum(flags[:dropped])
    return messages, flags[dropped:], lost


def fit_dpo_example(tok: Any, example: dict[str, Any], max_length: int) -> tuple[dict[str, Any], int]:
    completion = max(
        count_tokens(tok, example["prompt"] + example[k]) - count_tokens(tok, example["prompt"], True)
        for k in ("chosen", "rejected")
    )
    prompt, dropped = drop_oldest_turns(
        tok, example["prompt"], max_length - completion, generation_prompt=True
    )
    return {**example, "prompt": prompt}, dropped


# -- Janus's raw prompt format (SPEC 2.3) ---------------------------------------------------------------
# `[INST] {system}\n{instruction} [/INST]` then the reply and the end-of-sequence token, for base
# checkpoints without a chat template. Written as a chat template so that training (loss masks, DPO,
# ORPO, RM) and evaluation (saved with the checkpoint, used by `aloe-bench run --model hf/OUT`) render
# exactly the same text. Later turns continue Mistral's way: `[INST] {user} [/INST] {reply}</s>`.
JANUS_TEMPLATE = (
    "{%- if messages and messages[0]['role'] == 'system' -%}"
    "{%- set system = messages[0]['content'] + '\\n' -%}{%- set turns = messages[1:] -%}"
    "{%- else -%}{%- set system = '' -%}{%- set turns = messages -%}{%- endif -%}"
    "{{- bos_token if bos_token else '' -}}"
    "{%- for message in turns -%}"
    "{%- if message['role'] == 'user' -%}"
    "{{- '[INST] ' + (system if loop.first else '') + message['content'] + ' [/INST]' -}}"
    "{%- elif message['role'] == 'assistant' -%}"
    "{{- ' ' + message['content'] + eos_token -}}"
    "{%- endif -%}"
    "{%- endfor -%}"
)
PROMPT_FORMATS = ("auto", "template", "janus")


def apply_prompt_format(tok: Any, prompt_format: str, model_name: str) -> str:
    """Set the tokenizer up for the requested format; returns the one in force (template or janus)."""
    if prompt_format not in PROMPT_FORMATS:
        raise UserInputError(f"--prompt_format must be one of {', '.join(PROMPT_FORMATS)}")
    has_template = bool(getattr(tok, "chat_template", None))
    if prompt_format == "template" and not has_template:
        raise UserInputError(
            f"{model_name} has no chat template; pass --prompt_format janus (Janus's raw [INST] format)"
        )
    if prompt_format == "janus" or not has_template:
        if prompt_format == "auto":
            log.warning("%s has no chat template: training with Janus's [INST] format", model_name)
        tok.chat_template = JANUS_TEMPLATE
        if hasattr(tok, "_aloe_supports_system"):
            del tok._aloe_supports_system  # the probe's answer was for the old template
        return "janus"
    return "template"
