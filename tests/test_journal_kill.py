"""The append-only run log: a run killed with SIGKILL at random moments, several times, resumes to
exactly the files an uninterrupted run writes; a torn last journal line is tolerated."""

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

from conftest import read_run

from aloe_bench.datasets.personas import Persona, load_persona_set
from aloe_bench.log.journal import JOURNAL_FILE, merged_conversations
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


def _personas(path: Path, n: int) -> Path:
    demo = load_persona_set("demo").personas
    rows = [
        Persona(f"{demo[i % len(demo)].profile} (Variant {i}.)", demo[i % len(demo)].personality)
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in rows))
    return path


def _command(base_url: str, personas: Path, out: Path, cache: Path) -> list[str]:
    spec = "openai/fake"
    return [
        sys.executable, "-m", "aloe_bench.cli.main", "run",
        "--model", spec, "--simulator", spec, "--judge", spec,
        "--model-base-url", base_url, "--simulator-base-url", base_url, "--judge-base-url", base_url,
        "--personas", str(personas), "--turns", "4", "--concurrency", "8",
        "--output", str(out), "--cache", str(cache), "--no-progress",
    ]  # fmt: skip


def _comparable(results: dict) -> dict:
    """What must not depend on the kills: metrics, failures, status."""
    return {k: results[k] for k in ("metrics", "failures", "status", "config_hash")}


def test_sigkill_at_random_points_then_resume_equals_uninterrupted(tmp_path):
    personas = _personas(tmp_path / "personas.jsonl", 30)
    behaviour = FakeBehaviour(latency_s=0.01, judge_by_content=True)
    with FakeOpenAIServer(behaviour) as server:
        ref_out = tmp_path / "reference"
        ref = subprocess.run(
            _command(server.base_url, personas, ref_out, tmp_path / "ref.sqlite"),
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert ref.returncode == 0, ref.stderr
        assert not (ref_out / JOURNAL_FILE).exists()  # compacted away at the end

        out, cache = tmp_path / "killed", tmp_path / "killed.sqlite"
        cmd = _command(server.base_url, personas, out, cache)
        rng = random.Random(14)
        kills = 0
        for _ in range(4):
            # Killed at a random point of its progress (after 20 to 70 more requests reached the server,
            # then 0-30 ms), not of the clock: how fast a process starts varies by machine.
            target = len(server.requests) + rng.randint(20, 70)
            proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            while proc.poll() is None and len(server.requests) < target:
                time.sleep(0.002)
            time.sleep(rng.uniform(0.0, 0.03))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait()
            if (out / "results.json").exists():  # what is on disk is always readable
                json.loads((out / "results.json").read_text())
                list(merged_conversations(out))
        assert kills >= 2, "the run finished before it could be killed; slow the fake server"
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr

    ref_results, ref_convs = read_run(ref_out)
    results, convs = read_run(out)
    assert _comparable(results) == _comparable(ref_results)
    assert (out / "conversations.jsonl").read_bytes() == (ref_out / "conversations.jsonl").read_bytes()
    assert len(convs) == 30 and all(len(c["turns"]) == 4 and c["status"] == "complete" for c in convs)
    assert len({t["score"] for c in convs for t in c["turns"]}) > 1  # the scores vary, so order matters


def test_torn_last_journal_line_is_skipped(tmp_path):
    (tmp_path / "conversations.jsonl").write_text(
        json.dumps({"id": "a", "persona": {}, "status": "running", "error": None, "turns": []}) + "\n"
    )
    good = {"id": "a", "turn": 0, "set": {"user": "hi", "assistant": "hello"}}
    torn = json.dumps({"id": "a", "turn": 1, "set": {"user": "x", "assistant": "y"}})[:-7]
    (tmp_path / JOURNAL_FILE).write_text(json.dumps(good) + "\n" + torn)
    (conv,) = merged_conversations(tmp_path)
    assert [t["user"] for t in conv["turns"]] == ["hi"]
