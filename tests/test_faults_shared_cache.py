"""Two runs on one call cache at the same time (issue 25): different models under test, the same
simulated user and judge. Both complete with the transcripts they have alone, the second reuses the
simulator and judge calls the first already made, and neither fails on a locked database, even
while a third process holds the write lock for seconds."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
import time

from conftest import read_run
from test_faults_kill import run, run_command, write_personas

from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

PERSONAS = 10


def _calls(results: dict) -> tuple[int, int]:
    usage = results["usage"].values()
    return sum(u["calls"] for u in usage), sum(u["cached"] for u in usage)


def test_two_runs_share_one_cache_concurrently(tmp_path):
    personas = write_personas(tmp_path / "personas.jsonl", PERSONAS)
    # The fake server answers every model alike, so the two runs' conversations coincide except
    # for the model role's own calls (keyed by its spec): simulator and judge calls are shared.
    behaviour = FakeBehaviour(latency_s=0.01, judge_by_content=True)
    models = {"a": "openai/fake-a", "b": "openai/fake-b"}
    with FakeOpenAIServer(behaviour) as server:
        alone: dict[str, tuple[bytes, int]] = {}
        for name, model in models.items():  # each alone, on a cache of its own
            before = len(server.requests)
            cmd = run_command(
                server.base_url, personas, tmp_path / f"alone-{name}", tmp_path / f"{name}.sqlite", model
            )
            done = run(cmd)
            assert done.returncode == 0, done.stderr
            alone[name] = (
                (tmp_path / f"alone-{name}" / "conversations.jsonl").read_bytes(),
                len(server.requests) - before,
            )
        model_calls = {
            name: sum(1 for r in server.requests if r.get("model") == m.split("/", 1)[1])
            for name, m in models.items()
        }
        assert all(n > 0 for n in model_calls.values())

        # Together: a's calls take ~20 s (90 calls, 1.5 s each, a few at a time); b is started once
        # a asked the model under test its first question, i.e. once a simulated-user answer of a's
        # is in the cache (b then finds it there, however fast b starts): they overlap.
        behaviour.latency_s = 1.5
        shared = tmp_path / "shared.sqlite"
        before = len(server.requests)
        commands = {
            name: run_command(server.base_url, personas, tmp_path / f"shared-{name}", shared, model)
            for name, model in models.items()
        }
        procs = {
            "a": subprocess.Popen(commands["a"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        }
        deadline = time.time() + 120
        while not any(r.get("model") == "fake-a" for r in server.requests[before:]):
            assert procs["a"].poll() is None, "run a finished before run b started; slow the fake server"
            assert time.time() < deadline
            time.sleep(0.05)
        procs["b"] = subprocess.Popen(
            commands["b"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        while not any(r.get("model") == "fake-b" for r in server.requests[before:]):  # b's first call
            assert procs["b"].poll() is None, procs["b"].communicate()[1]
            assert time.time() < deadline
            time.sleep(0.05)
        assert procs["a"].poll() is None, "run a finished before run b made its first call"

        def hold_write_lock() -> None:  # a third process takes the write lock for 2 s mid-run
            db = sqlite3.connect(shared, isolation_level=None, timeout=30)
            db.execute("BEGIN IMMEDIATE")
            time.sleep(2.0)
            db.execute("COMMIT")
            db.close()

        holder = threading.Thread(target=hold_write_lock)
        holder.start()
        outputs = {name: proc.communicate(timeout=180) for name, proc in procs.items()}
        holder.join()
        made = len(server.requests) - before

    for name in models:
        stdout, stderr = outputs[name]
        assert procs[name].returncode == 0, stderr
        assert "locked" not in stderr.lower()
        results, convs = read_run(tmp_path / f"shared-{name}")
        assert results["status"] == "complete"
        assert (tmp_path / f"shared-{name}" / "conversations.jsonl").read_bytes() == alone[name][0]
        calls, cached = _calls(results)
        assert calls + cached == alone[name][1]  # every call answered once: by a backend or the cache
    a_calls, a_cached = _calls(read_run(tmp_path / "shared-a")[0])
    b_calls, b_cached = _calls(read_run(tmp_path / "shared-b")[0])
    print(
        f"alone: a {alone['a'][1]}, b {alone['b'][1]} calls; shared: made {made}, a {a_calls}+{a_cached} cached, b {b_calls}+{b_cached} cached"
    )
    assert made == a_calls + b_calls  # the runs' counts are the server's
    assert b_cached > 0  # b reused a's simulator and judge calls
    # Needed at least: everything a run needs alone, plus the other's model calls; at most both
    # runs alone (calls both made at the same moment are made twice).
    assert alone["a"][1] + model_calls["b"] <= made < alone["a"][1] + alone["b"][1]
