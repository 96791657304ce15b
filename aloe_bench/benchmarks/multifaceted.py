"""Moved to the Multifaceted task package, `aloe_bench.tasks.multifaceted` (setup: `aloe_bench.tasks.multifaceted.setup`); this name stays for existing callers."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("aloe_bench.tasks.multifaceted")
