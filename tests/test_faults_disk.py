"""A full disk and unwritable paths (issue 25): the run stops with one line naming the file, what
finished stays readable, and the same command resumes once space is back, to the transcripts of a
run that never met the fault. ENOSPC is injected at each write (results.json, the journal, the call
cache), and met for real on a small tmpfs where the machine allows mounting one."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from test_faults_cache import tmpfs
from test_faults_kill import run, run_command, write_personas

from aloe_bench.log.results import load_run
from aloe_bench.testing.fake_openai import FakeBehaviour, FakeOpenAIServer


def assert_one_error_line(stderr: str, path: Path) -> None:
    errors = [line for line in stderr.splitlines() if "error" in line.lower()]
    assert "Traceback" not in stderr, stderr
    assert len(errors) == 1, stderr
    assert errors[0].startswith("aloe-bench: error: cannot write ")
    assert str(path) in errors[0], (path, errors[0])
    assert "re-run the same command to resume" in errors[0]


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("disk")
    personas = write_personas(tmp / "personas.jsonl", 10)
    with FakeOpenAIServer(FakeBehaviour(latency_s=0.01, judge_by_content=True)) as server:
        ref = tmp / "reference"
        done = run(run_command(server.base_url, personas, ref, tmp / "ref.sqlite"))
        assert done.returncode == 0, done.stderr
        yield server, personas, (ref / "conversations.jsonl").read_bytes()


@pytest.mark.parametrize(
    ("fault", "failing"),
    [
        ("enospc-write:results.json:2", "results.json"),  # the final results.json
        ("enospc-journal:25", "journal.jsonl"),  # mid-run
        ("enospc-cache:1", "cache"),  # the first group commit, 0.5 s into the run
    ],
)
def test_enospc_at_each_write_stops_cleanly_and_the_same_command_resumes(world, tmp_path, fault, failing):
    server, personas, reference = world
    out, cache = tmp_path / "run", tmp_path / "calls.sqlite"
    cmd = run_command(server.base_url, personas, out, cache)
    server.behaviour.latency_s = 0.1  # the run lasts a few commit intervals
    try:
        stopped = run(cmd, fault=fault, report=tmp_path / "fault.json")
    finally:
        server.behaviour.latency_s = 0.01
    assert stopped.returncode == 2, stopped.stderr
    assert_one_error_line(stopped.stderr, cache if failing == "cache" else out / failing)
    assert load_run(out).results.status in ("running", "failed")  # stopped mid-run; readable

    resumed = run(cmd)  # space is back (no fault armed): the same command
    assert resumed.returncode == 0, resumed.stderr
    assert load_run(out).results.status == "complete"
    assert (out / "conversations.jsonl").read_bytes() == reference


def test_a_real_full_disk_under_the_run_directory(world, tmp_path):
    server, personas, reference = world
    with tmpfs(tmp_path / "disk", "48k") as disk:  # room for the first files, not for the journal
        out, cache = disk / "run", tmp_path / "calls.sqlite"
        cmd = run_command(server.base_url, personas, out, cache)
        stopped = run(cmd)
        assert stopped.returncode == 2, stopped.stderr
        errors = [line for line in stopped.stderr.splitlines() if "error" in line.lower()]
        assert len(errors) == 1 and str(out) in errors[0] and "No space left on device" in errors[0], (
            stopped.stderr
        )
        assert "Traceback" not in stopped.stderr
        assert load_run(out).results.status in ("running", "failed")  # readable as it stopped

        subprocess.run(["mount", "-o", "remount,size=4m", str(disk)], check=True)  # space is back
        resumed = run(cmd)
        assert resumed.returncode == 0, resumed.stderr
        assert (out / "conversations.jsonl").read_bytes() == reference
        assert not list(out.glob(".*.tmp"))


def test_a_read_only_output_or_cache_path_is_one_line(world, tmp_path):
    server, personas, _ = world
    with tmpfs(tmp_path / "ro", "1m") as disk:
        subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        for out, cache, named in (
            (disk / "run", tmp_path / "c.sqlite", disk / "run"),
            (tmp_path / "run", disk / "c.sqlite", disk / "c.sqlite"),
        ):
            done = run(run_command(server.base_url, personas, out, cache))
            assert done.returncode == 2, done.stderr
            lines = [line for line in done.stderr.splitlines() if "error" in line.lower()]
            assert len(lines) == 1 and str(named) in lines[0] and "Traceback" not in done.stderr, done.stderr
