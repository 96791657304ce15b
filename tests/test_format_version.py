"""results.json `format_version` and its typed records (issue 10): written by every writer, old runs
migrate on read, unknown keys survive a round trip, newer formats are refused with one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aloe_bench.errors import UserInputError
from aloe_bench.log.records import RoleUsage, RunResults
from aloe_bench.log.results import FORMAT_VERSION, load_run, write_results
from aloe_bench.scorers.rubric import RubricMetrics
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer

REPO = Path(__file__).resolve().parents[1]
# The published runs written before results.json had a format_version (format 0); runs published
# since (embedded-demo-swap) carry format_version 1.
OLD_RUNS = ("embedded-demo", "embedded-demo-t0.7", "embedded-dpo-demo", "embedded-sft-demo")
PUBLISHED = [REPO / "leaderboard" / "runs" / name for name in OLD_RUNS]


def _fake_roles(url: str, *roles: str) -> list[str]:
    flags = []
    for role in roles:
        flags += [f"--{role}", "openai/fake", f"--{role}-base-url", url]
    return flags


def test_the_published_runs_load_as_format_0():
    assert len(PUBLISHED) == 4
    assert load_run(REPO / "leaderboard" / "runs" / "embedded-demo-swap").format_version == 1
    for directory in PUBLISHED:
        assert "format_version" not in json.loads((directory / "results.json").read_text())
        run = load_run(directory)
        assert run.format_version == 0, directory.name
        assert run.conversations and run.metrics.avg is not None, directory.name


def test_a_fresh_run_and_its_rejudging_write_the_current_format(cli, tmp_path):
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["4"])) as server:
        run_dir, rejudged = tmp_path / "run", tmp_path / "rejudged"
        code, _, err = cli(
            "run", *_fake_roles(server.base_url, "model", "simulator", "judge"), "--personas", "demo",
            "--limit", "1", "--turns", "2", "--max-new-tokens", "8", "--no-progress", "--no-cache",
            "--output", run_dir,
        )  # fmt: skip
        assert code == 0, err
        code, _, err = cli(
            "judge", run_dir, *_fake_roles(server.base_url, "judge"), "--no-cache", "--no-progress",
            "--output", rejudged,
        )  # fmt: skip
        assert code == 0, err
    assert FORMAT_VERSION == 3
    for directory in (run_dir, rejudged):
        assert json.loads((directory / "results.json").read_text())["format_version"] == FORMAT_VERSION
        assert load_run(directory).format_version == FORMAT_VERSION
        # Format 3: each turn's verdict keyed by its scorer, each figure with value, interval and n.
        written = json.loads((directory / "results.json").read_text())
        avg = written["metrics"]["values"]["avg"]
        assert avg == {
            "value": written["metrics"]["avg"],
            "interval": written["metrics"]["ci"]["avg"],
            "n": 1,
        }
        for line in (directory / "conversations.jsonl").read_text().splitlines():
            for turn in json.loads(line)["turns"]:
                assert turn["scores"] == {"judge": {"value": turn["score"]}} and turn["score"] == 4


def _multifaceted_run(cli, tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setattr("aloe_bench.engine.task_files.tasks_dir", lambda: REPO / "tasks")
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["Feedback: fine.\n[RESULT] 4"])) as server:
        code, _, err = cli(
            "run", "--task", "multifaceted_demo", *_fake_roles(server.base_url, "model", "judge"),
            "--limit", "1", "--no-cache", "--no-progress", "--output", tmp_path / "mf",
        )  # fmt: skip
    assert code == 0, err
    return tmp_path / "mf"


def test_a_multifaceted_run_writes_the_current_format_without_aloe_placeholders(cli, tmp_path, monkeypatch):
    run_dir = _multifaceted_run(cli, tmp_path, monkeypatch)
    results = json.loads((run_dir / "results.json").read_text())
    assert results["format_version"] == FORMAT_VERSION == 3
    assert "simulator" not in results["config"]  # no simulated user, no placeholder entry
    (conversation,) = [
        json.loads(line) for line in (run_dir / "conversations.jsonl").read_text().splitlines()
    ]
    assert "personality" not in conversation["persona"] and conversation["persona"]["profile"]
    run = load_run(run_dir)
    assert run.config.simulator is None and run.config.kind == "multifaceted"
    rubric = RubricMetrics.of(run.metrics)
    assert rubric is not None and rubric.instances == 1
    assert rubric.score == rubric.avg == run.conversations[0].turns[0].score == 4.0


def test_a_multifaceted_run_written_the_old_way_is_migrated_on_read(cli, tmp_path, monkeypatch):
    """Format 1 wrote `"simulator": {"spec": null}` and `personality: ""` so that ALOE readers did not
    crash; read back, neither is there, and rewriting the file writes the current format."""
    run_dir = _multifaceted_run(cli, tmp_path, monkeypatch)
    results = json.loads((run_dir / "results.json").read_text())
    results["format_version"] = 1
    results["config"]["simulator"] = {"spec": None}
    results["status"] = "interrupted"  # what an interrupted run of format <= 1 said
    (run_dir / "results.json").write_text(json.dumps(results))
    conv_path = run_dir / "conversations.jsonl"
    conversation = json.loads(conv_path.read_text())
    conversation["persona"]["personality"] = ""
    conv_path.write_text(json.dumps(conversation) + "\n")

    run = load_run(run_dir)
    assert run.format_version == 1
    assert run.config.simulator is None and run.results.status == "incomplete"
    assert "personality" not in run.conversations[0].persona
    twin = tmp_path / "mf-twin"
    shutil.copytree(run_dir, twin)
    for command in (["compare", run_dir, twin], ["view", run_dir]):
        code, _, err = cli(*command)
        assert code == 0, err
    write_results(run_dir / "results.json", run.results)
    rewritten = json.loads((run_dir / "results.json").read_text())
    assert rewritten["format_version"] == FORMAT_VERSION and "simulator" not in rewritten["config"]


@pytest.mark.parametrize("name", [*OLD_RUNS, "embedded-demo-swap"])
def test_every_published_run_round_trips_through_its_typed_record(name):
    raw = json.loads((REPO / "leaderboard" / "runs" / name / "results.json").read_text())
    written = RunResults.from_dict(raw).to_dict()
    # Format <= 2 gains its version number and `metrics.values` (its figures by name, with interval
    # and n), nothing else changes: no field lost, no null dropped.
    assert "values" not in raw["metrics"]
    values = written["metrics"]["values"]
    assert values["avg"] == {"value": raw["metrics"]["avg"], "interval": raw["metrics"]["ci"]["avg"],
                             "n": raw["metrics"]["conversations"]}  # fmt: skip
    expected = {"format_version": 0, **raw, "metrics": {**raw["metrics"], "values": values}}
    assert written == (
        expected if "format_version" not in raw else {**expected, "format_version": raw["format_version"]}
    )
    run = load_run(REPO / "leaderboard" / "runs" / name)
    assert run.metrics.al and len(run.metrics.al) == run.turns == 3
    assert run.config.simulator is not None and run.config.simulator.spec == "embedded"
    assert all(isinstance(u, RoleUsage) for u in run.results.usage.values())


def test_keys_this_version_does_not_know_survive_a_round_trip():
    raw = json.loads((PUBLISHED[0] / "results.json").read_text())
    raw["from_the_future"] = {"anything": [1, 2]}
    raw["config"]["model"]["quantization"] = "int4"
    raw["usage"]["model"]["reasoning_tokens"] = 12
    raw["metrics"]["ci"]["method"] = "bca"
    record = RunResults.from_dict(raw)
    assert record.extra["from_the_future"] == {"anything": [1, 2]}
    assert record.config.model.extra == {"quantization": "int4"}
    assert record.usage["model"].extra == {"reasoning_tokens": 12}
    written = record.to_dict()
    assert written == {
        "format_version": 0,
        **raw,
        "metrics": {**raw["metrics"], "values": written["metrics"]["values"]},
    }


def test_an_unknown_status_or_a_malformed_section_is_one_clear_line(tmp_path):
    for key, value, message in (
        ("status", "paused", "status: 'paused' is not one of running, complete, incomplete, failed"),
        ("usage", {"model": "many"}, "usage.model: a JSON object was expected, got str"),
    ):
        copy = _with_version(tmp_path / key, FORMAT_VERSION)
        results = json.loads((copy / "results.json").read_text())
        results[key] = value
        (copy / "results.json").write_text(json.dumps(results))
        with pytest.raises(UserInputError, match="results.json: " + message.replace("(", r"\(")):
            load_run(copy)


def _with_version(tmp_path: Path, version: object) -> Path:
    copy = tmp_path / f"run-v{version}"
    tmp_path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(PUBLISHED[0], copy)
    results = json.loads((copy / "results.json").read_text())
    results["format_version"] = version
    (copy / "results.json").write_text(json.dumps(results))
    return copy


@pytest.mark.parametrize("command", ["compare", "view"])
def test_a_newer_format_is_refused_with_one_line(cli, tmp_path, command):
    newer = _with_version(tmp_path, FORMAT_VERSION + 1)
    page = (newer / "report.html").read_bytes()  # the published run carries its page
    args = [newer, PUBLISHED[1]] if command == "compare" else [newer]
    code, _, err = cli(command, *args)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "written by a newer aloe-bench; upgrade" in lines[0], err
    assert (newer / "report.html").read_bytes() == page  # nothing rewritten from a format it cannot read


def test_a_malformed_format_version_is_refused(tmp_path):
    with pytest.raises(UserInputError, match="format_version must be a whole number"):
        load_run(_with_version(tmp_path, "one"))


@pytest.mark.parametrize("name", [*OLD_RUNS, "embedded-demo-swap"])
def test_published_conversations_round_trip_with_typed_turns(name):
    """Every line of conversations.jsonl reads into typed turns and writes back unchanged; an ALOE
    judgement is a 1-5 integer or null, kept beside its raw answer."""
    from aloe_bench.log.records import JudgementRecord
    from aloe_bench.log.results import ConversationRecord

    path = REPO / "leaderboard" / "runs" / name / "conversations.jsonl"
    lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    records = [ConversationRecord.from_dict(line) for line in lines]
    assert [r.to_dict() for r in records] == lines
    judged = [t for r in records for t in r.turns if t.judgements]
    if name != "embedded-demo-swap":  # written before judgements were recorded
        assert not judged
        return
    assert judged and all(isinstance(j, JudgementRecord) for t in judged for j in t.judgements or [])
    for turn in judged:
        for j in [*(turn.judgements or []), *(turn.swap_judgements or [])]:
            assert j.score is None or (isinstance(j.score, int) and 1 <= j.score <= 5)
            assert j.raw is not None and j.history  # the raw answer stays beside the parsed value
        assert all(j.persona_id for j in turn.swap_judgements or [])


def test_a_format_2_conversation_gets_its_scores_keyed_on_read(tmp_path):
    """Format <= 2 wrote a turn's score alone; read back, a scored turn holds it under `score` (the
    format did not name its scorer), an unscored one has none, and the old fields are as written."""
    copy = tmp_path / "old"
    shutil.copytree(PUBLISHED[0], copy)
    lines = (copy / "conversations.jsonl").read_text().splitlines()
    raw = [json.loads(line) for line in lines if line.strip()]
    assert all("scores" not in t for c in raw for t in c["turns"])
    run = load_run(copy)
    for before, conv in zip(raw, run.conversations, strict=True):
        for old, turn in zip(before["turns"], conv.turns, strict=True):
            assert turn.score == old["score"] and turn.judge_raw == old["judge_raw"]
            expected = {"score": {"value": old["score"]}} if old["judged"] else None
            assert (turn.scores and {k: s.to_dict() for k, s in turn.scores.items()}) == expected
