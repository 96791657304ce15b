"""The instructions a collection is built for: a local JSON / JSONL / Parquet file, a Hugging Face
dataset (`owner/name`, with --split, --revision), or `sample` (shipped, for the offline demo).

The text is the column `instruction`, else `prompt`, unless --column names another; `main_source`
and `original_source` are kept from the row when it has them (as the released data names the
instruction's origin), else both are the file or dataset name."""

from __future__ import annotations

import hashlib
import json
import logging
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError

SAMPLE = "sample"
SAMPLE_FILE = "multifaceted_instructions_sample.jsonl"
DEFAULT_COLUMNS = ("instruction", "prompt")
_HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


@dataclass(frozen=True)
class Instruction:
    id: str  # stable: a hash of the text (cache keys and seeds hang on it)
    text: str
    main_source: str
    original_source: str
    where: str  # file:line / dataset row N, for error messages


@dataclass
class InstructionSet:
    name: str
    source: str
    items: list[Instruction]

    def record(self) -> dict[str, Any]:
        digest = hashlib.sha256("\n".join(i.text for i in self.items).encode()).hexdigest()
        return {"name": self.name, "source": self.source, "count": len(self.items), "sha256": digest}


def load_instructions(
    spec: str,
    *,
    column: str | None = None,
    split: str = "train",
    revision: str | None = None,
    limit: int | None = None,
) -> InstructionSet:
    if spec == SAMPLE:
        with resources.as_file(resources.files("aloe_train") / "data" / SAMPLE_FILE) as path:
            rows = _read_file(Path(path))
        name, source = SAMPLE, f"aloe_train/data/{SAMPLE_FILE}"
    else:
        path = Path(spec).expanduser()
        if path.is_file():
            rows, name, source = _read_file(path), path.name, str(path.resolve())
        elif _HUB_NAME.match(spec) and not path.exists():
            rows = _read_hub(spec, split, revision)
            name = spec
            source = f"hf://datasets/{spec} ({split}{f'@{revision}' if revision else ''})"
        else:
            raise UserInputError(
                f"--instructions {spec}: no such file, and not a Hugging Face dataset name (owner/name); "
                "pass a .jsonl/.json/.parquet file, a dataset name, or sample"
            )
    items = _instructions(rows, column, name)
    if limit is not None:
        items = items[:limit]
    if not items:
        raise UserInputError(f"--instructions {spec}: no instructions")
    return InstructionSet(name, source, items)


def _instructions(rows: list[tuple[str, Any]], column: str | None, name: str) -> list[Instruction]:
    out: list[Instruction] = []
    seen: set[str] = set()
    for where, row in rows:
        if isinstance(row, str):  # a JSON string per line: the instruction itself
            text, row = row, {}
        elif isinstance(row, dict):
            key = column or next((c for c in DEFAULT_COLUMNS if c in row), None)
            if key is None or key not in row:
                wanted = f"column {column!r}" if column else "a column 'instruction' or 'prompt'"
                raise UserInputError(
                    f"{where}: no {wanted} (columns: {', '.join(sorted(row)[:10])}); pass --column NAME"
                )
            text = row[key]
        else:
            raise UserInputError(f"{where}: expected an object or a string, got {type(row).__name__}")
        if not isinstance(text, str) or not text.strip():
            raise UserInputError(f"{where}: the instruction must be a non-empty string (got {text!r:.60})")
        text = text.strip()
        if text in seen:  # the same instruction twice would only repeat the same calls
            continue
        seen.add(text)
        main = row.get("main_source") or row.get("source") or name
        original = row.get("original_source") or main
        out.append(
            Instruction(hashlib.sha256(text.encode()).hexdigest()[:16], text, str(main), str(original), where)
        )
    return out


def _read_file(path: Path) -> list[tuple[str, Any]]:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        rows = []
        for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if line.strip():
                try:
                    rows.append((f"{path}:{lineno}", json.loads(line)))
                except json.JSONDecodeError as exc:
                    raise UserInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None
        return rows
    if suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
        if isinstance(data, dict):
            lists = [v for v in data.values() if isinstance(v, list)]
            data = lists[0] if len(lists) == 1 else None
        if not isinstance(data, list):
            raise UserInputError(f"{path}: expected a list of rows (or an object holding one list)")
        return [(f"{path} row {i}", r) for i, r in enumerate(data, start=1)]
    if suffix == ".parquet":
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise UserInputError(f"reading {path} needs pyarrow: pip install pyarrow") from None
        try:
            table = pq.read_table(path).to_pylist()
        except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a broken file
            raise UserInputError(
                f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})"
            ) from None
        return [(f"{path} row {i}", r) for i, r in enumerate(table, start=1)]
    raise UserInputError(f"{path}: unsupported file type; use .jsonl, .json or .parquet")


def _read_hub(name: str, split: str, revision: str | None) -> list[tuple[str, Any]]:
    try:
        from datasets import load_dataset
    except ImportError:
        raise UserInputError(
            f"loading {name} needs the datasets package (pip install datasets); or pass a local file"
        ) from None
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # offline, the hub client logs every retry; the error below says it
    try:
        dataset = load_dataset(name, split=split, revision=revision)
    except Exception as exc:  # noqa: BLE001 - offline, missing, gated, bad split: all mean the same fix
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserInputError(
            f"could not load {name} (split {split}) from the Hugging Face Hub ({first}); "
            "check the name, --split and --revision, or pass a local .jsonl/.json/.parquet file"
        ) from None
    finally:
        hub_log.setLevel(level)
    return [(f"{name} row {i}", row) for i, row in enumerate(dataset.to_list(), start=1)]
