"""Where aloe-bench keeps what it downloads, converts and caches (one root, overridable)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    """`$ALOE_BENCH_HOME`, else `$XDG_CACHE_HOME/aloe-bench`, else `~/.cache/aloe-bench`."""
    if os.environ.get("ALOE_BENCH_HOME"):
        return Path(os.environ["ALOE_BENCH_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "aloe-bench"


def default_call_cache() -> Path:
    return cache_root() / "calls.sqlite"
