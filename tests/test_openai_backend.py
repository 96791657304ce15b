"""The openai/ backend against a real OpenAI-compatible server (`transformers serve` on 127.0.0.1),
plus fault injection (errors, garbage judge answers, a refused key) with the fake server."""

import asyncio
import json

from conftest import SMALL, read_run

from aloe_bench.models.backends import BackendPool, ChatRequest, GenerationSettings
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

SECRET = "sk-test-DO-NOT-LEAK-4242"


def test_openai_backend_on_transformers_serve_matches_hf_greedy(transformers_server, embedded_checkpoint):
    chats = [
        [{"role": "user", "content": "Hi! I just got back from a long day of fishing."}],
        [
            {"role": "user", "content": "Name a cat."},
            {"role": "assistant", "content": "Whiskers!"},
            {"role": "user", "content": "Something more unusual?"},
        ],
    ]
    settings = GenerationSettings(max_new_tokens=24, temperature=0.0, seed=1)

    async def both():
        pool = BackendPool()
        try:
            hf = pool.get(f"hf/{embedded_checkpoint}")
            api = pool.get(f"openai/{embedded_checkpoint}", {"base_url": transformers_server})
            local = await hf.generate([ChatRequest(c, settings) for c in chats])
            remote = await api.generate([ChatRequest(c, settings) for c in chats])
            return local, remote
        finally:
            await pool.aclose()

    local, remote = asyncio.run(both())
    for a, b in zip(local, remote, strict=True):
        assert b.ok and b.text, b.error
        assert a.text == b.text
        assert a.completion_tokens == b.completion_tokens and a.prompt_tokens == b.prompt_tokens


def test_run_with_every_role_behind_transformers_serve(
    cli, tmp_path, transformers_server, embedded_checkpoint
):
    spec = f"openai/{embedded_checkpoint}"
    code, stdout, err = cli(
        "run",
        "--model",
        spec,
        "--simulator",
        spec,
        "--judge",
        spec,
        "--personas",
        "demo",
        "--limit",
        "2",
        "--turns",
        "2",
        *SMALL,
        "--temperature",
        "0",
        "--model-base-url",
        transformers_server,
        "--simulator-base-url",
        transformers_server,
        "--judge-base-url",
        transformers_server,
        "--output",
        tmp_path / "run",
        "--cache",
        tmp_path / "c.sqlite",
    )
    assert code == 0, err
    results, convs = read_run(tmp_path / "run")
    assert results["status"] == "complete"
    assert all(t["assistant"] for c in convs for t in c["turns"])
    usage = results["usage"]
    assert usage["model"]["calls"] == 4 and usage["model"]["completion_tokens"] > 0
    assert results["config"]["model"]["backend"]["base_url"] == transformers_server


def _fake_args(tmp_path, server, name="run", limit="3", turns="2"):
    """Every role behind the fault-injection server."""
    spec = "openai/fake-model"
    roles = []
    for role in ("model", "simulator", "judge"):
        roles += [f"--{role}", spec, f"--{role}-base-url", server.base_url, f"--{role}-args", "backoff=0.01"]
    return [
        "run",
        *roles,
        "--personas",
        "demo",
        "--limit",
        limit,
        "--turns",
        turns,
        "--no-progress",
        "--output",
        tmp_path / name,
        "--cache",
        tmp_path / f"{name}.sqlite",
    ]


def _fake_run(cli, tmp_path, server, *extra, name="run"):
    return cli(*_fake_args(tmp_path, server, name), *extra)


def test_transient_errors_are_retried(cli, tmp_path):
    with FakeOpenAIServer(FakeBehaviour(fail_first=4, fail_status=429)) as server:
        code, _, err = _fake_run(cli, tmp_path, server)
    assert code == 0, err
    results, _ = read_run(tmp_path / "run")
    calls = sum(u["calls"] for u in results["usage"].values())
    assert len(server.requests) == calls + 4  # each 429 was retried once more


def test_one_failing_conversation_is_recorded_and_the_others_finish(cli, tmp_path):
    from aloe_bench.datasets.personas import load_persona_set

    doomed = load_persona_set("demo").personas[1]
    marker = doomed.profile.split(".")[0]  # only this persona's simulator prompts contain it
    with FakeOpenAIServer(FakeBehaviour(fail_if_contains=marker, fail_status=500)) as server:
        code, stdout, err = _fake_run(cli, tmp_path, server, "--model-args", "backoff=0.01,max_retries=2")
    assert code == 3, err
    results, convs = read_run(tmp_path / "run")
    by_id = {c["id"]: c for c in convs}
    assert by_id[doomed.id]["status"] == "failed"
    assert "simulated user failed" in by_id[doomed.id]["error"] and "HTTP 500" in by_id[doomed.id]["error"]
    others = [c for c in convs if c["id"] != doomed.id]
    assert all(c["status"] == "complete" and len(c["turns"]) == 2 for c in others)
    assert results["metrics"]["failed"] == 1 and results["metrics"]["n"] == [2, 2]
    assert results["failures"][0]["id"] == doomed.id
    assert "1 conversation(s) failed" in err


def test_garbage_judge_answers_are_reasked_then_null(cli, tmp_path):
    with FakeOpenAIServer(
        FakeBehaviour(judge_answers=["I think it is fine", "no idea", "really no idea"])
    ) as server:
        code, _, err = _fake_run(cli, tmp_path, server, "--limit", "1", "--turns", "1", name="garbage")
    assert code == 0, err
    results, convs = read_run(tmp_path / "garbage")
    (turn,) = convs[0]["turns"]
    assert turn["score"] is None and turn["judge_attempts"] == 3 and turn["judge_raw"] == "really no idea"
    assert results["metrics"]["invalid"] == [1] and results["metrics"]["n"] == [0]
    assert results["metrics"]["avg"] is None  # nulls are excluded from means, never counted as a score

    with FakeOpenAIServer(FakeBehaviour(judge_answers=["hmm, tough one", "**Score:** 5"])) as server:
        code, _, err = _fake_run(cli, tmp_path, server, "--limit", "1", "--turns", "1", name="reasked")
    assert code == 0, err
    _, convs = read_run(tmp_path / "reasked")
    (turn,) = convs[0]["turns"]
    assert turn["score"] == 5 and turn["judge_attempts"] == 2


def test_refused_key_stops_with_one_line_and_key_never_leaks(cli, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAIServer(FakeBehaviour(required_key="another-key")) as server:
        code, stdout, err = _fake_run(cli, tmp_path, server, "-v")
    assert code == 2
    assert err.count("aloe-bench: error:") == 1 and "refused" in err and "API key" in err
    assert SECRET not in err + stdout


def test_api_key_never_reaches_results_cache_or_logs(cli, tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    with FakeOpenAIServer(FakeBehaviour(required_key=SECRET, fail_first=2)) as server:
        code, stdout, err = cli("-v", *_fake_args(tmp_path, server, limit="2", turns="1"))
        assert server.headers_seen[0]["authorization"] == f"Bearer {SECRET}"  # it was really used
    assert code == 0, err
    blobs = [stdout, err, caplog.text]
    for f in (tmp_path / "run").iterdir():
        blobs.append(f.read_bytes().decode("utf-8", "replace"))
    blobs.append((tmp_path / "run.sqlite").read_bytes().decode("utf-8", "replace"))
    assert not [b for b in blobs if SECRET in b]
    assert json.loads((tmp_path / "run" / "results.json").read_text())["status"] == "complete"
