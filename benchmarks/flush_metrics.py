"""What one flush's metrics cost on a long journaled run: `RunRecorder.metrics(with_ci=False)` over
10,000 conversations x 10 turns, every one finished and released from memory (a scale run pays this
every 2 s). Prints the best and median of 5 calls, and the resident memory the kept scores take.

    python benchmarks/flush_metrics.py [--conversations N] [--turns K]
"""

from __future__ import annotations

import argparse
import math
import resource
import tempfile
import time
from pathlib import Path

from aloe_bench.engine.recorder import RunRecorder
from aloe_bench.log.results import ConversationRecord, TurnRecord


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--turns", type=int, default=10)
    args = parser.parse_args()
    n, turns = args.conversations, args.turns
    with tempfile.TemporaryDirectory() as folder:
        conversations = [ConversationRecord(f"c{i}", {"profile": "p"}) for i in range(n)]
        recorder = RunRecorder(
            out=Path(folder), header={}, conversations=conversations, turns=turns, seed=0,
            n_bootstrap=0, usage={}, journaled=True, interval_s=math.inf,
        )  # fmt: skip
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for i, conv in enumerate(conversations):
            conv.turns = [
                TurnRecord(user="u", assistant="a", score=1 + (i + k) % 5, judged=True) for k in range(turns)
            ]
            conv.status = "complete"
            recorder._release_if_finished(conv)  # what `judged` does once the last turn is scored
        kept = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        times = []
        for _ in range(5):
            started = time.perf_counter()
            metrics = recorder.metrics(False)
            times.append(time.perf_counter() - started)
    times.sort()
    print(
        f"metrics() over {n} x {turns} released conversations: best {times[0] * 1000:.0f} ms, "
        f"median {times[2] * 1000:.0f} ms (AVG {metrics['avg']}); peak RSS grew {kept / 1024:.0f} MiB "
        "while releasing them"
    )


if __name__ == "__main__":
    main()
