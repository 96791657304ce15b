"""Benchmark definitions: each module defines one task (dataset + solver + scorer + settings) and
registers it under its kind, the `metadata.aloe.kind` a task YAML names (see engine/task.py)."""
