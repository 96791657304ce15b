"""Rate limits: against a server that accepts N requests per second (429 above, with OpenAI's
headers), a run at --concurrency 256 settles near the limit instead of retrying in a storm; several
endpoints share the load, and one that is down is taken out and the run still finishes."""

import json
import subprocess
import sys
import time
from pathlib import Path

from aloe_bench.datasets.personas import Persona, load_persona_set
from aloe_bench.models.backends.ratelimit import (
    AdaptiveConcurrency,
    Endpoint,
    parse_duration,
    pause_from_headers,
)
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


def _personas(path: Path, n: int) -> Path:
    demo = load_persona_set("demo").personas
    rows = [Persona(f"{demo[i % 12].profile} (Variant {i}.)", demo[i % 12].personality) for i in range(n)]
    path.write_text("".join(json.dumps(p.to_dict()) + "\n" for p in rows))
    return path


def _run(tmp_path: Path, base_url: str, personas: int, turns: int, concurrency: int):
    spec = "openai/fake"
    cmd = [
        sys.executable, "-m", "aloe_bench.cli.main", "run",
        "--model", spec, "--simulator", spec, "--judge", spec,
        "--model-base-url", base_url, "--simulator-base-url", base_url, "--judge-base-url", base_url,
        "--personas", str(_personas(tmp_path / "p.jsonl", personas)), "--turns", str(turns),
        "--concurrency", str(concurrency), "--output", str(tmp_path / "run"), "--no-cache", "--no-progress",
    ]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads((tmp_path / "run" / "results.json").read_text()), done.stdout


def test_run_at_concurrency_256_settles_under_a_request_rate_limit(tmp_path):
    behaviour = FakeBehaviour(latency_s=0.05, rate_limit=60)
    with FakeOpenAIServer(behaviour) as server:
        start = time.monotonic()
        results, stdout = _run(tmp_path, server.base_url, personas=100, turns=4, concurrency=256)
        log = list(server.log)
    assert results["status"] == "complete"
    after = [status for t, status in log if t - start > 10]
    assert len(after) > 100, "the run was too short to show a steady state"
    rejected = sum(s == 429 for s in after) / len(after)
    print(f"after 10 s: {len(after)} requests, {rejected:.1%} rejected; {len(log)} in all")
    assert rejected < 0.05, f"{rejected:.1%} of requests rejected after the first 10 s"
    usage = results["usage"]["judge"]
    assert usage["concurrency_peak"] <= 256 and usage["concurrency_limit"] < 256  # it backed off
    assert sum(u["retries"] for u in results["usage"].values()) > 0
    assert "retries (" in stdout


def test_requests_spread_over_endpoints_and_a_dead_one_is_taken_out(tmp_path):
    from conftest import free_port

    with FakeOpenAIServer(FakeBehaviour()) as a, FakeOpenAIServer(FakeBehaviour()) as b:
        dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
        urls = ",".join([a.base_url, b.base_url, dead])
        results, _ = _run(tmp_path, urls, personas=12, turns=2, concurrency=8)
    assert results["status"] == "complete"
    assert len(a.requests) > 20 and len(b.requests) > 20  # both healthy servers took a share
    endpoints = results["usage"]["model"]["endpoints"]
    (dead_stats,) = [e for e in endpoints if e["url"] == dead]
    assert 1 <= dead_stats["errors"] < 10  # tried, taken out, not hammered


def test_reset_durations_and_headers():
    assert parse_duration("20ms") == 0.02 and parse_duration("6m0s") == 360 and parse_duration("1.5") == 1.5
    assert parse_duration("soon") is None
    assert pause_from_headers({"retry-after": "2"}, 429) == 2
    assert (
        pause_from_headers({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "1s"}, 200) == 1
    )
    # the request budget is mirrored, not paused on: spend what the server said is left, then wait
    endpoint = Endpoint("http://x")
    endpoint.observe({"x-ratelimit-remaining-requests": "2", "x-ratelimit-reset-requests": "1s",
                      "x-ratelimit-limit-requests": "5"})  # fmt: skip
    assert endpoint.take() == 0 and endpoint.take() == 0
    assert 0.9 < endpoint.take() <= 1.0
    endpoint.budget_reset = time.monotonic()  # the window ends: its whole budget again
    assert endpoint.take() == 0 and endpoint.budget == 4


def test_aimd_halves_once_per_congestion_and_grows_back():
    limiter = AdaptiveConcurrency(64)
    limiter.throttled(granted_at=time.monotonic())
    assert limiter.limit == 32
    limiter.throttled(granted_at=0.0)  # sent before the decrease: the same congestion
    assert limiter.limit == 32
    for _ in range(32):
        limiter.succeeded()
    assert 32 < limiter.limit <= 33.1
