"""Progress: one bar per turn (conversations through that turn, judged so far) and a status line of
what the backends are generating (requests, tokens, the running batch's step, ETA), on a terminal;
the same as plain log lines every LOG_INTERVAL_S seconds when output goes to a file or CI log."""

from __future__ import annotations

import os
import sys
import threading
import time

from tqdm.auto import tqdm

from aloe_bench.models.activity import ACTIVITY, GenerationActivity

__all__ = ["ACTIVITY", "GenerationActivity", "TurnProgress", "cpu_contention"]

LOG_INTERVAL_S = 30.0  # plain lines in a log file: often enough to see it move, rarely enough to read
TTY_INTERVAL_S = 1.0


class TurnProgress:
    def __init__(
        self,
        total_conversations: int,
        turns: int,
        *,
        enabled: bool | None = None,
        stream=None,
        activity: GenerationActivity | None = None,
        log_interval_s: float | None = None,
    ):
        self.total = total_conversations
        self.turns = turns
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if enabled is None else enabled
        self.bars: dict[int, tqdm] = {}
        self.done = [0] * (turns + 1)
        self.judged = [0] * (turns + 1)
        self.failed = 0
        self.started = time.perf_counter()
        self.activity = activity or ACTIVITY
        self.activity.reset()
        self._turn_finished: dict[int, float] = {}
        self._status: tqdm | None = None
        self._stop = threading.Event()
        interval = TTY_INTERVAL_S if self.interactive else (log_interval_s or LOG_INTERVAL_S)
        self._ticker = threading.Thread(target=self._tick, args=(interval,), daemon=True)
        self._ticker.start()

    def _bar(self, k: int) -> tqdm:
        if k not in self.bars:
            self.bars[k] = tqdm(
                total=self.total,
                desc=f"turn {k:>2}/{self.turns}",
                unit="conv",
                position=k,
                leave=True,
                file=self.stream,
                dynamic_ncols=True,
            )
        return self.bars[k]

    def eta_s(self) -> float | None:
        """Seconds left, once a first turn has finished: the mean turn time so far x turns left."""
        if not self._turn_finished:
            return None
        last = max(self._turn_finished)
        per_turn = self._turn_finished[last] / last
        return max(0.0, per_turn * self.turns - (time.perf_counter() - self.started))

    def status(self) -> str:
        current = next((k for k in range(1, self.turns + 1) if k not in self._turn_finished), self.turns)
        eta = self.eta_s()
        return (
            f"turn {current}/{self.turns}: {self.done[current]}/{self.total - self.failed} conversations; "
            f"{self.activity.describe()}"
            + (f"; run ETA {eta:.0f}s" if eta is not None else "; ETA once turn 1 is done")
        )

    def _tick(self, interval: float) -> None:
        while not self._stop.wait(interval):
            if self.interactive:
                if self._status is None:
                    self._status = tqdm(
                        total=0, bar_format="{desc}", position=0, file=self.stream, leave=False
                    )
                self._status.set_description_str(self.status())
            else:
                self._log(self.status())

    def turn_done(self, k: int) -> None:
        self.done[k] += 1
        if self.done[k] == self.total - self.failed and k not in self._turn_finished:
            self._turn_finished[k] = time.perf_counter() - self.started
        if self.interactive:
            bar = self._bar(k)
            bar.update(1)
            bar.set_postfix_str(f"judged {self.judged[k]}", refresh=False)
        elif self.done[k] == self.total - self.failed:
            eta = self.eta_s()
            self._log(
                f"turn {k}/{self.turns}: {self.done[k]} conversations done"
                + (f"; about {eta:.0f}s left" if eta and k < self.turns else "")
            )

    def judged_one(self, k: int) -> None:
        self.judged[k] += 1
        if self.interactive:
            self._bar(k).set_postfix_str(f"judged {self.judged[k]}")

    def conversation_failed(self) -> None:
        self.failed += 1

    def _log(self, message: str) -> None:
        elapsed = time.perf_counter() - self.started
        print(f"[{elapsed:7.1f}s] {message}", file=self.stream, flush=True)

    def close(self) -> None:
        self._stop.set()
        self._ticker.join(timeout=2)
        if self._status is not None:
            self._status.close()
        for bar in self.bars.values():
            bar.close()


def cpu_contention() -> str | None:
    """A warning when this process shares its cores with other busy ones (two PyTorch processes on
    the same cores slow each other about tenfold), else None."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if load <= cores:
        return None
    threads = _torch_threads()
    return (
        f"warning: the CPU is busy (load average {load:.1f} on {cores} cores) before this run starts: "
        f"another process competes for the cores{f' and PyTorch will use {threads} thread(s)' if threads else ''}. "
        "In-process models (embedded, hf/ on CPU) can run many times slower; run one at a time, or give "
        "each process its share (e.g. OMP_NUM_THREADS=1)."
    )


def _torch_threads() -> int | None:
    import sys as _sys

    torch = _sys.modules.get("torch")  # only if already imported: never load torch for a warning
    return torch.get_num_threads() if torch is not None else None
