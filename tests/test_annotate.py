"""The engine's annotation run kind (engine/annotate.py) for a task it has never heard of: a role on
a real OpenAI-compatible server on 127.0.0.1, the sidecar and results.json written atomically in
the run's order, the calls replayed from the cache on a re-run, and a failure that loses nothing."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pytest

from aloe_bench.engine.annotate import Annotation, AnnotatorRole, annotate_run
from aloe_bench.engine.finished_run import open_finished_run
from aloe_bench.errors import UserInputError
from aloe_bench.log.records import RunResults, RunWarning
from aloe_bench.log.results import ConversationRecord, read_results_file
from aloe_bench.models.backends import ChatRequest, GenerationSettings
from aloe_bench.models.role_config import RoleConfig
from aloe_bench.models.roles import Role
from aloe_bench.testing.fake_openai import FakeOpenAIServer
from aloe_bench.testing.runs import write_synthetic_run

# Conversation "c" has no turns: nothing to annotate, and no line for it.
SCORES = {"a": [3, 4, 5], "b": [2, 2], "c": [], "d": [5]}


@dataclass
class Count:
    id: str
    words: list[int]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "words": self.words}


class WordCounter:
    """A made-up task's annotation: a `counter` role (the fake server answers "You said N words")
    reads every user message; the summary is one warning with the total."""

    def __init__(self, roles: Mapping[str, Role], fail_on: str | None = None):
        self.role = roles.get("counter")
        self.fail_on = fail_on
        self.cancelled: list[str] = []

    async def annotate(self, conv: ConversationRecord) -> Count:
        if conv.id == self.fail_on:
            raise RuntimeError(f"planted failure in {conv.id}")
        if self.role is None:
            return Count(conv.id, [len(t.user.split()) for t in conv.turns])
        try:
            if self.fail_on is not None:
                await asyncio.sleep(5)  # still running when the planted failure comes
            requests = [
                ChatRequest([{"role": "user", "content": t.user}], GenerationSettings(8)) for t in conv.turns
            ]
            answers = await self.role.generate(requests)
        except asyncio.CancelledError:
            self.cancelled.append(conv.id)
            raise
        return Count(conv.id, [int(a.text.split("said ")[1].split()[0]) for a in answers if a.text])

    def record(self, results: RunResults, counts: list[Count]) -> None:
        total = sum(sum(c.words) for c in counts)
        results.warnings = [w for w in results.warnings if w.code != "words"]
        results.warnings.append(RunWarning(code="words", message=f"{total} words"))


def _annotation(server: FakeOpenAIServer | None, cache, made: list[WordCounter], fail_on=None) -> Annotation:
    def make(roles: Mapping[str, Role]) -> WordCounter:
        made.append(WordCounter(roles, fail_on))
        return made[-1]

    roles = {}
    if server is not None:
        config = RoleConfig("openai/fake", {"base_url": server.base_url, "backoff": "0.01"})
        roles["counter"] = AnnotatorRole(config, "counter-v1")
    return Annotation(sidecar="words.jsonl", make_annotator=make, roles=roles, cache=str(cache))


def test_a_task_the_engine_never_heard_of_annotates_a_run(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SCORES)
    before = read_results_file(run_dir / "results.json").to_dict()  # as migrated on read
    cache = tmp_path / "calls.sqlite"
    made: list[WordCounter] = []
    with FakeOpenAIServer() as server:
        results = annotate_run(
            open_finished_run(run_dir, "count"), _annotation(server, cache, made), progress=False
        )
        assert len(server.requests) == 6  # one call per turn
        lines = [json.loads(line) for line in (run_dir / "words.jsonl").read_text().splitlines()]
        assert lines == [
            {"id": "a", "words": [2, 2, 2]},
            {"id": "b", "words": [2, 2]},
            {"id": "d", "words": [2]},
        ]
        after = read_results_file(run_dir / "results.json").to_dict()
        assert {w["code"]: w["message"] for w in after["warnings"]} == {"words": "12 words"}
        assert results.warning_codes() == {"words"}
        assert {k: v for k, v in after.items() if k != "warnings"} == {
            k: v for k, v in before.items() if k != "warnings"
        }  # everything else kept
        assert made[0].role is not None and made[0].role.usage.calls == 6

        # Again: every call replayed from the cache, none sent.
        annotate_run(open_finished_run(run_dir, "count"), _annotation(server, cache, made), progress=False)
        assert len(server.requests) == 6
        assert made[1].role is not None and (made[1].role.usage.calls, made[1].role.usage.cached) == (0, 6)
    assert not list(run_dir.glob(".*.tmp"))


def test_an_annotation_that_names_no_role_opens_no_cache(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SCORES)
    cache = tmp_path / "calls.sqlite"
    annotate_run(open_finished_run(run_dir, "count"), _annotation(None, cache, []), progress=False)
    assert not cache.exists()
    assert "user 1" in (run_dir / "conversations.jsonl").read_text()
    assert [json.loads(line)["words"] for line in (run_dir / "words.jsonl").read_text().splitlines()] == [
        [2, 2, 2],
        [2, 2],
        [2],
    ]


def test_a_failure_cancels_the_other_conversations_and_writes_nothing(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", SCORES)
    results_before = (run_dir / "results.json").read_bytes()
    made: list[WordCounter] = []
    with FakeOpenAIServer() as server:
        annotation = _annotation(server, tmp_path / "calls.sqlite", made, fail_on="d")
        with pytest.raises(RuntimeError, match="planted failure in d"):
            annotate_run(open_finished_run(run_dir, "count"), annotation, progress=False)
        assert server.requests == []
    assert sorted(made[0].cancelled) == ["a", "b"]
    assert (run_dir / "results.json").read_bytes() == results_before
    assert not (run_dir / "words.jsonl").exists()


def test_a_run_with_no_conversations_is_refused_in_one_line(tmp_path):
    run_dir = write_synthetic_run(tmp_path / "run", {})
    with pytest.raises(UserInputError, match="no conversations to count"):
        open_finished_run(run_dir, "count")
