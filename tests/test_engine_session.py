"""The one engine (engine/session.py, engine/task.py): config hash, status vocabulary,
cancel-and-flush, usage carried over invocations, re-judged runs priced like runs."""

from __future__ import annotations

import asyncio
import hashlib
import json

import pytest
from conftest import read_run

from aloe_bench.engine.session import (
    RUN_STATUSES,
    carry_usage,
    config_hash,
    final_status,
    record_run,
    stopped_status,
)
from aloe_bench.log.results import ConversationRecord
from aloe_bench.models.roles import Usage
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


def test_config_hash_is_the_form_existing_run_folders_were_written_with():
    record = {"b": [1, 2], "a": {"spec": "embedded", "ü": None}}
    old = hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:16]
    assert config_hash(record) == old and len(old) == 16
    assert config_hash({**record, "a": 1}) != old


def test_one_status_vocabulary():
    assert RUN_STATUSES == ("running", "complete", "incomplete", "failed")
    done, failed = (
        ConversationRecord("a", {}, status="complete"),
        ConversationRecord("b", {}, status="failed"),
    )
    assert final_status([done, done]) == "complete" and final_status([done, failed]) == "incomplete"
    assert stopped_status(KeyboardInterrupt()) == "incomplete"
    assert stopped_status(asyncio.CancelledError()) == "incomplete"
    assert stopped_status(RuntimeError("backend down")) == "failed"


class _Recorder:
    def __init__(self) -> None:
        self.flushed: list[str] = []

    def flush(self, status):
        self.flushed.append(status)
        return {"status": status}


@pytest.mark.parametrize("error, status", [(KeyboardInterrupt, "incomplete"), (RuntimeError, "failed")])
def test_a_stopped_run_cancels_what_is_in_flight_and_flushes_first(error, status):
    recorder, stopped = _Recorder(), []

    async def work():
        raise error()

    async def stop():
        stopped.append(True)

    with pytest.raises(error):
        asyncio.run(record_run(recorder, work, status=lambda: "complete", stop=stop))
    assert recorder.flushed == ["running", status] and stopped == [True]
    ok = _Recorder()
    assert asyncio.run(record_run(ok, lambda: asyncio.sleep(0), status=lambda: "complete")) == {
        "status": "complete"
    }
    assert ok.flushed == ["running", "complete"]


def test_usage_is_carried_only_from_the_same_run(tmp_path):
    previous = {"calls": 3, "cached": 1, "prompt_tokens": 10, "seconds": 1.5, "requests_per_s": 9}
    (tmp_path / "results.json").write_text(json.dumps({"config_hash": "h1", "usage": {"judge": previous}}))
    usage = {"judge": Usage(calls=2, cached=4), "model": Usage()}
    carry_usage(tmp_path, "other", usage)
    assert usage["judge"].calls == 2  # another run's counts are not this run's
    carry_usage(tmp_path, "h1", usage)
    assert (usage["judge"].calls, usage["judge"].cached, usage["judge"].prompt_tokens) == (5, 5, 10)
    assert usage["judge"].seconds == 1.5 and usage["model"] == Usage()


def test_rerun_reports_usage_of_every_invocation_and_rejudge_is_priced(cli, tmp_path):
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["2", "3"])) as server:
        roles = ["--simulator", "openai/fake", "--simulator-base-url", server.base_url]
        roles += ["--judge", "openai/gpt-4o-mini", "--judge-base-url", server.base_url]
        args = ["run", "--model", "control/generic", *roles, "--personas", "demo", "--limit", "2"]
        args += [
            "--turns",
            "2",
            "--no-progress",
            "--output",
            tmp_path / "run",
            "--cache",
            tmp_path / "c.sqlite",
        ]
        assert cli(*args)[0] == 0
        first, _ = read_run(tmp_path / "run")
        assert cli(*args)[0] == 0  # finished already: no call, but the record keeps the first one's
        again, _ = read_run(tmp_path / "run")
        judge = ["--judge", "openai/gpt-4o-mini", "--judge-base-url", server.base_url]
        rejudge = ["judge", tmp_path / "run", *judge, "--no-progress", "--output", tmp_path / "rj"]
        code, _, err = cli(*rejudge, "--cache", tmp_path / "c2.sqlite")
    assert code == 0, err
    for role in ("model", "simulator", "judge"):
        assert again["usage"][role]["calls"] == first["usage"][role]["calls"] > 0, role
        assert again["usage"][role]["prompt_tokens"] == first["usage"][role]["prompt_tokens"]
    assert again["usage"]["judge"]["cost_usd"] == first["usage"]["judge"]["cost_usd"] > 0
    rejudged, _ = read_run(tmp_path / "rj")
    usage = rejudged["usage"]
    assert usage["judge"]["calls"] >= 4 and usage["judge"]["cost_usd"] > 0  # a known price: gpt-4o-mini
    assert usage["model"]["calls"] == usage["simulator"]["calls"] == 0  # nothing generated, nothing paid
    assert "cost_usd" not in usage["model"] and "cost_usd" not in usage["simulator"]
    assert rejudged["pricing"]["roles"]["judge"]["input"] == 0.15


def test_the_registry_finds_tasks_by_kind_or_module_and_names_what_is_wrong():
    from aloe_bench.engine.task_api import get_task, kinds
    from aloe_bench.errors import UserInputError

    assert {"aloe", "multifaceted"} <= set(kinds())
    assert get_task("aloe").item == "conversation" and get_task("multifaceted").item == "instance"
    assert get_task("aloe_bench.tasks.multifaceted") is get_task("multifaceted")  # a module's TASK
    with pytest.raises(UserInputError, match="unknown kind 'nope'"):
        get_task("nope", "my_task")
    with pytest.raises(UserInputError, match="cannot import no.such"):
        get_task("no.such", "my_task")
    with pytest.raises(UserInputError, match="defines no task"):
        get_task("aloe_bench.seeds", "my_task")
