"""lm-eval warnings that do not apply to the ALOE and Multifaceted tasks, kept out of their runs.

- "`pretrained=...` appears to be an instruct or chat variant but chat template is not applied":
  these tasks render every prompt with the model's own chat template themselves (the interception
  builds the chats), so `--apply_chat_template` changes nothing for them.
- "TASK: Custom kwargs can be passed to `--metadata` ...": printed for every task with a custom
  dataset loader; ours take their settings through `--metadata '{"aloe": {...}}'` (README). A task
  is ours when its dataset loader is this bridge's (`custom_dataset: !function
  aloe_bench.integrations.lm_eval.task.load_docs`, which every task YAML on the bridge names,
  whatever its name or kind), not by a list of names: lm-eval's `download` is wrapped to say
  whose task it is building while it prints the warning.
Other tasks in the same lm-eval run still get both warnings (the first marked as being about them only).

Also: lm-eval names its output folder after `pretrained=`; a local checkpoint's absolute path made
`OUT/__root__.cache__aloe-bench__models__SmolLM2-...`. With the ALOE tasks in use the folder is named
after the checkpoint folder alone (`OUT/SmolLM2-...`).
"""

from __future__ import annotations

import functools
import logging
from contextvars import ContextVar
from typing import Any

# The module whose `load_docs` our task YAMLs name as their `custom_dataset` (the string, not an
# import: that module installs this one).
BRIDGE_MODULE = "aloe_bench.integrations.lm_eval.task"
_MARK = "_aloe_quiet_filter"
# True while lm-eval downloads (builds the documents of) a task whose loader is the bridge's.
_building_ours: ContextVar[bool] = ContextVar("aloe_building_our_task", default=False)


def on_our_bridge(custom_dataset: Any) -> bool:
    return getattr(custom_dataset, "__module__", None) == BRIDGE_MODULE


class _AloeWarningFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Custom kwargs can be passed to `--metadata`" in text:
            return not _building_ours.get()
        if "chat template is not applied" in text:
            record.msg = (
                "(aloe-bench) the chat-template warning concerns only non-ALOE tasks in this run: ALOE and "
                "Multifaceted tasks apply the model's chat template themselves"
            )
            record.args = ()
            record.levelno, record.levelname = logging.INFO, "INFO"
            return logging.getLogger(record.name).isEnabledFor(logging.INFO)
        return True


def _portable_model_folder(original):
    from aloe_bench.spec_names import portable_spec

    def sanitize_model_name(model_name: str) -> str:
        if model_name.startswith(("/", "./", "../", "~")):
            return original(portable_spec(model_name))
        return original(model_name)

    setattr(sanitize_model_name, _MARK, True)
    return sanitize_model_name


def _saying_whose_task(original):
    """lm-eval's `ConfigurableTask.download`, marking the tasks whose loader is the bridge's."""

    @functools.wraps(original)
    def download(self, *args, **kwargs):
        config = getattr(self, "config", None)
        token = _building_ours.set(on_our_bridge(getattr(config, "custom_dataset", None)))
        try:
            return original(self, *args, **kwargs)
        finally:
            _building_ours.reset(token)

    setattr(download, _MARK, True)
    return download


def install() -> None:
    """Idempotent: the filter sits on the two lm-eval loggers that emit these warnings (and lm-eval's
    `download` says whose task it is building); the output folder is named after the checkpoint
    folder, not its path."""
    from lm_eval.api.task import ConfigurableTask
    from lm_eval.loggers import evaluation_tracker

    if not getattr(ConfigurableTask.download, _MARK, False):
        ConfigurableTask.download = _saying_whose_task(ConfigurableTask.download)

    if not getattr(evaluation_tracker.sanitize_model_name, _MARK, False):
        evaluation_tracker.sanitize_model_name = _portable_model_folder(
            evaluation_tracker.sanitize_model_name
        )
    for name in ("lm_eval.evaluator", "lm_eval.api.task"):
        logger = logging.getLogger(name)
        if not any(getattr(f, _MARK, False) for f in logger.filters):
            quiet = _AloeWarningFilter()
            setattr(quiet, _MARK, True)
            logger.addFilter(quiet)
