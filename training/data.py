"""Training data -> SFT rows (input_ids + assistant_masks), preference pairs (prompt/chosen/rejected,
for DPO, ORPO and the reward model).

Where data comes from: a local JSONL/JSON/Parquet file, or a Hugging Face dataset name (read with
`datasets.load_dataset`, `--revision`, `--split`). What it is, recognised by its columns (or forced
with --format):
- `aloe`: `aloe-train conversations` output ({id, persona, status, turns[{user, preferred, rejected,
  chosen}]}); only complete conversations are used.
- `multifaceted`: Multifaceted Collection SFT rows (SPEC 2.1: main_source, original_source,
  [preference_set], system, prompt, output); the system message carries the preferences.
- `pairs`: preference pairs (system, prompt, chosen, rejected): the -DPO/-ORPO splits, where chosen and
  rejected are message lists ([{content, role}], the reply last), or plain strings.
- `rm`: the -RM split's rows (input, chosen, rejected): `input` is the instruction.
A row that does not fit its format stops the run with one line naming the file, the row and the field.
"""

from __future__ import annotations

import hashlib
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.datasets.personas.loaders import iter_json_values
from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.chat_template import prepare_messages
from aloe_train import formatting as fmt

log = logging.getLogger(__name__)
FORMATS = ("auto", "aloe", "multifaceted", "pairs", "rm")
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
# older revisions of the released -DPO split (the Janus release's axolotl config reads these names)
COLUMN_ALIASES = {"instruction": "prompt", "chosen_response": "chosen", "rejected_response": "rejected"}
# what each format needs, and what each trainer can use
REQUIRED = {
    "aloe": ("turns",),
    "multifaceted": ("prompt", "output"),
    "pairs": ("prompt", "chosen", "rejected"),
    "rm": ("input", "chosen", "rejected"),
}
ACCEPTS = {
    "sft": ("aloe", "multifaceted", "pairs"),
    "pairs": ("aloe", "pairs", "rm"),  # DPO, ORPO, reward model
}


@dataclass
class DataReport:
    """What went into the dataset and what was left out, and why (printed and saved)."""

    file: str
    sha256: str
    format: str
    rows_read: int = 0
    conversations_used: int = 0
    skipped_not_complete: int = 0
    examples: int = 0
    trained_replies: int = 0
    trimmed_examples: int = 0
    replies_lost_to_length: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    mixed: dict[str, Any] = field(default_factory=dict)

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


@dataclass
class Source:
    """Rows as read, each with the number a user finds it by (line of a JSONL file, row otherwise)."""

    label: str
    sha256: str
    rows: list[tuple[int, dict[str, Any]]]
    where: str = "line"  # "line" (JSONL) or "row"

    def at(self, number: int) -> str:
        return f"{self.label}: {self.where} {number}"


def is_local(name: str) -> bool:
    path = Path(name).expanduser()
    return path.exists() or name.endswith(LOCAL_SUFFIXES) or name.startswith(("/", "./", "../", "~"))


def load_source(name: str, revision: str | None = None, split: str = "train") -> Source:
    """A local file or a hub dataset -> its rows (nothing interpreted yet)."""
    if is_local(name):
        path = Path(name).expanduser()
        if path.is_dir():  # a downloaded dataset repository (data/train-*.parquet ...): as from the hub
            return _hub_rows(str(path), revision, split)
        if not path.is_file():
            raise UserInputError(
                f"training data {path} does not exist; pass a JSONL/JSON/Parquet file, a hub dataset "
                "name, or the output of `aloe-train conversations`"
            )
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        if path.suffix == ".parquet":
            return Source(str(path), sha, _parquet_rows(path), "row")
        values = list(iter_json_values(path))
        if len(values) == 1 and isinstance(values[0][1], list):  # a .json file holding one array
            return Source(str(path), sha, [(i, v) for i, v in enumerate(values[0][1], start=1)], "row")
        for lineno, value in values:
            if not isinstance(value, dict):
                raise UserInputError(
                    f"{path}: line {lineno}: expected a JSON object, got {type(value).__name__}"
                )
        return Source(str(path), sha, values)
    return _hub_rows(name, revision, split)


def _parquet_rows(path: Path) -> list[tuple[int, dict[str, Any]]]:
    from datasets import load_dataset

    try:
        ds = load_dataset("parquet", data_files=str(path), split="train")
    except Exception as exc:  # noqa: BLE001 - pyarrow raises many kinds for a bad file
        raise UserInputError(f"{path}: not a readable Parquet file ({str(exc).splitlines()[0]})") from None
    return [(i, dict(r)) for i, r in enumerate(ds, start=1)]


def _hub_rows(name: str, revision: str | None, split: str) -> Source:
    from datasets import load_dataset

    try:
        ds = load_dataset(name, revision=revision, split=split)
    except Exception as exc:  # noqa: BLE001 - offline, missing, gated: all mean the same here
        raise UserInputError(
            f"cannot load the dataset {name}{'@' + revision if revision else ''} (split {split}): "
            f"{str(exc).splitlines()[0]}; pass a local file, or download it where there is network"
        ) from None
    label = f"{name}@{revision or 'main'}:{split}"
    return Source(
        label, f"hub:{label}:{ds._fingerprint}", [(i, dict(r)) for i, r in enumerate(ds, start=1)], "row"
    )


def canonical_columns(row: dict[str, Any]) -> dict[str, Any]:
    """A row with the released splits' older column names under today's (nothing else changes)."""
    renamed = {new: row[old] for old, new in COLUMN_ALIASES.items() if old in row and new not in row}
    return {**row, **renamed} if renamed else row


def detect_format(row: dict[str, Any], requested: str, where: str, use: str | None = None) -> str:
    if requested not in FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(FORMATS)}")
    if requested == "multifaceted" and "output" not in row and "chosen" in row:
        return "pairs"  # the first ALOE version called Multifaceted pairs "multifaceted" too
    if requested != "auto":
        return requested
    if isinstance(row.get("turns"), list):
        return "aloe"
    if use == "sft" and "prompt" in row and "output" in row:
        return "multifaceted"  # a row with both an output and a pair: SFT learns the output
    if "input" in row and "chosen" in row and "rejected" in row:
        return "rm"
    if "prompt" in row and "chosen" in row and "rejected" in row:
        return "pairs"
    if "prompt" in row and "output" in row:
        return "multifaceted"
    raise UserInputError(
        f"{where}: cannot tell the format (columns: {', '.join(sorted(row)[:8])}); expected aloe-train "
        "conversations (turns), Multifaceted rows (system, prompt, output), pairs (system, prompt, chosen, "
        "rejected) or RM rows (input, chosen, rejected); or pass --format"
    )


def _check_text(value: Any, where: str, name: str, *, reply: bool = False) -> None:
    if isinstance(value, str) and value.strip():
        return
    if reply and isinstance(value, list) and value:
        last = value[-1]
        if (
            isinstance(last, dict)
            and last.get("role") == "assistant"
            and isinstance(last.get("content"), str)
        ):
            return
    wanted = "a non-empty string" + (" or a message list ending with the assistant's reply" if reply else "")
    got = "missing" if value is None else f"a {type(value).__name__}" if value != "" else "empty"
    raise UserInputError(f"{where}: field {name!r} is {got}; expected {wanted}")


def check_row(row: dict[str, Any], kind: str, where: str) -> None:
    """One clear line for the first field of a row that does not fit its format."""
    if kind == "aloe":
        if not isinstance(row.get("turns"), list):
            raise UserInputError(f"{where}: field 'turns' is missing; expected a list of turns")
        if row.get("status", "complete") != "complete":
            return
        for t, turn in enumerate(row["turns"]):
            if not isinstance(turn, dict):
                raise UserInputError(f"{where}: field 'turns[{t}]' is not an object")
            for key in ("user", "preferred", "rejected", "chosen"):
                if not isinstance(turn.get(key), str):
                    raise UserInputError(f"{where}: field 'turns[{t}].{key}' is missing or not a string")
        return
    for name in REQUIRED[kind]:
        _check_text(row.get(name), where, name, reply=name in ("output", "chosen", "rejected"))
    if row.get("system") is not None and not isinstance(row["system"], str):
        raise UserInputError(
            f"{where}: field 'system' is a {type(row['system']).__name__}; expected a string"
        )


def read_rows(
    name: str, requested: str, *, revision: str | None = None, split: str = "train", use: str | None = None
) -> tuple[list[dict[str, Any]], DataReport]:
    """Every usable row, checked, and the report; `use` ("sft" or "pairs") refuses a format that
    trainer cannot learn from."""
    source = load_source(name, revision, split)
    if not source.rows:
        raise UserInputError(f"{source.label}: no rows")
    source.rows = [(n, canonical_columns(r)) for n, r in source.rows]
    first_no, first = source.rows[0]
    kind = detect_format(first, requested, source.at(first_no), use)
    if use and kind not in ACCEPTS[use]:
        raise UserInputError(
            f"{source.label}: {kind} rows cannot train {'SFT' if use == 'sft' else 'a preference trainer'}; "
            f"it takes {', '.join(ACCEPTS[use])} data"
        )
    report = DataReport(source.label, source.sha256, kind, rows_read=len(source.rows))
    rows = []
    for number, row in source.rows:
        check_row(row, kind, source.at(number))
        if kind == "aloe":
            if row.get("status", "complete") != "complete":
                report.skipped_not_complete += 1
                continue
            report.conversations_used += 1
        rows.append(row)
    return rows, report


# -- SFT ------------------------------------------------------------------------------------------------
def _sft_messages(row: dict[str, Any], kind: str, target: str, mode: str):
    if kind == "aloe":
        return fmt.sft_examples(row, target, mode)
    return [fmt.mfc_sft_example(row)]


def sft_rows(
    tok: Any,
    path: str,
    *,
    requested: str = "auto",
    target: str = "preferred",
    mode: str = "branch",
    max_length: int | None = None,
    revision: str | None = None,
    split: str = "train",
    mix: str | None = None,
    mix_ratio: float = 0.0,
    mix_revision: str | None = None,
    seed: int = 0,
) -> tuple[list[dict[str, list[int]]], DataReport]:
    rows, report = read_rows(path, requested, revision=revision, split=split, use="sft")
    examples = [ex for row in rows for ex in _sft_messages(row, report.format, target, mode)]
    if mix and mix_ratio > 0:
        examples += _mixed_examples(mix, mix_ratio, mix_revision, len(examples), seed, report)
    out = []
    for messages, flags in examples:
        if max_length is not None and fmt.count_tokens(tok, messages) > max_length:
            messages, flags, lost = fmt.fit_sft_example(tok, messages, flags, max_length)
            report.trimmed_examples += 1
            report.replies_lost_to_length += lost
            if fmt.count_tokens(tok, messages) > max_length:
                report.drop("longer than max_length even with one turn left")
                continue
            if not any(flags):
                report.drop("no trained reply left after trimming to max_length")
                continue
        out.append(fmt.tokenize_with_mask(tok, messages, flags))
        report.examples += 1
        report.trained_replies += sum(flags)
    if not out:
        raise UserInputError(f"{path}: no SFT examples (complete conversations: {report.conversations_used})")
    return out, report


def general_messages(row: dict[str, Any], where: str) -> tuple[list[fmt.Message], list[bool]]:
    """A general instruction row: chat `messages`, prompt/output, or Alpaca's instruction/input/output."""
    if isinstance(row.get("messages"), list):
        messages = [{"role": str(m["role"]), "content": str(m["content"])} for m in row["messages"]]
        flags = [True for m in messages if m["role"] == "assistant"]
        if not flags:
            raise UserInputError(f"{where}: field 'messages' has no assistant message")
        return messages, flags
    if "instruction" in row and "output" in row:
        prompt = "\n\n".join(x for x in (row["instruction"], row.get("input") or "") if x)
        row = {"prompt": prompt, "output": row["output"], "system": row.get("system")}
    check_row(row, "multifaceted", where)
    return fmt.mfc_sft_example(row)


def _mixed_examples(
    name: str, ratio: float, revision: str | None, n_main: int, seed: int, report: DataReport
) -> list[tuple[list[fmt.Message], list[bool]]]:
    """round(n_main * r / (1 - r)) general rows, sampled without replacement (seeded), so that they
    make up the share r of the final data (all of them when the set is smaller; the report says so)."""
    source = load_source(name, revision)
    wanted = round(n_main * ratio / (1 - ratio))
    rng = random.Random(seed)
    chosen = rng.sample(source.rows, min(wanted, len(source.rows)))
    report.mixed = {
        "data": source.label,
        "sha256": source.sha256,
        "ratio": ratio,
        "wanted": wanted,
        "used": len(chosen),
        "available": len(source.rows),
    }
    return [general_messages(row, source.at(number)) for number, row in chosen]


# -- preference pairs (DPO, ORPO, reward model) ----------------------------------------------------------
def _pairs(row: dict[str, Any], kind: str, report: DataReport) -> list[dict[str, Any]]:
    if kind == "aloe":
        pairs = fmt.dpo_examples(row)
        for _ in range(len(row["turns"]) - len(pairs)):  # nothing to prefer between identical replies
            report.drop("preferred and rejected replies identical")
        return pairs
    if kind == "rm":
        row = {**row, "prompt": row["input"]}
    return [fmt.mfc_dpo_example(row)]


def pair_rows(
    tok: Any,
    path: str,
    *,
    requested: str = "auto",
    max_length: int | None = None,
    revision: str | None = None,
    split: str = "train",
) -> tuple[list[dict[str, Any]], DataReport]:
    """Conversational prompt/chosen/rejected (the checkpoint's template is applied by the trainer)."""
    rows, report = read_rows(path, requested, revision=revision, split=split, use="pairs")
    out = []
    for row in rows:
        for pair in _pairs(row, report.format, report):
            pair = {**pair, "prompt": prepare_messages(tok, pair["prompt"])}
            if max_length is not None:
                pair, dropped = fmt.fit_dpo_example(tok, pair, max_length)
                if dropped:
                    report.trimmed_examples += 1
                if fmt.count_tokens(tok, pair["prompt"], True) >= max_length:
                    report.drop("prompt longer than max_length even with one turn left")
                    continue
            out.append({k: pair[k] for k in ("prompt", "chosen", "rejected")})
            report.examples += 1
            report.trained_replies += 1
    if not out:
        raise UserInputError(
            f"{path}: no preference pairs (complete conversations: {report.conversations_used})"
        )
    return out, report


def dpo_rows(
    tok: Any, path: str, *, requested: str = "auto", max_length: int | None = None
) -> tuple[list[dict[str, Any]], DataReport]:
    """The first API's name for `pair_rows`."""
    return pair_rows(tok, path, requested=requested, max_length=max_length)
