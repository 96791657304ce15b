"""The collection's summary: counts, failures by stage and cause, and the diversity figures
(distinct subdimensions per dimension, system message length, pairwise similarity), each with
its n; written as summary.json beside the data and printed at the end."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np

from aloe_bench.models.embeddings import Embedder
from aloe_train.multifaceted.collection import Rows
from aloe_train.multifaceted.stats import STAGES, StageStats
from aloe_train.multifaceted.taxonomy import Taxonomy

ACROSS_SAMPLE = 300  # system messages sampled for the across-instruction similarity (one matrix)


def _mean_sd(values: list[float]) -> dict[str, Any]:
    if not values:
        return {"mean": None, "sd": None, "n": 0}
    mean = sum(values) / len(values)
    sd = math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1)) if len(values) > 1 else None
    return {"mean": round(mean, 4), "sd": None if sd is None else round(sd, 4), "n": len(values)}


def diversity(rows: Rows, taxonomy: Taxonomy, embedder: Embedder, seed: int) -> dict[str, Any]:
    kept_sets = [r["preference_set"] for r in rows.sft + rows.bench]
    distinct = {
        d.name: len({p["subdimension"].lower() for s in kept_sets for p in s if p["dimension"] == d.name})
        for d in taxonomy.dimensions
    }
    # what was written (SFT and bench rows), grouped by instruction
    grouped: dict[str, list[str]] = {}
    for r in rows.sft + rows.bench:
        grouped.setdefault(r["prompt"], []).append(r["system"])
    systems_by_instruction = list(grouped.values())
    systems = [s for group in systems_by_instruction for s in group]
    within: list[float] = []
    for group in systems_by_instruction:
        if len(group) >= 2:
            sims = embedder.similarity(group, group)
            within += [float(sims[i, j]) for i in range(len(group)) for j in range(i + 1, len(group))]
    tagged = [(i, s) for i, group in enumerate(systems_by_instruction) for s in group]
    sample = random.Random(seed).sample(tagged, min(ACROSS_SAMPLE, len(tagged)))
    across: list[float] = []
    if len({i for i, _ in sample}) >= 2:
        texts = [s for _, s in sample]
        sims = np.asarray(embedder.similarity(texts, texts))
        across = [
            float(sims[a, b])
            for a in range(len(sample))
            for b in range(a + 1, len(sample))
            if sample[a][0] != sample[b][0]
        ]
    return {
        "distinct_subdimensions": distinct,
        "system_message_words": _mean_sd([float(len(s.split())) for s in systems]),
        "system_message_chars": _mean_sd([float(len(s)) for s in systems]),
        "similarity": {
            "embedder": embedder.describe(),
            "within_instruction": _mean_sd(within),
            "across_instructions": {**_mean_sd(across), "sampled_messages": len(sample)},
        },
    }


def failures(stats: dict[str, StageStats]) -> dict[str, dict[str, int]]:
    """Items lost per stage, by cause (rejected answers that a re-ask fixed are in `stages`)."""
    return {s: dict(sorted(stats[s].dropped.items())) for s in STAGES if stats[s].dropped}


def format_summary(summary: dict[str, Any], out: str) -> str:
    c = summary["counts"]
    lines = [
        f"{out}: {c['sft_rows']} SFT rows, {c['dpo_rows']} DPO/ORPO pairs, {c['rm_rows']} RM pairs"
        + (f", {c['bench_rows']} bench rows" if c.get("bench_rows") is not None else "")
        + f" from {c['instructions_with_rows']} of {c['instructions']} instructions; status {summary['status']}",
    ]
    for stage, s in summary["stages"].items():
        if not s["items"]:
            continue
        rejected = ", ".join(f"{k} {v}" for k, v in s["rejected_answers"].items()) or "none"
        dropped = ", ".join(f"{k} {v}" for k, v in s["dropped_items"].items()) or "none"
        lines.append(
            f"  {stage:<13} {s['kept']}/{s['items']} kept ({dropped} dropped), {s['answers']} answers read "
            f"(rejected: {rejected})"
        )
    d = summary["diversity"]
    sim = d["similarity"]
    w, a = sim["within_instruction"], sim["across_instructions"]
    lines.append(
        "  distinct subdimensions: " + ", ".join(f"{k} {v}" for k, v in d["distinct_subdimensions"].items())
    )
    lines.append(
        f"  system messages: mean {d['system_message_words']['mean']} words (n={d['system_message_words']['n']}); "
        f"similarity ({sim['embedder']['embedder']}) within an instruction {w['mean']} (n={w['n']} pairs), "
        f"across instructions {a['mean']} (n={a['n']} pairs of {a['sampled_messages']} sampled)"
    )
    t = summary["tokens"]
    per = t["per_instruction"]
    lines.append(
        f"  tokens: {t['prompt']:,} prompt + {t['completion']:,} completion"
        + (f" = {per:,.0f} per instruction" if per is not None else "")
        + f"; cost {'n/a (no price for ' + summary['cost']['spec'] + ')' if summary['cost']['usd'] is None else '$' + format(summary['cost']['usd'], '.4f')}"
        + " (this invocation's calls)"
    )
    if c["sft_rows"] == 0:
        lines.append(
            "  warning: no rows: every instruction lost an item at some stage (see the causes above); "
            "a stronger --generator, larger --*-max-new-tokens or --retries help"
        )
    return "\n".join(lines)
