"""Progress that moves within a turn, an ETA, the plan line and the busy-CPU warning (issue 15)."""

from __future__ import annotations

import io
import os
import time

from aloe_bench.engine import progress
from aloe_bench.engine.progress import GenerationActivity, TurnProgress, cpu_contention
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


def test_log_lines_show_a_batch_moving_before_the_turn_ends():
    stream, activity = io.StringIO(), GenerationActivity()
    bar = TurnProgress(4, 2, enabled=False, stream=stream, activity=activity, log_interval_s=0.05)
    activity.begin_batch(4, 10)
    for _ in range(3):
        activity.step(4)
    time.sleep(0.3)
    bar.close()
    text = stream.getvalue()
    assert "batch of 4: step 3/10" in text and "12 tokens generated" in text
    assert "turn 1/2: 0/4 conversations" in text and "ETA once turn 1 is done" in text


def test_eta_appears_once_the_first_turn_is_done():
    stream = io.StringIO()
    bar = TurnProgress(2, 3, enabled=False, stream=stream, activity=GenerationActivity())
    assert bar.eta_s() is None
    time.sleep(0.05)
    bar.turn_done(1)
    bar.turn_done(1)
    eta = bar.eta_s()
    bar.close()
    assert eta is not None and eta > 0  # two more turns like the first
    assert "turn 1/3: 2 conversations done; about" in stream.getvalue()


def test_busy_cores_are_detected(monkeypatch):
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)
    monkeypatch.setattr(os, "getloadavg", lambda: (7.5, 7.0, 6.0))
    warning = cpu_contention()
    assert warning and "load average 7.5 on 2 cores" in warning and "OMP_NUM_THREADS" in warning
    monkeypatch.setattr(os, "getloadavg", lambda: (0.5, 0.5, 0.5))
    assert cpu_contention() is None


def test_a_run_announces_its_plan_and_logs_requests_within_a_turn(cli, tmp_path, monkeypatch):
    monkeypatch.setattr(progress, "LOG_INTERVAL_S", 0.2)
    roles = []
    with FakeOpenAIServer(FakeBehaviour(latency_s=0.25)) as server:
        for role in ("model", "simulator", "judge"):
            roles += [f"--{role}", "openai/fake", f"--{role}-base-url", server.base_url]
        code, _, err = cli(
            "run", *roles, "--personas", "demo", "--limit", "2", "--turns", "2", "--concurrency", "1",
            "--no-progress", "--output", tmp_path / "run", "--cache", tmp_path / "c.sqlite",
        )  # fmt: skip
    assert code == 0, err
    assert "plan: 2 conversations x 2 turns = 4 exchanges; model openai/fake (OpenAI-compatible API)" in err
    assert "expected calls: 4 model, 4 simulator, 4 judge" in err
    before_turn_1 = err.split("turn 1/2: 2 conversations done")[0]
    assert "requests done" in before_turn_1  # something moved before the first turn finished
