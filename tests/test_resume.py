"""kill -9 in the middle of a run, then the same command again: it continues and repeats no call."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

from conftest import SMALL, read_run


def _cached_calls(cache) -> int:
    try:
        with sqlite3.connect(cache, timeout=5) as db:
            return db.execute("SELECT COUNT(*) FROM calls_v2").fetchone()[0]
    except sqlite3.Error:
        return 0


def test_resume_after_kill_9_repeats_no_finished_call(tmp_path, embedded_checkpoint):
    out, cache = tmp_path / "run", tmp_path / "calls.sqlite"
    cmd = [
        sys.executable,
        "-m",
        "aloe_bench.cli.main",
        "run",
        "--task",
        "aloe_demo",
        "--model",
        "embedded",
        "--limit",
        "3",
        "--turns",
        "3",
        "--output",
        str(out),
        "--cache",
        str(cache),
        *SMALL,
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while _cached_calls(cache) < 5:  # a few finished calls, far from the 27 or so of the whole run
        assert proc.poll() is None, "the run ended before it could be killed"
        assert time.time() < deadline, "no progress"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    survived = _cached_calls(cache)
    partial, _ = read_run(out)
    assert partial["status"] == "running"  # what it had written is there and readable

    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    results, convs = read_run(out)
    assert results["status"] == "complete"
    assert len(convs) == 3 and all(len(c["turns"]) == 3 for c in convs)
    usage = results["usage"]
    # Usage counts both invocations: the killed one's last flush (`partial`) plus this one's.
    before = partial["usage"]
    replayed = sum(u["cached"] for u in usage.values()) - sum(u["cached"] for u in before.values())
    fresh = sum(u["calls"] for u in usage.values()) - sum(u["calls"] for u in before.values())
    # Turns the journal kept come back without any call; the rest replay from the cache: at most
    # every call that finished before the kill is replayed, and none is redone (every fresh call
    # added a new key to the cache).
    assert replayed <= survived
    assert fresh > 0  # and the rest was made now
    assert _cached_calls(cache) == survived + fresh
