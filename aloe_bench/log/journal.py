"""The append-only run log (`journal.jsonl` in the run directory).

Rewriting conversations.jsonl while a run goes makes its I/O grow with the square of its size, so a
run appends small events instead, one JSON line each, flushed to the OS as they happen (a kill -9
loses only what was in flight; a torn last line is skipped on read):

    {"id": ID, "turn": K, "set": {field: value, ...}}        fields of turn K (0-based) of conversation ID
    {"id": ID, "status": S, "error": E[, "turns": N]}        status change (N: keep only the first N turns)

Replaying the events in order over the last compacted conversations.jsonl gives the current state
(last write wins, so replaying twice is harmless). `compact` folds the journal into
conversations.jsonl (atomically) and removes it; a run does that on resume and at the end.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, TextIO

from aloe_bench.log.files import CONVERSATIONS_FILE, write_lines_atomic
from aloe_bench.log.storage import storage_error

JOURNAL_FILE = "journal.jsonl"


def read_events(path: Path) -> Iterator[dict[str, Any]]:
    """The journal's events in order; an unreadable line (a torn write) is skipped."""
    if not path.is_file():
        return
    with path.open(encoding="utf-8", errors="replace") as f:
        for line in f:
            if not line.endswith("\n"):
                return  # torn last line: the write was cut by a kill
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(event, dict) and "id" in event:
                yield event


def apply_event(conv: dict[str, Any], event: dict[str, Any]) -> None:
    """Apply one journal event to a conversation dict (conversations.jsonl shape)."""
    turns: list[dict[str, Any]] = conv.setdefault("turns", [])
    if "turn" in event:
        k = int(event["turn"])
        while len(turns) <= k:
            turns.append({"user": ""})
        turns[k].update(event.get("set", {}))
    if "status" in event:
        conv["status"] = event["status"]
        conv["error"] = event.get("error")
        if "turns" in event:
            del turns[int(event["turns"]) :]


def group_events(path: Path) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = {}
    for event in read_events(path):
        grouped.setdefault(str(event["id"]), []).append(event)
    return grouped


def read_conversation_lines(path: Path) -> dict[str, str]:
    """conversations.jsonl as {id: its JSON line}, unparsed (a compaction touches only what changed)."""
    lines: dict[str, str] = {}
    if path.is_file():
        with path.open(encoding="utf-8") as f:
            for line in f:
                if line.strip():
                    lines[str(json.loads(line)["id"])] = line if line.endswith("\n") else line + "\n"
    return lines


def rebuild(
    conv_id: str, persona: dict[str, Any], line: str | None, events: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """One conversation: its compacted line (or a fresh record) with its journal events replayed."""
    conv: dict[str, Any] = (
        json.loads(line)
        if line is not None
        else {"id": conv_id, "persona": persona, "status": "running", "error": None, "turns": []}
    )
    for event in events:
        apply_event(conv, event)
    return conv


def merged_conversations(
    directory: Path, order: Iterable[tuple[str, dict[str, Any]]] | None = None
) -> Iterator[dict[str, Any]]:
    """conversations.jsonl with the journal replayed over it. `order`: (id, persona) pairs giving
    the order and the conversations that exist (a run's personas); default: the file's order, then
    conversations seen only in the journal. Conversations found in neither are left out."""
    base = read_conversation_lines(directory / CONVERSATIONS_FILE)
    events = group_events(directory / JOURNAL_FILE)
    if order is None:
        order = [(i, {}) for i in [*base, *(i for i in events if i not in base)]]
    for conv_id, persona in order:
        if conv_id in base or conv_id in events:
            yield rebuild(conv_id, persona, base.get(conv_id), events.get(conv_id, []))


class Journal:
    """Appends events; every line is written whole and flushed before the call returns."""

    def __init__(self, directory: Path):
        self.path = directory / JOURNAL_FILE
        self._file: TextIO | None = None
        self.bytes_written = 0

    def append(self, event: dict[str, Any]) -> None:
        line = json.dumps(event, ensure_ascii=False) + "\n"
        try:
            if self._file is None:
                self._file = self.path.open("a", encoding="utf-8")
            self._file.write(line)
            self._file.flush()  # in the OS's hands now: a kill -9 of this process cannot lose it
        except OSError as exc:  # a full disk: a torn last line is skipped on read
            raise storage_error(self.path, exc) from None
        self.bytes_written += len(line.encode("utf-8"))

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                raise storage_error(self.path, exc) from None

    def compact(self, conversations: Iterable[dict[str, Any]]) -> int:
        """Write `conversations` as conversations.jsonl (atomically), then drop the journal: a kill
        between the two leaves a journal whose replay changes nothing. Returns the bytes written."""
        self.close()
        written = write_lines_atomic(
            self.path.parent / CONVERSATIONS_FILE,
            (json.dumps(c, ensure_ascii=False) + "\n" for c in conversations),
        )
        if self.path.exists():
            os.unlink(self.path)
        return written
