"""The run directory: the output contract every other tool reads.

`DIR/results.json`: config (specs, prompts with hashes, persona set, turns, seed, versions), metrics
(al, n, invalid, avg, ir, n_ir, n_r2, ci), usage per role, status.
`DIR/conversations.jsonl`: one object per conversation: id, persona {profile, personality}, status,
turns [{user, assistant, score, judge_raw, ...}].
Both are rewritten atomically (temp file + rename), so a reader never sees a half-written file and
a kill -9 loses nothing that was written.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from aloe_bench.errors import UserInputError
from aloe_bench.log.files import (  # the file helpers, importable from here as they always were
    CONVERSATIONS_FILE,
    RESULTS_FILE,
    ensure_writable,  # noqa: F401
    write_json_atomic,  # noqa: F401
    write_lines_atomic,  # noqa: F401
    write_text_atomic,
)
from aloe_bench.log.records import (
    ConfigRecord,
    ConversationStatus,
    JudgementRecord,
    Metrics,
    Record,
    RubricScore,
    RunLogError,
    RunResults,
    TurnScore,
)
from aloe_bench.spec_names import portable_spec

# The run-log format this code writes (results.json `format_version`). Runs written before the field
# existed are format 0; format 1 only added the field; format 2 dropped the placeholder ALOE fields
# of Multifaceted runs (`"simulator": {"spec": null}`, `personality: ""`). Older formats are migrated
# on read (`RunResults.from_dict`, `load_run`). Format 3 named what the scores are: `turn.scores`
# keyed by scorer, `metrics.values` keyed by figure (value, interval, n), and typed `pricing`,
# `batching`, `failures`, `io`. Bump it when the written shape changes, and add the migration there.
FORMAT_VERSION = 3


@dataclass
class TurnRecord(Record):
    """One turn of conversations.jsonl.

    `scores`: each scorer's verdict on the turn, keyed by the scorer's name (`TurnScore`: value,
    and the answer, explanation and metadata where the scorer gives them); the engine writes the
    run's scorer there as each turn is scored (`TaskRun.scorer_name`: ALOE's `judge`,
    Multifaceted's `rubric`; runs of format <= 2 are read with it under `score`).
    `score` is the main scorer's value, as every reader before `scores` read it: an ALOE turn with
    one judgement holds the judge's 1-5 (an int) or None; a panel or repeats hold the mean of the
    valid judgements (a float); a Multifaceted turn holds the instance's mean rubric score (a float).
    What the judges said is typed beside it: `judgements` (and `swap_judgements`, the persona-swap
    control) for ALOE, `rubric_scores` for Multifaceted; None when the turn has none (and then
    absent from the JSON). Keys of other versions or tasks are kept as read (`extra`)."""

    user: str
    assistant: str | None = None
    score: int | float | None = None
    judge_raw: str | None = None
    judge_attempts: int = 0
    judge_error: str | None = None
    judged: bool = False
    judgements: list[JudgementRecord] | None = None
    swap_judgements: list[JudgementRecord] | None = None
    rubric_scores: list[RubricScore] | None = None
    # A best-of-N model's reply: every candidate with its reward and which one was chosen (None,
    # and absent from the JSON, for any other model). See docs/best-of-n.md.
    best_of_n: dict[str, Any] | None = None
    scores: dict[str, TurnScore] | None = None

    _OPTIONAL = frozenset({"judgements", "swap_judgements", "rubric_scores", "best_of_n", "scores"})

    def keep_score(self, scorer: str) -> None:
        """Record the main score under its scorer's name (what the engine does once a turn is scored)."""
        self.scores = {**(self.scores or {}), scorer: TurnScore(value=self.score)}


# The name a run of format <= 2 gives its one scorer in `turn.scores` (the format did not say).
UNNAMED_SCORER = "score"


@dataclass
class ConversationRecord(Record):
    """One line of conversations.jsonl: an item (a conversation, an instance) and its turns."""

    id: str
    persona: dict[str, Any]
    turns: list[TurnRecord] = field(default_factory=list)
    status: ConversationStatus = "running"
    error: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    _EMPTY_OMITTED = frozenset({"meta"})
    _ORDER = ("id", "persona", "status", "error", "turns")

    @classmethod
    def from_dict(cls, data: Any, where: str = "") -> ConversationRecord:
        if isinstance(data, dict):
            for key in ("id", "persona"):
                if key not in data:
                    raise KeyError(key)
            data = {**data, "id": str(data["id"])}
            data.setdefault("status", "complete")  # lines written before conversations had one
        return super().from_dict(data, where)


def migrate_conversations(conversations: list[ConversationRecord], version: int) -> None:
    """Older formats' conversations in today's shape, in place: format <= 2 had no `turn.scores`
    (a scored turn gets its `score` under `UNNAMED_SCORER`)."""
    if version >= 3:
        return
    for conv in conversations:
        for turn in conv.turns:
            if turn.scores is None and turn.judged:
                turn.keep_score(UNNAMED_SCORER)


def write_conversations(path: Path, conversations: list[ConversationRecord]) -> None:
    write_text_atomic(
        path, "".join(json.dumps(c.to_dict(), ensure_ascii=False) + "\n" for c in conversations)
    )


def score_matrix(conversations: list[ConversationRecord], turns: int) -> np.ndarray:
    """Scores of the conversations that count (complete ones), NaN where the judge gave none."""
    rows = []
    for conv in conversations:
        if conv.status != "complete":
            continue
        row = [np.nan] * turns
        for k, turn in enumerate(conv.turns[:turns]):
            if turn.score is not None:
                row[k] = float(turn.score)
        rows.append(row)
    return np.array(rows, dtype=float).reshape(len(rows), turns)


@dataclass
class Run:
    """A finished (or partial) run read back from its directory, migrated to today's format."""

    path: Path
    results: RunResults
    conversations: list[ConversationRecord]
    format_version: int = FORMAT_VERSION  # as written on disk (0: before the field existed)

    @property
    def config(self) -> ConfigRecord:
        return self.results.config

    @property
    def metrics(self) -> Metrics:
        return self.results.metrics

    @property
    def turns(self) -> int:
        """The turns per conversation the run was set up for."""
        return int(self.config.turns or self.metrics.turns or 0)

    @property
    def label(self) -> str:
        """A portable name: runs written before labels were made portable may hold a local path."""
        label = self.results.label or self.config.model.spec or self.path.name
        return portable_spec(label)

    def to_dataframe(self):
        """One row per (conversation, turn): id, turn, score, user, assistant, judge_raw, status."""
        import pandas as pd

        rows = []
        for conv in self.conversations:
            for k, t in enumerate(conv.turns, start=1):
                rows.append(
                    {
                        "id": conv.id,
                        "turn": k,
                        "score": t.score,
                        "status": conv.status,
                        "user": t.user,
                        "assistant": t.assistant,
                        "judge_raw": t.judge_raw,
                    }
                )
        return pd.DataFrame(rows, columns=["id", "turn", "score", "status", "user", "assistant", "judge_raw"])


def load_run(directory: str | Path) -> Run:
    path = Path(directory)
    results_path = path / RESULTS_FILE
    if not results_path.is_file():
        raise UserInputError(
            f"{path} is not a run directory (no {RESULTS_FILE}); pass the --output of an aloe-bench run"
        )
    typed = read_results_file(results_path)
    version = typed.format_version
    conversations = []
    conv_path = path / CONVERSATIONS_FILE
    if (path / "journal.jsonl").is_file():  # a live or killed run: its journal replayed over the file
        from aloe_bench.log.journal import merged_conversations

        try:
            conversations = [ConversationRecord.from_dict(c) for c in merged_conversations(path)]
        except (json.JSONDecodeError, KeyError, RunLogError) as exc:
            raise UserInputError(f"{conv_path}: malformed conversation ({exc})") from None
    elif conv_path.is_file():
        # split("\n"), not splitlines(): model text may hold U+2028 or U+0085 inside a JSON string,
        # and splitlines() would cut the record there.
        for lineno, line in enumerate(conv_path.read_text(encoding="utf-8").split("\n"), start=1):
            if line.strip():
                try:
                    conversations.append(ConversationRecord.from_dict(json.loads(line)))
                except (json.JSONDecodeError, KeyError, RunLogError) as exc:
                    raise UserInputError(f"{conv_path}:{lineno}: malformed conversation ({exc})") from None
    migrate_conversations(conversations, version)
    if version < 2 and typed.config.simulator is None:
        for conv in conversations:  # format <= 1 gave items without a simulated user an empty personality
            if conv.persona.get("personality") == "":
                del conv.persona["personality"]
    return Run(path, typed, conversations, format_version=version)


def results_format_version(results: Any, where: Path) -> int:
    """The run-log format of a parsed results.json: 0 without the field; a newer format than this
    code knows (or a malformed one) is refused, since its fields may not mean what this code reads."""
    if not isinstance(results, dict):
        raise UserInputError(f"{where}: not a results.json (a JSON object was expected)")
    version = results.get("format_version", 0)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise UserInputError(f"{where}: format_version must be a whole number >= 0, got {version!r}")
    if version > FORMAT_VERSION:
        raise UserInputError(
            f"{where}: format_version {version} was written by a newer aloe-bench; upgrade it "
            f"(pip install -U aloe-bench; this one reads formats up to {FORMAT_VERSION})"
        )
    return version


def read_results_file(path: Path) -> RunResults:
    """results.json as its typed record: older formats migrated, newer ones refused (one line)."""
    try:
        results = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc.msg})") from None
    results_format_version(results, path)
    return read_results(results, path)


def read_results(results: dict[str, Any], where: Path) -> RunResults:
    """A parsed results.json as the typed record, older formats migrated; one clear line when a
    field does not hold what the run log says it holds."""
    try:
        return RunResults.from_dict(results)
    except RunLogError as exc:
        raise UserInputError(f"{where}: {exc}") from None


def write_results(path: Path, results: RunResults) -> int:
    """results.json from its record (written atomically); returns the bytes written. What is
    written is today's shape (older formats were migrated when read), so it says today's version."""
    results.format_version = FORMAT_VERSION
    text = json.dumps(results.to_dict(), indent=2, ensure_ascii=False) + "\n"
    write_text_atomic(path, text)
    return len(text.encode("utf-8"))
