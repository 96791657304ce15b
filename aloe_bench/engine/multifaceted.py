"""Moved to the Multifaceted task package (`aloe_bench.tasks.multifaceted`: config.py, run.py);
these names stay importable from here for existing callers."""

from aloe_bench.tasks.multifaceted.config import MODEL_MAX_NEW_TOKENS, MultifacetedConfig, instance_record
from aloe_bench.tasks.multifaceted.run import PreparedMultifaceted, prepare_multifaceted, run_multifaceted

__all__ = [
    "MODEL_MAX_NEW_TOKENS",
    "MultifacetedConfig",
    "PreparedMultifaceted",
    "instance_record",
    "prepare_multifaceted",
    "run_multifaceted",
]
