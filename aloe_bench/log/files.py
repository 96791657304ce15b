"""The run folder's file names and how its files are written: atomically (temp file + rename), with
the mode the umask allows. Below the records (results.py) and the journal, which both write here."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.storage import write_lines_atomic  # temp file, fsync, rename, fsync of the folder

RESULTS_FILE = "results.json"
CONVERSATIONS_FILE = "conversations.jsonl"


def write_text_atomic(path: Path, text: str) -> None:
    write_lines_atomic(path, [text])


def write_json_atomic(path: Path, data: Any) -> None:
    write_text_atomic(path, json.dumps(data, indent=2, ensure_ascii=False) + "\n")


def ensure_writable(directory: Path) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        probe = directory / ".aloe-write-probe"
        probe.write_text("ok")
        probe.unlink()
    except OSError as exc:
        raise UserInputError(
            f"cannot write to output directory {directory} ({exc.strerror}); pass --output DIR somewhere writable"
        ) from None
