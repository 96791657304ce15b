"""`aloe-train multifaceted-data` on the embedded model (SmolLM2-135M, offline): the whole synthesis
runs, every split file and the summary are written, and a run killed with SIGKILL resumes without
asking any finished call again.

A 135M model rarely writes the numbered lists the first stages need, so most of its answers are
rejected (and counted); what this shows is the run on a real model, not the quality of its rows
(the rows themselves are checked against the scripted server in test_multifaceted_data.py)."""

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

INSTRUCTIONS = ["Explain why the sky is blue.", "How do I reverse a list in Python?"]
SMALL = ["--sets", "2", "--preference-max-new-tokens", "40", "--system-max-new-tokens", "40",
         "--response-max-new-tokens", "24", "--keep-truncated", "--embedder", "tfidf", "--no-progress"]  # fmt: skip


def _finished(cache) -> int:
    if not cache.exists():
        return 0
    try:
        with sqlite3.connect(cache) as db:
            return db.execute("SELECT COUNT(*) FROM calls_v2").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def test_embedded_synthesis_writes_every_file_and_resumes_after_sigkill(tmp_path):
    from aloe_train.cli import main

    ins = tmp_path / "ins.jsonl"
    ins.write_text("".join(json.dumps({"instruction": t}) + "\n" for t in INSTRUCTIONS))
    cache, out = tmp_path / "calls.sqlite", tmp_path / "out"
    args = ["multifaceted-data", "--instructions", str(ins), "--output", str(out), "--generator", "embedded",
            "--cache", str(cache), *SMALL]  # fmt: skip
    proc = subprocess.Popen(
        [sys.executable, "-m", "aloe_train.cli", *args],
        env={**os.environ, "OMP_NUM_THREADS": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and _finished(cache) == 0 and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    finished = _finished(cache)
    assert finished >= 1, "the first run finished no call before the deadline"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "running"  # killed: no final flush

    assert main(args) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "complete"
    calls = sum(u["calls"] for u in summary["usage"].values())
    cached = sum(u["cached"] for u in summary["usage"].values())
    answers = sum(s["answers"] for s in summary["stages"].values())
    # every call finished before the kill came from the cache; only the rest was asked
    assert cached == finished and calls == answers - finished
    counts = summary["counts"]
    for split in ("sft", "dpo", "rm"):
        lines = (out / f"{split}.jsonl").read_text().splitlines()
        assert len(lines) == counts[f"{split}_rows"]
    for stage in summary["stages"].values():
        assert stage["items"] == stage["kept"] + sum(stage["dropped_items"].values())
    assert summary["stages"]["subdimensions"]["items"] == len(INSTRUCTIONS) * 4

    assert main(args) == 0  # finished: a re-run asks nothing
    again = json.loads((out / "summary.json").read_text())
    assert sum(u["calls"] for u in again["usage"].values()) == 0
    assert again["counts"] == counts
