"""The collection's rows, in the released schema (SPEC 2.1, the hub cards of
kaist-ai/Multifaceted-Collection, -DPO/-ORPO and -RM), so that a file made here and a released file
are interchangeable:

- sft.jsonl    main_source, original_source, preference_set[{dimension, subdimension, preference,
               description}], system, prompt, output
- dpo.jsonl    main_source, original_source, system, prompt, chosen, rejected; chosen and rejected
               are message lists [{content, role: user}, {content, role: assistant}] as in -DPO and
               -ORPO (one file serves both)
- rm.jsonl     input (system message, a newline, the instruction), chosen, rejected (response texts)
- bench.jsonl  source, system, prompt, reference_answer, rubric[{criteria, score_descriptions}],
               preference_set: Multifaceted Bench rows (held-out instructions only)

Pairs: for each system message of an instruction, chosen = the response written for it and
rejected = a response written for another system message of the same instruction (picked with a
seeded draw, so the same run gives the same pairs).
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aloe_bench.log.results import write_lines_atomic
from aloe_bench.seeds import seed32
from aloe_train.multifaceted.stages import InstructionWork

SPLIT_FILES = {"sft": "sft.jsonl", "dpo": "dpo.jsonl", "rm": "rm.jsonl", "bench": "bench.jsonl"}


@dataclass
class Rows:
    sft: list[dict[str, Any]]
    dpo: list[dict[str, Any]]
    rm: list[dict[str, Any]]
    bench: list[dict[str, Any]]
    instructions_with_rows: int = 0
    instructions_without_pair: int = 0  # fewer than two system messages survived: SFT rows only
    bench_rows_without_rubrics: int = 0


def _messages(prompt: str, response: str) -> list[dict[str, str]]:
    return [{"content": prompt, "role": "user"}, {"content": response, "role": "assistant"}]


def build_rows(works: list[InstructionWork], seed: int) -> Rows:
    rows = Rows([], [], [], [])
    for w in works:
        ins = w.instruction
        made = [
            (j, system, response)
            for j, (system, response) in enumerate(zip(w.systems, w.responses, strict=True))
            if system is not None and response is not None
        ]
        if not made:
            continue
        rows.instructions_with_rows += 1
        if w.held_out:
            for j, system, response in made:
                rubrics = w.rubrics[j] if j < len(w.rubrics) else None
                if rubrics is None:
                    rows.bench_rows_without_rubrics += 1
                    continue
                rows.bench.append(
                    {
                        "source": ins.main_source,
                        "system": system,
                        "prompt": ins.text,
                        "reference_answer": response,
                        "rubric": rubrics,
                        "preference_set": [p.to_dict() for p in w.sets[j]],
                    }
                )
            continue
        for j, system, response in made:
            rows.sft.append(
                {
                    "main_source": ins.main_source,
                    "original_source": ins.original_source,
                    "preference_set": [p.to_dict() for p in w.sets[j]],
                    "system": system,
                    "prompt": ins.text,
                    "output": response,
                }
            )
        if len(made) < 2:
            rows.instructions_without_pair += 1
            continue
        for j, system, response in made:
            others = [r for k, _, r in made if k != j]
            rejected = random.Random(seed32(seed, "pair", ins.id, j)).choice(others)
            head = {"main_source": ins.main_source, "original_source": ins.original_source}
            rows.dpo.append(
                {
                    **head,
                    "system": system,
                    "prompt": ins.text,
                    "chosen": _messages(ins.text, response),
                    "rejected": _messages(ins.text, rejected),
                }
            )
            rows.rm.append({"input": f"{system}\n{ins.text}", "chosen": response, "rejected": rejected})
    return rows


def _jsonl(rows: Iterable[dict[str, Any]]) -> Iterable[str]:
    return (json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def write_rows(out: Path, rows: Rows, with_bench: bool) -> dict[str, int]:
    """Each split file written atomically; returns rows written per split."""
    written = {}
    for split in ("sft", "dpo", "rm") + (("bench",) if with_bench else ()):
        data = getattr(rows, split)
        write_lines_atomic(out / SPLIT_FILES[split], _jsonl(data))
        written[split] = len(data)
    return written
