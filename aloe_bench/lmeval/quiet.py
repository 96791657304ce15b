"""lm-eval warnings that do not apply to the ALOE and Multifaceted tasks, kept out of their runs.

- "`pretrained=...` appears to be an instruct or chat variant but chat template is not applied":
  these tasks render every prompt with the model's own chat template themselves (the interception
  builds the chats), so `--apply_chat_template` changes nothing for them.
- "TASK: Custom kwargs can be passed to `--metadata` ...": printed for every task with a custom
  dataset loader; ours take their settings through `--metadata '{"aloe": {...}}'` (README).
Other tasks in the same lm-eval run still get the first warning, marked as being about them only.
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


def install() -> None:
    """Idempotent: the filter sits on the two lm-eval loggers that emit these warnings."""
    for name in ("lm_eval.evaluator", "lm_eval.api.task"):
        logger = logging.getLogger(name)
        if not any(getattr(f, _MARK, False) for f in logger.filters):
            quiet = _AloeWarningFilter()
            setattr(quiet, _MARK, True)
            logger.addFilter(quiet)
