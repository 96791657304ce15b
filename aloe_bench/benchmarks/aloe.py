"""Moved to the ALOE task package, `aloe_bench.tasks.aloe` (setup: `aloe_bench.tasks.aloe.setup`); this name stays for existing callers."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("aloe_bench.tasks.aloe")
