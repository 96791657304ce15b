"""lm-eval warnings that do not apply to the ALOE and Multifaceted tasks, kept out of their runs.

- "`pretrained=...` appears to be an instruct or chat variant but chat template is not applied":
  these tasks render every prompt with the model's own chat template themselves (the interception
  builds the chats), so `--apply_chat_template` changes nothing for them.
- "TASK: Custom kwargs can be passed to `--metadata` ...": printed for every task with a custom
  dataset loader; ours take their settings through `--metadata '{"aloe": {...}}'` (README).
Other tasks in the same lm-eval run still get the first warning, marked as being about them only.

Also: lm-eval names its output folder after `pretrained=`; a local checkpoint's absolute path made
`OUT/__root__.cache__aloe-bench__models__SmolLM2-...`. With the ALOE tasks in use the folder is named
after the checkpoint folder alone (`OUT/SmolLM2-...`).
"""

from __future__ import annotations

import logging

OUR_TASK_PREFIXES = ("aloe", "multifaceted")
_MARK = "_aloe_quiet_filter"


class _AloeWarningFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Custom kwargs can be passed to `--metadata`" in text:
            return not text.startswith(OUR_TASK_PREFIXES)
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


def install() -> None:
    """Idempotent: the filter sits on the two lm-eval loggers that emit these warnings; the output
    folder is named after the checkpoint folder, not its path."""
    from lm_eval.loggers import evaluation_tracker

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
