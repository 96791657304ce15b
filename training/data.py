"""Training data files -> SFT rows (input_ids + assistant_masks) and DPO rows (prompt/chosen/rejected).

Two formats, detected from the first row (or forced with --format):
- `aloe`: `aloe-train conversations` output, one tree conversation per line ({id, persona, status,
  turns[{user, preferred, rejected, chosen, ...}]}); only complete conversations are used.
- `multifaceted`: Multifaceted Collection rows (SPEC 2.1): {system, prompt, output} for SFT,
  {system, prompt, chosen, rejected} for DPO (the system message carries the preferences).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aloe_bench.datasets.personas.loaders import read_objects
from aloe_bench.errors import UserInputError
from aloe_bench.models.backends.chat_template import prepare_messages
from aloe_train import formatting as fmt

log = logging.getLogger(__name__)
FORMATS = ("auto", "aloe", "multifaceted")


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

    def drop(self, reason: str) -> None:
        self.dropped[reason] = self.dropped.get(reason, 0) + 1


def detect_format(row: dict[str, Any], requested: str, path: Path) -> str:
    if requested not in FORMATS:
        raise UserInputError(f"--format must be one of {', '.join(FORMATS)}")
    if requested != "auto":
        return requested
    if isinstance(row.get("turns"), list):
        return "aloe"
    if "prompt" in row and ("output" in row or "chosen" in row):
        return "multifaceted"
    raise UserInputError(
        f"{path}:1: cannot tell the format (keys: {', '.join(sorted(row)[:8])}); expected aloe-train conversations "
        "(turns) or Multifaceted Collection rows (system, prompt, output | chosen, rejected); or pass --format"
    )


def read_rows(path_text: str, requested: str) -> tuple[list[dict[str, Any]], DataReport]:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise UserInputError(
            f"training data {path} does not exist; pass the output of `aloe-train conversations`"
        )
    lines = read_objects(path)
    if not lines:
        raise UserInputError(f"{path}: no rows")
    kind = detect_format(lines[0][1], requested, path)
    report = DataReport(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), kind, rows_read=len(lines))
    rows = []
    for lineno, row in lines:
        required = ("turns",) if kind == "aloe" else ("prompt",)
        missing = [k for k in required if k not in row]
        if missing:
            raise UserInputError(f"{path}:{lineno}: missing {', '.join(missing)} for the {kind} format")
        if kind == "aloe":
            if row.get("status", "complete") != "complete":
                report.skipped_not_complete += 1
                continue
            for t, turn in enumerate(row["turns"]):
                for key in ("user", "preferred", "rejected", "chosen"):
                    if not isinstance(turn.get(key), str):
                        raise UserInputError(f"{path}:{lineno}: turn {t + 1} has no {key!r}")
            report.conversations_used += 1
        rows.append(row)
    return rows, report


def sft_rows(
    tok: Any,
    path: str,
    *,
    requested: str = "auto",
    target: str = "preferred",
    mode: str = "branch",
    max_length: int | None = None,
) -> tuple[list[dict[str, list[int]]], DataReport]:
    rows, report = read_rows(path, requested)
    out = []
    for row in rows:
        if report.format == "aloe":
            examples = fmt.sft_examples(row, target, mode)
        else:
            if "output" not in row and "chosen" not in row:
                report.drop("multifaceted row without output or chosen")
                continue
            examples = [fmt.mfc_sft_example(row)]
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


def dpo_rows(
    tok: Any, path: str, *, requested: str = "auto", max_length: int | None = None
) -> tuple[list[dict[str, Any]], DataReport]:
    rows, report = read_rows(path, requested)
    out = []
    for row in rows:
        if report.format == "aloe":
            pairs = fmt.dpo_examples(row)
            for _ in range(len(row["turns"]) - len(pairs)):  # nothing to prefer between identical replies
                report.drop("preferred and rejected replies identical")
        else:
            if "chosen" not in row or "rejected" not in row:
                report.drop("multifaceted row without chosen/rejected")
                continue
            pairs = [fmt.mfc_dpo_example(row)]
        for pair in pairs:
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
        raise UserInputError(f"{path}: no DPO pairs (complete conversations: {report.conversations_used})")
    return out, report
