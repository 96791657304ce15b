"""The hooks the ALOE task YAMLs name with `!function aloe_bench.lmeval.task.<name>`.

lm-eval imports this module by name (it is not next to the YAML), so it works from a wheel install.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from aloe_bench.lmeval import intercept
from aloe_bench.lmeval.requests import (
    decode_transcript,
    encode_request,
    remember_settings,
    task_run_config,
)
from aloe_bench.metrics import alignment_metrics
from aloe_bench.personas import load_persona_set
from aloe_bench.tasks import task_settings_from_file

log = logging.getLogger("lm_eval.aloe")


def task_settings(metadata: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The task's metadata.aloe as its YAML states it, with `--metadata '{"aloe": {...}}'` on top.

    lm-eval merges --metadata shallowly (a given `aloe` replaces the whole mapping) and mixes the
    model arguments in, so the file is read again (`config_source`) and only `aloe` is merged."""
    source = metadata.get("config_source")
    name, settings = ("aloe", {})
    if source and Path(source).is_file():
        name, settings = task_settings_from_file(Path(source))
    return name, {**settings, **(metadata.get("aloe") or {})}


def load_docs(**metadata: Any) -> dict[str, Any]:
    """`custom_dataset`: one document per persona, its request in `aloe_request`.

    lm-eval calls this while building the task, after it built the model: the interception is
    installed here (idempotent), so a plain `lm_eval --include_path tasks` run works too."""
    import datasets

    intercept.install()
    name, settings = task_settings(metadata)
    config = task_run_config(name, settings, "lmeval/model")  # validates the settings before any call
    personas = load_persona_set(config.personas, config.data_dir)
    remember_settings(name, settings)
    rows = [
        {
            "id": p.id,
            "profile": p.profile,
            "personality": p.personality,
            "aloe_request": encode_request(name, p, settings),
        }
        for p in personas.personas
    ]
    return {"test": datasets.Dataset.from_list(rows)}


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


def aggregate_ir(items: list[dict[str, Any]]) -> float:
    return _number(_curve(items)["ir"])


def aggregate_n_ir(items: list[dict[str, Any]]) -> float:
    return _number(_curve(items)["n_ir"])


def aggregate_n_r2(items: list[dict[str, Any]]) -> float:
    return _number(_curve(items)["n_r2"])


def aggregate_failed(items: list[int]) -> int:
    return int(sum(items))
