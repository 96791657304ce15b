"""What the backends are generating right now: the counters a progress display reads inside a turn.

The backends (models layer) write them; the engine's progress display (engine/progress.py) reads
them, so they live here, below both.
"""

from __future__ import annotations

import threading
import time


class GenerationActivity:
    """What the backends are doing right now, for progress inside a turn (a turn is often one batch,
    so counting finished conversations alone would jump from 0 to N at its end). Thread-safe: the
    in-process backends decode in a worker thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self.tokens = 0  # generated so far, all backends
            self.requests_done = 0
            self.batch_rows = 0  # the in-process batch decoding now (0: none)
            self.batch_step = 0
            self.batch_max = 0
            self._batch_started = 0.0

    def begin_batch(self, rows: int, max_new_tokens: int) -> None:
        with self._lock:
            self.batch_rows, self.batch_step, self.batch_max = rows, 0, max_new_tokens
            self._batch_started = time.perf_counter()

    def step(self, live_rows: int) -> None:
        with self._lock:
            self.batch_step += 1
            self.tokens += live_rows

    def end_batch(self, rows: int) -> None:
        with self._lock:
            self.batch_rows = 0
            self.requests_done += rows

    def requests_finished(self, n: int, tokens: int) -> None:
        """Requests answered by an API backend (their tokens arrive all at once)."""
        with self._lock:
            self.requests_done += n
            self.tokens += tokens

    def describe(self) -> str:
        with self._lock:
            parts = [f"{self.requests_done} requests done, {self.tokens} tokens generated"]
            if self.batch_rows:
                took = time.perf_counter() - self._batch_started
                rate = self.batch_step / took if took > 0 else 0.0
                left = (self.batch_max - self.batch_step) / rate if rate > 0 else None
                parts.append(
                    f"batch of {self.batch_rows}: step {self.batch_step}/{self.batch_max}"
                    + (f", at most {left:.0f}s left" if left is not None else "")
                )
        return "; ".join(parts)


ACTIVITY = GenerationActivity()
