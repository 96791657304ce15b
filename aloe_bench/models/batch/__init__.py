"""Judging through the OpenAI Batch API (`--judge-batch`, `aloe-bench judge RUN --batch`)."""

from aloe_bench.models.batch.backend import BATCHES_FILE, BatchBackend

__all__ = ["BATCHES_FILE", "BatchBackend"]
