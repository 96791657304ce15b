"""Human labels: export a stratified sample of judged turns to CSV, read it back with human scores,
and measure each judge against the humans (alpha, Spearman, exact, within-one, confusion matrix).

The sample is stratified by (turn, judge score rounded): strata are visited in turn, each shuffled
with the seed, so a small sample still covers every turn and every score the judge gave."""

from __future__ import annotations

import csv
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import Validity
from aloe_bench.log.results import (
    RESULTS_FILE,
    Run,
    TurnRecord,
    load_run,
    read_results_file,
    write_json_atomic,
    write_results,
    write_text_atomic,
)
from aloe_bench.metrics.reliability import SCALE, agreement
from aloe_bench.metrics.validity import judge_labels

HUMAN_FILE = "human_labels.json"
BASE_COLUMNS = ["id", "turn", "profile", "personality", "user", "reply", "judge_score"]


def _judge_scores(turn: TurnRecord, labels: list[str]) -> dict[str, float | None]:
    from aloe_bench.metrics.validity import judge_turn_mean

    if not labels:  # runs made before judgements were recorded: the turn score is the judge's
        return {"judge": turn.score}
    return {label: judge_turn_mean(turn.judgements, label) for label in labels}


def _items(run: Run) -> list[dict[str, Any]]:
    labels = judge_labels(run.conversations)
    items = []
    for conv in run.conversations:
        if conv.status != "complete":
            continue
        for k, turn in enumerate(conv.turns, start=1):
            if turn.score is None or turn.assistant is None:
                continue
            items.append({"conv": conv, "turn": k, "t": turn, "scores": _judge_scores(turn, labels)})
    return items


def export_labels(run_dir: str | Path, n: int, output: str | Path, *, seed: int = 0) -> int:
    """Write up to n judged turns to `output` (CSV, empty human_score); returns how many."""
    if n < 1:
        raise UserInputError(f"--n must be at least 1 (got {n})")
    run = load_run(run_dir)
    items = _items(run)
    if not items:
        raise UserInputError(f"{run.path} has no judged turns to label")
    strata: dict[tuple[int, int], list[dict[str, Any]]] = defaultdict(list)
    for item in items:
        strata[(item["turn"], int(round(float(item["t"].score))))].append(item)
    rng = np.random.default_rng(seed)
    queues = {key: [group[i] for i in rng.permutation(len(group))] for key, group in sorted(strata.items())}
    chosen: list[dict[str, Any]] = []
    while len(chosen) < min(n, len(items)):
        for key in list(queues):
            if queues[key] and len(chosen) < n:
                chosen.append(queues[key].pop())
    chosen.sort(key=lambda i: (i["conv"].id, i["turn"]))
    judges = list(chosen[0]["scores"])
    panel = len(judges) > 1 or judges != ["judge"]
    header = [*BASE_COLUMNS, *([f"score[{j}]" for j in judges] if panel else []), "human_score"]
    path = Path(output)
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(header)
    for item in chosen:
        t, conv = item["t"], item["conv"]
        row = [
            f"{conv.id}:{item['turn']}",
            item["turn"],
            conv.persona["profile"],
            conv.persona.get("personality", ""),  # a Multifaceted instance has none
        ]
        row += [t.user, t.assistant, t.score]
        if panel:
            row += ["" if item["scores"][j] is None else item["scores"][j] for j in judges]
        writer.writerow([*row, ""])
    write_text_atomic(path, buffer.getvalue())
    return len(chosen)


def read_labels(path: Path, known: set[str]) -> tuple[dict[str, int], int]:
    """{turn id: human score} from a filled-in CSV and the count of rows left unlabelled. Every
    malformed row is reported, one line each with its row number (the header is row 1)."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise UserInputError(f"cannot read {path}: {exc.strerror}") from None
    reader = csv.DictReader(text.splitlines())
    missing = {"id", "human_score"} - set(reader.fieldnames or [])
    if missing:
        raise UserInputError(
            f"{path}: no {' or '.join(sorted(missing))} column; use the file `aloe-bench label export` wrote"
        )
    labels: dict[str, int] = {}
    problems: list[str] = []
    blank = 0
    for row_number, row in enumerate(reader, start=2):
        rid, value = (row.get("id") or "").strip(), (row.get("human_score") or "").strip()
        if not value:
            blank += 1
            continue
        if rid not in known:
            problems.append(f"row {row_number}: id {rid!r} is not a judged turn of this run")
            continue
        try:
            score = float(value)
        except ValueError:
            score = float("nan")
        if not score.is_integer() or int(score) not in SCALE:
            problems.append(f"row {row_number}: human_score {value!r} must be an integer from 1 to 5")
            continue
        if rid in labels:
            problems.append(f"row {row_number}: id {rid} is labelled twice")
            continue
        labels[rid] = int(score)
    if problems:
        raise UserInputError(
            f"{path}: {len(problems)} malformed row(s); fix them and import again:\n  "
            + "\n  ".join(problems)
        )
    if not labels:
        raise UserInputError(f"{path}: no row has a human_score yet; fill in the column, then import")
    return labels, blank


def confusion(judge: list[int], human: list[int]) -> list[list[int]]:
    """5x5 counts: row = human score, column = judge score (rounded)."""
    matrix = [[0] * len(SCALE) for _ in SCALE]
    for j, h in zip(judge, human, strict=True):
        matrix[h - 1][j - 1] += 1
    return matrix


def import_labels(run_dir: str | Path, file: str | Path) -> dict[str, Any]:
    """Read human scores, compare every judge with them, store human_labels.json and
    results.json `validity.human`; returns that section."""
    run = load_run(run_dir)
    items = {f"{i['conv'].id}:{i['turn']}": i for i in _items(run)}
    path = Path(file)
    labels, blank = read_labels(path, set(items))
    ids = sorted(labels)
    human = np.array([labels[i] for i in ids], dtype=float)
    judges: dict[str, Any] = {}
    for judge in items[ids[0]]["scores"]:
        scores = np.array(
            [np.nan if items[i]["scores"][judge] is None else float(items[i]["scores"][judge]) for i in ids]
        )
        rounded = np.round(scores)
        stats = agreement(rounded, human)
        both = ~np.isnan(rounded)
        judges[judge] = {
            **stats,
            "confusion": confusion([int(v) for v in rounded[both]], [int(v) for v in human[both]]),
            "confusion_axes": "rows: human score 1-5; columns: judge score 1-5 (repeat mean rounded)",
        }
    section = {"file": path.name, "labelled": len(ids), "unlabelled": blank, "judges": judges}
    out = run.path
    write_json_atomic(out / HUMAN_FILE, {**section, "labels": labels})
    results = read_results_file(out / RESULTS_FILE)  # re-read: another tool may have written since
    results.validity = results.validity or Validity()
    results.validity.human = section
    write_results(out / RESULTS_FILE, results)
    return section
