"""Progress of one stage: a bar with rate and ETA on a terminal; in a log file, a line every
`log_interval_s` (done/total, ETA) and one when the stage ends."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from tqdm.auto import tqdm


class StageProgress:
    def __init__(
        self,
        stage: str,
        total: int,
        *,
        interactive: bool,
        quiet: bool = False,
        stream: TextIO | None = None,
        log_interval_s: float = 30.0,
    ):
        self.stage, self.total, self.done = stage, total, 0
        self.stream = stream or sys.stderr
        self.quiet = quiet
        self.started = self._last_log = time.perf_counter()
        self.log_interval_s = log_interval_s
        self.bar = tqdm(total=total, desc=stage, unit="item", file=self.stream, disable=not interactive)
        self.interactive = interactive

    def eta_s(self) -> float | None:
        if not self.done:
            return None
        rate = self.done / (time.perf_counter() - self.started)
        return (self.total - self.done) / rate if rate > 0 else None

    def step(self) -> None:
        self.done += 1
        self.bar.update(1)
        now = time.perf_counter()
        if not self.interactive and not self.quiet and now - self._last_log >= self.log_interval_s:
            eta = self.eta_s()
            self._log(f"{self.done}/{self.total}" + (f", about {eta:.0f}s left" if eta is not None else ""))
            self._last_log = now

    def close(self, kept: int) -> None:
        self.bar.close()
        if not self.quiet:
            took = time.perf_counter() - self.started
            self._log(f"{self.total} items, {kept} kept, {took:.1f}s")

    def _log(self, message: str) -> None:
        print(f"multifaceted-data: {self.stage}: {message}", file=self.stream, flush=True)
