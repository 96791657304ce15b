"""Multifaceted Bench (Janus, SPEC 2): stated preferences in the system message, rubric grading."""

from aloe_bench.multifaceted.data import HF_DATASET, Instance, MultifacetedSet, Rubric, load_multifaceted
from aloe_bench.multifaceted.grading import RubricGrader, parse_after_marker, rubric_metrics
from aloe_bench.multifaceted.runner import MultifacetedConfig, run_multifaceted

__all__ = [
    "HF_DATASET",
    "Instance",
    "MultifacetedConfig",
    "MultifacetedSet",
    "Rubric",
    "RubricGrader",
    "load_multifaceted",
    "parse_after_marker",
    "rubric_metrics",
    "run_multifaceted",
]
