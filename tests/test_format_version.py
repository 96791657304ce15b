"""results.json `format_version` (issue 10): written by every writer, old runs migrate on read,
newer formats are refused with one clear line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from aloe_bench.log.results import FORMAT_VERSION, load_run
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
    assert FORMAT_VERSION == 2
    for directory in (run_dir, rejudged):
        assert json.loads((directory / "results.json").read_text())["format_version"] == FORMAT_VERSION
        assert load_run(directory).format_version == FORMAT_VERSION


def test_a_multifaceted_run_writes_the_current_format(cli, tmp_path, monkeypatch):
    monkeypatch.setattr("aloe_bench.engine.tasks.tasks_dir", lambda: REPO / "tasks")
    with FakeOpenAIServer(FakeBehaviour(judge_answers=["Feedback: fine.\n[RESULT] 4"])) as server:
        code, _, err = cli(
            "run", "--task", "multifaceted_demo", *_fake_roles(server.base_url, "model", "judge"),
            "--limit", "1", "--no-cache", "--no-progress", "--output", tmp_path / "mf",
        )  # fmt: skip
    assert code == 0, err
    assert json.loads((tmp_path / "mf" / "results.json").read_text())["format_version"] == FORMAT_VERSION


def _with_version(tmp_path: Path, version: object) -> Path:
    copy = tmp_path / f"run-v{version}"
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
    from aloe_bench.errors import UserInputError

    with pytest.raises(UserInputError, match="format_version must be a whole number"):
        load_run(_with_version(tmp_path, "one"))
