"""What reading and writing the run log's conversation records costs (journaled compaction and resume
read and write every conversation; every flush of a plain run writes them): 2,000 conversations x
10 turns, each turn with one judgement, parsed from JSON into `ConversationRecord`s and written
back, best of 3.

    python benchmarks/run_log_records.py [--conversations N] [--label TEXT]
"""

from __future__ import annotations

import argparse
import json
import time

from aloe_bench.log.results import ConversationRecord

TURN = {
    "user": "u" * 200,
    "assistant": "a" * 300,
    "score": 4,
    "judge_raw": "4",
    "judge_attempts": 1,
    "judge_error": None,
    "judged": True,
    "judgements": [
        {"judge": "j", "repeat": 0, "score": 4, "raw": "4", "attempts": 1, "history": [], "error": None}
    ],
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=2000)
    parser.add_argument("--label", default="records")
    args = parser.parse_args()
    persona = {"profile": "p", "personality": "q"}
    lines = [
        json.dumps(
            {"id": f"c{i}", "persona": persona, "status": "complete", "error": None, "turns": [TURN] * 10}
        )
        for i in range(args.conversations)
    ]
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        written = [json.dumps(ConversationRecord.from_dict(json.loads(line)).to_dict()) for line in lines]
        best = min(best, time.perf_counter() - start)
    assert [json.loads(w) for w in written[:1]] == [json.loads(lines[0])]  # a round trip changes nothing
    turns = args.conversations * 10
    print(
        f"{args.label}: {best:.2f} s for {args.conversations:,} x 10 turns; {best / turns * 1e6:.0f} us per turn"
    )


if __name__ == "__main__":
    main()
