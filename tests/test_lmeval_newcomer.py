"""The lm-eval path explains itself (issue 15): where the embedded checkpoint lives, and why a
one-turn run's IR, N-IR and N-R2 are NaN."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest


def test_embedded_path_prints_a_checkpoint_folder(cli, embedded_checkpoint):
    code, out, err = cli("embedded-path")
    assert code == 0, err
    path = Path(out.strip())
    assert path == Path(embedded_checkpoint) and (path / "config.json").is_file()


@pytest.mark.parametrize("name", ["ir", "n_ir", "n_r2"])
def test_one_turn_slopes_are_nan_with_a_reason(name, caplog):
    from aloe_bench.integrations.lm_eval import task

    items = [{"complete": True, "turns": 1, "scores": [s]} for s in (3, 4, 5)]
    with caplog.at_level(logging.WARNING, logger="aloe_bench.integrations.lm_eval.task"):
        value = getattr(task, f"aggregate_{name}")(items)
    assert math.isnan(value)
    assert f"ALOE {name} is NaN: a slope needs at least 2 scored turns, this run has 1" in caplog.text


def _download(name: str, loader, metadata: dict) -> None:
    """lm-eval's own `ConfigurableTask.download` (what prints the custom-loader warning) on a task
    whose config holds just what it reads."""
    from types import SimpleNamespace

    from lm_eval.api.task import ConfigurableTask

    config = SimpleNamespace(task=name, custom_dataset=loader, metadata=metadata, dataset_kwargs=None)
    ConfigurableTask.download(SimpleNamespace(config=config))


def test_lm_eval_warnings_that_do_not_apply_to_aloe_tasks_are_dropped(caplog):
    pytest.importorskip("lm_eval")
    from aloe_bench.integrations.lm_eval import intercept
    from aloe_bench.integrations.lm_eval.task import load_docs

    intercept.install()
    evaluator_log = logging.getLogger("lm_eval.evaluator")
    example = Path(__file__).parent / "example_tasks" / "short_answers.yaml"
    with caplog.at_level(logging.WARNING):
        # A task on the bridge is ours by its loader, whatever its name: the task written from
        # scratch too. A task with its own loader keeps the warning, even under a name like ours.
        _download("short_answers", load_docs, {"config_source": str(example)})
        _download("aloe_lookalike", lambda **_: {"test": []}, {})
        _download("other_task", lambda **_: {"test": []}, {})
        evaluator_log.warning(
            "pretrained=x appears to be an instruct or chat variant but chat template is not applied."
        )
        evaluator_log.warning("an unrelated lm-eval warning")
    warned = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert not any(m.startswith("short_answers:") for m in warned)
    assert any(m.startswith("aloe_lookalike:") for m in warned)
    assert any(m.startswith("other_task:") for m in warned)  # other tasks keep theirs
    assert not any("chat template is not applied" in m for m in warned)
    assert "an unrelated lm-eval warning" in warned


def test_output_folder_is_named_after_the_checkpoint_not_its_path(embedded_checkpoint):
    from lm_eval.loggers import evaluation_tracker

    from aloe_bench.integrations.lm_eval import intercept

    intercept.install()
    tracker = evaluation_tracker.GeneralConfigTracker()
    tracker.log_experiment_args(model_source="hf", model_args=f"pretrained={embedded_checkpoint}", system_instruction=None, chat_template=None, fewshot_as_multiturn=False)  # fmt: skip
    assert tracker.model_name_sanitized == Path(embedded_checkpoint).name
    assert (
        evaluation_tracker.sanitize_model_name("HuggingFaceTB/SmolLM2-135M") == "HuggingFaceTB__SmolLM2-135M"
    )
