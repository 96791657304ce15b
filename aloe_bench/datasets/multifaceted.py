"""Multifaceted Bench instances: loading and validation (SPEC 2.1).

A row holds `source`, `system` (the user's stated preferences), `prompt`, `reference_answer` and
`rubric`: a list of {criteria, score_descriptions {"1".."5"}}, one per preference dimension. The
current Hugging Face release names the list `rubrics` and adds `preference_set`; both spellings are
read, and a `preference_set` of the same length names each rubric's dimension.

Sources: `sample` (shipped with the package, offline), a JSON / JSONL / Parquet file, a folder of
them, or (no --data) the Hugging Face dataset `kaist-ai/Multifaceted-Bench`. Every problem is
reported with the row it is in.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path
from typing import Any

from aloe_bench.errors import UserInputError

HF_DATASET = "kaist-ai/Multifaceted-Bench"
HF_SPLIT = "train"
SAMPLE = "sample"
SUFFIXES = (".jsonl", ".json", ".parquet")
TEXT_FIELDS = ("source", "system", "prompt", "reference_answer")
SCORE_KEYS = ("1", "2", "3", "4", "5")
_FIELDS_HELP = (
    "every row needs source, system, prompt, reference_answer and rubric "
    '(a list of {"criteria": ..., "score_descriptions": {"1": ..., ..., "5": ...}})'
)


@dataclass(frozen=True)
class Rubric:
    criteria: str
    score_descriptions: dict[str, str]
    dimension: str  # the preference dimension (style, background_knowledge, ...) or "rubric N"

    def to_dict(self) -> dict[str, Any]:
        return {
            "criteria": self.criteria,
            "score_descriptions": dict(self.score_descriptions),
            "dimension": self.dimension,
        }


@dataclass(frozen=True)
class Instance:
    id: str
    source: str
    system: str
    prompt: str
    reference_answer: str
    rubrics: tuple[Rubric, ...]
    where: str  # file:line or "dataset row N": what error messages name

    def model_messages(self) -> list[dict[str, str]]:
        """The stated preferences as the system message, then the instruction."""
        return [{"role": "system", "content": self.system}, {"role": "user", "content": self.prompt}]

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "system": self.system,
            "prompt": self.prompt,
            "reference_answer": self.reference_answer,
            "rubric": [r.to_dict() for r in self.rubrics],
        }

    def doc_fields(self) -> dict[str, Any]:
        """What lm-eval shows of the instance (its documents): not the rubrics and reference."""
        return {"id": self.id, "source": self.source, "system": self.system, "prompt": self.prompt}

    def to_payload(self) -> dict[str, Any]:
        """Everything about the instance, id and origin included (what travels through lm-eval)."""
        return {"id": self.id, "where": self.where, **self.to_dict()}

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> Instance:
        return cls(
            id=data["id"],
            source=data["source"],
            system=data["system"],
            prompt=data["prompt"],
            reference_answer=data["reference_answer"],
            rubrics=tuple(
                Rubric(r["criteria"], dict(r["score_descriptions"]), r["dimension"]) for r in data["rubric"]
            ),
            where=data["where"],
        )


def instance_id(source: str, system: str, prompt: str) -> str:
    """Stable across runs and models, so runs pair up by id."""
    return hashlib.sha256(f"{source.strip()}\n{system.strip()}\n{prompt.strip()}".encode()).hexdigest()[:12]


@dataclass
class MultifacetedSet:
    name: str  # "sample", the path as given, or the hub dataset id
    source: str  # where the rows came from
    instances: list[Instance]

    @property
    def sha256(self) -> str:
        blob = json.dumps([i.to_dict() for i in self.instances], ensure_ascii=False, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()

    def limit(self, n: int | None) -> MultifacetedSet:
        return self if n is None else MultifacetedSet(self.name, self.source, self.instances[:n])

    def record(self) -> dict[str, Any]:
        """What results.json records (under config.personas: the stated preferences are the personas)."""
        return {
            "set": f"multifaceted:{self.name}",
            "source": self.source,
            "count": len(self.instances),
            "sha256": self.sha256,
        }


# -- validation -----------------------------------------------------------------------------------------
def _text(row: dict[str, Any], key: str, where: str) -> str:
    value = row[key]
    if not isinstance(value, str) or not value.strip():
        raise UserInputError(f"{where}: field {key!r} must be a non-empty string (got {value!r:.60})")
    return value


def _rubrics(row: dict[str, Any], where: str) -> tuple[Rubric, ...]:
    items = row.get("rubric", row.get("rubrics"))
    if not isinstance(items, list) or not items:
        raise UserInputError(f"{where}: 'rubric' must be a non-empty list; {_FIELDS_HELP}")
    prefs = row.get("preference_set")
    dims = (
        [p.get("dimension") for p in prefs]
        if isinstance(prefs, list) and len(prefs) == len(items) and all(isinstance(p, dict) for p in prefs)
        else []
    )
    rubrics = []
    for j, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise UserInputError(
                f"{where}: rubric {j} must be an object with criteria and score_descriptions"
            )
        criteria = item.get("criteria")
        if not isinstance(criteria, str) or not criteria.strip():
            raise UserInputError(f"{where}: rubric {j} has no 'criteria' text; {_FIELDS_HELP}")
        descriptions = item.get("score_descriptions")
        if not isinstance(descriptions, dict):
            raise UserInputError(f"{where}: rubric {j} has no 'score_descriptions' object; {_FIELDS_HELP}")
        descriptions = {str(k): v for k, v in descriptions.items()}
        missing = [
            k for k in SCORE_KEYS if not isinstance(descriptions.get(k), str) or not descriptions[k].strip()
        ]
        if missing:
            raise UserInputError(
                f"{where}: rubric {j}: score_descriptions lacks {', '.join(repr(k) for k in missing)}; "
                "it needs a description for each score 1 to 5"
            )
        dimension = dims[j - 1] if dims and isinstance(dims[j - 1], str) and dims[j - 1] else f"rubric {j}"
        rubrics.append(Rubric(criteria, {k: descriptions[k] for k in SCORE_KEYS}, dimension))
    return tuple(rubrics)


def parse_row(row: Any, where: str) -> Instance:
    if not isinstance(row, dict):
        raise UserInputError(f"{where}: expected an object, got {type(row).__name__}; {_FIELDS_HELP}")
    missing = [k for k in TEXT_FIELDS if row.get(k) is None]
    if row.get("rubric") is None and row.get("rubrics") is None:
        missing.append("rubric")
    if missing:
        raise UserInputError(f"{where}: missing {', '.join(missing)}; {_FIELDS_HELP}")
    source, system, prompt, reference = (_text(row, k, where) for k in TEXT_FIELDS)
    return Instance(
        id=instance_id(source, system, prompt),
        source=source,
        system=system,
        prompt=prompt,
        reference_answer=reference,
        rubrics=_rubrics(row, where),
        where=where,
    )


# -- readers: (where, row) pairs ------------------------------------------------------------------------
def _jsonl_rows(path: Path) -> Iterator[tuple[str, Any]]:
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{path}:{lineno}", json.loads(line)
        except json.JSONDecodeError as exc:
            raise UserInputError(f"{path}:{lineno}: not valid JSON ({exc.msg})") from None


def _json_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc.msg} at line {exc.lineno})") from None
    if isinstance(data, dict):  # {"data": [...]} or any one list of rows
        lists = [v for v in data.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise UserInputError(f"{path}: expected a list of rows (or an object holding one list of rows)")
        data = lists[0]
    if not isinstance(data, list):
        raise UserInputError(f"{path}: expected a list of rows")
    for i, row in enumerate(data, start=1):
        yield f"{path} row {i}", row


def _parquet_rows(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise UserInputError(f"reading {path} needs pyarrow: `pip install pyarrow`") from None
    try:
        rows = pq.read_table(path).to_pylist()
    except Exception as exc:  # noqa: BLE001 - pyarrow raises several types for a broken file
        raise UserInputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    for i, row in enumerate(rows, start=1):
        yield f"{path} row {i}", row


_READERS = {".jsonl": _jsonl_rows, ".json": _json_rows, ".parquet": _parquet_rows}


def _files(folder: Path) -> list[Path]:
    found = [
        p
        for p in sorted(folder.rglob("*"))
        if p.is_file()
        and p.suffix in SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    if not found:
        raise UserInputError(
            f"{folder} holds no .jsonl, .json or .parquet file; pass a Multifaceted Bench file"
        )
    return found


def _hub_rows() -> Iterator[tuple[str, Any]]:
    """The published benchmark (needs `datasets` and a network connection, or a warm HF cache)."""
    try:
        from datasets import load_dataset
    except ImportError:
        raise UserInputError(
            f"loading {HF_DATASET} needs the datasets package (`pip install datasets`); "
            "or pass --data PATH (a JSON/JSONL/Parquet file or folder), or --data sample"
        ) from None
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # offline, the hub client logs every retry; the error below says it
    try:
        dataset = load_dataset(HF_DATASET, split=HF_SPLIT)
    except Exception as exc:  # noqa: BLE001 - offline, missing, gated: all mean "use --data"
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise UserInputError(
            f"could not load {HF_DATASET} from the Hugging Face Hub ({first}); pass --data PATH "
            "(a JSON/JSONL/Parquet file or folder of Multifaceted Bench rows), or --data sample "
            """(from lm-eval: --metadata '{"aloe": {"data": "PATH"}}')"""
        ) from None
    finally:
        hub_log.setLevel(level)
    for i, row in enumerate(dataset.to_list(), start=1):
        yield f"{HF_DATASET} row {i}", row


def load_multifaceted(data: str | None) -> MultifacetedSet:
    """`sample`, a file, a folder, or None for the Hugging Face dataset."""
    if data is None:
        name, source, rows = HF_DATASET, f"hf://datasets/{HF_DATASET} ({HF_SPLIT})", _hub_rows()
    elif data == SAMPLE:
        resource = resources.files("aloe_bench.data") / "multifaceted_sample.jsonl"
        with resources.as_file(resource) as path:
            instances = _instances(_jsonl_rows(Path(path)))
        return MultifacetedSet(SAMPLE, "aloe_bench/data/multifaceted_sample.jsonl", instances)
    else:
        path = Path(data).expanduser()
        if path.is_dir():
            files = _files(path)
        elif path.is_file():
            if path.suffix not in SUFFIXES:
                raise UserInputError(f"{path}: unsupported file type; use .jsonl, .json or .parquet")
            files = [path]
        else:
            raise UserInputError(
                f"--data {data}: no such file or folder; pass a Multifaceted Bench file or folder, or sample"
            )
        name, source = data, str(path.resolve())
        rows = (pair for f in files for pair in _READERS[f.suffix](f))
    return MultifacetedSet(name, source, _instances(rows))


def _instances(rows: Iterator[tuple[str, Any]]) -> list[Instance]:
    instances: list[Instance] = []
    seen: dict[str, int] = {}
    for where, row in rows:
        inst = parse_row(row, where)
        count = seen.get(inst.id, 0)
        seen[inst.id] = count + 1
        if count:  # the same instruction twice: keep both, with distinct stable ids
            inst = replace(inst, id=f"{inst.id}-{count + 1}")
        instances.append(inst)
    if not instances:
        raise UserInputError("the Multifaceted data holds no rows")
    return instances
