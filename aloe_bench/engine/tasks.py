"""Moved to `aloe_bench.engine.task_files` (the task YAML files); this name stays for existing callers."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("aloe_bench.engine.task_files")
