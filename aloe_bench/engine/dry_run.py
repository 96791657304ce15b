"""Moved to `aloe_bench.tasks.aloe.dry_run` (ALOE's cost estimate); this name stays for existing callers."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("aloe_bench.tasks.aloe.dry_run")
