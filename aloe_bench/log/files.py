"""The run folder's file names and how its files are written: atomically (temp file + rename), with
the mode the umask allows. Below the records (results.py) and the journal, which both write here."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError
from aloe_bench.log.filemodes import chmod_as_created

RESULTS_FILE = "results.json"
CONVERSATIONS_FILE = "conversations.jsonl"


def write_lines_atomic(path: Path, lines: Iterable[str]) -> int:
    """Write `lines` to `path` through a temp file and a rename (a reader never sees half a file,
    a kill leaves the old one), streamed so a large run's file never sits in memory, with the mode
    the umask allows. Returns the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    written = 0
    try:
        chmod_as_created(tmp)  # mkstemp makes it 0600: readable by others as the umask allows
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
                written += len(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return written


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
