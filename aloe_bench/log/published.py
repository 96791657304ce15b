"""Published results as data: the typed rows of `leaderboard/reported/*.yaml|json`.

A file holds the rows one paper printed, with where they came from and under which setup:

    format: aloe-bench/reported-v1
    paper: "RLPA: Teaching Language Models to Evolve with Users (Zhao et al., NeurIPS 2025)"
    short: RLPA                      # how the board's `source` column names the paper
    arxiv: "2505.15456"
    table: "2"                       # the default for rows that do not name their own
    setup: {task: aloe, judge: ..., simulator: ..., protocol: ..., scale: percent, turns: 10}
    digits: {al: 2, avg: 2, n_ir: 3, n_r2: 3}   # decimals as printed (YAML drops trailing zeros)
    note: ...
    rows:
      - {model: Qwen2.5-3B-Instruct, method: Self-Critic, al: [...], avg: 52.43, n_ir: ..., n_r2: ...}

`scale` says what the printed AL means: `1-5` (the judge's scale, as this project records) or
`percent` (0-100, as RLPA prints ALOE). A malformed file stops the load with one line naming the
file, the row and the field (`ReportedFileError`); nothing is guessed or skipped.
"""

from __future__ import annotations

import json
import math
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aloe_bench.errors import UserInputError

FORMAT = "aloe-bench/reported-v1"
SUFFIXES = (".yaml", ".yml", ".json")
# What each scale is called where a reader sees it, and the range its AL values must lie in.
SCALES = {"1-5": ("1–5", 1.0, 5.0), "percent": ("%", 0.0, 100.0)}
FIGURES = ("avg", "ir", "n_ir", "n_r2")
FILE_FIELDS = ("format", "paper", "short", "arxiv", "table", "setup", "digits", "note", "missing", "rows")
SETUP_FIELDS = ("task", "judge", "simulator", "protocol", "scale", "turns", "personas")
ROW_FIELDS = ("model", "method", "table", "setup", "al", *FIGURES, "note")
DIGIT_FIELDS = ("al", *FIGURES)


class ReportedFileError(UserInputError):
    """A reported-results file this version cannot read; the message names file, row and field."""


@dataclass(frozen=True)
class ReportedSetup:
    """What decides the meaning of a published score (the counterpart of a run's RunSetup)."""

    task: str
    judge: str
    simulator: str
    protocol: str
    scale: str  # a key of SCALES
    turns: int | None = None
    personas: str = "?"

    @property
    def scale_label(self) -> str:
        return SCALES[self.scale][0]


@dataclass(frozen=True)
class ReportedSource:
    paper: str
    short: str
    arxiv: str
    table: str

    @property
    def url(self) -> str:
        return f"https://arxiv.org/abs/{self.arxiv}"

    @property
    def cite(self) -> str:
        """`RLPA, table 2`: what the board's `source` column shows (a table given in words as it is)."""
        if not self.table:
            return self.short
        return (
            f"{self.short}, table {self.table}" if self.table[0].isdigit() else f"{self.short}, {self.table}"
        )


@dataclass
class ReportedRow:
    """One printed row: a model (and the strategy or training it ran under) with its figures."""

    model: str
    method: str | None
    source: ReportedSource
    setup: ReportedSetup
    al: list[float] | None  # AL(1..K) as printed, where the paper prints the curve
    figures: dict[str, float]  # the printed AVG, IR, N-IR, N-R² (those it prints)
    digits: dict[str, int]  # decimals each was printed with
    note: str = ""
    file: Path = field(default_factory=Path)
    index: int = 0  # 1-based position in its file's `rows`

    @property
    def label(self) -> str:
        return f"{self.model} ({self.method})" if self.method else self.model

    @property
    def avg(self) -> float | None:
        return self.figures.get("avg")

    @property
    def where(self) -> str:
        return f"{self.file}: row {self.index} ({self.label})"


def _fail(where: str, name: str, problem: str) -> ReportedFileError:
    return ReportedFileError(f"{where}: field '{name}': {problem}")


def _text(data: dict, name: str, where: str, *, required: bool = True, default: str = "") -> str:
    value = data.get(name)
    if value is None:
        if required:
            raise _fail(where, name, "missing; it is required")
        return default
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise _fail(where, name, f"expected text, got {type(value).__name__}")
    text = str(value).strip()
    if required and not text:
        raise _fail(where, name, "empty; it is required")
    return text


def _number(value: Any, where: str, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise _fail(where, name, f"expected a number, got {shown}")
    if not math.isfinite(value):
        raise _fail(where, name, f"expected a finite number, got {value}")
    return float(value)


def _known(data: dict, allowed: tuple[str, ...], where: str) -> None:
    for key in data:
        if key not in allowed:
            raise _fail(where, str(key), f"unknown; the fields are {', '.join(allowed)}")


def _setup(data: Any, where: str, base: dict | None = None) -> dict:
    if not isinstance(data, dict):
        raise _fail(where, "setup", f"expected a mapping of {', '.join(SETUP_FIELDS)}")
    _known(data, SETUP_FIELDS, f"{where}: setup")
    return {**(base or {}), **data}


def _make_setup(data: dict, where: str, tasks: Collection[str] | None) -> ReportedSetup:
    inner = f"{where}: setup"
    task = _text(data, "task", inner)
    if tasks is not None and task not in tasks:
        raise _fail(inner, "task", f"{task!r} is not a task; use one of {', '.join(sorted(tasks))}")
    scale = _text(data, "scale", inner)
    if scale not in SCALES:
        raise _fail(inner, "scale", f"{scale!r} is not a scale; use one of {', '.join(SCALES)}")
    turns = data.get("turns")
    if turns is not None and (isinstance(turns, bool) or not isinstance(turns, int) or turns < 1):
        raise _fail(inner, "turns", f"expected a whole number of turns (1 or more), got {turns!r}")
    return ReportedSetup(
        task=task,
        judge=_text(data, "judge", inner),
        simulator=_text(data, "simulator", inner),
        protocol=_text(data, "protocol", inner),
        scale=scale,
        turns=turns,
        personas=_text(data, "personas", inner, required=False, default="?"),
    )


def _digits(data: Any, where: str) -> dict[str, int]:
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise _fail(where, "digits", "expected a mapping such as {al: 2, avg: 2, n_ir: 3}")
    _known(data, DIGIT_FIELDS, f"{where}: digits")
    out = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 6:
            raise _fail(f"{where}: digits", name, f"expected decimals from 0 to 6, got {value!r}")
        out[name] = value
    return out


def _row(
    data: Any,
    index: int,
    path: Path,
    source: ReportedSource,
    setup: dict,
    digits: dict[str, int],
    tasks: Collection[str] | None,
) -> ReportedRow:
    where = f"{path}: row {index}"
    if not isinstance(data, dict):
        raise ReportedFileError(f"{where}: expected a mapping of {', '.join(ROW_FIELDS)}")
    model = _text(data, "model", where)
    method = _text(data, "method", where, required=False) or None
    where = f"{where} ({model} ({method}))" if method else f"{where} ({model})"
    _known(data, ROW_FIELDS, where)
    row_setup = _make_setup(_setup(data["setup"], where, setup) if "setup" in data else setup, where, tasks)
    table = _text(data, "table", where, required=False, default=source.table)
    if not table:
        raise _fail(where, "table", "missing; give it on the row or as the file's default `table`")
    _, low, high = SCALES[row_setup.scale]
    al = None
    if data.get("al") is not None:
        if not isinstance(data["al"], list) or not data["al"]:
            raise _fail(where, "al", "expected the per-turn list AL(1..K)")
        al = [_number(v, where, f"al[{k + 1}]") for k, v in enumerate(data["al"])]
        if row_setup.turns is not None and len(al) != row_setup.turns:
            raise _fail(where, "al", f"{len(al)} values for a {row_setup.turns}-turn setup")
        for k, v in enumerate(al):
            if not low <= v <= high:
                raise _fail(where, f"al[{k + 1}]", f"{v:g} is outside the {row_setup.scale} scale")
        if "al" not in digits:
            raise _fail(where, "al", "the file gives no printed precision for it; add `digits: {al: N}`")
    figures = {}
    for name in FIGURES:
        if data.get(name) is None:
            continue
        figures[name] = _number(data[name], where, name)
        if name not in digits:
            raise _fail(
                where, name, f"the file gives no printed precision for it; add `digits: {{{name}: N}}`"
            )
    if "avg" in figures and not low <= figures["avg"] <= high:
        raise _fail(where, "avg", f"{figures['avg']:g} is outside the {row_setup.scale} scale")
    if "n_r2" in figures and not 0.0 <= figures["n_r2"] <= 1.0:
        raise _fail(where, "n_r2", f"{figures['n_r2']:g} is not a coefficient of determination (0 to 1)")
    if al is None and not figures:
        raise ReportedFileError(f"{where}: no figures; give at least `avg` or the curve `al`")
    return ReportedRow(
        model=model,
        method=method,
        source=ReportedSource(source.paper, source.short, source.arxiv, table),
        setup=row_setup,
        al=al,
        figures=figures,
        digits={k: v for k, v in digits.items() if k in figures or (k == "al" and al is not None)},
        note=_text(data, "note", where, required=False),
        file=path,
        index=index,
    )


def _parse(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except json.JSONDecodeError as e:
        raise ReportedFileError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        line = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(e, "problem", None) or "cannot be parsed"
        raise ReportedFileError(f"{path}: {line}not valid YAML ({problem})") from None


@dataclass
class ReportedFile:
    """One file: its rows, and what the paper prints that the file does not hold (`missing`)."""

    path: Path
    source: ReportedSource
    task: str | None
    rows: list[ReportedRow]
    missing: str = ""
    note: str = ""


def load_reported_file(path: str | Path, *, tasks: Collection[str] | None = None) -> ReportedFile:
    """One file. `tasks`: the task kinds its setups may name (the task registry's, which this layer
    cannot see: `aloe_bench.engine.task_api.kinds()`); None takes any name."""
    path = Path(path)
    data = _parse(path)
    where = str(path)
    if not isinstance(data, dict):
        raise ReportedFileError(f"{where}: expected a mapping with the fields {', '.join(FILE_FIELDS)}")
    _known(data, FILE_FIELDS, where)
    if data.get("format") != FORMAT:
        raise _fail(where, "format", f"expected {FORMAT!r}, got {data.get('format')!r}")
    arxiv = _text(data, "arxiv", where)
    source = ReportedSource(
        paper=_text(data, "paper", where),
        short=_text(data, "short", where, required=False) or f"arXiv {arxiv}",
        arxiv=arxiv,
        table=_text(data, "table", where, required=False),
    )
    setup = _setup(data.get("setup"), where)
    digits = _digits(data.get("digits"), where)
    missing = _text(data, "missing", where, required=False)
    rows = data.get("rows")
    if rows is None:
        rows = []
    if not isinstance(rows, list) or not (rows or missing):
        raise _fail(where, "rows", "expected a list with at least one row (or say in `missing` why none)")
    out = [_row(r, i, path, source, setup, digits, tasks) for i, r in enumerate(rows, start=1)]
    note = _text(data, "note", where, required=False)  # about every row: shown once, under the table
    task = setup.get("task")
    return ReportedFile(path, source, str(task) if task is not None else None, out, missing, note)


def reported_files(directory: str | Path) -> list[Path]:
    directory = Path(directory)
    if not directory.is_dir():
        raise UserInputError(
            f"{directory} is not a directory; --reported takes a folder of reported-results files "
            f"({', '.join(SUFFIXES)}; see docs/leaderboard.md)"
        )
    files = sorted(p for p in directory.iterdir() if p.suffix.lower() in SUFFIXES and p.is_file())
    if not files:
        raise UserInputError(
            f"{directory} holds no reported-results files ({', '.join(SUFFIXES)}); see docs/leaderboard.md"
        )
    return files


def load_reported(directory: str | Path, *, tasks: Collection[str] | None = None) -> list[ReportedFile]:
    """Every file in `directory`, by name, each with its rows in their order; `tasks` as for
    `load_reported_file` (the commands pass the task registry's kinds)."""
    return [load_reported_file(path, tasks=tasks) for path in reported_files(directory)]


def reported_rows(files: list[ReportedFile]) -> list[ReportedRow]:
    return [row for f in files for row in f.rows]
