"""Progress: one bar per turn (conversations through that turn, judged so far), on a terminal;
plain log lines when output goes to a file or CI log."""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


class TurnProgress:
    def __init__(self, total_conversations: int, turns: int, *, enabled: bool | None = None, stream=None):
        self.total = total_conversations
        self.turns = turns
        self.stream = stream or sys.stderr
        self.interactive = self.stream.isatty() if enabled is None else enabled
        self.bars: dict[int, tqdm] = {}
        self.done = [0] * (turns + 1)
        self.judged = [0] * (turns + 1)
        self.failed = 0
        self.started = time.perf_counter()

    def _bar(self, k: int) -> tqdm:
        if k not in self.bars:
            self.bars[k] = tqdm(
                total=self.total,
                desc=f"turn {k:>2}/{self.turns}",
                unit="conv",
                position=k - 1,
                leave=True,
                file=self.stream,
                dynamic_ncols=True,
            )
        return self.bars[k]

    def turn_done(self, k: int) -> None:
        self.done[k] += 1
        if self.interactive:
            bar = self._bar(k)
            bar.update(1)
            bar.set_postfix_str(f"judged {self.judged[k]}", refresh=False)
        elif self.done[k] == self.total - self.failed:
            self._log(f"turn {k}/{self.turns}: {self.done[k]} conversations done")

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
        for bar in self.bars.values():
            bar.close()
