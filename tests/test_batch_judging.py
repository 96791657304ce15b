"""--judge-batch against a local server with the Batch API's files and batches endpoints (a fake:
no local server of the real thing exists): batches that complete, fail or expire, and a run killed
while its batch was in flight resumes by polling that batch, not by submitting it again."""

import json
import signal
import subprocess
import sys
import time

from conftest import read_run

from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

FAST = "batch_window=0.3,batch_poll=0.2"


def _args(server, out, cache, limit="3", turns="2"):
    spec = "openai/fake"
    return [
        "run", "--model", spec, "--simulator", spec, "--judge", spec,
        "--model-base-url", server.base_url, "--simulator-base-url", server.base_url,
        "--judge-base-url", server.base_url, "--judge-args", FAST, "--judge-batch",
        "--personas", "demo", "--limit", limit, "--turns", turns, "--no-progress",
        "--output", str(out), "--cache", str(cache),
    ]  # fmt: skip


def _judge_lines(server) -> list[str]:
    """custom ids of every batch line the server was sent."""
    ids = []
    for batch in server.batches.values():
        text = server.files[batch["input_file_id"]].decode()
        ids += [json.loads(line)["custom_id"] for line in text.splitlines() if line.strip()]
    return ids


def _sync_judge_calls(server) -> int:
    return sum("1 to 5" in json.dumps(r) for r in server.requests)


def test_batch_judged_run_completes_with_the_same_parsing_and_half_price(cli, tmp_path):
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["Score: 4"])) as server:
        code, stdout, err = cli(
            *_args(server, tmp_path / "run", tmp_path / "c.sqlite"), "--price", "judge=1,2"
        )
        assert code == 0, err
        assert server.batches and all(b["status"] == "completed" for b in server.batches.values())
        assert len(_judge_lines(server)) == 6 and _sync_judge_calls(server) == 0  # all through batches
    results, convs = read_run(tmp_path / "run")
    assert [t["score"] for c in convs for t in c["turns"]] == [4] * 6
    judge = results["usage"]["judge"]
    assert judge["batch"]["batches"] >= 1 and judge["batch"]["fallback_sync"] == 0
    full = (judge["prompt_tokens"] * 1 + judge["completion_tokens"] * 2) / 1e6
    assert abs(judge["cost_usd"] - full / 2) < 1e-9  # the Batch API's half price
    recorded = json.loads((tmp_path / "run" / "batches.json").read_text())["batches"]
    assert {b["id"] for b in recorded} == set(server.batches)


def test_a_failed_batch_falls_back_to_sync_and_an_expired_one_resubmits(cli, tmp_path):
    with FakeOpenAIServer(FakeBehaviour(batch_outcomes=["failed"])) as server:
        code, _, err = cli(*_args(server, tmp_path / "failed", tmp_path / "f.sqlite"))
        assert code == 0, err
        assert _sync_judge_calls(server) > 0
    results, convs = read_run(tmp_path / "failed")
    assert all(t["score"] == 4 for c in convs for t in c["turns"])
    assert results["usage"]["judge"]["batch"]["failed"] >= 1

    with FakeOpenAIServer(FakeBehaviour(batch_outcomes=["expired", "completed"])) as server:
        code, _, err = cli(*_args(server, tmp_path / "expired", tmp_path / "e.sqlite", limit="4", turns="1"))
        assert code == 0, err
        lines = _judge_lines(server)
        assert len(lines) > len(set(lines)) == 4  # what expired unfinished went into another batch
    results, convs = read_run(tmp_path / "expired")
    assert all(t["score"] == 4 for c in convs for t in c["turns"])
    assert results["usage"]["judge"]["batch"]["expired"] >= 1


def test_killed_while_the_batch_is_in_flight_resumes_without_resubmitting(tmp_path):
    out, cache = tmp_path / "run", tmp_path / "c.sqlite"
    with FakeOpenAIServer(FakeBehaviour(batch_hold=True)) as server:
        cmd = [sys.executable, "-m", "aloe_bench.cli.main", *_args(server, out, cache, turns="1")]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not (out / "batches.json").exists() or len(_judge_lines(server)) < 3:
            assert proc.poll() is None and time.time() < deadline, "no batch was submitted"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        before = set(server.batches)
        server.behaviour.batch_hold = False  # the batch finishes while nobody waits for it
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
        assert set(server.batches) == before  # picked up by its id, not submitted again
        assert _sync_judge_calls(server) == 0
    results, convs = read_run(out)
    assert all(t["score"] == 4 for c in convs for t in c["turns"]) and len(convs) == 3
    assert results["usage"]["judge"]["batch"]["resumed"] == len(before)


def test_rejudge_a_finished_run_through_the_batch_api(cli, tmp_path):
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["2"])) as server:
        args = [a for a in _args(server, tmp_path / "run", tmp_path / "c.sqlite") if a != "--judge-batch"]
        code, _, err = cli(*args)
        assert code == 0, err
        assert not server.batches
        code, _, err = cli(
            "judge", tmp_path / "run", "--judge", "openai/fake-2", "--judge-base-url", server.base_url,
            "--judge-args", FAST, "--batch", "--output", tmp_path / "again", "--cache", tmp_path / "c.sqlite",
        )  # fmt: skip
        assert code == 0, err
        assert server.batches and _sync_judge_calls(server) == 6  # only the first run judged synchronously
    _, convs = read_run(tmp_path / "again")
    assert [t["score"] for c in convs for t in c["turns"]] == [2] * 6
    assert (tmp_path / "again" / "batches.json").is_file()
