"""The hooks the task YAMLs (ALOE and Multifaceted) name with `!function aloe_bench.integrations.lm_eval.task.<name>`.

lm-eval imports this module by name (it is not next to the YAML), so it works from a wheel install.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from aloe_bench.engine.task_api import DEFAULT_KIND
from aloe_bench.engine.task_files import foreign_settings, task_kind, task_settings_from_file
from aloe_bench.integrations.lm_eval import intercept
from aloe_bench.integrations.lm_eval.requests import (
    decode_transcript,
    encode_request,
    remember_settings,
    task_run_config,
)
from aloe_bench.metrics.alignment import alignment_metrics

log = logging.getLogger("lm_eval.aloe")


def task_settings(metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The task's metadata.aloe as its YAML states it, with `--metadata '{"aloe": {...}}'` on top.

    lm-eval merges --metadata shallowly (a given `aloe` replaces the whole mapping) and mixes the
    model arguments in, so the file is read again (`config_source`) and only `aloe` is merged."""
    source = metadata.get("config_source")
    name: str = "aloe"
    settings: dict[str, Any] = {}
    if source and Path(source).is_file():
        name, settings = task_settings_from_file(Path(source))
    overrides = dict(metadata.get("aloe") or {})
    # --metadata goes to every task of the run: in a run of both kinds, a setting only the other
    # kind takes (turns, data, ...) is left out here, and said so; a misspelt one is still an error.
    kind = overrides.get("kind", settings.get("kind", DEFAULT_KIND))
    other_kinds = foreign_settings(kind, overrides)
    if other_kinds:
        log.info("%s: --metadata %s left out (%s tasks do not take them)", name, ", ".join(other_kinds), kind)
    return name, {**settings, **{k: v for k, v in overrides.items() if k not in other_kinds}}


def load_docs(**metadata: Any) -> dict[str, Any]:
    """`custom_dataset`: one document per persona (ALOE tasks) or per instance (Multifaceted tasks),
    its request in `aloe_request`.

    lm-eval calls this while building the task, after it built the model: the interception is
    installed here (idempotent), so a plain `lm_eval --include_path tasks` run works too."""
    import datasets

    intercept.install()
    name, settings = task_settings(metadata)
    config = task_run_config(name, settings, "lmeval/model")  # validates the settings before any call
    task, _ = task_kind(name, settings)
    rows = [
        {**_doc_fields(item), "aloe_request": encode_request(name, item, settings)}
        for item in task.dataset(config)
    ]
    remember_settings(name, settings)
    return {"test": datasets.Dataset.from_list(rows)}


def _doc_fields(item: Any) -> dict[str, Any]:
    """What lm-eval shows of one item (same loaders as `aloe-bench run`): what the item says of
    itself for a document (`doc_fields()`), else its payload."""
    doc_fields = getattr(item, "doc_fields", None)
    return dict(doc_fields() if callable(doc_fields) else item.to_payload())


def process_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per conversation: its score list for the curve metrics, its score at each turn k (al_tk; left
    out when the judge gave none), and whether it failed."""
    transcript = decode_transcript(results[0])
    complete = transcript["status"] == "complete"
    scores = [turn.get("score") for turn in transcript["turns"]]
    curve = {"complete": complete, "turns": transcript["run"]["turns"], "scores": scores}
    out: dict[str, Any] = {
        "al_avg": curve,
        "ir": curve,
        "n_ir": curve,
        "n_r2": curve,
        "failed": int(not complete),
    }
    if complete:  # failed conversations count nowhere, as in `aloe-bench run`
        for k, score in enumerate(scores, start=1):
            if score is not None:
                out[f"al_t{k}"] = float(score)
    return out


def _curve(items: list[dict[str, Any]]) -> dict[str, Any]:
    turns = max((item["turns"] for item in items), default=0)
    rows = [
        [np.nan if s is None else float(s) for s in item["scores"]] + [np.nan] * (turns - len(item["scores"]))
        for item in items
        if item["complete"]
    ]
    return alignment_metrics(np.array(rows, dtype=float).reshape(len(rows), turns), n_bootstrap=0)


def _number(value: float | None) -> float:
    return math.nan if value is None else float(value)


def aggregate_avg(items: list[dict[str, Any]]) -> float:
    return _number(_curve(items)["avg"])


def _slope_metric(items: list[dict[str, Any]], name: str) -> float:
    """IR, N-IR or N-R2; NaN in lm-eval's table when undefined, with a log line saying why (a
    one-turn run has no slope; a flat curve cannot be normalised)."""
    curve = _curve(items)
    value = curve[name]
    if value is None:
        scored = sum(v is not None for v in curve["al"])
        why = (
            f"a slope needs at least 2 scored turns, this run has {scored}"
            if scored < 2
            else "the curve is flat, so its min-max normalisation is undefined"
        )
        log.warning("ALOE %s is NaN: %s (docs/results.md: 'Reading the results')", name, why)
    return _number(value)


def aggregate_ir(items: list[dict[str, Any]]) -> float:
    return _slope_metric(items, "ir")


def aggregate_n_ir(items: list[dict[str, Any]]) -> float:
    return _slope_metric(items, "n_ir")


def aggregate_n_r2(items: list[dict[str, Any]]) -> float:
    return _slope_metric(items, "n_r2")


def aggregate_count(items: list[int]) -> int:
    return int(sum(items))


# -- Multifaceted tasks ---------------------------------------------------------------------------------
def process_rubric_results(doc: dict[str, Any], results: list[Any]) -> dict[str, Any]:
    """Per instance: its score (the mean of its rubric scores; NaN when it failed or no rubric got a
    score, so lm-eval's `nanmean` over the samples is the benchmark score: a micro average over the
    scored instances, as `aloe-bench run` computes it), whether it failed, and how many of its rubric
    judgements have no score."""
    transcript = decode_transcript(results[0])
    complete = transcript["status"] == "complete"
    turn = transcript["turns"][0] if complete else {}
    score = turn.get("score")
    return {
        "score": math.nan if score is None else float(score),
        "failed": int(not complete),
        "rubrics_invalid": sum(g["score"] is None for g in turn.get("rubric_scores") or []),
    }
