"""JSON Lines readers that survive the original data's defects and name any other bad line.

The ALOE files hold one JSON *string* per line, and one line of the training pool holds two strings
with nothing between them. Each line is therefore read as a sequence of JSON values; anything that
does not parse is reported as `file:line: problem`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError

_decoder = json.JSONDecoder()


def iter_json_values(path: Path) -> Iterator[tuple[int, Any]]:
    """(line number, value) for every JSON value in the file, several per line allowed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise UserInputError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise UserInputError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    for lineno, line in enumerate(text.splitlines(), start=1):
        pos, end = 0, len(line)
        while True:
            while pos < end and line[pos].isspace():
                pos += 1
            if pos >= end:
                break
            try:
                value, pos = _decoder.raw_decode(line, pos)
            except json.JSONDecodeError as exc:
                raise UserInputError(
                    f"{path}:{lineno}: malformed JSON ({exc.msg} at column {exc.colno})"
                ) from None
            yield lineno, value


def read_strings(path: Path) -> list[str]:
    """A file of JSON strings (the original ALOE format)."""
    out = []
    for lineno, value in iter_json_values(path):
        if not isinstance(value, str) or not value.strip():
            raise UserInputError(
                f"{path}:{lineno}: expected a non-empty JSON string, got {type(value).__name__}"
            )
        out.append(value.strip())
    return out


def read_objects(path: Path, required: tuple[str, ...] = ()) -> list[tuple[int, dict[str, Any]]]:
    """A file of JSON objects; every object must have the `required` fields as non-empty strings."""
    out = []
    for lineno, value in iter_json_values(path):
        if not isinstance(value, dict):
            raise UserInputError(f"{path}:{lineno}: expected a JSON object, got {type(value).__name__}")
        for field in required:
            if not isinstance(value.get(field), str) or not value[field].strip():
                raise UserInputError(f"{path}:{lineno}: missing or empty field {field!r}")
        out.append((lineno, value))
    return out
