"""Moved to `aloe_bench.spec_names` (below every layer: the log names runs with it too)."""

import sys

from aloe_bench import spec_names

sys.modules[__name__] = spec_names
