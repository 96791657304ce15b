"""The judge stage: protocols, score parsing, bounded re-asks.

The original release parsed the judge's answer with a bare int() and crashed on anything else.
Here any reasonable form is read ("4", "Score: 4", "**4/5**", "Rating - 4 out of 5", '{"score": 4}',
"four"); an unreadable answer is re-asked a bounded number of times with a reminder of the format;
if it is still unreadable the turn gets `score: None` with the raw text kept. Never a crash.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import JudgementRecord
from aloe_bench.models.backends import ChatRequest, Completion, GenerationSettings
from aloe_bench.prompts import PromptTemplate, load_prompt
from aloe_bench.seeds import request_seed

_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5}
_NUM = r"(\d+(?:\.\d+)?|(?:one|two|three|four|five)\b)"
_MARKED = [
    re.compile(r"\[RESULT\]\s*[:=]?\s*\**\s*" + _NUM, re.I),
    re.compile(
        r"\b(?:score|rating|grade|verdict)\b[\s*_`\"':=\-—]*(?:(?:is|of|would be|be|a|an)\b[\s*_`\"':=\-—]*)*"
        + _NUM,
        re.I,
    ),
    re.compile(_NUM + r"\s*(?:/|out of)\s*5\b", re.I),
]
_BARE = re.compile(r"^[\s*_`\"'(\[]*" + _NUM + r"[\s*_`\"'.)\]!]*$", re.I)
_AFTER_MARKER = re.compile(r"[\s:=*_`\"'(\[\]]*" + _NUM, re.I)
_STANDALONE = re.compile(r"(?<![\w.\-+])([1-5])(?!\w|\.\d)")


def _to_int(token: str, low: int, high: int) -> int | None:
    token = token.lower()
    if token in _WORDS:
        value: float = _WORDS[token]
    else:
        value = float(token)
        if not value.is_integer():
            return None
    return int(value) if low <= value <= high else None


# Numbers that label a list item or a criterion are not verdicts: a small judge echoes the prompt's
# criteria list ("1. Style: the reply is a bit too formal"), and reading that 1 as its score
# silently corrupts the data (31 of 36 "valid" scores of the first published embedded run).
_CRITERION_WORD = re.compile(
    r"(?:\b(?:criterion|criteria|step|point|item|part|question|turn|no\.?)|#)\s*$", re.I
)
# "1. Style:", "2) Content:", "1. The person's personality:": a number, a separator, a short label, a colon.
_LABEL_AFTER = re.compile(r"\s*[.):]\s*[^\W\d][^\n:.]{0,40}:")
# At the start of a line: "1. some text", "2) some text", "2. 3. Manner".
_ITEM_AFTER = re.compile(r"\s*[.)]\s+\S")
_LINE_PREFIX = re.compile(r"(?:^|\n)[ \t>*_#`\-•]*$")


def _is_enumerator(text: str, start: int, end: int, *, line_start: bool = False) -> bool:
    """Whether the number at text[start:end] numbers a list item or a criterion rather than rating.
    `line_start`: treat the number as opening a line (it follows a verdict marker)."""
    before, after = text[:start], text[end:]
    if _CRITERION_WORD.search(before):
        return True
    if _LABEL_AFTER.match(after):
        return True
    opens_line = line_start or bool(_LINE_PREFIX.search(before))
    return opens_line and bool(_ITEM_AFTER.match(after))


def _verdicts(pattern: re.Pattern[str], text: str) -> list[str]:
    """The numbers a marker pattern finds that are not enumerators, in order."""
    return [m.group(1) for m in pattern.finditer(text) if not _is_enumerator(text, *m.span(1))]


def parse_score(text: str | None, low: int = 1, high: int = 5) -> int | None:
    """The judge's integer score in [low, high], or None when the answer does not state one clearly.
    List numbering and criterion numbers ("1. Style: ...", "Criterion 3: ...") never count."""
    if not text or not text.strip():
        return None
    stripped = text.strip()
    # JSON answers: {"score": 4}
    if stripped.startswith("{"):
        try:
            obj = json.loads(stripped)
            for key in ("score", "rating", "result", "grade"):
                if isinstance(obj, dict) and key in obj:
                    return _to_int(str(obj[key]), low, high)
        except (json.JSONDecodeError, ValueError):
            pass
    # Explicit markers: the last one is the verdict (rationales may quote criteria first).
    for pattern in _MARKED:
        found = _verdicts(pattern, stripped)
        if found:
            return _to_int(found[-1], low, high)
    bare = _BARE.match(stripped)
    if bare:
        return _to_int(bare.group(1), low, high)
    # A short answer holding exactly one distinct in-range integer ("I'd say 4."), which is not
    # a list or criterion number.
    candidates = list(_STANDALONE.finditer(stripped))
    other_numbers = re.findall(r"\d+", stripped)
    if len(candidates) == 1 and len(other_numbers) == 1 and len(stripped) <= 200:
        only = candidates[0]
        if not _is_enumerator(stripped, *only.span(1)):
            return int(only.group(1))
    return None


def parse_after_marker(text: str | None, marker: str, low: int = 1, high: int = 5) -> int | None:
    """Strict reading for protocols that put the verdict after a fixed marker ("... [RESULT] 4"):
    the integer right after the LAST marker; with no marker, only an answer that is just a number.
    Feedback that quotes rubric levels ("a score of 2 would mean...") is never read as the verdict,
    nor is a list item or criterion number after the marker ("[RESULT] 1. Style: ...")."""
    if not text or not text.strip():
        return None
    at = text.lower().rfind(marker.lower())
    if at < 0:
        bare = _BARE.match(text.strip())
        return _to_int(bare.group(1), low, high) if bare else None
    rest = text[at + len(marker) :]
    found = _AFTER_MARKER.match(rest)
    if not found or _is_enumerator(rest, *found.span(1), line_start=True):
        return None
    return _to_int(found.group(1), low, high)


S = TypeVar("S")


@dataclass
class Judgement(Generic[S]):
    """One parsed answer of a judge-like role: `score` is what `parse` read (an ALOE score, an
    extraction dict, a pairwise choice...), None when no attempt could be read."""

    score: S | None
    raw: str | None
    attempts: int
    error: str | None = None
    history: list[str] = field(default_factory=list)  # every raw answer, in order


@dataclass(frozen=True)
class JudgeProtocol:
    name: str
    prompt_file: str
    sees_history: bool
    description: str

    @property
    def prompt(self) -> PromptTemplate:
        return load_prompt(self.prompt_file)

    def default_settings(self) -> GenerationSettings:
        return GenerationSettings(max_new_tokens=int(self.prompt.defaults.get("max_new_tokens", 300)))

    def messages(
        self, persona: dict[str, str], turns: Sequence[dict[str, Any]], index: int
    ) -> list[dict[str, str]]:
        """The judge prompt for turn `index` (0-based) of a conversation."""
        current = turns[index]
        variables = {
            "profile": persona["profile"],
            "personality": persona["personality"],
            "user": current["user"],
            "assistant": current["assistant"],
            "turn_number": index + 1,
            "history": [{"user": t["user"], "assistant": t["assistant"]} for t in turns[:index]]
            if self.sees_history
            else [],
        }
        return self.prompt.render(**variables)


PROTOCOLS: dict[str, JudgeProtocol] = {
    "aloe-v1": JudgeProtocol(
        "aloe-v1", "judge_aloe_v1.yaml", False, "as in the paper: current turn only, one integer 1-5"
    ),
    "aloe-history": JudgeProtocol(
        "aloe-history",
        "judge_aloe_history.yaml",
        True,
        "sees the conversation so far; rationale, then 'Score: N'",
    ),
}


def get_protocol(name: str) -> JudgeProtocol:
    if name not in PROTOCOLS:
        raise UserInputError(f"unknown judge protocol {name!r}: use one of {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name]


@overload
async def judge_with_reasks(
    role: Any,
    messages: list[dict[str, str]],
    settings: GenerationSettings,
    reask_text: str,
    max_reasks: int,
) -> Judgement[int]: ...


@overload
async def judge_with_reasks(
    role: Any,
    messages: list[dict[str, str]],
    settings: GenerationSettings,
    reask_text: str,
    max_reasks: int,
    parse: Callable[[str], S | None],
    reask_parse: Callable[[str], S | None] | None = None,
) -> Judgement[S]: ...


async def judge_with_reasks(
    role: Any,
    messages: list[dict[str, str]],
    settings: GenerationSettings,
    reask_text: str,
    max_reasks: int,
    parse: Callable[[str], Any] = parse_score,
    reask_parse: Callable[[str], Any] | None = None,
) -> Judgement[Any]:
    """Ask, parse, and on an unreadable answer ask again with a format reminder (bounded).
    `reask_parse` (default: `parse`) reads the answers to the reminders, which only ask for the score."""
    history: list[str] = []
    convo = list(messages)
    for attempt in range(1, max_reasks + 2):
        completion: Completion = await role.generate_one(
            ChatRequest(convo, settings.with_seed((settings.seed or 0) + attempt - 1))
        )
        text = completion.text
        if not completion.ok or text is None:
            return Judgement(
                None, history[-1] if history else None, attempt, error=completion.error, history=history
            )
        history.append(text)
        score = (parse if attempt == 1 else reask_parse or parse)(text)
        if score is not None:
            return Judgement(score, text, attempt, history=history)
        convo = [
            *convo,
            {"role": "assistant", "content": text},
            {"role": "user", "content": reask_text},
        ]
    return Judgement(None, history[-1] if history else None, max_reasks + 1, history=history)


@dataclass
class PanelJudge:
    """One judge of a panel: its label (how results name it), the role it calls, its settings, and
    the role that makes its persona-swap control calls (its own usage counter; None: no control)."""

    label: str
    role: Any
    settings: GenerationSettings
    swap_role: Any = None


def judgement_record(
    judge: str, repeat: int, result: Judgement[int], persona_id: str | None = None
) -> JudgementRecord:
    return JudgementRecord(
        judge=judge,
        repeat=repeat,
        score=result.score,
        raw=result.raw,
        attempts=result.attempts,
        history=list(result.history),
        error=result.error,
        persona_id=persona_id,
    )


def turn_score(judgements: Sequence[JudgementRecord]) -> int | float | None:
    """The turn's score: the mean over the panel and repeats of the valid judgements (an int when
    there is a single judgement, as before panels existed)."""
    valid = [j.score for j in judgements if j.score is not None]
    if not valid:
        return None
    if len(judgements) == 1:
        return int(valid[0])
    return round(sum(valid) / len(valid), 6)


class JudgeStage:
    """Scores turns in the background as the rollout produces them (or over a finished run).

    With a panel, every judge scores every turn `repeats` times (repeat r has its own seed; repeat 0
    of every judge uses the seed a single-judge run always used, so old caches still answer). With
    `swap` ({conversation id: another persona}), each judge also scores the same (message, reply)
    against that persona: the persona-swap validity control."""

    def __init__(
        self,
        role: Any,
        protocol: JudgeProtocol,
        settings: GenerationSettings | None = None,
        *,
        reasks: int = 2,
        seed: int = 0,
        on_judged: Any = None,
        panel: Sequence[PanelJudge] | None = None,
        repeats: int = 1,
        swap: dict[str, dict[str, str]] | None = None,
    ):
        if panel is None:
            assert settings is not None
            panel = [PanelJudge("judge", role, settings)]
        self.panel = list(panel)
        self.role = self.panel[0].role
        self.protocol = protocol
        self.settings = self.panel[0].settings
        self.reasks = reasks
        self.seed = seed
        self.repeats = repeats
        self.swap = swap or {}
        self.on_judged = on_judged or (lambda conv, index: None)
        self._tasks: set[asyncio.Task] = set()
        self._done: list[asyncio.Task] = []

    def calls_per_turn(self) -> dict[str, int]:
        """First judgements per judged turn (re-asks not counted): base, panel, repeats, swap control."""
        judges, r = len(self.panel), self.repeats
        swap = judges * r if self.swap else 0
        return {"base": 1, "panel": judges - 1, "repeats": judges * (r - 1), "swap": swap}

    def submit(self, conv: Any, index: int) -> asyncio.Task:
        task = asyncio.create_task(self.judge(conv, index))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        self._done.append(task)
        return task

    async def _ask(self, role: Any, settings: GenerationSettings, messages, seed: int) -> Judgement:
        return await judge_with_reasks(
            role, messages, settings.with_seed(seed), self.protocol.prompt.text("reask"), self.reasks
        )

    async def judge(self, conv: Any, index: int) -> None:
        turns = [{"user": t.user, "assistant": t.assistant or ""} for t in conv.turns]
        messages = self.protocol.messages(conv.persona, turns, index)
        jobs = []
        for judge in self.panel:
            for r in range(self.repeats):
                seed = request_seed(self.seed, conv.id, index + 1, "judge", r)
                jobs.append(self._ask(judge.role, judge.settings, messages, seed))
        other = self.swap.get(conv.id)
        swap_jobs = []
        if other is not None:
            swap_messages = self.protocol.messages(other, turns, index)
            for judge in self.panel:
                for r in range(self.repeats):
                    seed = request_seed(self.seed, conv.id, index + 1, "judge-swap", r)
                    swap_role = judge.swap_role or judge.role
                    swap_jobs.append(self._ask(swap_role, judge.settings, swap_messages, seed))
        results = await asyncio.gather(*jobs, *swap_jobs)
        keys = [(j.label, r) for j in self.panel for r in range(self.repeats)]
        true = [judgement_record(label, r, res) for (label, r), res in zip(keys, results, strict=False)]
        turn = conv.turns[index]
        first = results[0]
        turn.judge_raw, turn.judge_attempts, turn.judge_error = first.raw, first.attempts, first.error
        turn.score = turn_score(true)
        turn.judgements = true
        if other is not None:
            turn.swap_judgements = [
                judgement_record(label, r, res, persona_id=other.get("id"))
                for (label, r), res in zip(keys, results[len(jobs) :], strict=True)
            ]
        turn.judged = True
        self.on_judged(conv, index)

    async def drain(self) -> None:
        """Wait for every submitted judgement; a fatal backend error is raised here."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks))
        for task in self._done:
            error = task.exception() if task.done() and not task.cancelled() else None
            if error is not None:
                raise error

    async def cancel(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
